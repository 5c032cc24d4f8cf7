"""What each deployment of a local endpoint served, second by second, over the last hour: the local stand-in for
Azure Monitor's per-minute endpoint metrics, read by the metrics and rollout commands.

The front door records every scoring request here (time, status and latency, live and mirrored copies apart) and
answers GET /metrics/window?since=EPOCH[&until=EPOCH] with a summary per deployment. Each request is kept (10
bytes and 0.5 us to record; 2.8 MB for ten minutes at 400 requests a second), so a window starts and ends at the
exact time asked (a rollout step's window holds none of the step before) and percentiles are exact (nearest
rank), not estimated from histogram buckets.
"""

from __future__ import annotations

import array
import collections
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

RETENTION_SECONDS = 3600
PERCENTILES = (50, 95, 99)


@dataclass
class Tally:
    """One deployment's requests in one second (live or mirrored), one entry per request in each array."""

    offsets: array.array[float] = field(default_factory=lambda: array.array("f"))  # seconds into the second
    statuses: array.array[int] = field(default_factory=lambda: array.array("H"))
    latencies_ms: array.array[float] = field(default_factory=lambda: array.array("f"))

    def add(self, offset: float, status: int, latency_ms: float) -> None:
        self.offsets.append(offset)
        self.statuses.append(status)
        self.latencies_ms.append(latency_ms)


class RecentRequests:
    def __init__(self, clock: Callable[[], float] = time.time, retention: int = RETENTION_SECONDS) -> None:
        self.clock = clock
        self.retention = retention
        # (second, {(deployment, mirrored): Tally}), oldest first
        self.seconds: collections.deque[tuple[int, dict[tuple[str, bool], Tally]]] = collections.deque()

    def record(
        self, deployment: str, status: int, seconds: float, *, mirrored: bool = False, moment: float | None = None
    ) -> None:
        """One request; `moment` is when it was answered (by default: now)."""
        moment = self.clock() if moment is None else moment
        if self.seconds and moment < self.seconds[-1][0]:  # answered before a later one was recorded: the seconds
            moment = float(self.seconds[-1][0])  # stay in order, this one counted at the start of the newest
        now = int(moment)
        if not self.seconds or self.seconds[-1][0] != now:
            self.seconds.append((now, {}))
            while self.seconds[0][0] <= now - self.retention:
                self.seconds.popleft()
        tallies = self.seconds[-1][1]
        tally = tallies.get((deployment, mirrored))
        if tally is None:
            tally = tallies[deployment, mirrored] = Tally()
        tally.add(moment - now, status, seconds * 1000)

    def window(self, since: float, until: float | None = None) -> dict[str, Any]:
        """Per deployment, what it served from `since` to `until` (epoch seconds, to the request), as
        {"deployments": {name: {"live": summary, "mirrored": summary}}, "since": ..., "until": ..., ...}."""
        return self.summarise(list(self.seconds), since, until)

    def summarise(
        self, seconds: list[tuple[int, dict[tuple[str, bool], Tally]]], since: float, until: float | None = None
    ) -> dict[str, Any]:
        """window() over `seconds`, a copy of self.seconds taken on the event loop: the front door runs this in a
        thread (an hour at 400 requests a second takes about a second to summarise) while requests go on being
        recorded, so the current second's arrays may grow meanwhile (zip stops at the shortest)."""
        end = self.clock() if until is None else until
        merged: dict[tuple[str, bool], Tally] = {}
        for second, tallies in seconds:
            if second + 1 <= since or second > end:
                continue
            whole = since <= second and second + 1 <= end
            for key, tally in tallies.items():
                total = merged.setdefault(key, Tally())
                if whole:
                    total.statuses.extend(tally.statuses)
                    total.latencies_ms.extend(tally.latencies_ms)
                    continue
                for offset, status, latency in zip(tally.offsets, tally.statuses, tally.latencies_ms, strict=False):
                    if since <= second + offset <= end:
                        total.add(offset, status, latency)
        deployments: dict[str, dict[str, Any]] = {}
        for (name, mirrored), tally in sorted(merged.items()):
            if not tally.statuses:
                continue
            deployments.setdefault(name, {})["mirrored" if mirrored else "live"] = summary(tally)
        oldest = self.seconds[0][0] if self.seconds else None
        return {
            "since": since,
            "until": end,
            "oldest_recorded": oldest,
            "retention_seconds": self.retention,
            "deployments": deployments,
        }


def summary(tally: Tally) -> dict[str, Any]:
    ordered = sorted(tally.latencies_ms)
    return {
        "requests": len(ordered),
        "status_codes": {str(status): count for status, count in sorted(collections.Counter(tally.statuses).items())},
        "latency_ms": {f"p{p}": round(nearest_rank(ordered, p), 3) for p in PERCENTILES} if ordered else {},
    }


def nearest_rank(ordered: list[float], percentile: float) -> float:
    """The smallest value with at least `percentile`% of the values at or below it."""
    return ordered[max(0, math.ceil(percentile / 100 * len(ordered)) - 1)]
