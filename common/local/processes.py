"""Starting, checking and stopping the local target's server processes (each in its own process group)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

STOP_GRACE_SECONDS = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port now (with SO_REUSEADDR, as uvicorn binds)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def spawn(argv: Sequence[str], *, cwd: Path, log_path: Path, env: Mapping[str, str] | None = None) -> int:
    """Start a detached process (its own session, so it outlives the script) writing to log_path; returns its pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process.pid


def _reap(pid: int) -> None:
    """Collect the exit status when pid is our own child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def is_running(pid: int | None, marker: str | None = None) -> bool:
    """Whether pid is alive (not a zombie) and, where /proc exists, its command line holds marker.

    The marker (a port) guards against a pid reused by another program after a reboot.
    """
    if not pid:
        return False
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return marker is None
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return False
            if marker is not None and marker not in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                return False
        except OSError:
            return False
    return True


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group: a server's workers as well as the server itself."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def stop(pid: int | None, marker: str | None = None, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM the whole process group, then SIGKILL what is left after `grace` seconds; returns once none is left.

    A group whose leader died (a gunicorn master killed before its workers) is still stopped; a pid now held by
    another program (marker mismatch) is left alone.
    """
    if not pid:
        return
    if not is_running(pid, marker) and (is_running(pid) or not group_members(pid)):
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pid)
            if not group_members(pid):
                return
            time.sleep(0.05)


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(200 <= response.status < 300)
    except (OSError, urllib.error.URLError):
        return False
