"""The local target's stand-in for Azure's data collector sidecar: where azureml-ai-monitoring's records go.

In Azure, score.py's Collector queues each record and a worker thread of the package posts it to the data collector
sidecar (http://127.0.0.1:50011/modeldata/log), which writes JSON lines to blob storage. Locally the package runs
unchanged (its configuration, sampling, queue and worker thread) and only that last hop is replaced: `install()`
gives the package's worker this sender, which appends the record as one JSON line under
AZUREML_LOCAL_CAPTURE_DIR/COLLECTION/yyyy/MM/dd/HH/PID.jsonl (one file per server process, as Azure writes one
per instance). The front door keeps the folder under its size cap (common/local/capture_files.py).

A record that cannot be written (full disk) is dropped and counted in the server's log; the request was answered
before, by then. Loaded by the launcher (inference_server.py) in the deployment's environment: it imports nothing
from this project.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

CAPTURE_DIR_VARIABLE = "AZUREML_LOCAL_CAPTURE_DIR"
SOURCE_VARIABLE = "AZUREML_LOCAL_CAPTURE_SOURCE"  # the deployment, as Azure names it in "source"
DROP_LOG_SECONDS = 60.0


class FileSender:
    """azureml-ai-monitoring's sender interface: send(payload) -> (succeeded, message)."""

    def __init__(self, folder: Path, source: str) -> None:
        self.folder, self.source = folder, source
        self.logger = logging.getLogger("mdc.sender")
        self.dropped, self.reported_at = 0, -DROP_LOG_SECONDS
        self.made: set[Path] = set()

    def line(self, payload: Any) -> bytes:
        """Azure's record as one JSON line; the package's JSON of the frame is spliced in as it is (decoding and
        encoding it again cost more than the rest of the record)."""
        content = payload.content()
        data = content if isinstance(content, str) else json.dumps(content.decode("utf-8", "replace"))
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
        head = json.dumps(record, separators=(",", ":"))
        return f'{head[:-1]},"data":{data}}}\n'.encode()

    def send(self, payload: Any) -> tuple[bool, str]:
        try:
            hour = datetime.datetime.fromtimestamp(payload.time(), datetime.UTC).strftime("%Y/%m/%d/%H")
            folder = self.folder / payload.designation() / hour
            if folder not in self.made:
                folder.mkdir(parents=True, exist_ok=True)
                self.made.add(folder)
            with (folder / f"{os.getpid()}.jsonl").open("ab") as handle:
                handle.write(self.line(payload))
            return True, "written"
        except (OSError, ValueError, TypeError) as error:  # the package's worker thread ends on anything else
            self.made.clear()  # a folder removed meanwhile (the cap, a delete) is made again
            self.dropped += 1
            now = time.monotonic()
            if now - self.reported_at >= DROP_LOG_SECONDS:
                self.reported_at = now
                self.logger.error("dropped %d collected record(s): %s", self.dropped, error)
            return False, str(error)


def install() -> bool:
    """Point azureml-ai-monitoring's worker at FileSender when the deployment collects data and the package is
    there; False otherwise (nothing changed)."""
    folder = os.environ.get(CAPTURE_DIR_VARIABLE)
    if not folder:
        return False
    try:
        from azureml.ai.monitoring.worker import worker
    except ImportError:
        return False
    sender = FileSender(Path(folder), os.environ.get(SOURCE_VARIABLE, ""))
    worker.create_sender = lambda _config: sender
    return True
