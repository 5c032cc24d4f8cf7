"""The Azure path at the HTTP boundary: the real azure-ai-ml SDK against a fake Azure ML control plane.

What is asserted is what would reach Azure: REST bodies, ARM ids, the order of writes.
"""

from __future__ import annotations

import json
import threading

import pytest
from azure.core.exceptions import ClientAuthenticationError

import create_online_deployment
import create_online_endpoint
import invoke_online_endpoint
import manage_online_endpoint
from common import operations
from tests.conftest import SCORE_DIR, FakeCredential
from tests.fake_azure import WORKSPACE_ID
from tests.seeds import DEPLOYMENT_SEED, ENDPOINT_SEED, with_flag


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


# ---- Azure failures users hit: one line, a distinct exit code, nothing half-applied -------------------------


def join_pollers() -> None:
    """Azure's pollers run in threads; once the fake's operations finish, they end (bounded)."""
    for thread in threading.enumerate():
        if thread.name.startswith("LROPoller"):
            thread.join(timeout=10)
            assert not thread.is_alive()


def test_no_credential_says_az_login(workspace, run_script, monkeypatch):
    class NoCredential(FakeCredential):
        def get_token(self, *_scopes, **_kwargs):
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

        get_token_info = get_token

    monkeypatch.setattr("azure.identity.DefaultAzureCredential", NoCredential)

    result = run_script(create_online_endpoint, ENDPOINT_SEED)

    assert result.code == 5
    assert result.err.splitlines()[-1] == (
        "error: no Azure credential found: run `az login` (or set AZURE_CLIENT_ID, AZURE_TENANT_ID and "
        "AZURE_CLIENT_SECRET for a service principal)"
    )
    assert workspace.requests == []


def test_401_asks_to_sign_in_again(workspace, run_script):
    workspace.fail("GET", "/onlineEndpoints/diabetes-classify", 401, "InvalidAuthenticationToken", "The token expired.")

    result = run_script(create_online_endpoint, ["--endpoint_name", "diabetes-classify"])

    assert result.code == 5
    assert result.err == (
        "error: Azure rejected the credential (401): InvalidAuthenticationToken: The token expired.; "
        "sign in again with `az login`\n"
    )


def test_403_names_the_role_and_verbose_adds_request_ids(workspace, run_script):
    message = (
        "The client 'me@contoso.com' does not have authorization to perform action "
        "'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/write'."
    )
    workspace.fail("PUT", "/onlineEndpoints/diabetes-classify", 403, "AuthorizationFailed", message)

    result = run_script(create_online_endpoint, ENDPOINT_SEED)

    assert result.code == 5
    lines = result.err.splitlines()
    error_line = next(line for line in lines if line.startswith("error: "))
    assert error_line == (
        f"error: Azure refused access (403): AuthorizationFailed: {message}; your identity needs the AzureML "
        "Data Scientist role (or Contributor) on the workspace"
    )
    assert lines[-1] == (
        "request id: 00000000-aaaa-bbbb-cccc-000000000403; correlation id: 11111111-aaaa-bbbb-cccc-000000000403"
    )


def test_request_ids_only_with_verbose(workspace, run_script):
    workspace.fail("GET", "/onlineEndpoints/diabetes-classify", 403, "AuthorizationFailed", "no")

    result = run_script(create_online_endpoint, ["--endpoint_name", "diabetes-classify"])

    assert result.code == 5
    assert "request id" not in result.err
    assert result.err.count("\n") == 1


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ResourceGroupNotFound", "Resource group 'rg-test' could not be found."),
        (
            "ResourceNotFound",
            "The Resource 'Microsoft.MachineLearningServices/workspaces/ws-test' under resource group 'rg-test' "
            "was not found.",
        ),
    ],
)
def test_missing_workspace_or_resource_group(workspace, run_script, code, message):
    workspace.fail("GET", "/onlineEndpoints/diabetes-classify", 404, code, message)

    result = run_script(create_online_deployment, DEPLOYMENT_SEED)

    assert result.code == 3
    assert result.err == (
        f"error: workspace 'ws-test' or its resource group 'rg-test' not found ({code}: {message}); check "
        "--subscription_id, --resource_group and --workspace_name (or the environment variables or config.json)\n"
    )
    assert workspace.writes() == []


def test_endpoint_name_taken_in_the_region(workspace, run_script):
    message = "An endpoint with this name already exists in region eastus."
    workspace.fail("PUT", "/onlineEndpoints/diabetes-classify", 409, "Conflict", message)

    result = run_script(create_online_endpoint, ["--endpoint_name", "diabetes-classify"])

    assert result.code == 6
    assert result.err.splitlines()[-1] == (
        f"error: endpoint name 'diabetes-classify' cannot be used (Conflict: {message}): endpoint names are unique "
        "per Azure region; choose another --endpoint_name"
    )


