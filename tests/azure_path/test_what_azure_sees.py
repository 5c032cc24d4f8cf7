"""What a real Azure sees (the real azure-ai-ml SDK against the fake control plane): a re-run keeps a deployment's
size, an instance type change is refused before any write, names with capitals are Azure's lowercase names,
WORKER_COUNT follows the concurrency, ARM's tag limits are honoured (history included), and a concurrent writer is
caught."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import create_online_deployment
import create_online_endpoint
import manage_online_endpoint
from common.release import history
from common.release.traffic import Split

ENDPOINT = "diabetes-classify"
BLUE = [
    *("--deployment_name", "blue", "--endpoint_name", ENDPOINT),
    *("--model_path", "azureml:diabetes-predict:3", "--environment", "diabetes-classify:1"),
    *("--score_path", "09-deploy-model", "--score_script", "score.py"),
]
BLUE_PATH = f"/onlineEndpoints/{ENDPOINT}/deployments/blue"


@pytest.fixture
def workspace(fake_azure):
    fake_azure.add_endpoint(ENDPOINT, {})
    fake_azure.add_model("diabetes-predict", "3")
    fake_azure.add_environment("diabetes-classify", "1")
    return fake_azure


def existing_blue(fake: Any, count: int = 4, **properties: Any) -> dict[str, Any]:
    """blue as Azure reports it now: `count` instances (what autoscale left it at), and `properties`."""
    fake.add_deployment(ENDPOINT, "blue")
    resource = fake.deployments[(ENDPOINT, "blue")]
    resource["sku"]["capacity"] = count
    resource["properties"].update(
        model=f"{fake_ids()}/models/diabetes-predict/versions/3",
        environmentId=f"{fake_ids()}/environments/diabetes-classify/versions/1",
        codeConfiguration={"codeId": f"{fake_ids()}/codes/c/versions/1", "scoringScript": "score.py"},
        **properties,
    )
    return resource


def fake_ids() -> str:
    from tests.fake_azure import WORKSPACE_ID

    return WORKSPACE_ID


def put_body(fake: Any) -> dict[str, Any]:
    [put] = fake.sent("PUT", BLUE_PATH)
    return put.body


# ---- a re-run keeps the size (item 2) ----------------------------------------------------------------------------


def test_a_rerun_without_size_flags_keeps_the_type_and_the_count_azure_reports(workspace, run_script):
    existing_blue(workspace, count=4)

    result = run_script(create_online_deployment, [*BLUE, "--request_timeout_ms", "9000"])

    assert result.code == 0, result.err
    body = put_body(workspace)
    assert body["sku"]["capacity"] == 4
    assert body["properties"]["instanceType"] == "Standard_DS3_v2"
    assert (
        "Updating deployment blue on endpoint diabetes-classify in place (changing request_timeout_ms; "
        "4 x Standard_DS3_v2)" in result.err
    )
    assert "Instances:          4 x Standard_DS3_v2" in result.out


def test_latest_says_which_version_it_is_and_which_one_it_replaces(workspace, run_script):
    existing_blue(workspace)  # runs diabetes-predict:3
    workspace.add_model("diabetes-predict", "4")
    latest = [*BLUE[:4], "--model_path", "azureml:diabetes-predict@latest", *BLUE[6:]]

    result = run_script(create_online_deployment, latest)

    assert result.code == 0, result.err
    assert (
        "Model diabetes-predict@latest is version 4; blue runs version 3 now and moves to 4 (to keep it, give "
        "--model_path azureml:diabetes-predict:3)"
    ) in result.err.splitlines()
    assert put_body(workspace)["properties"]["model"].endswith("/models/diabetes-predict/versions/4")


def test_a_rerun_names_only_what_changes(workspace, run_script):
    existing_blue(workspace, count=4)

    unchanged = run_script(create_online_deployment, BLUE)
    resized = run_script(create_online_deployment, [*BLUE, "--instance_count", "2"])

    assert unchanged.code == resized.code == 0, unchanged.err + resized.err
    assert "(changing nothing but the code, if it differs; 4 x Standard_DS3_v2)" in unchanged.err
    assert "(changing instance_count 4 -> 2; 2 x Standard_DS3_v2)" in resized.err


def test_a_new_deployment_without_size_flags_gets_one_ds3_v2(workspace, run_script):
    result = run_script(create_online_deployment, BLUE)

    assert result.code == 0, result.err
    body = put_body(workspace)
    assert (body["properties"]["instanceType"], body["sku"]["capacity"]) == ("Standard_DS3_v2", 1)
    assert "Deploying blue to endpoint diabetes-classify (1 x Standard_DS3_v2)" in result.err


def test_another_instance_type_for_an_existing_deployment_is_refused_before_any_write(workspace, run_script):
    existing_blue(workspace)

    result = run_script(create_online_deployment, [*BLUE, "--instance_type", "Standard_F4s_v2"])

    assert result.code == 2
    assert (
        "error: deployment 'blue' runs on Standard_DS3_v2; Azure does not change the instance type of an existing "
        "deployment: create a new deployment (e.g. green) with --instance_type Standard_F4s_v2" in result.err
    )
    assert workspace.writes() == []


def test_an_instance_type_in_another_case_is_the_same_sku_and_is_sent_as_documented(workspace, run_script):
    existing_blue(workspace)

    rerun = run_script(create_online_deployment, [*BLUE, "--instance_type", "STANDARD_DS3_V2"])
    assert rerun.code == 0, rerun.err
    assert "warning" not in rerun.err

    result = run_script(
        create_online_deployment, [*BLUE, "--deployment_name", "green", "--instance_type", "standard_f4s_v2"]
    )
    assert result.code == 0, result.err
    [put] = workspace.sent("PUT", f"/onlineEndpoints/{ENDPOINT}/deployments/green")
    assert put.body["properties"]["instanceType"] == "Standard_F4s_v2"


# ---- WORKER_COUNT follows the concurrency (item 4) ----------------------------------------------------------------


def test_concurrency_above_one_sets_worker_count_and_says_so(workspace, run_script):
    result = run_script(create_online_deployment, [*BLUE, "--max_concurrent_requests_per_instance", "4"])

    assert result.code == 0, result.err
    assert put_body(workspace)["properties"]["environmentVariables"] == {"WORKER_COUNT": "4"}
    assert "Setting WORKER_COUNT=4 to match max_concurrent_requests_per_instance 4" in result.err


def test_the_dry_run_shows_the_worker_count_it_would_set(workspace, run_script):
    import yaml

    result = run_script(create_online_deployment, [*BLUE, "--max_concurrent_requests_per_instance", "4", "--dry_run"])

    assert result.code == 0, result.err
    assert yaml.safe_load(result.out)["environment_variables"] == {"WORKER_COUNT": "4"}
    assert "Setting WORKER_COUNT=4" in result.err
    assert workspace.requests == []


def test_worker_count_named_in_env_is_the_users_choice(workspace, run_script):
    argv = [*BLUE, "--max_concurrent_requests_per_instance", "4", "--env", "WORKER_COUNT=2"]

    result = run_script(create_online_deployment, argv)

    assert result.code == 0, result.err
    assert put_body(workspace)["properties"]["environmentVariables"] == {"WORKER_COUNT": "2"}
    assert "Setting WORKER_COUNT" not in result.err


def test_env_replaced_without_worker_count_keeps_the_kept_concurrency_served(workspace, run_script):
    existing_blue(
        workspace,
        requestSettings={"requestTimeout": "PT5S", "maxConcurrentRequestsPerInstance": 3, "maxQueueWait": "PT0.5S"},
        environmentVariables={"WORKER_COUNT": "3", "GREETING": "old"},
    )

    result = run_script(create_online_deployment, [*BLUE, "--env", "GREETING=new"])

    assert result.code == 0, result.err
    assert put_body(workspace)["properties"]["environmentVariables"] == {"GREETING": "new", "WORKER_COUNT": "3"}


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_worker_count_the_server_refuses_is_refused_before_any_call(workspace, run_script, value):
    result = run_script(create_online_deployment, [*BLUE, "--env", f"WORKER_COUNT={value}"])

    assert result.code == 2
    assert f"invalid --env WORKER_COUNT={value!r}: the inference server needs a whole number, 1 or more" in result.err
    assert workspace.requests == []


# ---- the preflight tries what Azure gets (item 5) -----------------------------------------------------------------


def test_the_preflight_runs_with_the_settings_and_size_kept_from_azure(workspace, run_script, mocker):
    existing_blue(
        workspace,
        count=3,
        requestSettings={"requestTimeout": "PT45S", "maxConcurrentRequestsPerInstance": 2, "maxQueueWait": "PT0.5S"},
        environmentVariables={"MAX_ROWS_PER_REQUEST": "1", "WORKER_COUNT": "2"},
    )
    tried = mocker.patch("common.preflight.run")
    mocker.patch("common.preflight.conda_definition", return_value=("diabetes-classify:1", {}))

    result = run_script(create_online_deployment, [*BLUE, "--preflight", "--readiness_probe", "period=3"])

    assert result.code == 0, result.err
    planned = tried.call_args.args[4]
    sent = put_body(workspace)
    assert planned.environment_variables == sent["properties"]["environmentVariables"]
    assert planned.environment_variables == {"MAX_ROWS_PER_REQUEST": "1", "WORKER_COUNT": "2"}
    assert (
        (planned.instance_type, planned.instance_count)
        == ("Standard_DS3_v2", 3)
        == (
            sent["properties"]["instanceType"],
            sent["sku"]["capacity"],
        )
    )
    assert planned.request_settings.request_timeout_ms == 45000
    assert planned.readiness_probe.period == 3


# ---- deployment names Azure lowercases (item 8) -------------------------------------------------------------------


def test_names_with_capitals_are_the_lowercase_names_azure_keeps(workspace, run_script):
    """Azure ML names are case-insensitive and azure-ai-ml lowercases them (entities/_endpoint/endpoint.py,
    _deployment/deployment.py): a deployment called Blue on Diabetes-Classify is blue on diabetes-classify, and its
    share in the traffic is blue's (a mixed-case key would never match its own deployment again)."""
    mixed = [*BLUE[4:], "--deployment_name", "Blue", "--endpoint_name", "Diabetes-Classify"]

    created = run_script(create_online_deployment, mixed)

    assert created.code == 0, created.err
    assert put_body(workspace)["properties"]["codeConfiguration"]["scoringScript"] == "score.py"
    assert "Deployment:         blue on endpoint diabetes-classify" in created.out
    moved = run_script(manage_online_endpoint, ["traffic", "--endpoint_name", "DIABETES-classify", "--set", "Blue=100"])
    assert moved.code == 0, moved.err
    [put] = workspace.sent("PUT", f"/onlineEndpoints/{ENDPOINT}")
    assert put.body["properties"]["traffic"] == {"blue": 100}


