"""Which Azure ML workspace to talk to, and the MLClient for it.

Each setting comes from, in order: its flag, its environment variable, a config.json found the way
MLClient.from_config finds it (the current folder and its parents, also inside .azureml/ and aml_config/).
azure-ai-ml is imported only when a client is built, so --help and argument errors answer fast.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

from common.azure.surface import AzureClient
from common.errors import UsageError

# (setting, flag, environment variable)
SETTINGS: tuple[tuple[str, str, str], ...] = (
    ("subscription_id", "--subscription_id", "AZURE_SUBSCRIPTION_ID"),
    ("resource_group", "--resource_group", "AZURE_RESOURCE_GROUP"),
    ("workspace_name", "--workspace_name", "AZUREML_WORKSPACE_NAME"),
)
CONFIG_DIRECTORIES = (".azureml", "aml_config", None)
CONFIG_FILES = ("config.json", "project.json")
CONFIG_SEARCH_LEVELS = 20


@dataclass(frozen=True)
class WorkspaceSettings:
    subscription_id: str
    resource_group: str
    workspace_name: str


def find_config_file(start: Path) -> Path | None:
    """The first config file in the order MLClient.from_config searches: each folder kind, each file name, upwards."""
    folders = [start.resolve(), *list(start.resolve().parents)[: CONFIG_SEARCH_LEVELS - 1]]
    for directory, file_name in product(CONFIG_DIRECTORIES, CONFIG_FILES):
        for folder in folders:
            candidate = folder / directory / file_name if directory else folder / file_name
            if candidate.is_file():
                return candidate
    return None


def _read_config(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read workspace config {path}: {error}") from None
    if not isinstance(data, dict):
        raise UsageError(f"workspace config {path} is not a JSON object")
    values = {key: str(value) for key, value in data.items() if isinstance(value, str) and value}
    if "Scope" in values:  # as MLClient.from_config: the workspace's ARM id stands for the three settings
        return _from_scope(values["Scope"], path)
    return values


def _from_scope(scope: str, path: Path) -> dict[str, str]:
    """'/subscriptions/S/resourceGroups/R/providers/Microsoft.MachineLearningServices/workspaces/W' -> settings."""
    pieces = scope.split("/")
    if len(pieces) < 9 or pieces[1].lower() != "subscriptions" or pieces[3].lower() != "resourcegroups":
        raise UsageError(
            f"workspace config {path}: Scope {scope!r} is not a workspace id (/subscriptions/<id>/resourceGroups/"
            "<group>/providers/Microsoft.MachineLearningServices/workspaces/<name>)"
        )
    return {"subscription_id": pieces[2], "resource_group": pieces[4], "workspace_name": pieces[8]}


def resolve_workspace(
    flags: Mapping[str, str | None], environ: Mapping[str, str] | None = None, start: Path | None = None
) -> WorkspaceSettings:
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for setting, _flag, variable in SETTINGS:
        value = flags.get(setting) or environ.get(variable)
        if value:
            values[setting] = value
    if len(values) < len(SETTINGS):
        config_path = find_config_file(start or Path.cwd())
        if config_path is not None:
            config = _read_config(config_path)
            for setting, _flag, _variable in SETTINGS:
                if setting in config:
                    values.setdefault(setting, config[setting])
    missing = [setting for setting, _, _ in SETTINGS if setting not in values]
    if missing:
        flags_text = " ".join(flag for _, flag, _ in SETTINGS)
        variables = ", ".join(variable for _, _, variable in SETTINGS)
        raise UsageError(
            f"missing workspace settings: {', '.join(missing)}. Give them as flags ({flags_text}), "
            f"as environment variables ({variables}), or in a config.json downloaded from the workspace "
            "(searched in this folder and its parents, also in .azureml/)"
        )
    return WorkspaceSettings(**values)


def create_ml_client(settings: WorkspaceSettings, **client_kwargs: Any) -> AzureClient:
    """An MLClient with DefaultAzureCredential.

    Never with logging_enable: that turns on azure-core's network trace, which logs bearer tokens, SAS URLs and
    response bodies (listKeys). --verbose still shows the HTTP calls, through azure-core's HttpLoggingPolicy, which
    redacts headers and query parameters.
    """
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    client: AzureClient = MLClient(
        credential=DefaultAzureCredential(),
        subscription_id=settings.subscription_id,
        resource_group_name=settings.resource_group,
        workspace_name=settings.workspace_name,
        **client_kwargs,
    )
    return client
