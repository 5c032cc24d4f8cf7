"""The one factory that picks the client surface the scripts talk to (online_endpoints, online_deployments,
models, environments)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.azure.surface import Client, on_azure
from common.azure.workspace import create_ml_client, resolve_workspace
from common.errors import UsageError
from common.target import Target


def get_client(target: Target, workspace: Mapping[str, str | None], endpoint_name: str | None = None) -> Client:
    """The local target's client for a local `target`, else an MLClient for the workspace the flags (`workspace`),
    environment or config.json name; `endpoint_name`, the endpoint the command is about, for a forgotten --local."""
    if target.local:
        from common.local.client import LocalMLClient

        return LocalMLClient(target=target)
    try:
        settings = resolve_workspace(workspace)
    except UsageError as missing:
        raise UsageError(missing.message + _local_endpoint_hint(endpoint_name)) from None
    return create_ml_client(settings)


def _local_endpoint_hint(endpoint: str | None) -> str:
    """A forgotten --local: the endpoint the command names exists on the local target."""
    from common.local.state import LocalStore, default_home

    if endpoint and LocalStore(default_home()).endpoint_file(endpoint).is_file():
        return f". Endpoint {endpoint!r} exists on the local target: add --local to use it"
    return ""


def get_monitor_client(client: Client) -> Any:
    """azure-mgmt-monitor's client for the MLClient's subscription (metrics, autoscale), through Azure Resource
    Manager with the same credential type."""
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.monitor import MonitorManagementClient

    return MonitorManagementClient(DefaultAzureCredential(), on_azure(client).subscription_id)
