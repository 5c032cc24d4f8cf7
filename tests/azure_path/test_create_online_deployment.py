"""create_online_deployment.py against a mocked MLClient: entities, traffic, failures and refusals."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from azure.ai.ml import load_online_deployment
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

import commands
import create_online_deployment as script
from commands import deployment_plan, dispatch
from common.assets import DEFAULT_BASE_IMAGE
from tests.conftest import WORKSPACE_ENV, asset, existing_endpoint, finished_poller
from tests.seeds import DEPLOYMENT_SEED, with_flag


@pytest.fixture
def workspace(azure):
    """An endpoint with no traffic yet, model diabetes-predict:3 and environment diabetes-classify:7."""
    azure.client.online_endpoints.get.side_effect = None
    azure.client.online_endpoints.get.return_value = existing_endpoint("diabetes-classify", {})
    azure.client.models.get.return_value = asset("diabetes-predict", "3")
    azure.client.environments.get.return_value = asset("diabetes-classify", "7")
    return azure


def test_seed_command_deploys_then_gives_it_all_traffic(workspace, run_script):
    result = run_script(script, DEPLOYMENT_SEED)

    assert result.code == 0, result.err
    workspace.client.models.get.assert_called_once_with("diabetes-predict", version="3")
    workspace.client.environments.get.assert_called_once_with("diabetes-classify", label="latest")
    (deployment,) = workspace.created_entities("online_deployments")
    assert deployment.name == "diabetes-classify-blue-dp"
    assert deployment.endpoint_name == "diabetes-classify"
    assert deployment.model == "azureml:diabetes-predict:3"
    assert deployment.environment == "azureml:diabetes-classify:7"
    assert deployment.code_configuration.code == "09-deploy-model"
    assert deployment.code_configuration.scoring_script == "score.py"
    assert deployment.instance_type == "Standard_DS3_v2"
    assert deployment.instance_count == 1
    assert deployment.type == "Managed"
    (endpoint,) = workspace.created_entities("online_endpoints")
    assert endpoint.traffic == {"diabetes-classify-blue-dp": 100}
    writes = workspace.azure_write_calls()
    assert writes == ["online_deployments.begin_create_or_update", "online_endpoints.begin_create_or_update"]
    assert "Traffic:            diabetes-classify-blue-dp=100%" in result.out
    assert (
        "python invoke_online_endpoint.py --endpoint_name diabetes-classify --deployment_name "
        "diabetes-classify-blue-dp --request_file 09-deploy-model/sample-request.json"
    ) in result.out


def test_green_at_ten_percent_moves_blue_to_ninety(workspace, run_script):
    workspace.client.online_endpoints.get.return_value = existing_endpoint("diabetes-classify", {"blue": 100})
    argv = with_flag(with_flag(DEPLOYMENT_SEED, "--deployment_name", "green"), "--traffic_allocation", "10")

    result = run_script(script, [*argv, "--output", "json"])

    assert result.code == 0, result.err
    (endpoint,) = workspace.created_entities("online_endpoints")
    assert endpoint.traffic == {"blue": 90, "green": 10}
    assert json.loads(result.out)["traffic"] == {"blue": 90, "green": 10}


def test_dark_deployment_leaves_traffic_alone(workspace, run_script):
    workspace.client.online_endpoints.get.return_value = existing_endpoint("diabetes-classify", {"blue": 100})
    argv = with_flag(with_flag(DEPLOYMENT_SEED, "--deployment_name", "green"), "--traffic_allocation", "0")

    result = run_script(script, argv)

    assert result.code == 0, result.err
    assert len(workspace.created_entities("online_deployments")) == 1
    assert workspace.created_entities("online_endpoints") == []


def test_impossible_traffic_is_refused_before_anything_is_created(workspace, run_script):
    result = run_script(script, with_flag(DEPLOYMENT_SEED, "--traffic_allocation", "50"))

    assert result.code == 2
    assert result.err.startswith(
        "error: cannot give 'diabetes-classify-blue-dp' 50% of the traffic: the other 50% has no deployment to go to"
    )
    assert workspace.azure_write_calls() == []


def test_failed_deployment_prints_logs_keeps_traffic_and_says_how_to_delete(workspace, run_script):
    workspace.client.online_endpoints.get.return_value = existing_endpoint("diabetes-classify", {"blue": 100})
    error = HttpResponseError("(ResourceOperationFailure) init() raised ValueError")
    workspace.client.online_deployments.begin_create_or_update.side_effect = None
    workspace.client.online_deployments.begin_create_or_update.return_value.done.return_value = True
    workspace.client.online_deployments.begin_create_or_update.return_value.result.side_effect = error
    workspace.client.online_deployments.get_logs.return_value = "line 1\nValueError: model file missing\n"
    argv = with_flag(with_flag(DEPLOYMENT_SEED, "--deployment_name", "green"), "--traffic_allocation", "10")

    result = run_script(script, argv)

    assert result.code == 4
    assert "error: deployment green failed: (ResourceOperationFailure) init() raised ValueError" in result.err
    assert "ValueError: model file missing" in result.err
    assert (
        "python manage_online_endpoint.py delete --endpoint_name diabetes-classify --deployment_name green --yes"
    ) in result.err
    workspace.client.online_deployments.get_logs.assert_called_once_with(
        name="green", endpoint_name="diabetes-classify", lines=50
    )
    assert workspace.created_entities("online_endpoints") == []


def test_failed_provisioning_state_is_a_failure_too(workspace, run_script):
    def failed(entity):
        entity._provisioning_state = "Failed"
        return finished_poller(entity)

    workspace.client.online_deployments.begin_create_or_update.side_effect = failed
    workspace.client.online_deployments.get_logs.side_effect = HttpResponseError("logs unavailable")

    result = run_script(script, DEPLOYMENT_SEED)

    assert result.code == 4
    assert "deployment diabetes-classify-blue-dp failed: provisioning state Failed" in result.err
    assert "could not fetch the deployment logs" in result.err
    assert workspace.created_entities("online_endpoints") == []


def test_missing_endpoint_names_the_command_that_creates_it(workspace, run_script):
    workspace.client.online_endpoints.get.side_effect = ResourceNotFoundError("nope")

    result = run_script(script, DEPLOYMENT_SEED)

    assert result.code == 3
    assert result.err == (
        "error: endpoint 'diabetes-classify' not found; create it first with: "
        "python create_online_endpoint.py --endpoint_name diabetes-classify\n"
    )
    assert workspace.azure_write_calls() == []


def test_missing_model_version_says_how_to_register_it(workspace, run_script):
    workspace.client.models.get.side_effect = ResourceNotFoundError("nope")

    result = run_script(script, DEPLOYMENT_SEED)

    assert result.code == 3
    assert "model 'diabetes-predict' (version 3) not found in the workspace" in result.err
    assert "python train_model.py --register" in result.err
    assert workspace.azure_write_calls() == []


def test_create_environment_registers_environment_yml_on_the_base_image(workspace, run_script):
    workspace.client.environments.create_or_update.return_value = asset("diabetes-classify", "8")

    result = run_script(script, [*DEPLOYMENT_SEED, "--create_environment"])

    assert result.code == 0, result.err
    (environment,) = workspace.client.environments.create_or_update.call_args.args
    assert environment.name == "diabetes-classify"
    assert environment.version is None  # Azure keeps the latest version when nothing changed, else adds one
    assert environment.image == DEFAULT_BASE_IMAGE
    assert "scikit-learn==" in json.dumps(environment.conda_file)
    assert workspace.created_entities("online_deployments")[0].environment == "azureml:diabetes-classify:8"


def test_latest_model_and_pinned_environment_versions(workspace, run_script):
    argv = with_flag(DEPLOYMENT_SEED, "--model_path", "azureml:diabetes-predict@latest")
    argv = with_flag(argv, "--environment", "azureml:diabetes-classify:7")

    result = run_script(script, argv)

    assert result.code == 0, result.err
    workspace.client.models.get.assert_called_once_with("diabetes-predict", label="latest")
    workspace.client.environments.get.assert_called_once_with("diabetes-classify", version="7")
    assert workspace.created_entities("online_deployments")[0].model == "azureml:diabetes-predict:3"


def test_local_model_folder_is_sent_as_a_model_to_upload(workspace, run_script, model_dir):
    result = run_script(script, with_flag(DEPLOYMENT_SEED, "--model_path", str(model_dir)))

    assert result.code == 0, result.err
    workspace.client.models.get.assert_not_called()
    model = workspace.created_entities("online_deployments")[0].model
    assert Path(model.path) == model_dir
    assert model.type == "custom_model"


def test_no_wait_returns_at_once_and_prints_the_traffic_command(workspace, run_script):
    poller = finished_poller(None)
    poller.done.return_value = False
    workspace.client.online_deployments.begin_create_or_update.side_effect = None
    workspace.client.online_deployments.begin_create_or_update.return_value = poller

    result = run_script(script, [*DEPLOYMENT_SEED, "--no_wait"])

    assert result.code == 0, result.err
    poller.result.assert_not_called()
    poller.wait.assert_not_called()
    assert workspace.created_entities("online_endpoints") == []
    assert (
        "python manage_online_endpoint.py traffic --endpoint_name diabetes-classify --set diabetes-classify-blue-dp=100"
    ) in result.out


def test_unknown_instance_type_warns_with_closest_skus_and_continues(workspace, run_script):
    result = run_script(script, with_flag(DEPLOYMENT_SEED, "--instance_type", "Standard_DS3_v3"))

    assert result.code == 0, result.err
    assert "warning: instance type 'Standard_DS3_v3' is not in the documented SKU list" in result.err
    assert "closest known: Standard_DS3_v2" in result.err
    assert workspace.created_entities("online_deployments")[0].instance_type == "Standard_DS3_v3"


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--deployment_name", "blue_dp", "invalid deployment name 'blue_dp'"),
        ("--endpoint_name", "x", "invalid endpoint name 'x'"),
        ("--score_path", "no-such-folder", "--score_path 'no-such-folder' is not a folder"),
        ("--score_script", "missing.py", "--score_script 'missing.py' not found in --score_path '09-deploy-model'"),
        ("--score_script", "../README.md", "must be a path inside --score_path"),
        ("--instance_count", "0", "invalid --instance_count 0: use a whole number of 1 or more"),
        ("--instance_count", "two", "argument --instance_count/--instance-count: invalid int value: 'two'"),
        ("--traffic_allocation", "101", "invalid --traffic_allocation 101: use a whole number from 0 to 100"),
        ("--traffic_allocation", "-1", "invalid --traffic_allocation -1"),
        ("--model_path", "diabetes-predict:3", "invalid --model_path 'diabetes-predict:3': no such file or folder"),
        ("--model_path", "azureml:diabetes-predict", "give a version or @latest"),
        ("--model_path", "azureml:diabetes-predict@prod", "the only label supported is @latest"),
        ("--model_path", "azureml:diabetes predict:3", "invalid model name 'diabetes predict'"),
        ("--environment", "azureml:", "invalid --environment 'azureml:'"),
        ("--environment", "env:1:2", "invalid environment reference 'env:1:2'"),
    ],
)
def test_bad_values_are_refused_before_any_azure_call(azure, run_script, flag, value, message):
    result = run_script(script, with_flag(DEPLOYMENT_SEED, flag, value))

    assert result.code == 2
    assert result.err.startswith("error: ")
    assert message in result.err
    assert result.err.count("\n") == 1
    azure.client_class.assert_not_called()


def test_dry_run_yaml_loads_back_as_the_same_deployment(azure, run_script, monkeypatch):
    for variable in WORKSPACE_ENV:
        monkeypatch.delenv(variable)
    argv = [*with_flag(DEPLOYMENT_SEED, "--traffic_allocation", "10"), "--dry_run"]

    result = run_script(script, argv)

    assert result.code == 0, result.err
    loaded = load_online_deployment(io.StringIO(result.out))
    _, _, request = dispatch.parse(script.__doc__, commands.REGISTRIES["create_online_deployment.py"], argv)
    built = deployment_plan.build_deployment(request, request.model, request.environment)
    assert loaded._to_dict() == built._to_dict()
    assert loaded.environment.endswith("diabetes-classify@latest")
    assert result.out.splitlines()[-1] == (
        "# traffic after success: diabetes-classify-blue-dp=10%; the other deployments share 90% "
        "in proportion to their current shares (not looked up)"
    )
    azure.client_class.assert_not_called()


def test_the_default_base_image_is_a_dated_tag_not_latest():
    image, _, tag = DEFAULT_BASE_IMAGE.rpartition(":")
    assert image == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04"
    assert re.fullmatch(r"20\d{6}\.v\d+", tag), tag
