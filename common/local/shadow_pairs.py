"""What the live deployment and the mirror (shadow) deployment answered to the same requests: the front door's record
for `compare` and `rollout --max_disagreement_percent`.

For each mirrored request the front door makes one pair under the request's id (the x-request-id both deployments
were sent, so their collected records join on it): per side the deployment, the status, the latency and the answer
(a 2xx body of at most MAX_BODY_BYTES; score.py answers a list of labels). Each pair is written to the shadow's
folder of collected data (mirror_pairs/yyyy/MM/dd/HH/frontdoor.jsonl) under the owner's private local home, within
a flush (0.1 s) of its second answer: they survive a restart, count against the folder's size cap (the oldest go
first), and only the owner reads them (compare reads the files; nothing serves them on the scoring port).

Nothing here runs its risks on the live request's path: `answered` keeps the side and queues the completed pair
(at most MAX_PENDING, then dropped and counted); the answers are parsed and written by `flush`, in the front
door's background task, and whatever fails there is counted, never raised into a request.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.local.capture_files import PAIRS, segment_bytes
from common.local.collector_sink import append_whole
from common.monitoring import capture

MAX_BODY_BYTES = 64 * 1024
MAX_PENDING = 10_000  # completed pairs waiting for the next flush (0.1 s); beyond it they are dropped and counted

log = logging.getLogger("frontdoor")


@dataclass(slots=True)
class Side:
    deployment: str
    status: int
    milliseconds: float
    body: bytes | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "status": self.status,
            "latency_ms": round(self.milliseconds, 3),
            "answer": _answer(self.body),
        }


@dataclass(slots=True)
class Pair:
    request_id: str
    time: float
    live: Side | None = None
    shadow: Side | None = None

    def as_dict(self) -> dict[str, Any]:
        assert self.live is not None and self.shadow is not None
        return {
            "request_id": self.request_id,
            "time": self.time,
            "live": self.live.as_dict(),
            "shadow": self.shadow.as_dict(),
        }


def _answer(body: bytes | None) -> Any:
    """The answer as JSON; None for none, or one that does not parse (not JSON, or nested too deep to parse)."""
    if body is None:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


class ShadowPairs:
    """`opened(id)` when a request is mirrored, then `answered(pair, side, ...)` by each side as it answers; the
    second completes the pair. `capture_folder(deployment)` names the shadow's folder of collected data, where its
    pairs go (None: a deployment gone meanwhile). `flush` runs in a worker thread of the front door."""

    def __init__(
        self,
        capture_folder: Callable[[str], Path | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.capture_folder, self.clock = capture_folder, clock
        self.pending: list[tuple[Path, Pair]] = []
        self.failing = False
        self.errors = 0  # pairs that could not be kept or written (counted, never raised into a live request)
        self.dropped = 0  # completed pairs not written: the queue to the next flush was full, or the write failed

    def opened(self, request_id: str) -> Pair:
        return Pair(request_id, self.clock())

    def answered(
        self, pair: Pair, *, shadow: bool, deployment: str, status: int, seconds: float, body: bytes | None
    ) -> None:
        """Called on the live request's path: it only keeps the side and queues a completed pair (its answers are
        parsed and written by flush, off that path); whatever fails here is counted, never raised."""
        try:
            self._answered(pair, shadow, deployment, status, seconds, body)
        except Exception as error:
            self._error(error)

    def _error(self, error: BaseException) -> None:
        self.errors += 1
        if self.errors == 1 or self.errors % 1000 == 0:
            log.warning("mirrored answer pairs: %d error(s) so far, the last: %r", self.errors, error)

    def _answered(
        self, pair: Pair, shadow: bool, deployment: str, status: int, seconds: float, body: bytes | None
    ) -> None:
        kept = body if body is not None and 200 <= status < 300 and len(body) <= MAX_BODY_BYTES else None
        side = Side(deployment, status, seconds * 1000, kept)
        if shadow:
            pair.shadow = side
        else:
            pair.live = side
        if pair.live is None or pair.shadow is None:
            return
        folder = self.capture_folder(pair.shadow.deployment)
        if folder is None:
            return
        if len(self.pending) >= MAX_PENDING:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("mirrored answer pairs: %d dropped so far (more than %d waiting to be written)",
                            self.dropped, MAX_PENDING)  # fmt: skip
        else:
            self.pending.append((folder, pair))

    def _segment(self, hour: Path) -> Path:
        """The file the hour's pairs go to: frontdoor.jsonl, then frontdoor.N.jsonl once the one before holds the
        capture folder's segment size (the cap then takes whole files of the oldest pairs, never the one written)."""
        written = sorted(hour.glob("frontdoor*.jsonl"), key=_segment_number)
        path = written[-1] if written else hour / "frontdoor.jsonl"
        with contextlib.suppress(OSError):
            if path.stat().st_size >= segment_bytes():
                path = hour / f"frontdoor.{_segment_number(path) + 1}.jsonl"
        return path

    def flush(self) -> None:
        """The completed pairs appended to their shadows' folders (the front door calls it with its access log,
        every 0.1 s)."""
        if not self.pending:
            return
        completed, self.pending = self.pending, []
        by_hour: dict[Path, list[str]] = {}
        hour = capture.partition(self.clock())
        for folder, pair in completed:
            try:
                line = json.dumps(_record(pair), separators=(",", ":"))
            except Exception as error:  # an answer json cannot write back: the pair is counted, not written
                self._error(error)
                continue
            by_hour.setdefault(folder / PAIRS / hour, []).append(line + "\n")
        for hour_folder, lines in by_hour.items():
            path = self._segment(hour_folder)  # once per folder and flush: a glob and a stat, not one per pair
            try:
                hour_folder.mkdir(parents=True, exist_ok=True)
                append_whole(path, "".join(lines).encode())  # whole pairs or none, as the collector's records
            except OSError as error:  # a full disk or a deployment being deleted: serving goes on
                self.dropped += len(lines)
                if not self.failing:
                    log.warning(
                        "cannot write mirrored answer pairs to %s (%s): they are dropped (counted)", path, error
                    )
                self.failing = True
                continue
            self.failing = False


def _segment_number(path: Path) -> int:
    parts = path.name.split(".")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else 0


def _record(pair: Pair) -> dict[str, Any]:
    moment = datetime.datetime.fromtimestamp(pair.time, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"id": pair.request_id, "type": "local.mirror_pair", "time": moment, **pair.as_dict()}
