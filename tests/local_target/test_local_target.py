"""The local target end to end: real processes, real HTTP on 127.0.0.1, the same scripts with --local.

One endpoint (key auth) with a blue deployment is shared by the module; tests run in file order and each leaves
the traffic as it found it. Every process started here is stopped at the end, even when a test fails.
"""

from __future__ import annotations

import json
import math
import os
import signal
import stat
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import create_online_deployment
import create_online_endpoint
import invoke_online_endpoint
import manage_online_endpoint
from common.cli import run_main
from common.local import processes
from common.local.state import read_json
from common.training import LABELS
from tests.conftest import CANONICAL_ROW
from tests.localtarget import REQUEST_TIMEOUT, SAMPLE, LocalSetup, local_target, wait_until

ENDPOINT = "diabetes-local"


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[LocalSetup]:
    with local_target(tmp_path_factory.mktemp("local-home"), ENDPOINT, model_dir) as setup:
        setup.deploy("blue", 100)
        yield setup


def deployment_args(name: str, traffic: int, score_path: str = "09-deploy-model") -> list[str]:
    return LocalSetup(Path(), ENDPOINT).deployment_args(name, traffic, score_path)


def test_invoke_prints_the_prediction_list(local, run_script):
    result = run_script(invoke_online_endpoint, ["--local", "--endpoint_name", ENDPOINT])

    assert result.code == 0, result.err
    labels = json.loads(result.out)
    assert len(labels) == 1 and labels[0] in LABELS


def test_show_reports_uri_auth_traffic_and_deployments(local, run_script):
    result = run_script(manage_online_endpoint, ["show", "--local", "--endpoint_name", ENDPOINT, "--output", "json"])

    assert result.code == 0, result.err
    shown = json.loads(result.out)
    assert shown["scoring_uri"] == f"{local.uri}/score"
    assert shown["auth_mode"] == "key"
    assert shown["traffic"] == {"blue": 100}
    assert [(d["name"], d["provisioning_state"], d["model"]) for d in shown["deployments"]] == [
        ("blue", "Succeeded", "azureml:diabetes-predict:1")
    ]


def test_auth_is_required_and_either_key_works(local, run_script):
    missing = httpx.post(f"{local.uri}/score", content=SAMPLE, timeout=REQUEST_TIMEOUT)
    assert missing.status_code == 401
    assert missing.json() == {
        "error": {"code": "Unauthorized", "message": "missing credential: send Authorization: Bearer <key or token>"}
    }
    assert local.score(key="not-the-key").status_code == 401
    assert local.score(key="not-the-key").json() == {"error": {"code": "Unauthorized", "message": "invalid key"}}

    keys = run_script(manage_online_endpoint, ["keys", "--local", "--endpoint_name", ENDPOINT, "--output", "json"])
    secondary = json.loads(keys.out)["secondary_key"]
    assert local.score(key=secondary).status_code == 200
    assert stat.S_IMODE(local.store.keys_file(ENDPOINT).stat().st_mode) == 0o600


def test_bad_input_is_424_with_the_models_400_as_azure_answers(local, run_script, tmp_path):
    response = local.score(body=json.dumps({"data": [[1, 2]]}))

    assert response.status_code == 424
    assert response.headers["ms-azureml-model-error-statuscode"] == "400"
    assert response.json()["error"]["message"].startswith("row 0: has 2 values, expected 8")
    assert response.headers["azureml-model-deployment"] == "blue"
    request = tmp_path / "bad.json"
    request.write_text(json.dumps({"data": [[1, 2]]}))
    invoked = run_script(
        invoke_online_endpoint, ["--local", "--endpoint_name", ENDPOINT, "--request_file", str(request)]
    )
    assert invoked.code == 1
    assert invoked.err.startswith("error: the endpoint answered 424 (the model answered 400): row 0: has 2 values")


def test_ten_thousand_rows_in_one_request_pass_the_front_door_well_inside_the_timeout(local):
    body = json.dumps({"data": [CANONICAL_ROW] * 10_000})
    assert len(body) < 5_000_000  # the front door's size limit

    response = local.score(body, deployment="blue")

    # a 200, not the 408 the front door answers past the deployment's 5 s request timeout
    assert response.status_code == 200, response.text
    labels = response.json()
    assert len(labels) == 10_000 and len(set(labels)) == 1 and labels[0] in LABELS


