"""Fault tests under load (127.0.0.1 only, bounded): blue 90 / green 10, 4 clients, 2,000 requests; green's server
is killed (kill -9) or frozen (SIGSTOP) a fifth of the way in, and nobody runs a command.

Each test prints its numbers (run with -s): counts by status code, the longest request, and the time from the fault
to green's last failure (its automatic recovery).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from common.control.wire import DEPLOYMENT_HEADER
from tests.localtarget import SAMPLE, LocalSetup, local_target, wait_until

ENDPOINT = "diabetes-faults"
REQUESTS = 2000
CLIENTS = 4
FAULT_AT = REQUESTS // 5
HANG_LIMIT_SECONDS = 10.0


@dataclass(frozen=True)
class Outcome:
    started: float
    seconds: float
    status: int  # 0: no HTTP answer at all (a lost request)
    deployment: str | None


@pytest.fixture
def local(tmp_path: Path, model_dir: Path) -> Iterator[LocalSetup]:
    with local_target(tmp_path / "home", ENDPOINT, model_dir) as setup:
        # 2 instances each: Azure admits 2 x 1 x 2 = 4 requests in flight per deployment, one per client
        setup.deploy("blue", 100, instances=2)
        setup.deploy("green", 10, instances=2)
        assert setup.endpoint()["traffic"] == {"blue": 90, "green": 10}
        yield setup


def load(local: LocalSetup, fault: Callable[[], None]) -> tuple[list[Outcome], float]:
    """REQUESTS scoring requests from CLIENTS threads; `fault` runs once, before request FAULT_AT is sent."""
    outcomes: list[Outcome] = []
    issued = iter(range(REQUESTS))
    lock = threading.Lock()
    fault_time: list[float] = []
    url, headers = f"{local.uri}/score", local.headers()

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            while True:
                with lock:
                    number = next(issued, None)
                    if number == FAULT_AT:
                        fault()
                        fault_time.append(time.monotonic())
                if number is None:
                    return
                started = time.monotonic()
                try:
                    response = http.post(url, content=SAMPLE, headers=headers)
                    status, served_by = response.status_code, response.headers.get(DEPLOYMENT_HEADER)
                except httpx.HTTPError:
                    status, served_by = 0, None
                with lock:
                    outcomes.append(Outcome(started, time.monotonic() - started, status, served_by))

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    return outcomes, fault_time[0]


def report(title: str, outcomes: list[Outcome], fault_at: float) -> float:
    failures = [o for o in outcomes if o.status != 200]
    recovery = max((o.started + o.seconds for o in failures), default=fault_at) - fault_at
    counts = Counter(o.status for o in outcomes)
    print(
        f"\n{title}: {len(outcomes)} requests, by status {dict(sorted(counts.items()))}, by deployment "
        f"{dict(Counter(o.deployment for o in outcomes))}, longest {max(o.seconds for o in outcomes):.2f} s, "
        f"last failure {recovery:.2f} s after the fault"
    )
    return recovery


def test_kill_9_of_green_fails_only_its_share_only_until_the_automatic_restart(local):
    victim = local.status("green")["pid"]

    outcomes, killed = load(local, lambda: os.kill(victim, signal.SIGKILL))
    recovery = report("kill -9 green", outcomes, killed)

    assert len(outcomes) == REQUESTS and all(o.status for o in outcomes)  # none lost
    assert max(o.seconds for o in outcomes) < HANG_LIMIT_SECONDS
    failures = [o for o in outcomes if o.status != 200]
    assert {(o.status, o.deployment) for o in failures} <= {(503, "green")}, Counter(o.status for o in failures)
    assert all(o.started + o.seconds >= killed for o in failures)  # nothing failed before the fault
    after = [o for o in outcomes if o.started > killed + recovery]
    assert all(o.status == 200 for o in after)
    assert wait_until(lambda: local.status("green")["health"] == "running", 30)  # on a slow machine: after the load
    restarted = local.status("green")
    assert (restarted["restarts"], restarted["pid"] != victim) == (1, True)
    again = [local.score() for _ in range(200)]  # green serves its share again, with no command run
    assert {r.status_code for r in again} == {200}
    assert {r.headers["azureml-model-deployment"] for r in again} == {"blue", "green"}


def test_a_frozen_green_is_failed_fast_after_its_probe_fails_and_then_restarted(local):
    victim = local.status("green")["pid"]

    outcomes, frozen = load(local, lambda: os.killpg(victim, signal.SIGSTOP))
    report("SIGSTOP green", outcomes, frozen)

    assert len(outcomes) == REQUESTS and all(o.status for o in outcomes)
    assert max(o.seconds for o in outcomes) < HANG_LIMIT_SECONDS  # at most the 5 s request timeout (408)
    failures = [o for o in outcomes if o.status != 200]
    assert {(o.status, o.deployment) for o in failures} <= {(408, "green"), (503, "green")}
    fast = [o for o in failures if o.status == 503]
    assert fast and max(o.seconds for o in fast) < 0.5  # once the probe failed, green's share fails at once
    assert min(o.started for o in fast) - frozen < 6
    assert wait_until(lambda: local.status("green")["pid"] not in (None, victim), 30)
    assert wait_until(lambda: local.status("green")["health"] == "running", 30)
    assert local.score(deployment="green").status_code == 200
