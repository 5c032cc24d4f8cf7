"""Latency at one concurrency: N clients send the same request as fast as answers come, bounded in time and count.

Used by `size` (right-sizing, common/azure/sizing.py) against a deployment of the local target, so only ever sent to
127.0.0.1. Each client keeps its own connection (keep-alive), as a real caller's pool does; a refusal (non-2xx) or a
request without an answer counts as an error, and its latency is not among those measured.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from common.azure.sizing import Step
from common.local.recent import nearest_rank  # the percentiles metrics and compare report

CLIENT_TIMEOUT_SECONDS = 30.0


def measure(
    url: str, headers: Mapping[str, str], body: bytes, concurrency: int, seconds: float, max_requests: int
) -> Step:
    """`concurrency` clients for `seconds` (or until `max_requests` were sent): the step's figures."""
    import httpx

    latencies: list[float] = []
    errors = [0]
    sent = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(timeout=CLIENT_TIMEOUT_SECONDS) as http:
            while time.monotonic() < deadline:
                with lock:
                    if sent[0] >= max_requests:
                        return
                    sent[0] += 1
                started = time.perf_counter()
                try:
                    answer = http.post(url, content=body, headers=dict(headers))
                    ok = 200 <= answer.status_code < 300
                except httpx.HTTPError:
                    ok = False
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    if ok:
                        latencies.append(elapsed)
                    else:
                        errors[0] += 1

    started = time.monotonic()
    clients = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    took = max(time.monotonic() - started, 1e-9)
    ordered = sorted(latencies)
    return Step(
        concurrency=concurrency,
        requests=len(latencies) + errors[0],
        errors=errors[0],
        p50_ms=nearest_rank(ordered, 50) if ordered else 0.0,
        p95_ms=nearest_rank(ordered, 95) if ordered else 0.0,
        per_second=len(latencies) / took,
    )