def test_green_at_ten_percent_splits_traffic_and_the_header_routes(local, run_script):
    result = run_script(create_online_deployment, deployment_args("green", 10))
    assert result.code == 0, result.err
    assert local.endpoint()["traffic"] == {"blue": 90, "green": 10}

    served = Counter(local.score().headers["azureml-model-deployment"] for _ in range(1000))

    # Binomial(1000, 0.1): mean 100, sd 9.5; 5 sd either side fails a correct router about once in 1.7 million runs.
    sd = math.sqrt(1000 * 0.1 * 0.9)
    assert abs(served["green"] - 100) <= 5 * sd, served
    assert served["blue"] + served["green"] == 1000
    assert {local.score(deployment="green").headers["azureml-model-deployment"] for _ in range(20)} == {"green"}


def test_probe_counts_who_answered(local, run_script):
    result = run_script(
        manage_online_endpoint,
        ["probe", "--local", "--endpoint_name", ENDPOINT, "--requests", "100", "--output", "json"],
    )

    assert result.code == 0, result.err
    probe = json.loads(result.out)
    assert set(probe["answered_by"]) <= {"blue", "green"}
    assert sum(probe["answered_by"].values()) == 100
    assert probe["answered_by"]["blue"] > 60  # Binomial(100, 0.9) is below 61 about once in 10^12
    assert probe["traffic"] == {"blue": 90, "green": 10}


def test_aml_token_endpoint_accepts_its_tokens_only(local, run_script):
    created = run_script(
        create_online_endpoint, ["--local", "--endpoint_name", "diabetes-token", "--auth_mode", "aml_token"]
    )
    assert created.code == 0, created.err
    try:
        keys = json.loads(
            run_script(
                manage_online_endpoint, ["keys", "--local", "--endpoint_name", "diabetes-token", "--output", "json"]
            ).out
        )
        uri = local.client().online_endpoints.get("diabetes-token").scoring_uri
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {keys['access_token']}"}

        with_token = local.http.post(uri, content=SAMPLE, headers=headers)
        with_a_key = local.http.post(uri, content=SAMPLE, headers={**headers, "Authorization": f"Bearer {local.key}"})

        assert with_token.status_code == 503  # accepted, but no deployment takes traffic yet
        assert "no deployment of endpoint 'diabetes-token' takes traffic" in with_token.json()["error"]["message"]
        assert with_a_key.status_code == 401
        assert with_a_key.json() == {"error": {"code": "Unauthorized", "message": "invalid or expired token"}}
    finally:
        run_script(manage_online_endpoint, ["delete", "--local", "--endpoint_name", "diabetes-token", "--yes"])


def test_a_zero_percent_deployment_is_reachable_by_header_only(local):
    local.set_traffic(blue=100, green=0)
    try:
        assert {local.score().headers["azureml-model-deployment"] for _ in range(50)} == {"blue"}
        response = local.score(deployment="green")
        assert response.status_code == 200
        assert response.headers["azureml-model-deployment"] == "green"
        unknown = local.score(deployment="purple")
        assert unknown.status_code == 404
        assert unknown.json() == {
            "error": {
                "code": "DeploymentNotFound",
                "message": f"deployment 'purple' not found on endpoint '{ENDPOINT}'",
            }
        }
    finally:
        local.set_traffic(blue=90, green=10)


def test_mirror_traffic_copies_a_share_and_returns_only_the_live_answer(local):
    client = local.client()
    endpoint = client.online_endpoints.get(ENDPOINT)
    endpoint.traffic, endpoint.mirror_traffic = {"blue": 100, "green": 0}, {"green": 50}
    client.online_endpoints.begin_create_or_update(endpoint).result()
    try:
        answers = {local.score().headers["azureml-model-deployment"] for _ in range(200)}
        assert answers == {"blue"}
        mirrored = _wait_for_metric(local, 'endpoint_mirrored_requests_total{deployment="green",status_code="200"}')
        # Binomial(200, 0.5): mean 100, sd 7.1; 5 sd either side.
        assert abs(mirrored - 100) <= 5 * math.sqrt(200 * 0.25), mirrored
    finally:
        endpoint.traffic, endpoint.mirror_traffic = {"blue": 90, "green": 10}, {}
        client.online_endpoints.begin_create_or_update(endpoint).result()


def _metrics(local: LocalSetup) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {local.key}"}
    text = httpx.get(f"{local.uri}/metrics", headers=headers, timeout=REQUEST_TIMEOUT).text
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line[:1] != "#"}


def _wait_for_metric(local: LocalSetup, name: str) -> float:
    """Mirrored copies complete in the background: wait (bounded) until the counter stops moving."""
    last, deadline = -1.0, time.monotonic() + 10
    while time.monotonic() < deadline:
        value = _metrics(local).get(name, 0.0)
        if value == last:
            return value
        last = value
        time.sleep(0.3)
    return last


