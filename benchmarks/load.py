"""The load generators of benchmarks/serving.py: wrk (C, one thread) and a Python fallback (threads, http.client),
each giving one table cell (requests, p50 and p99 latency, non-2xx answers) for a path at a number of connections."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Cell:
    path: str
    connections: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


@dataclass
class Target:
    url: str
    headers: dict[str, str]

    def connection(self, timeout: float = 30) -> http.client.HTTPConnection:
        host, port = self.url.split("//")[1].split("/")[0].split(":")
        return http.client.HTTPConnection(host, int(port), timeout=timeout)


def wrk_cell(path: str, target: Target, body: str, connections: int, seconds: float, folder: Path) -> Cell:
    script = folder / "post.lua"
    headers = "".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in target.headers.items())
    script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n{headers}')
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script)]
    output = subprocess.run([*argv, target.url], capture_output=True, text=True, check=True).stdout
    done = re.search(r"(\d+) requests in ([\d.]+)(\w+)", output)
    if done is None:
        raise RuntimeError(f"wrk printed no totals:\n{output}")
    elapsed = float(done.group(2)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[done.group(3)]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    failed = sum(int(n) for n in errors.groups()) if errors else 0
    return Cell(
        path,
        connections,
        int(done.group(1)),
        elapsed,
        _wrk_latency(output, "50%"),
        _wrk_latency(output, "99%"),
        (int(non_2xx.group(1)) if non_2xx else 0) + failed,
    )


def _wrk_latency(output: str, percentile: str) -> float:
    match = re.search(rf"^\s*{percentile}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no {percentile} latency:\n{output}")
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]


def post(connection: http.client.HTTPConnection, body: bytes, headers: dict[str, str]) -> int:
    connection.request("POST", "/score", body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    if response.will_close:
        connection.close()  # gunicorn's sync workers close every connection; the next request reconnects
    return response.status


def python_load(target: Target, body: bytes, connections: int, stop: Callable[[int], bool]) -> tuple[list[float], int]:
    """Latencies (s) and non-2xx count from `connections` threads, each with its own connection, until stop(n)."""
    latencies: list[float] = []
    non_2xx = sent = 0
    lock = threading.Lock()

    def client() -> None:
        nonlocal non_2xx, sent
        connection = target.connection()
        try:
            while True:
                with lock:
                    if stop(sent):
                        return
                    sent += 1
                started = time.perf_counter()
                try:
                    status = post(connection, body, target.headers)
                except (OSError, http.client.HTTPException):
                    connection.close()
                    status = 0
                with lock:
                    latencies.append(time.perf_counter() - started)
                    non_2xx += not 200 <= status < 300
        finally:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, non_2xx


def python_cell(path: str, target: Target, body: str, connections: int, seconds: float, _folder: Path) -> Cell:
    deadline = time.monotonic() + seconds
    started = time.perf_counter()
    latencies, non_2xx = python_load(target, body.encode(), connections, lambda _n: time.monotonic() >= deadline)
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    p50, p99 = (ordered[int(q * (len(ordered) - 1))] * 1000 for q in (0.50, 0.99))
    return Cell(path, connections, len(latencies), elapsed, p50, p99, non_2xx)
