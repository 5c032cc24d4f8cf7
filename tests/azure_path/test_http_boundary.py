"""The Azure path at the HTTP boundary: the real azure-ai-ml SDK against a fake Azure ML control plane.

What is asserted is what would reach Azure: REST bodies, ARM ids, the order of writes.
"""

from __future__ import annotations

import json

import pytest

import create_online_deployment
import create_online_endpoint
import manage_online_endpoint
from tests.conftest import SCORE_DIR
from tests.fake_azure import WORKSPACE_ID
from tests.seeds import DEPLOYMENT_SEED, ENDPOINT_SEED, with_flag, with_seed_assets


@pytest.fixture
def workspace(fake_azure):
    return with_seed_assets(fake_azure)


def test_seed_endpoint_put_body(workspace, run_script):
    result = run_script(create_online_endpoint, ENDPOINT_SEED)

    assert result.code == 0, result.err
    (put,) = workspace.sent("PUT", "/onlineEndpoints/diabetes-classify")
    assert put.body["location"] == "eastus"  # taken from the workspace
    assert put.body["identity"] == {"type": "SystemAssigned"}
    properties = put.body["properties"]
    assert properties["authMode"] == "AMLToken"
    assert properties["description"] == "Diabetes classification endpoint"
    assert properties["publicNetworkAccess"].lower() == "enabled"
    assert properties["traffic"] == {}
    assert workspace.writes() == ["PUT /onlineEndpoints/diabetes-classify"]
    assert "Provisioning state: Succeeded" in result.out
    assert "Scoring URI:        https://diabetes-classify.eastus.inference.ml.azure.com/score" in result.out


@pytest.mark.parametrize(("auth_mode", "rest"), [("key", "Key"), ("aml_token", "AMLToken"), ("aad_token", "AADToken")])
def test_auth_modes_and_tags_on_the_wire(workspace, run_script, auth_mode, rest):
    argv = ["--endpoint_name", "diabetes-classify", "--auth_mode", auth_mode, "--public_network", "disabled"]

    result = run_script(create_online_endpoint, [*argv, "--tags", "team=ml"])

    assert result.code == 0, result.err
    (put,) = workspace.sent("PUT", "/onlineEndpoints/diabetes-classify")
    assert put.body["properties"]["authMode"] == rest
    assert put.body["properties"]["publicNetworkAccess"].lower() == "disabled"
    assert put.body["tags"] == {"team": "ml"}


def test_rerun_keeps_the_traffic_the_endpoint_has(workspace, run_script):
    workspace.add_endpoint("diabetes-classify", {"blue": 90, "green": 10})

    result = run_script(create_online_endpoint, ENDPOINT_SEED)

    assert result.code == 0, result.err
    (put,) = workspace.sent("PUT", "/onlineEndpoints/diabetes-classify")
    assert put.body["properties"]["traffic"] == {"blue": 90, "green": 10}


def private_endpoint(workspace) -> None:
    workspace.add_endpoint(
        "diabetes-classify",
        {"blue": 100},
        auth_mode="AMLToken",
        tags={"team": "ml"},
        publicNetworkAccess="Disabled",
        description="kept",
    )


def test_rerun_without_flags_changes_nothing_and_never_reopens_a_private_endpoint(workspace, run_script):
    private_endpoint(workspace)

    result = run_script(create_online_endpoint, ["--endpoint_name", "diabetes-classify"])

    assert result.code == 0, result.err
    (put,) = workspace.sent("PUT", "/onlineEndpoints/diabetes-classify")
    properties = put.body["properties"]
    assert properties["publicNetworkAccess"].lower() == "disabled"
    assert (properties["authMode"], properties["description"]) == ("AMLToken", "kept")
    assert (put.body["tags"], properties["traffic"]) == ({"team": "ml"}, {"blue": 100})
    assert put.body["identity"]["type"] == "SystemAssigned"
    assert "changing nothing; traffic kept: blue=100%" in result.err


