"""manage_online_endpoint.py and invoke_online_endpoint.py against a mocked MLClient (the Azure path)."""

from __future__ import annotations

import json

import pytest
from azure.ai.ml.entities import (
    CodeConfiguration,
    EndpointAuthKeys,
    EndpointAuthToken,
    ManagedOnlineDeployment,
)
from azure.core.exceptions import ResourceNotFoundError

import invoke_online_endpoint
import manage_online_endpoint
from tests.conftest import SCORE_DIR, existing_endpoint, finished_poller

ENDPOINT = ["--endpoint_name", "diabetes-classify"]


def deployment(name: str) -> ManagedOnlineDeployment:
    return ManagedOnlineDeployment(
        name=name,
        endpoint_name="diabetes-classify",
        model="azureml:diabetes-predict:3",
        environment="azureml:diabetes-classify:7",
        code_configuration=CodeConfiguration(code="09-deploy-model", scoring_script="score.py"),
        instance_type="Standard_DS3_v2",
        instance_count=2,
        provisioning_state="Succeeded",
    )


@pytest.fixture
def endpoint(azure):
    azure.client.online_endpoints.get.side_effect = None
    azure.client.online_endpoints.get.return_value = existing_endpoint("diabetes-classify", {"blue": 90, "green": 10})
    azure.client.online_deployments.list.return_value = [deployment("blue"), deployment("green")]
    azure.client.online_deployments.begin_delete.return_value = finished_poller(None)
    azure.client.online_endpoints.begin_delete.return_value = finished_poller(None)
    return azure


def test_invoke_posts_to_the_scoring_uri_with_the_key_and_prints_the_answer(endpoint, run_script, mocker):
    from azure.ai.ml.entities import EndpointAuthKeys

    endpoint.client.online_endpoints.get_keys.return_value = EndpointAuthKeys(primary_key="k1", secondary_key="k2")
    endpoint.client.online_deployments.get.side_effect = None  # green exists
    post = mocker.patch("requests.post")
    post.return_value.status_code, post.return_value.text = 200, '["not-diabetic"]'

    result = run_script(invoke_online_endpoint, [*ENDPOINT, "--deployment_name", "green"])

    assert result.code == 0, result.err
    assert result.out == '["not-diabetic"]\n'
    (url,), sent = post.call_args
    assert url == "https://diabetes-classify.eastus.inference.ml.azure.com/score"
    assert sent["headers"] == {
        "Authorization": "Bearer k1",
        "Content-Type": "application/json",
        "azureml-model-deployment": "green",
    }
    assert sent["data"] == (SCORE_DIR / "sample-request.json").read_bytes()
    assert not hasattr(endpoint.client.online_endpoints, "invoke")  # the POST is ours (common/scoring.py)


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot be read: No such file or directory"), ("{not json", "is not JSON")],
)
def test_invoke_checks_the_request_file_first(azure, run_script, tmp_path, content, message):
    path = tmp_path / "request.json"
    if content is not None:
        path.write_text(content)

    result = run_script(invoke_online_endpoint, [*ENDPOINT, "--request_file", str(path)])

    assert result.code == 2
    assert message in result.err
    azure.client_class.assert_not_called()


def test_show_lists_traffic_and_deployments(endpoint, run_script):
    result = run_script(manage_online_endpoint, ["show", *ENDPOINT, "--output", "json"])

    assert result.code == 0, result.err
    shown = json.loads(result.out)
    assert shown["traffic"] == {"blue": 90, "green": 10}
    assert [(d["name"], d["traffic"], d["instance_count"]) for d in shown["deployments"]] == [
        ("blue", 90, 2),
        ("green", 10, 2),
    ]
    endpoint.client.online_deployments.list.assert_called_once_with("diabetes-classify")


def test_show_of_a_missing_endpoint_names_the_create_command(azure, run_script):
    azure.client.online_endpoints.get.side_effect = ResourceNotFoundError("nope")

    result = run_script(manage_online_endpoint, ["show", *ENDPOINT])

    assert result.code == 3
    assert "create it first with: python create_online_endpoint.py --endpoint_name diabetes-classify" in result.err


