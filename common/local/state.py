"""Where the local target keeps its state: one directory of JSON files, each read-modify-write under a file lock.

Layout under the home directory ($AZUREML_LOCAL_HOME, default ~/.azureml-local):
  endpoints/NAME/endpoint.json      the endpoint as the user set it: auth, traffic, mirror traffic, scoring port,
                                    revision (counts every change; a write based on an older one is refused)
  endpoints/NAME/keys.json          keys and token secret (mode 0600)
  endpoints/NAME/activity.jsonl     one line per change of endpoint.json (revision, time, traffic, mirror, pid)
  endpoints/NAME/frontdoor.json     written by the front door alone: its pid, port and the revision it applied
  endpoints/NAME/access.log         the front door's access log (no credentials)
  endpoints/NAME/frontdoor.log      the front door's own log (supervision events included)
  endpoints/NAME/deployments/D/     deployment.json (what the user asked for, with a generation number),
                                    status.json (written by the front door alone: health, pid, restarts, reason),
                                    server.log, code-*/, model-*/ and mdc-*/ (data collection) snapshots
  endpoints/NAME/data/D/COLLECTION/yyyy/MM/dd/HH/PID.jsonl   what deployment D collected (common/monitoring/capture.py)
  models/NAME/VERSION/              registered model folders
  locks/NAME.lock                   the endpoint's lock (kept outside the endpoint so deleting it is safe)

The deployment servers' Unix sockets live in a short per-user folder only its owner can enter (see runtime_dir):
a socket path must fit in 107 bytes, which a home folder deep in the file system would not leave room for.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from common.errors import EXIT_FAILED, CliError, UsageError

HOME_VARIABLE = "AZUREML_LOCAL_HOME"
LOCK_TIMEOUT_SECONDS = 60.0
ENVIRONMENTS_FOLDER = "venvs"  # the built environments' default place (common/local/environments.py)
SOCKET_PATH_LIMIT = 107  # sun_path is 108 bytes on Linux, one of them the terminating NUL


class LocalStateError(CliError):
    """A state file of the local target is unreadable; the message names it and what to do."""

    exit_code = EXIT_FAILED


def default_home() -> Path:
    configured = os.environ.get(HOME_VARIABLE)
    return Path(configured).expanduser() if configured else Path.home() / ".azureml-local"


class NoSpace(LocalStateError):
    """The device holding the local home is full: nothing was written."""


SPACE_MARGIN_BYTES = 64 * 1024  # what a write needs beyond its bytes (the file system's own blocks)


def require_space(folder: Path, needed: int, what: str) -> None:
    """NoSpace, naming the folder and both figures, unless its device has `needed` bytes (and a margin) free."""
    free = _free_bytes(folder)
    if free is not None and free < needed + SPACE_MARGIN_BYTES:
        raise NoSpace(no_space_message(folder, what, needed))


def _free_bytes(folder: Path) -> int | None:
    """What the device holding `folder` (or its nearest existing parent) has free for this user."""
    existing = next((path for path in (folder, *folder.parents) if path.exists()), folder)
    try:
        stats = os.statvfs(existing)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


def no_space_message(folder: Path, what: str, needed: int) -> str:
    free = _free_bytes(folder)
    has = f"{free:,} bytes free" if free is not None else "too little space"
    return (
        f"no space left on the device for {what}: {str(folder)!r} has {has}, {needed + SPACE_MARGIN_BYTES:,} "
        "are needed; free some space and run the command again (nothing was changed)"
    )


def write_json(path: Path, data: Any) -> None:
    """Write atomically (readers such as the front door never see half a file), mode 0600 (see make_private);
    NoSpace when the device is full, the file as it was."""
    text = json.dumps(data, indent=2, sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as error:
        raise _when_full(error, path, len(text)) from None
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise _when_full(error, path, len(text)) from None
        raise


def _when_full(error: OSError, path: Path, size: int) -> Exception:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return NoSpace(no_space_message(path.parent, f"{path.name}", size))
    return error


def read_json(path: Path, remedy: str = "") -> dict[str, Any]:
    """The file's JSON object; LocalStateError naming the file (and `remedy`) when it is not one."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) else f"not valid JSON: {error}"
        raise LocalStateError(f"local state file {str(path)!r} is unreadable ({reason}){remedy}") from None
    if not isinstance(data, dict):
        raise LocalStateError(f"local state file {str(path)!r} is unreadable (not a JSON object){remedy}")
    return data