def test_quota_names_the_sku_and_a_smaller_one(workspace, run_script):
    workspace.add_endpoint("diabetes-classify", {"blue": 100})
    message = (
        "Not enough quota available for Standard_DS3_v2 in SubscriptionId 00000000-0000-0000-0000-000000000000. "
        "Current usage/limit: 4/4. Additional needed: 4"
    )
    workspace.fail("PUT", "/onlineEndpoints/diabetes-classify/deployments/green", 400, "OutOfQuota", message)
    argv = with_flag(with_flag(DEPLOYMENT_SEED, "--deployment_name", "green"), "--traffic_allocation", "10")

    result = run_script(create_online_deployment, argv)

    assert result.code == 7
    assert result.err.splitlines()[-1] == (
        "error: not enough quota for Standard_DS3_v2: use a smaller --instance_type such as Standard_DS2_v2, or "
        f"request more quota at https://ml.azure.com/quota (OutOfQuota: {message})"
    )
    assert workspace.sent("PUT", "/onlineEndpoints/diabetes-classify") == []


def test_failed_deployment_prints_code_logs_and_delete_command_and_keeps_traffic(workspace, run_script):
    workspace.add_endpoint("diabetes-classify", {"blue": 100})
    workspace.deployment_outcome = "Failed"
    workspace.deployment_error = ("ResourceNotReady", "User container has crashed or terminated.")
    workspace.logs = "Traceback (most recent call last):\nRuntimeError: model.pkl not found under AZUREML_MODEL_DIR\n"
    argv = with_flag(with_flag(DEPLOYMENT_SEED, "--deployment_name", "green"), "--traffic_allocation", "10")

    result = run_script(create_online_deployment, argv)

    assert result.code == 4
    assert "error: deployment green failed: ResourceNotReady: User container has crashed or terminated." in result.err
    assert "RuntimeError: model.pkl not found under AZUREML_MODEL_DIR" in result.err
    assert "Traffic was not changed." in result.err
    assert (
        "python manage_online_endpoint.py delete --endpoint_name diabetes-classify --deployment_name green --yes"
    ) in result.err
    (logs,) = workspace.sent("POST", "/onlineEndpoints/diabetes-classify/deployments/green/getLogs")
    assert logs.body == {"tail": 50}
    assert workspace.sent("PUT", "/onlineEndpoints/diabetes-classify") == []
    assert workspace.endpoints["diabetes-classify"]["properties"]["traffic"] == {"blue": 100}


@pytest.fixture
def slow_deployment(workspace, monkeypatch):
    """A deployment Azure keeps working on; afterwards the fake finishes it so the SDK's poller threads end."""
    monkeypatch.setattr(operations, "POLL_INTERVAL_SECONDS", 0.2)
    workspace.add_endpoint("diabetes-classify")
    workspace.deployment_outcome = "InProgress"
    yield workspace
    workspace.finish_operations()
    join_pollers()


def test_timeout_says_the_deployment_keeps_running(slow_deployment, run_script):
    result = run_script(create_online_deployment, [*DEPLOYMENT_SEED, "--timeout_minutes", "0"])

    assert result.code == 8
    assert result.err.splitlines()[-1] == (
        "error: gave up waiting after 0 min 0 s: deployment diabetes-classify-blue-dp keeps running in Azure; "
        "check it with: python manage_online_endpoint.py show --endpoint_name diabetes-classify"
    )
    assert slow_deployment.sent("PUT", "/onlineEndpoints/diabetes-classify") == []


