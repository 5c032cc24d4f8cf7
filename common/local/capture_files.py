"""The local target's collected data on disk: read back for compare and drift, and kept under its size cap.

Each deployment's folder (LocalStore.capture_dir: endpoints/E/data/D/) holds COLLECTION/yyyy/MM/dd/HH/*.jsonl, as
Azure's blob layout. The front door removes the oldest files of a deployment once they add up to more than the cap
(AZUREML_LOCAL_CAPTURE_MAX_BYTES, 100 MiB by default), checking every 2 s: the newest data is kept, as a rolling
window. A writer that finds its file gone starts a new one (the collector opens the file for each record).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import capture

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
MAX_BYTES_VARIABLE = "AZUREML_LOCAL_CAPTURE_MAX_BYTES"
PAIRS = "mirror_pairs"  # the front door's live/shadow answer pairs, beside the deployment's own collections


def max_bytes() -> int:
    configured = os.environ.get(MAX_BYTES_VARIABLE, "")
    return int(configured) if configured.isdigit() and int(configured) > 0 else DEFAULT_MAX_BYTES


def files(folder: Path) -> list[Path]:
    """Every .jsonl under `folder`, oldest hour first (the layout sorts by time)."""
    return sorted(folder.rglob("*.jsonl"), key=lambda path: (path.parent.relative_to(folder).parts[1:], str(path)))


def prune(folder: Path, limit: int) -> list[Path]:
    """Remove the oldest files of one deployment's folder until the rest add up to `limit` bytes or less; the
    removed files."""
    sized = []
    for path in files(folder):
        with contextlib.suppress(OSError):
            sized.append((path, path.stat().st_size))
    total, removed = sum(size for _, size in sized), []
    for path, size in sized:
        if total <= limit:
            break
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
        total -= size
    for path in removed:
        with contextlib.suppress(OSError):  # an hour folder left empty; one still written to is not empty
            for parent in list(path.parents)[: len(path.relative_to(folder).parts) - 1]:
                parent.rmdir()
    return removed


def read(folder: Path, collection: str, since: float, until: float) -> Iterator[dict[str, Any]]:
    """The records of one collection of a deployment's folder written from `since` to `until`."""
    for hour in capture.hours(since, until):
        for path in sorted((folder / collection / hour).glob("*.jsonl")):
            try:
                with path.open("rb") as handle:
                    yield from capture.records(handle, since, until)
            except OSError:  # removed by the cap meanwhile
                continue


def read_pairs(folder: Path, since: float, until: float) -> Iterator[dict[str, Any]]:
    """The front door's answer pairs of the shadow whose folder this is, from `since` to `until`."""
    for hour in capture.hours(since, until):
        for path in sorted((folder / PAIRS / hour).glob("*.jsonl")):
            try:
                with path.open("rb") as handle:
                    yield from capture.pair_records(handle, since, until)
            except OSError:
                continue