# ---- ARM's tag limits (item 3) ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ([f"t{i}=v" for i in range(51)], "invalid --tags: 51 tags; Azure allows at most 50 on a resource"),
        (["note=" + "x" * 257], "invalid tag note: its value has 257 characters; Azure allows at most 256"),
        (["k" * 513 + "=v"], "1-512 characters, none of < > % & \\ ? / (Azure's rule)"),
        (["a/b=v"], "invalid tag key 'a/b'"),
        (["what?=v"], "invalid tag key 'what?'"),
    ],
)
def test_tags_over_arms_limits_are_refused_before_any_call(workspace, run_script, tags, message):
    result = run_script(create_online_endpoint, ["--endpoint_name", ENDPOINT, "--tags", *tags])

    assert result.code == 2
    assert message in result.err
    assert workspace.requests == []


def test_the_fake_refuses_what_arm_refuses(workspace):
    from tests.fake_azure import _tag_refusal

    assert _tag_refusal({f"t{i}": "v" for i in range(51)})[0] == 400
    assert _tag_refusal({"a": "x" * 257})[0] == 400
    assert _tag_refusal({"a<b": "v"})[0] == 400
    assert _tag_refusal({f"t{i}": "v" for i in range(50)}) is None


def recorded_history(fake: Any, entries: int) -> dict[str, str]:
    return {
        f"{history.TAG_PREFIX}{index}": f"2026-11-2{index}T10:00:00Z|traffic|blue=100|-"
        for index in range(1, entries + 1)
    }