def test_ctrl_c_says_the_operation_keeps_running(slow_deployment, run_script, monkeypatch):
    def interrupt(_message: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(operations, "progress", interrupt)

    result = run_script(create_online_deployment, DEPLOYMENT_SEED)

    assert result.code == 130
    assert result.err.splitlines()[-1] == (
        "error: interrupted while waiting: deployment diabetes-classify-blue-dp keeps running in Azure; "
        "check it with: python manage_online_endpoint.py show --endpoint_name diabetes-classify"
    )
    assert slow_deployment.sent("PUT", "/onlineEndpoints/diabetes-classify") == []


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


def test_a_missing_model_found_only_at_put_time_is_one_line(workspace, run_script):
    workspace.add_endpoint("diabetes-classify")
    workspace.fail(
        "GET", "/models/diabetes-predict/versions/3", 404, "UserError", "Could not find asset diabetes-predict:3"
    )

    result = run_script(create_online_deployment, DEPLOYMENT_SEED)

    assert result.code == 3
    assert result.err.splitlines()[-1] == (
        "error: model 'diabetes-predict' (version 3) not found in the workspace; register one with: "
        "python train_model.py --register --model_name diabetes-predict"
    )
    assert workspace.writes() == []


FAKE_SECRETS = ("fake-token", "sig=fake", "primary-key-0", "secondary-key-0", "aml-token-0", "ZmFrZS1zdG9yYWdl")


def test_verbose_output_never_carries_a_token_key_or_sas_signature(workspace, capfd, caplog):
    """Everything --verbose prints, on stdout and stderr at the file-descriptor level and in the log records,
    across a run that fetches tokens, uploads code with a SAS URL, lists keys and scores."""
    from common.cli import run_main

    workspace.add_endpoint("diabetes-classify", {"blue": 100})
    caplog.set_level("DEBUG")
    runs = [
        (create_online_deployment, [*DEPLOYMENT_SEED, "--verbose"]),
        (invoke_online_endpoint, ["--endpoint_name", "diabetes-classify", "--verbose"]),
        (manage_online_endpoint, ["show", "--endpoint_name", "diabetes-classify", "--verbose"]),
    ]
    printed = []
    for script, argv in runs:
        assert run_main(script.main, argv) == 0
        captured = capfd.readouterr()
        printed += [captured.out, captured.err]
    keys = run_main(manage_online_endpoint.main, ["keys", "--endpoint_name", "diabetes-classify", "--verbose"])
    captured = capfd.readouterr()
    printed.append(captured.err)  # its stdout is the keys: what the command is for

    assert keys == 0 and "primary-key-0" in captured.out
    everything = "\n".join([*printed, caplog.text])
    assert "Request URL" in everything  # --verbose still shows the HTTP calls
    assert "PUT" in everything and "listKeys" in everything
    leaked = [secret for secret in FAKE_SECRETS if secret in everything]
    assert leaked == [], leaked


def test_redact_masks_each_kind_of_secret():
    from common.cli import redact

    assert redact("Authorization: Bearer eyJ0eXAi.abc-def") == "Authorization: Bearer <redacted>"
    assert redact("'Authorization': 'Bearer abc'") == "'Authorization': 'Bearer <redacted>'"
    assert redact("https://a.blob/c?sv=2021&sig=AbC%2Bd&se=1") == "https://a.blob/c?sv=2021&sig=<redacted>&se=1"
    assert (
        redact('{"primaryKey": "p", "secondaryKey": "s"}')
        == '{"primaryKey": "<redacted>", "secondaryKey": "<redacted>"}'
    )
    assert redact("{'accessToken': 'tok'}") == "{'accessToken': '<redacted>'}"
    assert (
        redact("DefaultEndpointsProtocol=https;AccountKey=abc==;")
        == "DefaultEndpointsProtocol=https;AccountKey=<redacted>;"
    )
    assert redact("nothing secret here: blue=90%") == "nothing secret here: blue=90%"


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


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        (
            "--model_path",
            "azureml:diabetes-predict@latest",
            "error: model 'diabetes-predict' (any version) not found in the workspace; register one with: "
            "python train_model.py --register --model_name diabetes-predict",
        ),
        (
            "--environment",
            "nonexistent-env",
            "error: environment 'nonexistent-env' (any version) not found in the workspace; add "
            "--create_environment to register it from environment.yml",
        ),
    ],
)
def test_a_missing_asset_looked_up_by_latest_is_not_found_with_the_hint(fake_azure, run_script, flag, value, message):
    """The SDK raises ValidationException (RESOURCE_NOT_FOUND) on this path, not ResourceNotFoundError."""
    fake_azure.add_endpoint("diabetes-classify", {"blue": 100})
    fake_azure.add_model("diabetes-predict", "3")
    fake_azure.add_environment("diabetes-classify", "7")
    if flag == "--model_path":
        fake_azure.models.clear()

    result = run_script(create_online_deployment, with_flag(DEPLOYMENT_SEED, flag, value))

    assert result.code == 3, result.err
    assert result.err.splitlines()[-1] == message
    assert [w for w in fake_azure.writes() if "onlineEndpoints" in w] == []


