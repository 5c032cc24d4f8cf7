"""Scoring on the Azure path at the HTTP boundary: invoke_online_endpoint.py and the SDK's own invoke (what
`az ml online-endpoint invoke` calls) against the fake scoring URI, the credential fetched, refusals read.
"""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import ClientAuthenticationError

import invoke_online_endpoint
import manage_online_endpoint
from tests.conftest import SCORE_DIR, FakeCredential
from tests.seeds import with_seed_assets


@pytest.fixture
def workspace(fake_azure):
    return with_seed_assets(fake_azure)


@pytest.mark.parametrize(("auth_mode", "call"), [("Key", "listKeys"), ("AMLToken", "token")])
def test_invoke_fetches_the_credential_and_posts_to_the_scoring_uri(workspace, run_script, auth_mode, call):
    workspace.add_endpoint("diabetes-classify", {"blue": 100}, auth_mode=auth_mode)

    result = run_script(invoke_online_endpoint, ["--endpoint_name", "diabetes-classify", "--deployment_name", "blue"])

    assert result.code == 0, result.err
    assert result.out == '["diabetic"]\n'
    assert len(workspace.sent("POST", f"/onlineEndpoints/diabetes-classify/{call}")) == 1
    (scored,) = [r for r in workspace.requests if r.url.startswith("https://diabetes-classify.eastus.inference")]
    assert scored.headers["azureml-model-deployment"] == "blue"
    assert scored.body == json.loads((SCORE_DIR / "sample-request.json").read_text())


def test_manage_keys_and_traffic_over_http(workspace, run_script):
    workspace.add_endpoint("diabetes-classify", {"blue": 100})
    workspace.add_deployment("diabetes-classify", "green")

    keys = run_script(manage_online_endpoint, ["keys", "--endpoint_name", "diabetes-classify"])
    moved = run_script(
        manage_online_endpoint, ["traffic", "--endpoint_name", "diabetes-classify", "--set", "blue=80", "green=20"]
    )

    assert keys.out.splitlines() == ["Primary key:   primary-key-0", "Secondary key: secondary-key-0"]
    assert moved.code == 0, moved.err
    (put,) = workspace.sent("PUT", "/onlineEndpoints/diabetes-classify")
    assert put.body["properties"]["traffic"] == {"blue": 80, "green": 20}


def test_a_request_score_py_rejects_is_one_line_with_both_status_codes(workspace, run_script, tmp_path):
    """Azure answers 424 with ms-azureml-model-error-statuscode: 400 and score.py's body: one line with both."""
    workspace.add_endpoint("diabetes-classify", {"blue": 100})
    request = tmp_path / "bad.json"
    request.write_text(json.dumps({"data": [[1, 2]]}))

    result = run_script(
        invoke_online_endpoint, ["--endpoint_name", "diabetes-classify", "--request_file", str(request)]
    )

    assert result.code == 1
    assert result.err == (
        "error: the endpoint answered 424 (the model answered 400): row 0: has 2 values, expected 8 (Pregnancies, "
        "PlasmaGlucose, DiastolicBloodPressure, TricepsThickness, SerumInsulin, BMI, DiabetesPedigree, Age)\n"
    )


def sdk_client():
    from azure.ai.ml import MLClient

    from tests.fake_azure import RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE

    return MLClient(FakeCredential(), SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)


def test_the_sdks_own_invoke_reads_score_pys_refusal(workspace, tmp_path):
    """What `az ml online-endpoint invoke` calls: azure-ai-ml's validate_response reads error.message, so score.py's
    refusal (passed through Azure's 424 as it is) must be in Azure's error shape, or the SDK fails with
    AttributeError and the reason is lost."""
    from azure.core.exceptions import HttpResponseError

    workspace.add_endpoint("diabetes-classify", {"blue": 100})
    request = tmp_path / "bad.json"
    request.write_text(json.dumps({"data": [[1, 2]]}))

    with pytest.raises(HttpResponseError) as refused:
        sdk_client().online_endpoints.invoke("diabetes-classify", request_file=str(request))

    assert refused.value.status_code == 424
    assert "row 0: has 2 values, expected 8 (Pregnancies, PlasmaGlucose" in refused.value.message
    assert refused.value.error.code == "BadRequest"


def test_the_sdks_own_invoke_reads_a_refused_key(workspace, tmp_path, monkeypatch):
    workspace.add_endpoint("diabetes-classify", {"blue": 100})
    monkeypatch.setattr(
        workspace, "_list_keys", lambda *_: (200, {}, json.dumps({"primaryKey": "old", "secondaryKey": "x"}))
    )
    request = tmp_path / "good.json"
    request.write_text((SCORE_DIR / "sample-request.json").read_text())

    with pytest.raises(ClientAuthenticationError) as refused:
        sdk_client().online_endpoints.invoke("diabetes-classify", request_file=str(request))

    assert "invalid key or token" in str(refused.value)


def test_a_401_from_the_scoring_uri_is_not_an_az_login_problem(workspace, run_script, monkeypatch):
    workspace.add_endpoint("diabetes-classify", {"blue": 100})
    monkeypatch.setattr(
        workspace, "_list_keys", lambda *_: (200, {}, json.dumps({"primaryKey": "old", "secondaryKey": "x"}))
    )

    result = run_script(invoke_online_endpoint, ["--endpoint_name", "diabetes-classify"])

    assert result.code == 5
    assert result.err.startswith(
        "error: the endpoint answered 401: invalid key or token; the endpoint refused the key or token"
    )
    assert "az login" not in result.err


def test_invoke_names_a_missing_deployment(workspace, run_script):
    workspace.add_endpoint("diabetes-classify", {"blue": 100})

    result = run_script(invoke_online_endpoint, ["--endpoint_name", "diabetes-classify", "--deployment_name", "purple"])

    assert result.code == 3
    assert result.err == "error: endpoint 'diabetes-classify' has no deployment 'purple'\n"


def test_invoke_output_json_is_one_json_object(workspace, run_script):
    workspace.add_endpoint("diabetes-classify", {"blue": 100})

    result = run_script(invoke_online_endpoint, ["--endpoint_name", "diabetes-classify", "--output", "json"])

    assert result.code == 0, result.err
    assert json.loads(result.out) == {"endpoint": "diabetes-classify", "deployment": None, "answer": ["diabetic"]}
