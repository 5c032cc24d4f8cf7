"""create_online_deployment.py's settings flags: refused outside Azure's documented ranges before any call, in the
--dry_run YAML, sent to Azure (fake control plane) and kept from the existing deployment when left out, and honoured
for real by the local target (request timeout, environment variables, probes)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import create_online_deployment
import manage_online_endpoint
from tests.localtarget import LocalSetup, local_target, wait_until, write_score

BLUE = [
    *("--deployment_name", "blue", "--endpoint_name", "diabetes-classify"),
    *("--model_path", "azureml:diabetes-predict:3", "--environment", "diabetes-classify:1"),
    *("--score_path", "09-deploy-model", "--score_script", "score.py"),
]
SETTINGS = [
    *("--request_timeout_ms", "30000", "--max_concurrent_requests_per_instance", "4"),
    *("--liveness_probe", "period=20", "failure_threshold=5"),
    *("--readiness_probe", "initial_delay=15", "success_threshold=2"),
    *("--env", "WORKER_COUNT=4", "GREETING=hello world"),
    *("--app_insights", "enabled", "--egress_public_network", "disabled"),
]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--request_timeout_ms", "180001"], "invalid --request_timeout_ms 180001: use 1 to 180000"),
        (["--request_timeout_ms", "0"], "invalid --request_timeout_ms 0: use 1 to 180000"),
        (["--max_concurrent_requests_per_instance", "0"], "invalid --max_concurrent_requests_per_instance 0"),
        (["--liveness_probe", "delay=5"], "invalid --liveness_probe field 'delay': use initial_delay, period"),
        (["--readiness_probe", "timeout=0"], "invalid --readiness_probe timeout=0: Azure's minimum is 1"),
        (["--readiness_probe", "period=fast"], "invalid --readiness_probe period='fast': use a whole number"),
        (["--readiness_probe", "period"], "invalid --readiness_probe 'period': use KEY=VALUE"),
        (["--liveness_probe", "success_threshold=2"], "Azure fixes it at 1 for a liveness probe"),
        (["--env", "1ST=a"], "invalid --env name '1ST'"),
        (["--env", "AZUREML_MODEL_DIR=/tmp"], "the platform sets it for the scoring script"),
        (["--env", "A=1", "A=2"], "invalid --env: A is given twice"),
        (["--app_insights", "on"], "invalid choice: 'on'"),
        (["--egress_public_network", "off"], "invalid choice: 'off'"),
    ],
)
def test_settings_outside_azures_ranges_are_refused_before_any_call(fake_azure, run_script, argv, message):
    result = run_script(create_online_deployment, [*BLUE, *argv])

    assert result.code == 2 and message in result.err
    assert fake_azure.requests == []


def test_dry_run_yaml_holds_every_setting(fake_azure, run_script):
    result = run_script(create_online_deployment, [*BLUE, *SETTINGS, "--dry_run"])

    assert result.code == 0, result.err
    document = yaml.safe_load(result.out)
    assert document["request_settings"] == {"request_timeout_ms": 30000, "max_concurrent_requests_per_instance": 4}
    assert document["liveness_probe"] == {"period": 20, "failure_threshold": 5}
    assert document["readiness_probe"] == {"initial_delay": 15, "success_threshold": 2}
    assert document["environment_variables"] == {"WORKER_COUNT": "4", "GREETING": "hello world"}
    assert document["app_insights_enabled"] is True
    assert document["egress_public_network_access"] == "disabled"
    assert fake_azure.requests == []


@pytest.fixture
def azure_workspace(fake_azure):
    fake_azure.add_endpoint("diabetes-classify", {})
    fake_azure.add_model("diabetes-predict", "3")
    fake_azure.add_environment("diabetes-classify", "1")
    return fake_azure


def deployment_put(fake: object) -> dict:
    [put] = fake.sent("PUT", "/onlineEndpoints/diabetes-classify/deployments/blue")  # type: ignore[attr-defined]
    return put.body["properties"]


def test_azure_receives_the_settings(azure_workspace, run_script):
    result = run_script(create_online_deployment, [*BLUE, *SETTINGS])

    assert result.code == 0, result.err
    sent = deployment_put(azure_workspace)
    assert sent["requestSettings"]["requestTimeout"] == "PT30S"
    assert sent["requestSettings"]["maxConcurrentRequestsPerInstance"] == 4
    assert (sent["livenessProbe"]["period"], sent["livenessProbe"]["failureThreshold"]) == ("PT20S", 5)
    assert (sent["readinessProbe"]["initialDelay"], sent["readinessProbe"]["successThreshold"]) == ("PT15S", 2)
    assert sent["environmentVariables"] == {"WORKER_COUNT": "4", "GREETING": "hello world"}
    assert sent["appInsightsEnabled"] is True
    assert sent["egressPublicNetworkAccess"] == "disabled"  # as the SDK sends it (Azure reads enums in any case)
    assert "timeout 30000 ms; 4 concurrent/instance" in result.out
    assert "env GREETING,WORKER_COUNT; app insights enabled; egress disabled" in result.out


def test_azure_rerun_without_the_flags_keeps_the_current_values(azure_workspace, run_script):
    azure_workspace.add_deployment("diabetes-classify", "blue")
    current = azure_workspace.deployments[("diabetes-classify", "blue")]["properties"]
    current.update(
        requestSettings={"requestTimeout": "PT45S", "maxConcurrentRequestsPerInstance": 3, "maxQueueWait": "PT0.5S"},
        environmentVariables={"GREETING": "kept"},
        appInsightsEnabled=True,
        egressPublicNetworkAccess="Disabled",
    )
    current["livenessProbe"]["failureThreshold"] = 7

    result = run_script(create_online_deployment, [*BLUE, "--readiness_probe", "period=3"])

    assert result.code == 0, result.err
    sent = deployment_put(azure_workspace)
    assert sent["requestSettings"]["requestTimeout"] == "PT45S"
    assert sent["requestSettings"]["maxConcurrentRequestsPerInstance"] == 3
    assert sent["environmentVariables"] == {"GREETING": "kept"}
    assert (sent["appInsightsEnabled"], sent["egressPublicNetworkAccess"]) == (True, "disabled")
    assert sent["livenessProbe"]["failureThreshold"] == 7
    assert (sent["readinessProbe"]["period"], sent["readinessProbe"]["failureThreshold"]) == ("PT3S", 30)


def test_azure_egress_of_an_existing_deployment_cannot_change(azure_workspace, run_script):
    azure_workspace.add_deployment("diabetes-classify", "blue")

    result = run_script(create_online_deployment, [*BLUE, "--egress_public_network", "disabled"])

    assert result.code == 2
    assert "deployment 'blue' was created with --egress_public_network enabled; Azure does not change it" in result.err
    assert azure_workspace.writes() == []


SLOW_ECHO = """
import json, os, time