def test_rerun_changes_only_the_flags_given(workspace, run_script):
    private_endpoint(workspace)

    result = run_script(create_online_endpoint, ["--endpoint_name", "diabetes-classify", "--description", "new"])

    assert result.code == 0, result.err
    (put,) = workspace.sent("PUT", "/onlineEndpoints/diabetes-classify")
    properties = put.body["properties"]
    assert (properties["description"], properties["authMode"]) == ("new", "AMLToken")
    assert properties["publicNetworkAccess"].lower() == "disabled"
    assert put.body["tags"] == {"team": "ml"}
    assert "changing description;" in result.err


def test_seed_deployment_put_body_then_traffic(workspace, run_script):
    workspace.add_endpoint("diabetes-classify")

    result = run_script(create_online_deployment, DEPLOYMENT_SEED)

    assert result.code == 0, result.err
    (put,) = workspace.sent("PUT", "/onlineEndpoints/diabetes-classify/deployments/diabetes-classify-blue-dp")
    properties = put.body["properties"]
    assert properties["model"] == f"{WORKSPACE_ID}/models/diabetes-predict/versions/3"
    assert properties["environmentId"] == f"{WORKSPACE_ID}/environments/diabetes-classify/versions/7"  # latest
    assert properties["codeConfiguration"]["scoringScript"] == "score.py"
    code_id = properties["codeConfiguration"]["codeId"]
    assert code_id.startswith(f"{WORKSPACE_ID}/codes/") and code_id.endswith("/versions/1")
    assert properties["endpointComputeType"] == "Managed"
    assert properties["instanceType"] == "Standard_DS3_v2"
    assert put.body["sku"] == {"name": "Default", "capacity": 1}
    assert put.body["location"] == "eastus"

    code_name = code_id.split("/codes/")[1].split("/")[0]
    (code_put,) = workspace.sent("PUT", f"/codes/{code_name}/versions/1")
    container, folder = code_put.body["properties"]["codeUri"].split(":443/")[1].split("/")  # blobUri + folder
    assert folder == "09-deploy-model"
    uploaded = {path.split("/", 1)[1]: body for path, body in workspace.blobs.items() if path.startswith(container)}
    assert uploaded["09-deploy-model/score.py"] == (SCORE_DIR / "score.py").read_bytes()
    assert not [path for path in uploaded if "__pycache__" in path]

    assert workspace.writes()[-2:] == [
        "PUT /onlineEndpoints/diabetes-classify/deployments/diabetes-classify-blue-dp",
        "PUT /onlineEndpoints/diabetes-classify",
    ]
    traffic_put = workspace.sent("PUT", "/onlineEndpoints/diabetes-classify")[-1]
    assert traffic_put.body["properties"]["traffic"] == {"diabetes-classify-blue-dp": 100}
    assert "Provisioning state: Succeeded" in result.out


def test_instance_count_is_the_sku_capacity(workspace, run_script):
    workspace.add_endpoint("diabetes-classify")

    result = run_script(create_online_deployment, with_flag(DEPLOYMENT_SEED, "--instance_count", "3"))

    assert result.code == 0, result.err
    (put,) = workspace.sent("PUT", "/onlineEndpoints/diabetes-classify/deployments/diabetes-classify-blue-dp")
    assert put.body["sku"]["capacity"] == 3


def test_green_canary_sends_exactly_the_rebalanced_traffic(workspace, run_script):
    workspace.add_endpoint("diabetes-classify", {"blue": 100})
    argv = with_flag(with_flag(DEPLOYMENT_SEED, "--deployment_name", "green"), "--traffic_allocation", "10")

    result = run_script(create_online_deployment, argv)

    assert result.code == 0, result.err
    traffic_put = workspace.sent("PUT", "/onlineEndpoints/diabetes-classify")[-1]
    assert traffic_put.body["properties"]["traffic"] == {"blue": 90, "green": 10}


