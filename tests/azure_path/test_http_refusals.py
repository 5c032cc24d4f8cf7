"""The Azure path at the HTTP boundary when Azure refuses or fails: what the user sees is one line with a
distinct exit code, and nothing is half-applied.
"""

from __future__ import annotations

import threading

import pytest
from azure.core.exceptions import ClientAuthenticationError

import create_online_deployment
import create_online_endpoint
import invoke_online_endpoint
import manage_online_endpoint
from common.control import waiting
from tests.conftest import FakeCredential
from tests.seeds import DEPLOYMENT_SEED, ENDPOINT_SEED, with_flag, with_seed_assets


@pytest.fixture
def workspace(fake_azure):
    return with_seed_assets(fake_azure)


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
    monkeypatch.setattr(waiting, "POLL_INTERVAL_SECONDS", 0.2)
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
        "check it with: python manage_online_endpoint.py show --endpoint_name diabetes-classify; "
        "--traffic_allocation 100 "
        "was not applied (traffic unchanged); once diabetes-classify-blue-dp has succeeded, apply it with: python "
        "manage_online_endpoint.py traffic --endpoint_name diabetes-classify --set diabetes-classify-blue-dp=100"
    )
    assert slow_deployment.sent("PUT", "/onlineEndpoints/diabetes-classify") == []


def test_ctrl_c_says_the_operation_keeps_running(slow_deployment, run_script, monkeypatch):
    def interrupt(_message: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(waiting, "progress", interrupt)

    result = run_script(create_online_deployment, DEPLOYMENT_SEED)

    assert result.code == 130
    assert result.err.splitlines()[-1] == (
        "error: interrupted while waiting: deployment diabetes-classify-blue-dp keeps running in Azure; "
        "check it with: python manage_online_endpoint.py show --endpoint_name diabetes-classify; "
        "--traffic_allocation 100 "
        "was not applied (traffic unchanged); once diabetes-classify-blue-dp has succeeded, apply it with: python "
        "manage_online_endpoint.py traffic --endpoint_name diabetes-classify --set diabetes-classify-blue-dp=100"
    )
    assert slow_deployment.sent("PUT", "/onlineEndpoints/diabetes-classify") == []


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

    from common.azure.azure_errors import translate

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


def test_a_deployment_busy_with_another_write_says_its_traffic_was_not_applied(workspace, run_script):
    """Azure answers 409 to a write on a deployment whose last one is still in progress: nothing was written, and the
    requested --traffic_allocation was not applied."""
    workspace.add_endpoint("diabetes-classify", {"blue": 100})
    workspace.add_deployment("diabetes-classify", "green")
    busy = "Cannot update deployment green because it is in Updating provisioning state."
    workspace.fail("PUT", "/onlineEndpoints/diabetes-classify/deployments/green", 409, "Conflict", busy)
    argv = with_flag(with_flag(DEPLOYMENT_SEED, "--deployment_name", "green"), "--traffic_allocation", "10")

    result = run_script(create_online_deployment, argv)

    assert result.code == 6, result.err
    assert result.err.splitlines()[-1] == (
        f"error: another operation is in progress on endpoint 'diabetes-classify' (Conflict: {busy}): wait until it "
        "finishes (check it with python manage_online_endpoint.py show --endpoint_name diabetes-classify), then run "
        "the command again; --traffic_allocation 10 was not applied (traffic unchanged)"
    )
    assert workspace.sent("PUT", "/onlineEndpoints/diabetes-classify") == []


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
