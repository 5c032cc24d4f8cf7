"""logs --container and --lines on Azure (fake control plane) and for real on the local target, where --follow
streams new lines until Ctrl-C and storage-initializer explains itself."""

from __future__ import annotations

import json
import queue
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import manage_online_endpoint
from tests.conftest import start_command
from tests.localtarget import LocalSetup, local_target

LOGS = ["logs", "--endpoint_name", "diabetes-classify", "--deployment_name", "blue"]


@pytest.fixture
def with_logs(fake_azure):
    fake_azure.add_endpoint("diabetes-classify", {"blue": 100})
    fake_azure.logs = "server line 1\nserver line 2\nserver line 3\n"
    fake_azure.storage_logs = "downloading model\nmodel downloaded\n"
    return fake_azure


def test_azure_reads_the_inference_server_log_by_default(with_logs, run_script):
    result = run_script(manage_online_endpoint, [*LOGS, "--lines", "2"])

    assert result.code == 0, result.err
    [request] = with_logs.sent("POST", "/onlineEndpoints/diabetes-classify/deployments/blue/getLogs")
    assert request.body == {"containerType": "InferenceServer", "tail": 2}
    assert result.out == "server line 2\nserver line 3\n"


def test_azure_reads_the_storage_initializer_log(with_logs, run_script):
    result = run_script(manage_online_endpoint, [*LOGS, "--container", "storage-initializer", "--output", "json"])

    assert result.code == 0, result.err
    [request] = with_logs.sent("POST", "/onlineEndpoints/diabetes-classify/deployments/blue/getLogs")
    assert request.body["containerType"] == "StorageInitializer"
    assert json.loads(result.out)["logs"] == "downloading model\nmodel downloaded"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--follow"], "--follow is for the local target (add --local): Azure's logs API returns the last lines"),
        (["--container", "scoring"], "invalid choice: 'scoring'"),
        (["--lines", "0"], "--lines"),
        (["--local", "--follow", "--output", "json"], "--follow streams the inference-server log as text"),
    ],
)
def test_bad_log_flags_are_refused_before_any_call(fake_azure, run_script, argv, message):
    result = run_script(manage_online_endpoint, [*LOGS, *argv])

    assert result.code == 2 and message in result.err
    assert fake_azure.requests == []


@pytest.fixture
def local(tmp_path: Path, model_dir: Path) -> Iterator[LocalSetup]:
    with local_target(tmp_path / "home", "logs-local", model_dir) as setup:
        setup.deploy("blue", 100)
        yield setup


def local_logs(setup: LocalSetup) -> list[str]:
    return ["logs", "--local", "--endpoint_name", setup.endpoint_name, "--deployment_name", "blue"]


def test_local_logs_and_the_storage_initializer(local, run_script):
    server = run_script(manage_online_endpoint, [*local_logs(local), "--lines", "500"])
    storage = run_script(manage_online_endpoint, [*local_logs(local), "--container", "storage-initializer"])

    assert server.code == 0 and "score - Loaded " in server.out
    assert storage.code == 0
    assert "The local target has no storage-initializer container" in storage.out
    assert str(local.store.deployment_dir("logs-local", "blue")) in storage.out


def test_local_follow_streams_new_lines_until_ctrl_c(local):
    follower = start_command("manage_online_endpoint.py", *local_logs(local), "--follow", "--lines", "5")
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in follower.stdout], daemon=True).start()
    try:
        try:  # the last lines come first, once the child has loaded the toolkit (over 30 s seen under CI load)
            first = lines.get(timeout=90)
        except queue.Empty:
            follower.kill()
            raise AssertionError(
                f"no line within 90 s; stderr: {follower.communicate(timeout=10)[1][-2000:]}"
            ) from None
        assert first

        assert local.score(body=json.dumps({"data": [[1, 2, 3]]})).status_code == 424  # a model 400, as Azure

        seen, deadline = [], time.monotonic() + 15
        while not any("Rejected request: row 0: has 3 values" in line for line in seen):
            seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=10) == 0
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
