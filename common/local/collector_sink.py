"""The local target's stand-in for Azure's data collector sidecar: where azureml-ai-monitoring's records go.

In Azure, score.py's Collector queues each record and a worker thread of the package posts it to the data collector
sidecar (http://127.0.0.1:50011/modeldata/log), which writes JSON lines to blob storage. Locally the package runs
unchanged (its configuration, sampling and queue) and only its worker and that last hop are replaced: `install()`
has a BatchWorker take the queued records every 0.2 s and append them, one JSON line each, to
AZUREML_LOCAL_CAPTURE_DIR/COLLECTION/yyyy/MM/dd/HH/PID.jsonl (one file per server process, as Azure writes one
per instance). A file is closed at SEGMENT_BYTES (the next records go to PID.1.jsonl, PID.2.jsonl, ...), so the front
door, which keeps the folder under its size cap (common/local/capture_files.py), can remove the oldest records without
touching the file being written.

A record that cannot be written (full disk) is dropped and counted in the server's log (a batch written part-way is
cut back to its start: records are whole or absent); the request was answered before, by then. A folder removed
while written to (the cap, a person) is made again. Loaded by the launcher (inference_server.py) in the
deployment's environment: it imports nothing from this project.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

try:
    import orjson
except ImportError:  # an environment without it: the package's own JSON
    orjson = None  # type: ignore[assignment]  # the one optional import: its absence is checked where it is used

CAPTURE_DIR_VARIABLE = "AZUREML_LOCAL_CAPTURE_DIR"
SOURCE_VARIABLE = "AZUREML_LOCAL_CAPTURE_SOURCE"  # the deployment, as Azure names it in "source"
SEGMENT_BYTES_VARIABLE = "AZUREML_LOCAL_CAPTURE_SEGMENT_BYTES"  # a file's size once it is closed for the next one
DEFAULT_SEGMENT_BYTES = 4 * 1024 * 1024
DROPPED_FOLDER = ".dropped"  # per server process, the records it could not write: what `show` adds up
DEFAULT_RECORD_BYTES = 1024 * 1024  # a record's rows beyond about this are cut (the record says how many it had)
SAMPLE_ROWS = 20  # the rows a frame's bytes per row are measured on
WHOLE_ROWS = 1000  # a frame of up to this many rows is written whole without measuring it
DROP_LOG_SECONDS = 60.0
FLUSH_SECONDS = 0.2  # records reach their file within this; a server killed outright loses at most this much


class FileSender:
    """Writes azureml-ai-monitoring's payloads as Azure's records."""

    def __init__(
        self,
        folder: Path,
        source: str,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        record_bytes: int = DEFAULT_RECORD_BYTES,
    ) -> None:
        self.folder, self.source, self.segment_bytes, self.record_bytes = folder, source, segment_bytes, record_bytes
        self.logger = logging.getLogger("mdc.sender")
        self.dropped, self.reported_at = 0, -DROP_LOG_SECONDS
        self.unreported = 0  # dropped since the last log line: said when writing works again, or at exit
        self.made: set[Path] = set()
        self.segments: dict[Path, int] = {}  # hour folder -> the number of this process's file being written there

    def line(self, payload: Any) -> bytes:
        """Azure's record as one JSON line, the frame's rows as its "data"."""
        moment = payload.time()
        record = {
            "specversion": "1.0",
            "id": payload.id(),
            "source": self.source,
            "type": f"azureml.inference.{payload.designation()}",
            "datacontenttype": payload.contenttype(),
            "time": datetime.datetime.fromtimestamp(moment, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "correlationid": payload.correlation_id(),
            "agent": payload.agent(),
        }
        if payload.model_version() is not None:
            record["modelversion"] = payload.model_version()
        rows, total, kept = _rows_json(payload, self.record_bytes)
        if kept < total:  # a record cut to its first rows says so: what a reader counts is what was collected
            record["truncated"] = {"rows": total, "kept": kept}
        head = json.dumps(record, separators=(",", ":"))
        return f'{head[:-1]},"data":{rows}}}\n'.encode()

    def write(self, payloads: list[Any]) -> None:
        """Append the records, one write per file: a batch runs on into the next file where the one written reaches
        segment_bytes, so no file grows much past it whatever the batch."""
        by_hour: dict[Path, list[bytes]] = {}
        for payload in payloads:
            try:
                hour = datetime.datetime.fromtimestamp(payload.time(), datetime.UTC).strftime("%Y/%m/%d/%H")
                by_hour.setdefault(self.folder / payload.designation() / hour, []).append(self.line(payload))
            except (ValueError, TypeError) as error:
                self._dropped(1, error)
        for folder, lines in by_hour.items():
            for path, chunk in self._chunks(folder, lines):
                self._write_chunk(path, chunk)

    def _chunks(self, hour: Path, lines: list[bytes]) -> list[tuple[Path, list[bytes]]]:
        """The lines split into the files they go to, at record boundaries."""
        path, size = self.segment(hour)
        chunks: list[tuple[Path, list[bytes]]] = [(path, [])]
        for line in lines:
            if size and size + len(line) > self.segment_bytes:
                self.segments[hour] = self.segments.get(hour, 0) + 1
                path, size = self.segment(hour)
                chunks.append((path, []))
            chunks[-1][1].append(line)
            size += len(line)
        return [(file, chunk) for file, chunk in chunks if chunk]

    def _write_chunk(self, path: Path, lines: list[bytes]) -> None:
        try:
            self._append(path, b"".join(lines))
        except FileNotFoundError:  # its folder removed meanwhile (the cap, a person): made again, written again
            self.made.discard(path.parent)
            try:
                self._append(path, b"".join(lines))
            except OSError as error:
                self._dropped(len(lines), error)
                return
        except OSError as error:
            self._dropped(len(lines), error)
            return
        self.written()

    def segment(self, hour: Path) -> tuple[Path, int]:
        """This process's file in the hour folder and its size: PID.jsonl, then PID.N.jsonl once the one before
        holds segment_bytes (or was removed by the cap: a new name, never the name of a file the cap took)."""
        number = self.segments.get(hour, 0)
        path = hour / (f"{os.getpid()}.jsonl" if number == 0 else f"{os.getpid()}.{number}.jsonl")
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        if size >= self.segment_bytes:
            self.segments[hour] = number + 1
            return self.segment(hour)
        return path, size

    def _append(self, path: Path, chunk: bytes) -> None:
        if path.parent not in self.made:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.made.add(path.parent)
        append_whole(path, chunk)

    def _dropped(self, count: int, error: BaseException) -> None:
        """Count dropped records; said at the first, at most once a minute while it goes on, and once more with
        the total when writing works again (or the server stops): every dropped record is in the log's count."""
        self.dropped += count
        self.unreported += count
        now = time.monotonic()
        if now - self.reported_at >= DROP_LOG_SECONDS:
            self.reported_at = now
            self._report(f": {error}")

    def _report(self, why: str = "") -> None:
        self.logger.error("dropped %d collected record(s), %d in all since the server started%s", self.unreported,
                          self.dropped, why)  # fmt: skip
        self.unreported = 0
        with contextlib.suppress(OSError):  # the disk may still be full: the next report writes it again
            tally = self.folder / DROPPED_FOLDER / f"{os.getpid()}.json"
            tally.parent.mkdir(parents=True, exist_ok=True)
            tally.write_text(json.dumps({"dropped": self.dropped, "time": time.time()}))

    def stopped(self) -> None:
        """The server stops: drops not yet said are said, with the total."""
        if self.unreported:
            self._report(" (the server stopped)")

    def written(self) -> None:
        """A write succeeded: drops not yet said are said now, with the total."""
        if self.unreported:
            self._report(" (collection goes on)")


