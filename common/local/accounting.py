"""What the front door counts and writes of each scoring request: the Prometheus metrics (`GET /metrics`) and the
access log, both cheap on the request path (children looked up once, lines written in batches)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram

log = logging.getLogger("frontdoor")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("deployment", "status_code")
        self.requests = Counter("endpoint_requests", "Scoring requests", labels, registry=self.registry)
        self.errors = Counter("endpoint_errors", "Scoring requests answered 4xx or 5xx", labels, registry=self.registry)
        self.latency = Histogram(
            "endpoint_request_duration_seconds", "Scoring request latency", labels, registry=self.registry
        )
        self.mirrored = Counter("endpoint_mirrored_requests", "Mirrored copies", labels, registry=self.registry)
        # prometheus_client's labels() takes a lock and builds a key on each call; the children are looked up once
        self._children: dict[tuple[str, int], Callable[[float], None]] = {}

    def observe(self, deployment: str, status: int, seconds: float) -> None:
        record = self._children.get((deployment, status))
        if record is None:
            record = self._children[deployment, status] = self._recorder(deployment, status)
        record(seconds)

    def _recorder(self, deployment: str, status: int) -> Callable[[float], None]:
        labels = (deployment, str(status))
        requests, latency = self.requests.labels(*labels), self.latency.labels(*labels)
        errors = self.errors.labels(*labels) if status >= 400 else None

        def record(seconds: float) -> None:
            requests.inc()
            latency.observe(seconds)
            if errors is not None:
                errors.inc()

        return record


class AccessLog:
    """The endpoint's access log, one line per scoring request, written in batches: `flush()` runs every
    FLUSH_SECONDS and at shutdown, so a request costs an append to a list, not a formatted record and a write."""

    FLUSH_SECONDS = 0.1

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pending: list[str] = []
        self._second = -1
        self._stamp = ""
        self.failing = False

    def record(self, client: str, status: int, deployment: str, mirrored: str | None, seconds: float) -> None:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        milliseconds = int((now - second) * 1000)
        self.pending.append(
            f'{self._stamp},{milliseconds:03d} {client} "POST /score" {status} deployment={deployment} '
            f"mirror={mirrored or '-'} {seconds * 1000:.1f}ms\n"
        )

    def flush(self) -> None:
        if not self.pending:
            return
        lines, self.pending = self.pending, []
        try:
            with self.path.open("a") as handle:
                handle.write("".join(lines))
        except OSError as error:  # the endpoint's folder is being deleted, or the disk is full: serving goes on
            if not self.failing:  # once, not ten times a second
                log.warning("cannot write the access log %s (%s): its lines are lost until it can", self.path, error)
            self.failing = True
        else:
            self.failing = False

    async def run(self) -> None:
        await flush_every(self.flush, self.FLUSH_SECONDS)


async def flush_every(flush: Callable[[], None], seconds: float, *, in_thread: bool = False) -> None:
    """Call `flush` every `seconds` on the event loop (or, `in_thread`, in a worker thread, so that what it
    serializes and writes never holds up a request), and once more when cancelled (the front door stops)."""
    try:
        while True:
            await asyncio.sleep(seconds)
            if in_thread:
                await asyncio.to_thread(flush)
            else:
                flush()
    finally:
        flush()
