"""The local target under faults and bad state, with real processes on 127.0.0.1: what listens, a frozen server, a
crash loop, Azure's request limits, unreadable state files. One endpoint for the module, tests in file order.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

import create_online_deployment
import manage_online_endpoint
from common.local.state import read_json_or_none, runtime_dir
from tests.localtarget import SAMPLE, LocalSetup, local_target, wait_until, write_score

ENDPOINT = "diabetes-hardened"

CRASHES_WHEN_FLAGGED = """
import os, pathlib

def init():
    if pathlib.Path(os.environ["CRASH_FLAG"]).exists():
        raise RuntimeError("init exploded: the crash flag is set")

def run(raw_data):
    return ["not-diabetic"]
"""

SLOW = """
import time

def init():
    pass

def run(raw_data):
    time.sleep(3)
    return ["slow"]
"""


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[LocalSetup]:
    with local_target(tmp_path_factory.mktemp("hardened-home"), ENDPOINT, model_dir) as setup:
        setup.deploy("blue", 100)
        setup.deploy("green", 0)
        yield setup


def process_tree(local: LocalSetup) -> list[psutil.Process]:
    front_door = psutil.Process(local.frontdoor_pid())
    return [front_door, *front_door.children(recursive=True)]


def test_nothing_listens_but_the_front_door_on_loopback(local):
    listening = []
    for process in process_tree(local):
        for connection in process.net_connections(kind="all"):
            if connection.status == psutil.CONN_LISTEN or connection.family == socket.AF_UNIX:
                listening.append((process.pid, connection.family, connection.laddr))

    tcp = [(pid, address) for pid, family, address in listening if family != socket.AF_UNIX]
    unix = {address for _, family, address in listening if family == socket.AF_UNIX and address}
    assert tcp == [(local.frontdoor_pid(), ("127.0.0.1", local.endpoint()["port"]))]
    assert unix == {local.status("blue")["socket"], local.status("green")["socket"]}
    folder = runtime_dir(local.home)
    for socket_path in unix:
        assert Path(socket_path).parent == folder
    for path in (folder, folder.parent):
        info = os.lstat(path)
        assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.getuid()
    # the server's own CLI would have bound 0.0.0.0:5001; and gunicorn's control socket is off
    assert not any(p.cmdline()[-1:] == ["azmlinfsrv"] for p in process_tree(local))
    assert not (Path.home() / ".gunicorn" / "gunicorn.ctl").exists() or all(
        str(Path.home() / ".gunicorn") not in str(address) for address in unix
    )


def test_a_frozen_deployment_fails_fast_once_its_probe_fails_and_is_restarted(local):
    old = local.status("green")
    os.killpg(old["pid"], signal.SIGSTOP)  # the whole server, master and workers, stops answering
    frozen = time.monotonic()
    outcomes: Counter[int] = Counter()
    slowest, fast_503_at = 0.0, None
    while time.monotonic() - frozen < 30:
        started = time.monotonic()
        response = local.score(deployment="green")
        took = time.monotonic() - started
        slowest = max(slowest, took)
        outcomes[response.status_code] += 1
        if response.status_code == 503 and took < 0.5 and fast_503_at is None:
            fast_503_at = time.monotonic() - frozen
        if response.status_code == 200 and fast_503_at is not None:
            break
    recovered = time.monotonic() - frozen

    assert set(outcomes) <= {200, 408, 503}, outcomes
    assert fast_503_at is not None and fast_503_at < 6, (outcomes, fast_503_at)
    assert slowest < 5.5  # at most one request timeout (5 s), never a hang
    assert recovered < 25, (outcomes, recovered)
    new = local.status("green")
    assert new["pid"] != old["pid"] and new["health"] == "running"
    assert not psutil.pid_exists(old["pid"]) or psutil.Process(old["pid"]).status() == psutil.STATUS_ZOMBIE
    log = (local.store.endpoint_dir(ENDPOINT) / "frontdoor.log").read_text()
    assert "did not answer its liveness probe" in log


def test_a_crash_loop_is_reported_unhealthy_with_its_log_and_not_retried(local, tmp_path, run_script):
    code = write_score(tmp_path / "flaky", CRASHES_WHEN_FLAGGED)
    flag = tmp_path / "crash-flag"
    client = local.client()
    from azure.ai.ml.entities import CodeConfiguration, ManagedOnlineDeployment

    deployment = ManagedOnlineDeployment(
        name="flaky",
        endpoint_name=ENDPOINT,
        model="azureml:diabetes-predict:1",
        environment="azureml:diabetes-classify:1",
        code_configuration=CodeConfiguration(code=str(code), scoring_script="score.py"),
        instance_type="Standard_DS3_v2",
        instance_count=1,
        environment_variables={"CRASH_FLAG": str(flag)},
    )
    client.online_deployments.begin_create_or_update(deployment).result()
    flag.touch()
    os.kill(local.status("flaky")["pid"], signal.SIGKILL)

    assert wait_until(lambda: local.status("flaky")["health"] == "unhealthy", 60)
    status = local.status("flaky")
    assert status["reason"].startswith(
        "crash loop: score.py's init() failed (RuntimeError: init exploded: the crash flag is set); its server exited "
        "with code"
    )
    assert "RuntimeError: init exploded: the crash flag is set" in status["reason"]
    attempts = status["restarts"]
    time.sleep(2)
    assert local.status("flaky")["restarts"] == attempts and local.status("flaky")["pid"] is None  # left alone
    answer = local.score(deployment="flaky")
    assert answer.status_code == 503
    assert answer.json()["error"]["message"].startswith(
        "deployment 'flaky' is unhealthy (crash loop: score.py's init() failed (RuntimeError: init exploded"
    )
    shown = run_script(manage_online_endpoint, ["show", "--local", "--endpoint_name", ENDPOINT])
    assert "warning: local deployment 'flaky' of 'diabetes-hardened' is unhealthy: crash loop" in shown.err
    assert "flaky" in shown.out and "unhealthy" in shown.out

    flag.unlink()  # fixed: creating it again brings it back
    client.online_deployments.begin_create_or_update(deployment).result()
    assert local.status("flaky")["health"] == "running"
    assert local.score(deployment="flaky").status_code == 200


def test_a_body_over_5_mb_is_413_and_does_not_grow_the_front_door(local):
    front_door = psutil.Process(local.frontdoor_pid())
    before = front_door.memory_info().rss
    big = b'{"data": [' + b"[1, 2, 3, 4, 5, 6, 7, 8], " * 1_800_000 + b"[1, 2, 3, 4, 5, 6, 7, 8]]}"  # 43 MB
    statuses = []
    for _ in range(3):
        try:
            response = local.http.post(f"{local.uri}/score", content=big, headers=local.headers())
            statuses.append(response.status_code)
        except httpx.WriteError:  # the front door answered 413 and closed before all 43 MB were sent
            statuses.append(413)
    grown = front_door.memory_info().rss - before

    assert statuses == [413, 413, 413]
    assert grown < 20_000_000, grown
    assert local.score().status_code == 200


def test_each_deployment_gets_its_own_request_timeout(local, tmp_path):
    from azure.ai.ml.entities import CodeConfiguration, ManagedOnlineDeployment, OnlineRequestSettings

    slow = ManagedOnlineDeployment(
        name="slow",
        endpoint_name=ENDPOINT,
        model="azureml:diabetes-predict:1",
        environment="azureml:diabetes-classify:1",
        code_configuration=CodeConfiguration(code=str(write_score(tmp_path / "slow", SLOW)), scoring_script="score.py"),
        instance_type="Standard_DS3_v2",
        instance_count=1,
        request_settings=OnlineRequestSettings(request_timeout_ms=1000),
    )
    local.client().online_deployments.begin_create_or_update(slow).result()
    started = time.monotonic()

    response = local.score(deployment="slow")

    assert response.status_code == 408
    assert response.json() == {"error": {"code": "RequestTimeout", "message": "deployment 'slow' took longer than 1 s"}}
    assert time.monotonic() - started < 2.5
    assert local.deployment("slow")["request_settings"] == {"request_timeout_ms": 1000}


@pytest.mark.parametrize("name", ["endpoint.json", "keys.json", "deployment.json"])
def test_a_truncated_state_file_is_one_line_and_the_front_door_keeps_serving(local, run_script, name):
    path = (
        local.store.deployment_file(ENDPOINT, "green")
        if name == "deployment.json"
        else local.store.endpoint_dir(ENDPOINT) / name
    )
    good = path.read_text()
    uri, headers = local.uri, local.headers()
    path.write_text(good[: len(good) // 2])
    record = local.store.frontdoor_file(ENDPOINT)
    try:
        assert wait_until(lambda: (read_json_or_none(record) or {}).get("state_error"), 5)  # the front door saw it
        commands = {
            "show": ["show", "--local", "--endpoint_name", ENDPOINT],
            "keys": ["keys", "--local", "--endpoint_name", ENDPOINT],
        }
        results = [run_script(manage_online_endpoint, argv) for argv in commands.values()]
        results.append(run_script(create_online_deployment, local.deployment_args("green", 0)))
        served = local.http.post(f"{uri}/score", content=SAMPLE, headers=headers)
    finally:
        path.write_text(good)

    broken = [r for r in results if r.code != 0]
    assert broken, "at least the command reading the file fails"
    for result in broken:
        assert result.code == 1
        errors = [line for line in result.err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "Traceback" not in result.err, result.err
        assert errors[0].startswith(f"error: local state file '{path}' is unreadable (not valid JSON")
        assert "stop the endpoint (python manage_online_endpoint.py stop --endpoint_name" in errors[0]
    assert served.status_code == 200
    log = (local.store.endpoint_dir(ENDPOINT) / "frontdoor.log").read_text()
    assert f"{path}' is unreadable" in log and "keeping the last good routing" in log
    assert wait_until(lambda: (read_json_or_none(record) or {}).get("state_error") is None, 5)


def test_a_home_that_is_a_file_is_one_line(run_script, tmp_path, monkeypatch):
    home = tmp_path / "not-a-folder"
    home.write_text("")
    monkeypatch.setenv("AZUREML_LOCAL_HOME", str(home))

    result = run_script(manage_online_endpoint, ["show", "--local", "--endpoint_name", ENDPOINT])

    assert result.code == 2
    assert result.err == (
        f"error: AZUREML_LOCAL_HOME='{home}' is not a folder: point it at a folder for the local target's state "
        "(it is created if missing)\n"
    )


def test_the_access_log_keeps_no_credential_and_metrics_count_limits(local):
    log = local.access_log('"POST /score" 413 deployment=-')
    headers = {"Authorization": f"Bearer {local.key}"}
    metrics = httpx.get(f"{local.uri}/metrics", headers=headers, timeout=10).text

    assert local.key not in log
    assert '"POST /score" 413 deployment=-' in log
    assert 'endpoint_requests_total{deployment="slow",status_code="408"} 1.0' in metrics
    assert json.loads(json.dumps(local.endpoint()))["traffic"] == {"blue": 100}