def test_latest_model_version_is_resolved_before_the_put(workspace, run_script):
    workspace.add_model("diabetes-predict", "4")
    workspace.add_endpoint("diabetes-classify")

    result = run_script(
        create_online_deployment, with_flag(DEPLOYMENT_SEED, "--model_path", "azureml:diabetes-predict@latest")
    )

    assert result.code == 0, result.err
    (put,) = workspace.sent("PUT", "/onlineEndpoints/diabetes-classify/deployments/diabetes-classify-blue-dp")
    assert put.body["properties"]["model"] == f"{WORKSPACE_ID}/models/diabetes-predict/versions/4"


@pytest.mark.parametrize(
    "argv",
    [
        with_flag(DEPLOYMENT_SEED, "--instance_count", "0"),
        with_flag(DEPLOYMENT_SEED, "--score_script", "missing.py"),
        with_flag(DEPLOYMENT_SEED, "--deployment_name", "bad_name"),
        with_flag(DEPLOYMENT_SEED, "--model_path", "azureml:diabetes-predict"),
    ],
)
def test_nothing_is_sent_when_validation_fails(workspace, run_script, argv):
    result = run_script(create_online_deployment, argv)

    assert result.code == 2
    assert workspace.requests == []


def test_impossible_traffic_reads_the_endpoint_and_writes_nothing(workspace, run_script):
    workspace.add_endpoint("diabetes-classify")

    result = run_script(create_online_deployment, with_flag(DEPLOYMENT_SEED, "--traffic_allocation", "40"))

    assert result.code == 2
    assert "cannot give 'diabetes-classify-blue-dp' 40% of the traffic" in result.err
    # only the reads that tell the current traffic (the SDK's endpoint get also lists its deployments)
    assert {f"{r.method} {r.resource}" for r in workspace.requests} == {
        "GET /onlineEndpoints/diabetes-classify",
        "GET /onlineEndpoints/diabetes-classify/deployments",
    }


def without(argv: list[str], flag: str) -> list[str]:
    index = argv.index(flag)
    return argv[:index] + argv[index + 2 :]


def test_no_traffic_allocation_updates_in_place_and_leaves_the_split(workspace, run_script):
    workspace.add_endpoint("diabetes-classify", {"blue": 90, "green": 10})
    green = with_flag(without(DEPLOYMENT_SEED, "--traffic_allocation"), "--deployment_name", "green")

    result = run_script(create_online_deployment, [*green, "--output", "json"])

    assert result.code == 0, result.err
    assert [w for w in workspace.writes() if "onlineEndpoints" in w] == [
        "PUT /onlineEndpoints/diabetes-classify/deployments/green"
    ]
    assert json.loads(result.out)["traffic"] == {"blue": 90, "green": 10}


def test_no_traffic_allocation_updates_the_only_live_deployment(workspace, run_script):
    workspace.add_endpoint("diabetes-classify", {"blue": 100})
    blue = with_flag(without(DEPLOYMENT_SEED, "--traffic_allocation"), "--deployment_name", "blue")

    result = run_script(create_online_deployment, blue)

    assert result.code == 0, result.err
    assert [w for w in workspace.writes() if "onlineEndpoints" in w] == [
        "PUT /onlineEndpoints/diabetes-classify/deployments/blue"
    ]


def test_an_explicit_zero_still_makes_a_deployment_dark(workspace, run_script):
    workspace.add_endpoint("diabetes-classify", {"blue": 90, "green": 10})
    green = with_flag(with_flag(DEPLOYMENT_SEED, "--deployment_name", "green"), "--traffic_allocation", "0")

    result = run_script(create_online_deployment, green)

    assert result.code == 0, result.err
    put = workspace.sent("PUT", "/onlineEndpoints/diabetes-classify")[-1]
    assert put.body["properties"]["traffic"] == {"blue": 100}


def test_live_traffic_for_the_mirror_deployment_clears_its_mirror_share_in_the_same_put(workspace, run_script):
    workspace.add_endpoint("diabetes-classify", {"blue": 100}, mirrorTraffic={"green": 10})
    workspace.add_deployment("diabetes-classify", "green")
    green = with_flag(with_flag(DEPLOYMENT_SEED, "--deployment_name", "green"), "--traffic_allocation", "10")

    result = run_script(create_online_deployment, green)

    assert result.code == 0, result.err
    assert "Once green succeeds: clearing the mirror traffic of green=10%" in result.err
    put = workspace.sent("PUT", "/onlineEndpoints/diabetes-classify")[-1]
    assert put.body["properties"]["traffic"] == {"blue": 90, "green": 10}
    assert not put.body["properties"].get("mirrorTraffic")