def test_metrics_count_requests_per_deployment_and_status(local):
    metrics = _metrics(local)

    assert metrics['endpoint_requests_total{deployment="blue",status_code="200"}'] > 500
    assert metrics['endpoint_requests_total{deployment="blue",status_code="424"}'] >= 1
    assert metrics['endpoint_errors_total{deployment="-",status_code="401"}'] >= 3
    assert metrics['endpoint_request_duration_seconds_count{deployment="green",status_code="200"}'] > 50


def test_access_log_has_requests_and_no_credentials(local):
    log = local.access_log('"POST /score" 401 deployment=-')
    keys = read_json(local.store.keys_file(ENDPOINT))

    assert '"POST /score" 200 deployment=blue' in log
    assert '"POST /score" 401 deployment=-' in log
    assert keys["primary_key"] not in log and keys["secondary_key"] not in log
    assert "Bearer" not in log


def test_failing_init_is_reported_with_its_log_and_leaves_traffic(local, run_script, tmp_path):
    broken = tmp_path / "broken-code"
    broken.mkdir()
    (broken / "score.py").write_text(
        "def init():\n    raise RuntimeError('init exploded on purpose')\n\n\ndef run(raw):\n    return []\n"
    )
    before = local.endpoint()["traffic"]
    started = time.monotonic()

    result = run_script(create_online_deployment, deployment_args("broken", 10, score_path=str(broken)))

    assert result.code == 4
    assert (
        "error: deployment broken failed: score.py's init() failed (RuntimeError: init exploded on purpose); its "
        in result.err
    )
    (error_line,) = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert error_line.count("broken") == 1, error_line  # not "deployment broken failed: deployment 'broken' failed"
    assert "RuntimeError: init exploded on purpose" in result.err
    assert result.err.splitlines()[3] == "cause: RuntimeError: init exploded on purpose"  # before the log tail
    assert "Traffic was not changed." in result.err
    assert (
        f"python manage_online_endpoint.py delete --endpoint_name {ENDPOINT} --deployment_name broken --yes --local"
        in (result.err)
    )
    assert time.monotonic() - started < 60
    assert local.endpoint()["traffic"] == before
    shown = run_script(manage_online_endpoint, ["show", "--local", "--endpoint_name", ENDPOINT, "--output", "json"])
    broken_shown = next(d for d in json.loads(shown.out)["deployments"] if d["name"] == "broken")
    assert (broken_shown["provisioning_state"], broken_shown["health"]) == ("Failed", "stopped")
    assert local.score().status_code == 200
    assert (
        run_main(
            manage_online_endpoint.main,
            ["delete", "--local", "--endpoint_name", ENDPOINT, "--deployment_name", "broken", "--yes"],
        )
        == 0
    )


def test_a_killed_deployment_is_restarted_with_no_command_and_only_its_share_fails_meanwhile(local, run_script):
    local.set_traffic(blue=50, green=50)
    old = local.status("green")
    os.kill(old["pid"], signal.SIGKILL)
    killed = time.monotonic()

    outcomes: Counter[tuple[str | None, int]] = Counter()
    while time.monotonic() - killed < 30:
        response = local.score()
        outcomes[(response.headers.get("azureml-model-deployment"), response.status_code)] += 1
        served_by = response.headers.get("azureml-model-deployment")
        if outcomes[("green", 503)] and (served_by, response.status_code) == ("green", 200):
            break

    recovered = time.monotonic() - killed
    assert set(outcomes) <= {("blue", 200), ("green", 200), ("green", 503)}, outcomes
    assert outcomes[("green", 503)] > 0 and recovered < 20, (outcomes, recovered)
    new = local.status("green")
    assert (new["health"], new["restarts"]) == ("running", 1)
    assert new["pid"] != old["pid"] and processes.group_members(old["pid"]) == []
    shown = run_script(manage_online_endpoint, ["show", "--local", "--endpoint_name", ENDPOINT, "--output", "json"])
    green = next(d for d in json.loads(shown.out)["deployments"] if d["name"] == "green")
    assert (green["provisioning_state"], green["health"], green["restarts"]) == ("Succeeded", "running", "1")
    local.set_traffic(blue=90, green=10)


def test_rolling_update_replaces_the_process_without_a_gap(local, run_script):
    old = local.status("blue")

    result = run_script(create_online_deployment, deployment_args("blue", 90))

    assert result.code == 0, result.err
    new = local.status("blue")
    assert new["pid"] != old["pid"] and new["socket"] != old["socket"]
    assert new["serving_generation"] == old["serving_generation"] + 1
    assert processes.group_members(old["pid"]) == []
    assert local.score(deployment="blue").status_code == 200


