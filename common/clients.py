"""The one factory that picks the client surface the scripts talk to (online_endpoints, online_deployments,
models, environments)."""

from __future__ import annotations

import argparse
from typing import Any

from common.cli import workspace_flags
from common.workspace import create_ml_client, resolve_workspace


def get_client(args: argparse.Namespace) -> Any:
    """The local target with --local, else an MLClient for the workspace the flags, environment or config.json name."""
    if getattr(args, "local", False):
        from common.local.client import LocalMLClient

        return LocalMLClient()
    settings = resolve_workspace(workspace_flags(args))
    return create_ml_client(settings)


def get_monitor_client(client: Any) -> Any:
    """azure-mgmt-monitor's client for the MLClient's subscription (metrics, autoscale), through Azure Resource
    Manager with the same credential type."""
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.monitor import MonitorManagementClient

    return MonitorManagementClient(DefaultAzureCredential(), client.subscription_id)
