"""The Azure path at the HTTP boundary: the real azure-ai-ml SDK against a fake Azure ML control plane.

What is asserted is what would reach Azure: REST bodies, ARM ids, the order of writes.
"""

from __future__ import annotations

import pytest

import create_online_deployment
import create_online_endpoint
from tests.conftest import SCORE_DIR
from tests.fake_azure import WORKSPACE_ID

ENDPOINT_SEED = [
    "--endpoint_name",
    "diabetes-classify",
    "--description",
    "Diabetes classification endpoint",
    "--auth_mode",
    "aml_token",
    "--public_network",
    "enabled",
    "--verbose",
]
DEPLOYMENT_SEED = [
    *("--deployment_name", "diabetes-classify-blue-dp", "--endpoint_name", "diabetes-classify"),
    *("--model_path", "azureml:diabetes-predict:3", "--environment", "diabetes-classify"),
    *("--score_path", "09-deploy-model", "--score_script", "score.py"),
    *("--instance_type", "Standard_DS3_v2", "--instance_count", "1", "--traffic_allocation", "100"),
]


def with_flag(argv: list[str], flag: str, value: str) -> list[str]:
    changed = list(argv)
    changed[changed.index(flag) + 1] = value
    return changed


@pytest.fixture
def workspace(fake_azure):
    fake_azure.add_model("diabetes-predict", "3")
    fake_azure.add_environment("diabetes-classify", "6")
    fake_azure.add_environment("diabetes-classify", "7")
    return fake_azure


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
    uploaded = {path.split("/", 1)[1]: body for path, body in workspace.blobs.items() if path.startswith(code_name)}
    assert uploaded["09-deploy-model/score.py"] == (SCORE_DIR / "score.py").read_bytes()
    assert not [path for path in uploaded if "__pycache__" in path]
    (code_put,) = workspace.sent("PUT", f"/codes/{code_name}/versions/1")
    assert code_put.body["properties"]["codeUri"].endswith(f"/LocalUpload/{code_name}/09-deploy-model")

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
