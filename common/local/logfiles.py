"""The local target's logs, kept to a size: the front door's own log, its access log and each deployment server's
log are rotated once they pass LOG_MAX_BYTES, keeping LOG_KEEP older files (NAME.1 the newest), so an endpoint's
logs never hold more than (1 + LOG_KEEP) x LOG_MAX_BYTES each.

Rotation copies the file to NAME.1 and truncates it in place (logrotate's copytruncate): the processes writing
to it hold it open in append mode and go on writing at its new end. A line written between the copy and the
truncation can be lost; nothing else is.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

LOG_MAX_BYTES_VARIABLE = "AZUREML_LOCAL_LOG_MAX_BYTES"  # read when the front door starts
DEFAULT_LOG_MAX_BYTES = 10 * 2**20
LOG_KEEP = 3
CHECK_SECONDS = 2.0
# A line of the inference server's and gunicorn's own logging: "2026-12-01 10:59:43,530 I [9519] azmlinfsrv - ..."
PROCESS_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z] \[(\d+)\] ")
WORKER_NAMED = re.compile(r"\(pid:\s?(\d+)\)|Booting worker with pid: (\d+)")  # gunicorn's master on its workers
BANNER_PREFIX = "--- "


def log_max_bytes() -> int:
    configured = os.environ.get(LOG_MAX_BYTES_VARIABLE, "")
    return int(configured) if configured.isdigit() and int(configured) > 0 else DEFAULT_LOG_MAX_BYTES


def rotate(paths: Iterable[Path], max_bytes: int, keep: int = LOG_KEEP) -> list[Path]:
    """Rotate each of `paths` larger than `max_bytes`; the ones rotated."""
    rotated = []
    for path in paths:
        try:
            if path.stat().st_size <= max_bytes:
                continue
            for number in range(keep - 1, 0, -1):
                older = path.with_name(f"{path.name}.{number}")
                if older.exists():
                    os.replace(older, path.with_name(f"{path.name}.{number + 1}"))
            shutil.copyfile(path, path.with_name(f"{path.name}.1"))
            os.truncate(path, 0)
            rotated.append(path)
        except OSError:  # the endpoint is being deleted, or the disk is full: rotation waits for the next round
            continue
    return rotated


def tail(path: Path, lines: int) -> str:
    """The last `lines` lines of a log, from its newest rotated file too when it was just rotated."""
    found: list[str] = []
    for candidate in (path, path.with_name(f"{path.name}.1")):
        with contextlib.suppress(OSError):
            found = _last_lines(candidate, lines - len(found)) + found
        if len(found) >= lines:
            break
    return "\n".join(found[-lines:])


def _last_lines(path: Path, count: int) -> list[str]:
    """The file's last `count` lines, reading back from its end (a log may be megabytes)."""
    if count <= 0:
        return []
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        end = position = handle.tell()
        data = b""
        while position > 0 and data.count(b"\n") <= count:
            position = max(0, position - 65536)
            handle.seek(position)
            data = handle.read(end - position)
    return data.decode(errors="replace").splitlines()[-count:]


def process_output(path: Path, banner: str, pid: int, lines: int) -> str | None:
    """The last `lines` lines one server process (and its workers) wrote to a log several share, from the `banner`
    line written before it started: a generation that fails beside one still serving under load has its traceback
    among thousands of the other's access lines. Its workers are the ones its master names (gunicorn's "Worker
    (pid:N) exited"); a line without a process header (a traceback's continuation, print output) goes with the line
    before it. None when the banner is no longer in the log (rotated away)."""
    with contextlib.suppress(OSError):
        text = _back_to(path, banner)
        start = text.rfind(banner)
        if start < 0:
            return None
        written = text[start:].splitlines()[1:]
        pids = {pid} | {int(a or b) for line in _lines_of(written, {pid}) for a, b in WORKER_NAMED.findall(line)}
        return "\n".join(_lines_of(written, pids)[-lines:])
    return None


def _back_to(path: Path, banner: str, block: int = 1024 * 1024) -> str:
    """The end of a log from its last `banner` on (or the whole log when the banner is not in it), read back from
    the end a block at a time: a log may be megabytes, and the generation asked about is near its end."""
    needle = banner.encode()
    with path.open("rb") as handle:
        end = position = handle.seek(0, os.SEEK_END)
        data = b""
        while position > 0 and needle not in data:
            position = max(0, position - block)
            handle.seek(position)
            data = handle.read(end - position)
    return data.decode(errors="replace")


def _lines_of(lines: list[str], pids: set[int]) -> list[str]:
    own, mine = [], True
    for line in lines:
        header = PROCESS_LINE.match(line)
        if header:
            mine = int(header.group(1)) in pids
        elif line.startswith(BANNER_PREFIX):
            mine = False  # another server's start
        if mine:
            own.append(line)
    return own
