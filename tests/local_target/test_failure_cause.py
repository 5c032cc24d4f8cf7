"""A generation that fails to start beside one still serving under load: the failure report gives the failed
server's own output (its traceback), not the shared log's tail of the other generation's access lines."""

from __future__ import annotations

import threading

import httpx

import create_online_deployment
import manage_online_endpoint
from tests.localtarget import SAMPLE, local_target, wait_until, write_score

ENDPOINT = "failure-cause"
BROKEN_INIT = """
def init():
    raise RuntimeError("the model of this version cannot be loaded (marker 7f3a)")


def run(raw_data):
    return []
"""


def test_the_failed_generations_own_traceback_is_reported_under_load(tmp_path, model_dir, run_script):
    with local_target(tmp_path / "home", ENDPOINT, model_dir) as setup:
        setup.deploy("blue", 100)
        stop, answered = threading.Event(), []

        def load() -> None:
            with httpx.Client(timeout=10) as http:
                while not stop.is_set():
                    answered.append(
                        http.post(f"{setup.uri}/score", content=SAMPLE, headers=setup.headers()).status_code
                    )

        threading.Thread(target=load, daemon=True).start()
        assert wait_until(lambda: len(answered) >= 5, 30)  # the old generation is busy before the new one starts
        try:
            broken = write_score(tmp_path / "broken", BROKEN_INIT)
            result = run_script(create_online_deployment, setup.deployment_args("blue", 100, score_path=broken))
        finally:
            stop.set()

        assert result.code != 0
        assert "cause: RuntimeError: the model of this version cannot be loaded (marker 7f3a)" in result.err, result.err
        tail = result.err.split("lines of the deployment log ---", 1)[1]
        assert "Traceback" in tail and "POST /score 200" not in tail, tail
        assert set(answered) == {200}  # the old generation served throughout

        logs = run_script(
            manage_online_endpoint, ["logs", "--local", "--endpoint_name", ENDPOINT, "--deployment_name", "blue"]
        )
        assert "failed to start; what its server wrote" in logs.out and "marker 7f3a" in logs.out