def test_a_traffic_change_with_many_user_tags_keeps_the_history_within_50_tags(workspace, run_script):
    own = {f"team{i}": "ml" for i in range(47)}
    workspace.add_endpoint(ENDPOINT, {"blue": 100}, tags={**own, **recorded_history(workspace, 5)})
    workspace.add_deployment(ENDPOINT, "green")

    result = run_script(
        manage_online_endpoint, ["traffic", "--endpoint_name", ENDPOINT, "--set", "blue=90", "green=10"]
    )

    assert result.code == 0, result.err
    [put] = workspace.sent("PUT", f"/onlineEndpoints/{ENDPOINT}")
    assert len(put.body["tags"]) == 50
    kept = history.entries(put.body["tags"])
    assert len(kept) == 3 and kept[0].before == Split({"blue": 100})
    assert "the endpoint has 47 tags of its own and Azure allows 50: the rollback history keeps only the last 3" in (
        result.err
    )


def test_fifty_user_tags_leave_no_room_for_history_and_the_put_is_still_one_azure_takes(workspace, run_script):
    tags = [f"team{i}=ml" for i in range(50)]
    workspace.add_endpoint(ENDPOINT, {"blue": 100}, tags=recorded_history(workspace, 2))

    result = run_script(create_online_endpoint, ["--endpoint_name", ENDPOINT, "--tags", *tags])

    assert result.code == 0, result.err
    [put] = workspace.sent("PUT", f"/onlineEndpoints/{ENDPOINT}")
    assert len(put.body["tags"]) == 50 and not history.entries(put.body["tags"])
    assert "the rollback history keeps no changes (dropped: 2 older)" in result.err