def init():
    pass

def run(raw):
    request = json.loads(raw)
    time.sleep(request.get("sleep", 0))
    return {"greeting": os.environ.get("GREETING")}
"""


@pytest.fixture
def local(tmp_path: Path, model_dir: Path) -> Iterator[LocalSetup]:
    with local_target(tmp_path / "home", "settings-local", model_dir) as setup:
        yield setup


def deploy_with(setup: LocalSetup, score_path: Path, *settings: str) -> int:
    return setup.run(create_online_deployment.main, [*setup.deployment_args("blue", 100, score_path), *settings])


def test_local_target_honours_request_timeout_and_env_and_keeps_them(local, tmp_path):
    code = write_score(tmp_path / "echo", SLOW_ECHO)
    settings = ["--request_timeout_ms", "500", "--env", "GREETING=hi there", "--egress_public_network", "disabled"]
    assert deploy_with(local, code, *settings) == 0

    assert local.score('{"sleep": 0}').json() == {"greeting": "hi there"}
    assert local.score('{"sleep": 2}').status_code == 408

    assert deploy_with(local, code, "--app_insights", "enabled") == 0  # a re-run keeps the rest

    spec = local.deployment("blue")
    assert spec["request_settings"]["request_timeout_ms"] == 500
    assert spec["environment_variables"] == {"GREETING": "hi there"}
    assert (spec["app_insights_enabled"], spec["egress_public_network_access"]) == (True, "disabled")
    assert local.score('{"sleep": 2}').status_code == 408
    shown = local.client().online_deployments.get("blue", "settings-local")
    assert shown.environment_variables == {"GREETING": "hi there"}


def test_local_show_prints_the_settings(local, tmp_path, run_script):
    assert deploy_with(local, write_score(tmp_path / "echo", SLOW_ECHO), "--env", "GREETING=x") == 0

    result = run_script(manage_online_endpoint, ["show", "--local", "--endpoint_name", "settings-local"])

    assert "settings: timeout 5000 ms; 1 concurrent/instance; env GREETING; app insights disabled" in result.out


def test_local_readiness_initial_delay_holds_back_the_first_request(local, tmp_path):
    started = time.monotonic()
    code = write_score(tmp_path / "echo", SLOW_ECHO)

    assert deploy_with(local, code, "--readiness_probe", "initial_delay=3", "period=1") == 0

    assert time.monotonic() - started >= 3
    assert local.score('{"sleep": 0}').status_code == 200


def test_local_probes_take_a_frozen_server_out_then_restart_it_at_the_liveness_threshold(local, tmp_path):
    code = write_score(tmp_path / "echo", SLOW_ECHO)
    probes = ["--liveness_probe", "initial_delay=1", "period=1", "timeout=1", "failure_threshold=2"]
    probes += ["--readiness_probe", "period=1", "timeout=1", "failure_threshold=1"]
    assert deploy_with(local, code, *probes) == 0
    victim = local.status("blue")["pid"]

    os.killpg(victim, signal.SIGSTOP)
    try:
        assert wait_until(lambda: local.score('{"sleep": 0}').status_code == 503, 10)  # readiness: out
        assert wait_until(lambda: local.status("blue")["pid"] not in (None, victim), 20)  # liveness: restarted
    finally:
        with contextlib.suppress(ProcessLookupError):  # gone once restarted
            os.killpg(victim, signal.SIGCONT)
    log = local.store.endpoint_dir("settings-local").joinpath("frontdoor.log").read_text()
    assert "did not answer its liveness probe (GET /) 2 times in a row" in log
    assert wait_until(lambda: local.score('{"sleep": 0}').status_code == 200, 30)


def test_local_server_runs_worker_count_workers_per_instance_so_concurrency_happens(local, tmp_path):
    """--max_concurrent_requests_per_instance 3 sets WORKER_COUNT=3: three requests of 1 s are served at once,
    not one after another (as Azure's server runs WORKER_COUNT workers in each instance)."""
    import concurrent.futures

    import psutil

    code = write_score(tmp_path / "echo", SLOW_ECHO)
    assert deploy_with(local, code, "--max_concurrent_requests_per_instance", "3") == 0
    assert local.deployment("blue")["environment_variables"] == {"WORKER_COUNT": "3"}
    server = psutil.Process(local.status("blue")["pid"])
    assert wait_until(lambda: len(server.children()) == 3, 10), server.children()

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: local.score('{"sleep": 1}').status_code, range(3)))
    assert answers == [200, 200, 200]
    assert time.monotonic() - started < 2.5  # one worker would take 3 s
