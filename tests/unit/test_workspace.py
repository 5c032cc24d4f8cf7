"""Workspace settings: flags, then environment variables, then config.json found like MLClient.from_config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.azure.workspace import WorkspaceSettings, find_config_file, resolve_workspace
from common.errors import UsageError

NO_FLAGS = {"subscription_id": None, "resource_group": None, "workspace_name": None}
ENV = {"AZURE_SUBSCRIPTION_ID": "env-sub", "AZURE_RESOURCE_GROUP": "env-rg", "AZUREML_WORKSPACE_NAME": "env-ws"}


def write_config(folder: Path, **values: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.json"
    path.write_text(json.dumps(values))
    return path


def test_flags_win_over_environment_and_config(tmp_path):
    write_config(tmp_path, subscription_id="cfg-sub", resource_group="cfg-rg", workspace_name="cfg-ws")
    flags = {**NO_FLAGS, "workspace_name": "flag-ws"}

    settings = resolve_workspace(flags, {"AZURE_RESOURCE_GROUP": "env-rg"}, tmp_path)

    assert settings == WorkspaceSettings("cfg-sub", "env-rg", "flag-ws")


def test_environment_alone_is_enough(tmp_path):
    assert resolve_workspace(NO_FLAGS, ENV, tmp_path) == WorkspaceSettings("env-sub", "env-rg", "env-ws")


def test_config_is_found_in_a_parent_and_in_dot_azureml(tmp_path):
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    write_config(tmp_path / ".azureml", subscription_id="s", resource_group="r", workspace_name="w")

    assert find_config_file(nested) == tmp_path / ".azureml" / "config.json"
    assert resolve_workspace(NO_FLAGS, {}, nested) == WorkspaceSettings("s", "r", "w")


def test_dot_azureml_is_searched_before_plain_config(tmp_path):
    write_config(tmp_path, subscription_id="plain", resource_group="r", workspace_name="w")
    write_config(tmp_path / ".azureml", subscription_id="dot", resource_group="r", workspace_name="w")

    assert resolve_workspace(NO_FLAGS, {}, tmp_path).subscription_id == "dot"


def test_missing_settings_list_what_is_missing_and_the_three_ways(tmp_path):
    with pytest.raises(UsageError) as error:
        resolve_workspace({**NO_FLAGS, "subscription_id": "s"}, {}, tmp_path)

    message = str(error.value)
    assert message.startswith("missing workspace settings: resource_group, workspace_name.")
    assert "--subscription_id --resource_group --workspace_name" in message
    assert "AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZUREML_WORKSPACE_NAME" in message
    assert "config.json" in message
    assert error.value.exit_code == 2


def test_unreadable_config_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(UsageError, match=r"cannot read workspace config .*config\.json"):
        resolve_workspace(NO_FLAGS, {}, tmp_path)


def test_a_config_with_a_scope_names_the_workspace_as_from_config_reads_it(tmp_path):
    scope = "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.MachineLearningServices/workspaces/ws-1"
    write_config(tmp_path, Scope=scope)

    assert resolve_workspace(NO_FLAGS, {}, tmp_path) == WorkspaceSettings("sub-1", "rg-1", "ws-1")
    assert resolve_workspace({**NO_FLAGS, "workspace_name": "flag-ws"}, {}, tmp_path).workspace_name == "flag-ws"


def test_a_scope_that_is_not_a_workspace_id_is_named(tmp_path):
    write_config(tmp_path, Scope="not-an-id")

    with pytest.raises(UsageError, match="Scope 'not-an-id' is not a workspace id"):
        resolve_workspace(NO_FLAGS, {}, tmp_path)