def test_a_dead_front_door_takes_its_servers_along_and_start_brings_it_all_back(local, run_script):
    updated = run_script(
        create_online_endpoint,
        ["--local", "--endpoint_name", ENDPOINT, "--auth_mode", "key", "--description", "kept", "--tags", "team=ml"],
    )
    assert updated.code == 0, updated.err
    before, key = local.endpoint(), local.key
    server_pids = [local.status(name)["pid"] for name in ("blue", "green")]
    os.kill(local.frontdoor_pid(), signal.SIGKILL)

    # the servers die with their front door: nothing answers around it
    assert wait_until(lambda: all(not processes.group_members(pid) for pid in server_pids), 15)
    shown = run_script(manage_online_endpoint, ["show", "--local", "--endpoint_name", ENDPOINT])
    start = f"python manage_online_endpoint.py start --endpoint_name {ENDPOINT} --local"
    assert f"warning: local endpoint '{ENDPOINT}' is not running" in shown.err
    assert start in shown.err
    assert "Provisioning state: Stopped" in shown.out

    started = run_script(manage_online_endpoint, ["start", "--local", "--endpoint_name", ENDPOINT, "--output", "json"])

    assert started.code == 0, started.err
    after = local.endpoint()
    for setting in ("port", "description", "tags", "auth_mode", "traffic", "mirror_traffic"):
        assert after[setting] == before[setting], setting
    user_tags = {key: value for key, value in after["tags"].items() if not key.startswith("toolkit.rollback.")}
    assert after["description"] == "kept" and user_tags == {"team": "ml"}  # the rollback history is kept beside
    shown = json.loads(started.out)
    assert {d["name"]: d["health"] for d in shown["deployments"]} == {"blue": "running", "green": "running"}
    assert {d["restarts"] for d in shown["deployments"]} == {"0"}  # a start is not a restart
    assert local.score(key=key).status_code == 200
    assert local.score(deployment="green").status_code == 200


def test_stop_ends_every_process_and_keeps_the_state_for_start(local, run_script):
    pids = [local.frontdoor_pid(), local.status("blue")["pid"], local.status("green")["pid"]]
    state_before = local.endpoint()

    stopped = run_script(manage_online_endpoint, ["stop", "--local", "--endpoint_name", ENDPOINT])

    assert stopped.code == 0, stopped.err
    assert "Start it again with: python manage_online_endpoint.py start" in stopped.out
    assert [pid for pid in pids if processes.group_members(pid)] == []
    assert local.endpoint() == state_before
    assert {local.status(name)["health"] for name in ("blue", "green")} == {"stopped"}
    started = run_script(manage_online_endpoint, ["start", "--local", "--endpoint_name", ENDPOINT])
    assert started.code == 0, started.err
    assert local.score().status_code == 200


def test_start_and_stop_are_refused_for_azure_before_any_call(run_script):
    for command in ("start", "stop"):
        result = run_script(manage_online_endpoint, [command, "--endpoint_name", ENDPOINT])
        assert result.code == 2
        assert f"error: {command} is for local endpoints (add --local)" in result.err


def test_delete_refuses_a_deployment_with_traffic_then_stops_every_process(local, run_script):
    refused = run_script(
        manage_online_endpoint,
        ["delete", "--local", "--endpoint_name", ENDPOINT, "--deployment_name", "green", "--yes"],
    )
    assert refused.code == 2
    assert "deployment 'green' takes 10% of the live traffic" in refused.err

    local.set_traffic(blue=100, green=0)
    green_pid = local.status("green")["pid"]
    assert (
        run_script(
            manage_online_endpoint,
            ["delete", "--local", "--endpoint_name", ENDPOINT, "--deployment_name", "green", "--yes"],
        ).code
        == 0
    )
    assert processes.group_members(green_pid) == []

    pids = [local.frontdoor_pid(), local.status("blue")["pid"]]
    members = [member for pid in pids for member in processes.group_members(pid)]
    assert len(members) >= 3  # front door, blue's server and its worker

    deleted = run_script(manage_online_endpoint, ["delete", "--local", "--endpoint_name", ENDPOINT, "--yes"])

    assert deleted.code == 0, deleted.err
    assert [pid for pid in pids if processes.group_members(pid)] == []
    assert [m for m in members if processes.is_running(m)] == []
    assert not local.store.endpoint_dir(ENDPOINT).exists()
    assert all(not processes.group_members(pid) for pid in local.spawned)
