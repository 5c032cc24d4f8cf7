"""create_online_endpoint.py against a mocked MLClient: the exact entity sent, and every refusal."""

from __future__ import annotations

import io
import json

import pytest
from azure.ai.ml import load_online_endpoint
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

import commands
import create_online_endpoint as script
from commands import create_endpoint, dispatch
from tests.conftest import WORKSPACE_ENV, existing_endpoint
from tests.seeds import ENDPOINT_SEED


def test_seed_command_sends_the_endpoint_and_reports_it(azure, run_script):
    result = run_script(script, ENDPOINT_SEED)

    assert result.code == 0, result.err
    (endpoint,) = azure.created_entities("online_endpoints")
    assert endpoint.name == "diabetes-classify"
    assert endpoint.description == "Diabetes classification endpoint"
    assert endpoint.auth_mode == "aml_token"
    assert endpoint.public_network_access == "enabled"
    assert endpoint.traffic == {}
    azure.client_class.assert_called_once()
    kwargs = azure.client_class.call_args.kwargs
    assert kwargs["subscription_id"] == WORKSPACE_ENV["AZURE_SUBSCRIPTION_ID"]
    assert kwargs["resource_group_name"] == "rg-test"
    assert kwargs["workspace_name"] == "ws-test"
    assert kwargs["credential"] is azure.credential_class.return_value
    assert "logging_enable" not in kwargs  # the network trace logs tokens and keys, even with --verbose
    assert "Scoring URI:        https://diabetes-classify.eastus.inference.ml.azure.com/score" in result.out
    assert "Auth mode:          aml_token" in result.out
    assert "Provisioning state: Succeeded" in result.out
    assert "python create_online_deployment.py --endpoint_name diabetes-classify" in result.out


def test_rerun_updates_in_place_and_keeps_traffic(azure, run_script):
    azure.client.online_endpoints.get.side_effect = None
    azure.client.online_endpoints.get.return_value = existing_endpoint("diabetes-classify", {"blue": 90, "green": 10})

    result = run_script(script, [*ENDPOINT_SEED, "--public_network", "disabled"])

    assert result.code == 0, result.err
    (endpoint,) = azure.created_entities("online_endpoints")
    assert endpoint.traffic == {"blue": 90, "green": 10}
    assert endpoint.public_network_access == "disabled"
    assert "traffic kept" in result.err


def test_json_output_and_hyphenated_aliases(azure, run_script):
    result = run_script(
        script, ["--endpoint-name", "diabetes-classify", "--auth-mode", "key", "--tags", "team=ml", "--output", "json"]
    )

    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["name"] == "diabetes-classify"
    assert report["auth_mode"] == "key"
    assert report["provisioning_state"] == "Succeeded"
    assert report["scoring_uri"].endswith("/score")
    assert report["next_command"].startswith("python create_online_deployment.py")
    (endpoint,) = azure.created_entities("online_endpoints")
    assert endpoint.tags == {"team": "ml"}


def test_aad_token_is_accepted(azure, run_script):
    result = run_script(script, ["--endpoint_name", "diabetes-classify", "--auth_mode", "aad_token"])

    assert result.code == 0, result.err
    assert azure.created_entities("online_endpoints")[0].auth_mode == "aad_token"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--endpoint_name", "9lives"], "invalid endpoint name '9lives': use 3-32 characters, starting with a letter"),
        (["--endpoint_name", "ab"], "invalid endpoint name 'ab'"),
        (["--endpoint_name", "a" * 33], "invalid endpoint name"),
        (["--endpoint_name", "ends-with-"], "invalid endpoint name 'ends-with-'"),
        (["--endpoint_name", "under_score"], "invalid endpoint name 'under_score'"),
        (["--endpoint_name", "ok-name", "--auth_mode", "password"], "invalid choice: 'password'"),
        (["--endpoint_name", "ok-name", "--public_network", "on"], "invalid choice: 'on'"),
        (["--endpoint_name", "ok-name", "--tags", "novalue"], "invalid tag 'novalue': use KEY=VALUE"),
        ([], "give --endpoint_name, or --file with a name: (an az ml endpoint YAML file)"),
    ],
)
def test_bad_values_are_refused_before_any_azure_call(azure, run_script, argv, message):
    result = run_script(script, argv)

    assert result.code == 2
    assert result.err.startswith("error: ")
    assert message in result.err
    assert result.err.count("\n") == 1
    assert result.out == ""
    azure.client_class.assert_not_called()


def test_missing_workspace_settings_exit_2_with_the_three_ways(azure, run_script, monkeypatch, tmp_path):
    for variable in WORKSPACE_ENV:
        monkeypatch.delenv(variable)
    monkeypatch.chdir(tmp_path)

    result = run_script(script, ["--endpoint_name", "diabetes-classify", "--resource_group", "rg"])

    assert result.code == 2
    assert result.err.startswith("error: missing workspace settings: subscription_id, workspace_name.")
    for way in ("--subscription_id", "AZURE_SUBSCRIPTION_ID", "config.json"):
        assert way in result.err
    assert "Traceback" not in result.err
    azure.client_class.assert_not_called()


def test_dry_run_yaml_loads_back_as_the_same_entity_without_a_workspace(azure, run_script, monkeypatch):
    for variable in WORKSPACE_ENV:
        monkeypatch.delenv(variable)
    argv = [*ENDPOINT_SEED, "--tags", "team=ml", "stage=dev", "--dry_run"]

    result = run_script(script, argv)

    assert result.code == 0, result.err
    assert result.out.startswith("$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint")
    loaded = load_online_endpoint(io.StringIO(result.out))
    _, _, request = dispatch.parse(script.__doc__, commands.REGISTRIES["create_online_endpoint.py"], argv)
    expected = create_endpoint.build_endpoint(request)
    assert loaded._to_dict() == expected._to_dict()
    assert type(loaded).__name__ == "ManagedOnlineEndpoint"
    azure.client_class.assert_not_called()


def test_not_logged_in_is_one_line_pointing_to_az_login(azure, run_script):
    azure.client.online_endpoints.get.side_effect = ClientAuthenticationError("DefaultAzureCredential failed")

    result = run_script(script, ["--endpoint_name", "diabetes-classify"])

    assert result.code == 5
    assert result.err == (
        "error: no Azure credential found: run `az login` (or set AZURE_CLIENT_ID, AZURE_TENANT_ID and "
        "AZURE_CLIENT_SECRET for a service principal)\n"
    )
    azure.client.online_endpoints.begin_create_or_update.assert_not_called()


def test_service_error_is_one_line(azure, run_script):
    error = HttpResponseError("(InternalServerError) boom\nCode: InternalServerError\nMessage: boom")
    error.status_code = 500
    azure.client.online_endpoints.begin_create_or_update.side_effect = error

    result = run_script(script, ["--endpoint_name", "diabetes-classify"])

    assert result.code == 1
    assert result.err.splitlines()[-1].startswith("error: service error (500): (InternalServerError) boom")
    assert "Traceback" not in result.err