def append_whole(path: Path, chunk: bytes) -> None:
    """Append `chunk` whole or not at all: a write that fails part-way (a full disk) is cut back to where the file
    ended, so no half line is left for the next record to be glued to. Unbuffered: nothing is left to be written
    when the file is closed."""
    with path.open("ab", buffering=0) as handle:
        end = handle.seek(0, os.SEEK_END)
        rest = memoryview(chunk)
        try:
            while rest:
                rest = rest[handle.write(rest) or 0 :]
        except OSError:
            with contextlib.suppress(OSError):
                handle.truncate(end)
            raise


def _frame_rows(frame: Any, columns: list[str]) -> list[dict[str, Any]]:
    """A frame's rows as Azure's records hold them: one object per row, keyed by column."""
    return [dict(zip(columns, row, strict=True)) for row in frame.to_numpy().tolist()]


def _rows_json(payload: Any, record_bytes: int = DEFAULT_RECORD_BYTES) -> tuple[str, int, int]:
    """The payload's frame as JSON records, cut to the first rows that fit in about `record_bytes`; with the frame's
    row count and the rows kept. This runs in the package's worker thread, which shares the server process's
    interpreter lock with the next request: the frame the payload holds (azureml-ai-monitoring 1.0.0 keeps it as
    LogData._data) goes through orjson, 20 us where the package's own DataFrame.to_json takes 120, and a frame of
    hundreds of thousands of rows is cut before it is converted (written whole, one 5 MB request held the lock for
    seconds and became 61 MB of records); anything else through the package's content()."""
    frame = getattr(getattr(payload, "_data", None), "_data", None)
    if orjson is not None and frame is not None and hasattr(frame, "to_numpy") and hasattr(frame, "columns"):
        columns = [str(name) for name in frame.columns]
        try:
            total = len(frame)
            kept = total
            if total > WHOLE_ROWS:  # up to it, far under the limit (a row is at most a few hundred bytes): no measuring
                sample = _frame_rows(frame.iloc[:SAMPLE_ROWS], columns)
                per_row = max(1, len(orjson.dumps(sample)) // max(1, len(sample)))
                kept = min(total, max(1, record_bytes // per_row))
            rows = _frame_rows(frame if kept == total else frame.iloc[:kept], columns)
            return orjson.dumps(rows).decode(), total, kept
        except (TypeError, ValueError):
            pass
    content = payload.content()
    text = content if isinstance(content, str) else json.dumps(content.decode("utf-8", "replace"))
    return text, 1, 1


class BatchWorker:
    """The package's worker, batched: instead of a thread woken for each record as it is queued (two wake-ups and
    two hand-overs of the interpreter lock per request, which the next request waits for), one thread takes
    everything queued every FLUSH_SECONDS and writes it. The package's queue, its capacity and its refusals when
    full are unchanged."""

    def __init__(self, queue: Any, sender: FileSender) -> None:
        self.queue, self.sender = queue, sender

    def start(self) -> BatchWorker:
        threading.Thread(target=self._run, name="data collector files", daemon=True).start()
        atexit.register(self.flush)  # a server stopped by SIGTERM writes what it holds
        atexit.register(self.sender.stopped)
        return self

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush()

    def flush(self) -> None:
        payloads = []
        for _ in range(self.queue.length()):  # dequeue() would wait on an empty queue: take only what is there
            payload, _remaining = self.queue.dequeue()
            if payload is None:  # closed
                break
            payloads.append(payload)
        if payloads:
            self.sender.write(payloads)


def install() -> bool:
    """Have azureml-ai-monitoring's records written to files when the deployment collects data and the package
    is there (its worker, started in each server process by the first Collector, replaced by BatchWorker); False
    otherwise (nothing changed)."""
    folder = os.environ.get(CAPTURE_DIR_VARIABLE)
    if not folder:
        return False
    try:
        from azureml.ai.monitoring import init as package_init
    except ImportError:
        return False
    configured = os.environ.get(SEGMENT_BYTES_VARIABLE, "")
    segment_bytes = int(configured) if configured.isdigit() and int(configured) > 0 else DEFAULT_SEGMENT_BYTES
    sender = FileSender(Path(folder), os.environ.get(SOURCE_VARIABLE, ""), segment_bytes)
    package_init.init_worker = lambda queue, _config: BatchWorker(queue, sender).start()
    return True