def read_json_or_none(path: Path) -> dict[str, Any] | None:
    """For files the front door writes: missing or unreadable both mean 'not known'."""
    try:
        return read_json(path)
    except (FileNotFoundError, LocalStateError):
        return None


def append_line(path: Path, record: dict[str, Any]) -> None:
    line = json.dumps(record, sort_keys=True) + "\n"
    try:
        with open(path, "a", opener=_private_opener) as handle:
            handle.write(line)
    except OSError as error:
        raise _when_full(error, path, len(line)) from None


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def make_private(home: Path) -> None:
    """The local home and what the toolkit keeps in it are its user's alone: folders 0700, files 0600 (keys, --env
    values in the deployments' state, logs that hold request data). This process creates them so from now on (umask
    077, which the front door's deployment servers inherit); what is more open (an older version's files) is
    tightened; a home that belongs to another user is refused. Built environments are closed at their root."""
    os.umask(0o077)
    with contextlib.suppress(FileExistsError):
        home.mkdir(parents=True, mode=0o700)
    info = os.lstat(home)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise LocalStateError(
            f"{HOME_VARIABLE} {str(home)!r} must be a folder owned by you (it holds the local endpoints' keys and "
            f"state); point {HOME_VARIABLE} at a folder of your own"
        )
    tighten_tree(home, skip=ENVIRONMENTS_FOLDER)


def tighten_tree(root: Path, skip: str | None = None) -> None:
    """Folders 0700 and files 0600 (at most) under `root`, itself included; a top-level folder named `skip` is closed
    at its root only (the built environments: thousands of files). Copies (shutil keeps the source's modes) go
    through it too."""
    _tighten(root, 0o700)
    for folder, subfolders, files in os.walk(root):
        if skip and Path(folder) == root and skip in subfolders:
            subfolders.remove(skip)
            _tighten(root / skip, 0o700)
        for name in subfolders:
            _tighten(Path(folder, name), 0o700)
        for name in files:
            _tighten(Path(folder, name), 0o600)


def _tighten(path: Path, mode: int) -> None:
    """Take group and other permissions off `path` (symbolic links and sockets left alone); one removed meanwhile
    (a rotated log, a snapshot the front door cleans up) is no matter."""
    with contextlib.suppress(FileNotFoundError):
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode) or stat.S_ISSOCK(info.st_mode) or not stat.S_IMODE(info.st_mode) & 0o077:
            return
        os.chmod(path, stat.S_IMODE(info.st_mode) & mode)


def _check_home(home: Path) -> None:
    if home.exists() and not home.is_dir():
        raise UsageError(
            f"{HOME_VARIABLE}={str(home)!r} is not a folder: point it at a folder for the local target's state "
            "(it is created if missing)"
        )


def runtime_path(home: Path) -> Path:
    """Where runtime_dir keeps the home's sockets (nothing is created or checked)."""
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"azureml-local-{os.getuid()}" / digest


def runtime_dir(home: Path) -> Path:
    """A folder for the deployment servers' sockets: short, per user and per home, entered by its owner only.

    Created with mode 0700; an existing one owned by someone else, or open to others, is refused, so no other user
    can reach a deployment around the front door.
    """
    folder = runtime_path(home)
    for path in (folder.parent, folder):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
        info = os.lstat(path)
        if info.st_uid != os.getuid():
            raise LocalStateError(
                f"{str(path)!r} belongs to another user, and the local deployments' sockets go there: have it "
                "removed (by its owner or an administrator), or set TMPDIR to a folder of your own, and run the "
                "command again"
            )
        if not stat.S_ISDIR(info.st_mode) or stat.S_IMODE(info.st_mode) & 0o077:
            raise LocalStateError(
                f"{str(path)!r} must be a folder with mode 0700 (it holds the local deployments' sockets); remove it "
                "and run the command again"
            )
    return folder