def test_a_score_py_syntax_error_is_caught_before_any_call(workspace, run_script, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text("def init(:\n    pass\n")

    result = run_script(create_online_deployment, with_flag(DEPLOYMENT_SEED, "--score_path", str(code)))

    assert result.code == 2
    assert result.err == (
        f"error: --score_script '{code / 'score.py'}' has a syntax error on line 1: invalid syntax (def init(:); fix "
        "it before deploying\n"
    )
    assert workspace.requests == []


def test_an_sdk_validation_error_is_a_readable_line_not_colour_codes():
    """azure-ai-ml wraps validation errors (a score.py it cannot parse, for one) in a colour-coded template."""
    from azure.ai.ml.exceptions import MlException

    from common.azure_errors import translate

    template = (
        "\n\x1b[37m\n\x1b[30m\n1) YAML file cannot be parsed.\n\x1b[39m\x1b[39m\n\nDetails: \n\n\x1b[31m(x) Failed to "
        "submit deployment b due to syntax errors in scoring script score.py.\nError on line 1: def init(:\n\nIf you "
        "wish to bypass this validation use --skip-script-validation paramater.\x1b[39m\n\nResolutions: \n1) Double-"
        "check your YAML file\n"
    )

    translated = translate(MlException(message=template, no_personal_data_message=template))

    assert translated is not None
    assert translated.message == (
        "MlException: Failed to submit deployment b due to syntax errors in scoring script score.py. Error on line 1: "
        "def init(:"
    )


def test_a_busy_endpoint_is_not_a_taken_name(workspace, run_script):
    workspace.add_endpoint("diabetes-classify", {"blue": 100})
    workspace.add_deployment("diabetes-classify", "green")
    busy = "Cannot update endpoint diabetes-classify because it is in Updating provisioning state."
    workspace.fail("PUT", "/onlineEndpoints/diabetes-classify", 409, "Conflict", busy)

    result = run_script(
        manage_online_endpoint, ["traffic", "--endpoint_name", "diabetes-classify", "--set", "blue=80", "green=20"]
    )

    assert result.code == 6
    assert result.err.splitlines()[-1] == (
        f"error: another operation is in progress on endpoint 'diabetes-classify' (Conflict: {busy}): wait until it "
        "finishes (check it with manage_online_endpoint.py show), then run the command again"
    )


def test_losing_track_of_a_deployment_is_not_a_failed_deployment(workspace, run_script, monkeypatch):
    """The operation-status GET keeps failing with 503 (past the SDK's retries): the deployment may succeed."""
    import time as time_module

    monkeypatch.setattr(time_module, "sleep", lambda _seconds: None)  # the SDK's retry back-off
    workspace.add_endpoint("diabetes-classify")
    operations = "/subscriptions/.*/locations/eastus/mfeOperationsStatus/.*"
    workspace.fail("GET", operations, 503, "ServiceUnavailable", "try later", 50)

    result = run_script(create_online_deployment, DEPLOYMENT_SEED)

    assert result.code == 1, result.err
    last = result.err.splitlines()[-1]
    assert last.startswith("error: lost track of deployment diabetes-classify-blue-dp (")
    assert last.endswith(
        "its state is unknown and it may still succeed; check it with: python manage_online_endpoint.py show "
        "--endpoint_name diabetes-classify; traffic was not changed"
    )
    assert "delete" not in result.err
    assert workspace.sent("PUT", "/onlineEndpoints/diabetes-classify") == []


def test_an_entra_sign_in_refusal_keeps_azures_message(workspace, run_script, monkeypatch):
    mfa = (
        "AADSTS50076: Due to a configuration change made by your administrator, or because you moved to a new "
        "location, you must use multi-factor authentication to access '797f4846-ba00-4fd7-ba43-dac1f8f63013'."
    )

    class RefusedCredential(FakeCredential):
        def get_token(self, *_scopes, **_kwargs):
            raise ClientAuthenticationError(
                f"DefaultAzureCredential failed to retrieve a token.\nAzureCliCredential: {mfa}"
            )

        get_token_info = get_token

    monkeypatch.setattr("azure.identity.DefaultAzureCredential", RefusedCredential)

    result = run_script(create_online_endpoint, ENDPOINT_SEED)

    assert result.code == 5
    assert result.err.splitlines()[-1] == (
        f"error: Azure sign-in failed: {mfa}; sign in again with `az login` (add --tenant or use the method your "
        "organisation requires)"
    )
    assert "no Azure credential found" not in result.err


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


def test_invoke_output_json_is_one_json_object(workspace, run_script):
    workspace.add_endpoint("diabetes-classify", {"blue": 100})

    result = run_script(invoke_online_endpoint, ["--endpoint_name", "diabetes-classify", "--output", "json"])

    assert result.code == 0, result.err
    assert json.loads(result.out) == {"endpoint": "diabetes-classify", "deployment": None, "answer": ["diabetic"]}


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
