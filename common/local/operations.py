"""What the local target's operations classes share: the SDK's error types for what it refuses, a poller that
asks the local target whether the work is done, and how a deployment's state is read from its status."""

from __future__ import annotations

import errno
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.local.state import NoSpace, no_space_message, require_space, tighten_tree
from common.local.state_types import DeploymentSpec, DeploymentStatus, FrontDoorRecord

ROOT = Path(__file__).resolve().parents[2]
FRONTDOOR_START_SECONDS = 60.0
FRONTDOOR_STOP_SECONDS = 30.0
APPLY_TIMEOUT_SECONDS = 30.0
POLL_SECONDS = 0.1
SETTLED_HEALTH = ("running", "unhealthy", "stopped")


def not_found(message: str) -> Exception:
    from azure.core.exceptions import ResourceNotFoundError

    return ResourceNotFoundError(message=message)


def refused(message: str, status: int | None = None) -> Exception:
    """The SDK's error type for what the local target refuses (status: the HTTP status Azure would answer), or,
    without a status, for an operation that failed (as azure-core's failed long-running operations)."""
    from azure.core.exceptions import HttpResponseError

    error = HttpResponseError(message=message)
    error.status_code = status
    return error


Check = Callable[[], "tuple[bool, Any, Exception | None]"]
STATE_ERROR_GRACE_SECONDS = 1.0  # the front door may not have re-read the file a command has just rewritten


class StateErrorWatch:
    """Whether the front door has reported an unreadable state for longer than a re-read takes."""

    def __init__(self) -> None:
        self.since: float | None = None

    def persistent(self, record: FrontDoorRecord | None) -> bool:
        if record is None or not record.state_error:
            self.since = None
            return False
        self.since = self.since or time.monotonic()
        return time.monotonic() - self.since >= STATE_ERROR_GRACE_SECONDS


class LocalPoller:
    """An LROPoller look-alike: done() asks the local target whether the work is finished."""

    where = "on the local target"

    def __init__(self, result: Any = None, error: Exception | None = None, check: Check | None = None) -> None:
        self._result, self._error, self._check = result, error, check
        self._done = check is None

    def done(self) -> bool:
        if not self._done and self._check is not None:
            self._done, self._result, self._error = self._check()
        return self._done

    def wait(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done() and (deadline is None or time.monotonic() < deadline):
            time.sleep(POLL_SECONDS)

    def status(self) -> str:
        if not self.done():
            return "InProgress"
        return "Failed" if self._error else "Succeeded"

    def result(self, timeout: float | None = None) -> Any:
        self.wait(timeout)
        if self._error is not None:
            raise self._error
        return self._result


def observed(spec: DeploymentSpec, status: DeploymentStatus, running: bool) -> tuple[str, str, str]:
    """(provisioning state, health, reason) of a deployment, from what was asked for and what the front door saw."""
    generation = spec.generation
    if spec.deleting:
        return "Deleting", "stopped", ""
    if status.failed_generation == generation:
        state = "Failed"
    elif status.serving_generation == generation:
        state = "Succeeded"
    else:
        state = "Updating" if status.serving else "Creating"
    if not running:
        return state, "stopped", "the endpoint is stopped"
    return state, status.health or "starting", status.reason


def plain_settings(settings: Any) -> dict[str, Any]:
    """The set fields of an SDK settings object (OnlineRequestSettings, ProbeSettings) as plain values."""
    if settings is None:
        return {}
    return {key: value for key, value in vars(settings).items() if not key.startswith("_") and value is not None}


def copy_into(source: Path, folder: Path) -> None:
    """Copy a model file or folder into folder, keeping its name (as Azure mounts a model under its name), private
    to the user as the rest of the local home."""
    copy_private(source, folder / source.name)


def copy_private(source: Path, destination: Path) -> None:
    """Copy a file or folder, refused before it starts when the device lacks the room, and removed again when the
    copy fails half-way: never a partial snapshot."""
    size = sum(p.stat().st_size for p in source.rglob("*") if p.is_file()) if source.is_dir() else source.stat().st_size
    require_space(destination.parent, size, f"a copy of {source}")
    try:
        if source.is_dir():
            shutil.copytree(source, destination)
        else:
            shutil.copy2(source, destination)
    except OSError as error:
        if destination.is_dir():
            shutil.rmtree(destination, ignore_errors=True)
        else:
            destination.unlink(missing_ok=True)
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise NoSpace(no_space_message(destination.parent, f"a copy of {source}", size)) from None
        require_space(destination.parent, size, f"a copy of {source}")  # copytree gathers errors without an errno
        raise
    tighten_tree(destination)