class LocalStore:
    def __init__(self, home: Path) -> None:
        _check_home(home)
        self.home = home

    def endpoint_dir(self, endpoint: str) -> Path:
        # names are case-insensitive, as in Azure ML (common/validation.canonical_name): one folder for any spelling
        return self.home / "endpoints" / endpoint.lower()

    def endpoint_file(self, endpoint: str) -> Path:
        return self.endpoint_dir(endpoint) / "endpoint.json"

    def keys_file(self, endpoint: str) -> Path:
        return self.endpoint_dir(endpoint) / "keys.json"

    def frontdoor_file(self, endpoint: str) -> Path:
        return self.endpoint_dir(endpoint) / "frontdoor.json"

    def activity_file(self, endpoint: str) -> Path:
        return self.endpoint_dir(endpoint) / "activity.jsonl"

    def deployment_dir(self, endpoint: str, deployment: str) -> Path:
        return self.endpoint_dir(endpoint) / "deployments" / deployment.lower()

    def deployment_file(self, endpoint: str, deployment: str) -> Path:
        return self.deployment_dir(endpoint, deployment) / "deployment.json"

    def status_file(self, endpoint: str, deployment: str) -> Path:
        return self.deployment_dir(endpoint, deployment) / "status.json"

    def capture_dir(self, endpoint: str, deployment: str) -> Path:
        """What the deployment collects (--data_collection), in Azure's blob layout below it."""
        return self.endpoint_dir(endpoint) / "data" / deployment.lower()

    def server_log(self, endpoint: str, deployment: str) -> Path:
        """The deployment's server output (every instance's), the local inference-server container log."""
        return self.deployment_dir(endpoint, deployment) / "server.log"

    def model_dir(self, name: str, version: str) -> Path:
        return self.home / "models" / name / version

    def lock(self, endpoint: str, timeout: float = LOCK_TIMEOUT_SECONDS) -> Any:
        """The endpoint's lock: every read-modify-write of its state files happens while holding it.

        One lock object per path in a process (is_singleton), so it is re-entrant within a thread.
        """
        from filelock import FileLock

        path = self.home / "locks" / f"{endpoint.lower()}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(path, timeout=timeout, is_singleton=True)

    def frontdoor_lock(self, endpoint: str) -> Path:
        """Held by the endpoint's running front door (an operating-system lock, released even on kill -9)."""
        return self.home / "locks" / f"{endpoint.lower()}.frontdoor.lock"

    def frontdoor_holds_lock(self, endpoint: str) -> bool:
        """Whether a front door of the endpoint runs, whatever its record says."""
        from filelock import FileLock, Timeout

        path = self.frontdoor_lock(endpoint)
        if not path.exists():
            return False
        probe = FileLock(path, blocking=False)
        try:
            probe.acquire()
        except Timeout:
            return True
        probe.release()
        return False

    def socket_path(self, endpoint: str, deployment: str, generation: int, attempt: int) -> Path:
        path = runtime_dir(self.home) / f"{_socket_tag(endpoint)}-{deployment}-{generation}-{attempt}.sock"
        if len(str(path)) > SOCKET_PATH_LIMIT:
            raise LocalStateError(
                f"the socket path {str(path)!r} is longer than {SOCKET_PATH_LIMIT} bytes: set TMPDIR to a shorter "
                "folder"
            )
        return path

    def sockets(self, endpoint: str) -> list[Path]:
        """The endpoint's deployment sockets (a server stopped by kill -9 leaves its socket file behind)."""
        return sorted(runtime_dir(self.home).glob(f"{_socket_tag(endpoint)}-*.sock"))

    def release_runtime_dir(self) -> None:
        """Once the home holds no endpoint, its socket folder goes too (when empty; a server that starts later makes
        it again). The per-user folder above it is left: other homes of the same user share it."""
        if not self.endpoints():
            with contextlib.suppress(OSError):
                runtime_path(self.home).rmdir()

    def endpoints(self) -> list[str]:
        return sorted(p.parent.name for p in (self.home / "endpoints").glob("*/endpoint.json"))

    def deployments(self, endpoint: str) -> list[str]:
        return sorted(p.parent.name for p in (self.endpoint_dir(endpoint) / "deployments").glob("*/deployment.json"))

    def model_versions(self, name: str) -> list[int]:
        folder = self.home / "models" / name
        return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []


def _socket_tag(endpoint: str) -> str:
    """A short fixed-length stand-in for the endpoint name (up to 32 characters) in socket file names."""
    return hashlib.sha256(endpoint.encode()).hexdigest()[:8]