def test_keys_and_tokens(endpoint, run_script):
    endpoint.client.online_endpoints.get_keys.return_value = EndpointAuthKeys(primary_key="p1", secondary_key="s2")
    keys = run_script(manage_online_endpoint, ["keys", *ENDPOINT])
    assert keys.out.splitlines() == ["Primary key:   p1", "Secondary key: s2"]

    token = EndpointAuthToken(access_token="tok", expiry_time_utc=1893456000.0)
    endpoint.client.online_endpoints.get_keys.return_value = token
    tokens = run_script(manage_online_endpoint, ["keys", *ENDPOINT, "--output", "json"])
    assert json.loads(tokens.out) == {"access_token": "tok", "expiry_time_utc": "2030-01-01T00:00:00+00:00"}


def test_logs(endpoint, run_script):
    endpoint.client.online_deployments.get_logs.return_value = "a\nb\n"

    result = run_script(manage_online_endpoint, ["logs", *ENDPOINT, "--deployment_name", "blue", "--lines", "2"])

    assert result.out == "a\nb\n"
    endpoint.client.online_deployments.get_logs.assert_called_once_with(
        name="blue", endpoint_name="diabetes-classify", lines=2, container_type="inference-server"
    )


def test_traffic_is_set_exactly(endpoint, run_script):
    result = run_script(manage_online_endpoint, ["traffic", *ENDPOINT, "--set", "blue=50", "green=50"])

    assert result.code == 0, result.err
    (sent,) = endpoint.created_entities("online_endpoints")
    assert sent.traffic == {"blue": 50, "green": 50}


@pytest.mark.parametrize(
    ("assignments", "message"),
    [
        (["blue=50", "purple=50"], "endpoint 'diabetes-classify' has no deployment 'purple'; it has: blue, green"),
        (["blue=50", "green=40"], "traffic blue=50%, green=40% sums to 90%: the shares must sum to 100"),
        (["blue=101"], "invalid share for blue 101"),
        (["blue:100"], "invalid traffic 'blue:100': use DEPLOYMENT=PERCENT"),
    ],
)
def test_bad_traffic_is_refused_without_a_write(endpoint, run_script, assignments, message):
    result = run_script(manage_online_endpoint, ["traffic", *ENDPOINT, "--set", *assignments])

    assert result.code == 2
    assert message in result.err
    assert endpoint.azure_write_calls() == []


def test_delete_needs_yes_and_no_traffic(endpoint, run_script):
    unconfirmed = run_script(manage_online_endpoint, ["delete", *ENDPOINT, "--deployment_name", "green"])
    assert unconfirmed.code == 2
    assert "add --yes to confirm deleting deployment 'green' of endpoint 'diabetes-classify'" in unconfirmed.err

    busy = run_script(manage_online_endpoint, ["delete", *ENDPOINT, "--deployment_name", "green", "--yes"])
    assert busy.code == 2
    assert "deployment 'green' takes 10% of the live traffic" in busy.err
    assert endpoint.azure_write_calls() == []


def test_delete_a_deployment_without_traffic_and_the_endpoint(endpoint, run_script):
    endpoint.client.online_endpoints.get.return_value = existing_endpoint("diabetes-classify", {"blue": 100})

    gone = run_script(manage_online_endpoint, ["delete", *ENDPOINT, "--deployment_name", "green", "--yes"])
    assert gone.code == 0, gone.err
    endpoint.client.online_deployments.begin_delete.assert_called_once_with(
        name="green", endpoint_name="diabetes-classify"
    )

    whole = run_script(manage_online_endpoint, ["delete", *ENDPOINT, "--yes"])
    assert whole.code == 0, whole.err
    endpoint.client.online_endpoints.begin_delete.assert_called_once_with(name="diabetes-classify")
    assert "Deleted endpoint diabetes-classify and its deployments" in whole.out


def test_a_missing_deployment_is_one_not_found_line(endpoint, run_script):
    endpoint.client.online_deployments.get_logs.side_effect = ResourceNotFoundError("Deployment purple not found.")

    result = run_script(manage_online_endpoint, ["logs", *ENDPOINT, "--deployment_name", "purple"])

    assert result.code == 3
    assert result.err == "error: not found: Deployment purple not found.\n"


def test_an_empty_deployment_name_is_refused_not_routed_by_traffic(azure, run_script):
    result = run_script(invoke_online_endpoint, [*ENDPOINT, "--deployment_name", ""])

    assert result.code == 2
    assert result.err.startswith("error: invalid deployment name ''")
    azure.client_class.assert_not_called()
