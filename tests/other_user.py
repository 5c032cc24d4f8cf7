"""Another user of this machine, for the tests of what they can and cannot do to a local endpoint: a throw-away
account (useradd, removed afterwards) and a way to run a Python snippet as it. The tests run as root in CI; where
that is impossible they are skipped with the reason."""

from __future__ import annotations

import contextlib
import os
import pwd
import resource
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# Not the toolkit's interpreter: it lives under /root, which another user cannot enter
SYSTEM_PYTHON = Path("/usr/bin/python3")


@dataclass(frozen=True)
class OtherUser:
    name: str
    uid: int
    gid: int

    def python(self, code: str, *args: str, descriptors: int = 4096) -> subprocess.Popen[str]:
        """`code` run by the system Python as this user (with `descriptors` open files allowed), stdin and stdout
        piped."""

        def become() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (descriptors, descriptors))
            os.setgroups([])
            os.setgid(self.gid)
            os.setuid(self.uid)

        return subprocess.Popen(
            [str(SYSTEM_PYTHON), "-I", "-c", code, *args],
            preexec_fn=become,  # the child drops root before it runs anything of the test's
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd="/",
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        )


@contextlib.contextmanager
def other_user() -> Iterator[OtherUser]:
    if os.geteuid() != 0:
        pytest.skip("needs root to create a throw-away local user (CI runs as root)")
    if shutil.which("useradd") is None or not SYSTEM_PYTHON.is_file():
        pytest.skip(f"needs useradd and {SYSTEM_PYTHON} to act as another local user")
    name = f"azml-{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    try:
        account = pwd.getpwnam(name)
        yield OtherUser(name, account.pw_uid, account.pw_gid)
    finally:
        subprocess.run(["pkill", "-KILL", "-u", name], check=False)
        subprocess.run(["userdel", name], check=False)


@contextlib.contextmanager
def soft_descriptor_limit(limit: int) -> Iterator[None]:
    """This process's soft open-file limit set to `limit` (the hard one kept), so that what it starts inherits it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def limit_descriptors(pid: int, limit: int) -> None:
    """Another process's open-file limit, soft and hard, lowered to `limit` (as an administrator's prlimit would)."""
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, limit))