# ---- concurrent writers on Azure (item 6) -------------------------------------------------------------------------


def test_a_write_by_someone_else_between_the_read_and_the_write_is_not_undone(workspace, run_script):
    workspace.add_endpoint(ENDPOINT, {"blue": 100})
    workspace.add_deployment(ENDPOINT, "green")

    def other_writer() -> None:  # e.g. a colleague tagging the endpoint in the portal
        workspace.endpoints[ENDPOINT]["tags"] = {"owner": "someone-else"}

    workspace.after_endpoint_get[2] = other_writer  # after the read the change is applied to

    result = run_script(
        manage_online_endpoint, ["traffic", "--endpoint_name", ENDPOINT, "--set", "blue=90", "green=10"]
    )

    assert result.code == 0, result.err
    [put] = workspace.sent("PUT", f"/onlineEndpoints/{ENDPOINT}")
    assert put.body["tags"]["owner"] == "someone-else"
    assert put.body["properties"]["traffic"] == {"blue": 90, "green": 10}
    assert "changed while this command wrote it" not in result.err


def test_a_write_landing_right_after_this_one_is_reported(workspace, run_script):
    workspace.add_endpoint(ENDPOINT, {"blue": 100})
    workspace.add_deployment(ENDPOINT, "green")

    def other_writer(name: str) -> None:
        workspace.after_endpoint_put = None
        workspace.endpoints[name]["properties"]["traffic"] = {"blue": 100}

    workspace.after_endpoint_put = other_writer

    result = run_script(
        manage_online_endpoint, ["traffic", "--endpoint_name", ENDPOINT, "--set", "blue=90", "green=10"]
    )

    assert result.code == 0, result.err
    assert (
        "warning: endpoint 'diabetes-classify' changed while this command wrote it (traffic now differ from what it "
        "wrote): another writer came at the same moment, and Azure keeps the last write" in result.err
    )


def test_sdk_endpoint_put_has_no_conditional_write(tmp_path: Path):
    """The ground for item 6: azure-ai-ml's endpoint PUT takes no If-Match and the REST resource has no ETag."""
    import inspect

    from azure.ai.ml.operations import OnlineEndpointOperations

    parameters = inspect.signature(OnlineEndpointOperations.begin_create_or_update).parameters
    assert set(parameters) == {"self", "endpoint", "local"}
    assert json.dumps(sorted(parameters)) == '["endpoint", "local", "self"]'
