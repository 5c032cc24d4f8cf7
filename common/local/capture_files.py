"""The local target's collected data on disk: read back for compare and drift, and kept under its size cap.

Each deployment's folder (LocalStore.capture_dir: endpoints/E/data/D/) holds COLLECTION/yyyy/MM/dd/HH/*.jsonl, as
Azure's blob layout (the front door's answer pairs as mirror_pairs/). The cap (AZUREML_LOCAL_CAPTURE_MAX_BYTES, 100
MiB by default, checked every 2 s) is one rule for all of them: the files whose last record is the oldest go first,
across the collections and the pairs (so model_inputs and model_outputs, written together, go together), until the
rest fit; a file written to in the last ACTIVE_SECONDS is never removed. Writers close a file at segment_bytes()
(1/16 of the cap) and go on in a new one, so the file being written is small and the oldest records can always go;
each writer's newest file of each collection is kept, so every collection keeps its newest records.
A writer that finds its folder gone makes it again.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from common.local.collector_sink import DROPPED_FOLDER
from common.local.state import read_json_or_none, write_json
from common.monitoring import capture

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
MAX_BYTES_VARIABLE = "AZUREML_LOCAL_CAPTURE_MAX_BYTES"
ACTIVE_SECONDS = 5.0  # a file written to this recently is being written: the cap leaves it
MIN_SEGMENT_BYTES = 64 * 1024
PAIRS = "mirror_pairs"  # the front door's live/shadow answer pairs, beside the deployment's own collections


def max_bytes() -> int:
    configured = os.environ.get(MAX_BYTES_VARIABLE, "")
    return int(configured) if configured.isdigit() and int(configured) > 0 else DEFAULT_MAX_BYTES


def segment_bytes() -> int:
    """The size at which writers close a file for the next: a sixteenth of the cap, so the cap can take records
    while a file is being written."""
    return max(MIN_SEGMENT_BYTES, max_bytes() // 16)


def prune(folder: Path, limit: int, now: float | None = None) -> list[Path]:
    """Remove the files of one deployment's folder whose last record is the oldest, across its collections and
    pairs, until the rest add up to `limit` bytes or less, never a file written in the last ACTIVE_SECONDS; the
    removed files."""
    now = time.time() if now is None else now
    found = []
    for path in folder.rglob("*.jsonl"):  # ordered below by when each file was last written
        with contextlib.suppress(OSError):
            status = path.stat()
            found.append((status.st_mtime, str(path), path, status.st_size))
    newest: dict[tuple[str, str], tuple[float, str]] = {}  # per collection and writer: its newest file
    for modified, name, path, _size in found:
        key = (path.relative_to(folder).parts[0], path.name.split(".")[0])
        newest[key] = max(newest.get(key, (modified, name)), (modified, name))
    kept = {name for _modified, name in newest.values()}
    total, removed = sum(size for *_, size in found), []
    for modified, name, path, size in sorted(found):
        if total <= limit or modified > now - ACTIVE_SECONDS:
            break
        if name in kept:  # each writer's newest file of each collection: the newest records of all of them stay
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
        total -= size
    for path in removed:
        with contextlib.suppress(OSError):  # an hour folder left empty; one still written to is not empty
            for parent in list(path.parents)[: len(path.relative_to(folder).parts) - 1]:
                parent.rmdir()
    return removed


def read(
    folder: Path, collection: str, since: float, until: float, skipped: capture.Skipped[str] | None = None
) -> Iterator[dict[str, Any]]:
    """The records of one collection of a deployment's folder written from `since` to `until`; what is left out
    (files that are not regular files, unreadable files, lines that are not records) counted in `skipped`."""
    return _read(folder / collection, since, until, skipped, capture.records)


def read_pairs(
    folder: Path, since: float, until: float, skipped: capture.Skipped[str] | None = None
) -> Iterator[dict[str, Any]]:
    """The front door's answer pairs of the shadow whose folder this is, from `since` to `until`."""
    return _read(folder / PAIRS, since, until, skipped, capture.pair_records)


def _read(
    folder: Path,
    since: float,
    until: float,
    skipped: capture.Skipped[str] | None,
    parse: Callable[..., Iterator[dict[str, Any]]],
) -> Iterator[dict[str, Any]]:
    for path in _hour_files(folder, since, until):
        with _opened(path, skipped) as handle:
            if handle is not None:
                yield from parse(handle, since, until, skipped)


def _hour_files(folder: Path, since: float, until: float) -> Iterator[Path]:
    for hour in capture.hours(since, until):
        yield from sorted((folder / hour).glob("*.jsonl"))


@contextlib.contextmanager
def _opened(path: Path, skipped: capture.Skipped[str] | None) -> Iterator[Any]:
    """A capture file opened for reading if it is a regular file (never through a link, never a FIFO or a device:
    a link to /dev/zero would be read forever, a FIFO would wait forever); None, counted, otherwise."""
    counted = skipped if skipped is not None else capture.Skipped()
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:  # removed by the cap meanwhile
        yield None
        return
    except OSError:  # a link (ELOOP), or no permission
        counted["file unreadable or a link"] += 1
        yield None
        return
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            counted["file not a regular file"] += 1
            yield None
        else:
            try:
                yield handle
            except OSError:
                counted["file unreadable"] += 1


def dropped_records(capture_dir: str | None) -> dict[str, str]:
    """The collected records a deployment's servers could not write (a full disk), from the tallies they keep
    under its capture folder (collector_sink.DROPPED_FOLDER); none when nothing was dropped."""
    folder = Path(capture_dir or "") / DROPPED_FOLDER
    total = 0
    for tally in folder.glob("*.json") if capture_dir and folder.is_dir() else ():
        total += int((read_json_or_none(tally) or {}).get("dropped") or 0)
    return {"dropped_records": str(total)} if total else {}


def collection_of(data_collection: dict[str, Any] | None) -> capture.Collection:
    """A deployment's data collection, as its deployment.json keeps it (Collection.as_dict)."""
    given = data_collection or {}
    return capture.Collection(tuple(given.get("collections") or ()), float(given.get("sampling_rate", 1.0)))


def write_collector_config(folder: Path, collection: capture.Collection) -> Path | None:
    """The data collection's configuration as azureml-ai-monitoring reads it (AZUREML_MDC_CONFIG_PATH: each
    collection enabled, with its sample rate in percent); None when nothing is collected."""
    if not collection.enabled:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    percent = collection.sampling_rate * 100
    collections = {name: {"enabled": True, "sampleRatePercentage": percent} for name in collection.names}
    path = folder / "config.json"
    write_json(path, {"collections": collections, "runMode": "cloud"})
    return path
