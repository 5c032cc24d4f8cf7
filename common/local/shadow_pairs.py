"""What the live deployment and the mirror (shadow) deployment answered to the same requests: the front door's record
for `compare` and `rollout --max_disagreement_percent`.

For each mirrored request the front door keeps one pair under the request's id (the x-request-id both deployments
were sent, so their collected records join on it): per side the deployment, the status, the latency and the answer
(a 2xx body of at most MAX_BODY_BYTES; score.py answers a list of labels). Pairs are kept in memory for the last
hour, as the metrics windows, and at most MAX_PAIRS of them (the oldest go first); when the shadow deployment
collects data, each pair is also written to its capture folder (mirror_pairs/yyyy/MM/dd/HH/frontdoor.jsonl).
"""

from __future__ import annotations

import collections
import datetime
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import capture
from common.local.capture_files import PAIRS

RETENTION_SECONDS = 3600
MAX_PAIRS = 200_000  # about 40 MB at most; an hour of 55 mirrored requests a second
MAX_BODY_BYTES = 64 * 1024

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
    if body is None:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


class ShadowPairs:
    """`opened(id)` when a request is mirrored, then `answered(pair, side, ...)` by each side as it answers; the
    second completes the pair. `capture_folder(deployment)` names where a shadow deployment collects (None: not)."""

    def __init__(
        self,
        capture_folder: Callable[[str], Path | None],
        clock: Callable[[], float] = time.time,
        retention: int = RETENTION_SECONDS,
        max_pairs: int = MAX_PAIRS,
    ) -> None:
        self.capture_folder, self.clock, self.retention = capture_folder, clock, retention
        self.pairs: collections.deque[Pair] = collections.deque(maxlen=max_pairs)
        self.pending: list[tuple[Path, str]] = []
        self.failing = False

    def opened(self, request_id: str) -> Pair:
        return Pair(request_id, self.clock())

    def answered(
        self, pair: Pair, *, shadow: bool, deployment: str, status: int, seconds: float, body: bytes | None
    ) -> None:
        kept = body if body is not None and 200 <= status < 300 and len(body) <= MAX_BODY_BYTES else None
        side = Side(deployment, status, seconds * 1000, kept)
        if shadow:
            pair.shadow = side
        else:
            pair.live = side
        if pair.live is None or pair.shadow is None:
            return
        self.pairs.append(pair)
        while self.pairs and self.pairs[0].time < self.clock() - self.retention:
            self.pairs.popleft()
        folder = self.capture_folder(pair.shadow.deployment)
        if folder is not None:
            self.pending.append((folder, json.dumps(_record(pair), separators=(",", ":"))))

    def window(self, since: float, until: float, deployment: str | None = None) -> list[dict[str, Any]]:
        return [
            pair.as_dict()
            for pair in list(self.pairs)
            if since <= pair.time <= until and (deployment is None or pair.shadow.deployment == deployment)  # type: ignore[union-attr]
        ]

    def flush(self) -> None:
        """The pairs of shadows that collect data, appended to their capture folders (the front door calls it with
        its access log, every 0.1 s)."""
        if not self.pending:
            return
        lines, self.pending = self.pending, []
        by_file: dict[Path, list[str]] = {}
        hour = capture.partition(self.clock())
        for folder, line in lines:
            by_file.setdefault(folder / PAIRS / hour / "frontdoor.jsonl", []).append(line + "\n")
        try:
            for path, chunk in by_file.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("a") as handle:
                    handle.write("".join(chunk))
        except OSError as error:  # a full disk or a deployment being deleted: serving goes on
            if not self.failing:
                log.warning("cannot write mirrored answer pairs to %s (%s): they are kept in memory only", path, error)
            self.failing = True
        else:
            self.failing = False


def _record(pair: Pair) -> dict[str, Any]:
    moment = datetime.datetime.fromtimestamp(pair.time, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"id": pair.request_id, "type": "local.mirror_pair", "time": moment, **pair.as_dict()}