def test_manage_traffic_clears_the_mirror_share_of_a_deployment_given_live_traffic(workspace, run_script):
    workspace.add_endpoint("diabetes-classify", {"blue": 100}, mirrorTraffic={"green": 10})
    workspace.add_deployment("diabetes-classify", "green")

    result = run_script(
        manage_online_endpoint, ["traffic", "--endpoint_name", "diabetes-classify", "--set", "blue=80", "green=20"]
    )

    assert result.code == 0, result.err
    assert (
        "clearing the mirror traffic of green=10%: a deployment takes live or mirrored traffic, not both" in result.err
    )
    (put,) = workspace.sent("PUT", "/onlineEndpoints/diabetes-classify")
    assert put.body["properties"]["traffic"] == {"blue": 80, "green": 20}
    assert not put.body["properties"].get("mirrorTraffic")


def test_after_an_update_the_next_step_is_to_invoke_not_to_deploy_blue_again(workspace, run_script):
    workspace.add_endpoint("diabetes-classify", {"blue": 100})

    result = run_script(create_online_endpoint, ["--endpoint_name", "diabetes-classify"])

    assert result.code == 0, result.err
    assert result.out.splitlines()[-2:] == [
        "Next:",
        "  python invoke_online_endpoint.py --endpoint_name diabetes-classify",
    ]
    assert "Traffic:            blue=100%" in result.out  # not a Python dict


def test_deleting_an_endpoint_that_does_not_exist_does_not_suggest_creating_it(workspace, run_script):
    result = run_script(manage_online_endpoint, ["delete", "--endpoint_name", "diabetes-classify", "--yes"])

    assert (result.code, result.err) == (
        3,
        "error: endpoint 'diabetes-classify' not found: there is nothing to delete\n",
    )


def test_follow_up_commands_are_quoted_for_the_shell():
    import shlex

    from commands.target import LOCAL

    command = LOCAL.command("create_online_endpoint.py", "--description", "Diabetes classification endpoint")

    assert command == "python create_online_endpoint.py --description 'Diabetes classification endpoint' --local"
    assert shlex.split(command)[3] == "Diabetes classification endpoint"


@pytest.mark.parametrize("script", [create_online_endpoint, create_online_deployment])
def test_dry_run_output_json_is_json_and_contacts_nothing(workspace, run_script, script):
    argv = ENDPOINT_SEED if script is create_online_endpoint else DEPLOYMENT_SEED

    result = run_script(script, [*argv, "--dry_run", "--output", "json"])

    assert result.code == 0, result.err
    document = json.loads(result.out)
    assert document["$schema"].endswith(
        "Online" + ("Endpoint" if script is create_online_endpoint else "Deployment") + ".schema.json"
    )
    assert document["name"] in ("diabetes-classify", "diabetes-classify-blue-dp")
    assert workspace.requests == []


def test_the_fake_answers_long_running_operations_as_recorded_from_azure(workspace, run_script):
    """201 with provisioningState Creating, then an mfeOperationsStatus URL reporting Updating before Succeeded."""
    from tests.fake_azure import POLLS_BEFORE_DONE

    workspace.add_endpoint("diabetes-classify")

    result = run_script(create_online_deployment, with_flag(DEPLOYMENT_SEED, "--traffic_allocation", "100"))

    assert result.code == 0, result.err
    polls = workspace.sent("GET", "/subscriptions/.*/mfeOperationsStatus/od:.*")
    assert len(polls) >= POLLS_BEFORE_DONE + 1
    assert (
        workspace.deployments[("diabetes-classify", "diabetes-classify-blue-dp")]["properties"]["provisioningState"]
        == "Succeeded"
    )
    assert "Provisioning state: Succeeded" in result.out
