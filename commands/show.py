"""show: the endpoint, its traffic and each deployment with its state, share, model, size and settings."""

from __future__ import annotations

import argparse
from typing import Any

from commands import Request, Result
from commands.shared import endpoint_or_fail
from common import deployment_settings
from common.azure.surface import Client
from common.control.endpoint_update import public_network_access
from common.control.lookups import with_answered_modes
from common.control.wire import state_name
from common.monitoring import capture
from common.release import traffic

HEALTH_PROPERTIES = ("health", "health_reason", "restarts", "local_environment")
NAME_COLUMN = 24


def add_arguments(_parser: argparse.ArgumentParser) -> None:
    pass


def validate(args: argparse.Namespace) -> Request:
    return Request.of(args)


def run(client: Client, request: Request) -> Result:
    endpoint = endpoint_or_fail(client, request)
    listed = client.online_deployments.list(request.endpoint_name)
    deployments = [_deployment(with_answered_modes(client, d), endpoint) for d in listed]
    data = {
        "name": endpoint.name,
        "scoring_uri": endpoint.scoring_uri,
        "openapi_uri": endpoint.openapi_uri,
        "auth_mode": endpoint.auth_mode,
        "public_network_access": public_network_access(endpoint) or None,
        "provisioning_state": state_name(endpoint.provisioning_state),
        "traffic": dict(endpoint.traffic or {}),
        "mirror_traffic": dict(endpoint.mirror_traffic or {}),
        "deployments": deployments,
    }
    if request.target.local and endpoint.openapi_uri:  # the local front door's page (Azure serves none)
        from common.local.docs_page import PAGE_PATH

        data["try_it_uri"] = endpoint.openapi_uri.rsplit("/", 1)[0] + PAGE_PATH
    lines = [
        f"Endpoint:           {endpoint.name}",
        f"Scoring URI:        {endpoint.scoring_uri}",
        f"OpenAPI URI:        {endpoint.openapi_uri}",
        *([f"Try it (browser):   {data['try_it_uri']}"] if "try_it_uri" in data else []),
        f"Auth mode:          {endpoint.auth_mode}",
        f"Public network:     {data['public_network_access'] or 'unknown'}",
        f"Provisioning state: {data['provisioning_state']}",
        f"Traffic:            {traffic.describe(data['traffic']) or 'none'}",
        f"Mirror traffic:     {traffic.describe(data['mirror_traffic']) or 'none'}",
        "Deployments:" if deployments else "Deployments:        none",
    ]
    width = max([NAME_COLUMN, *(len(d["name"]) for d in deployments)])  # names run to 32 characters
    for d in deployments:
        lines += _deployment_lines(d, width)
    return Result(data, lines)


def _deployment(d: Any, endpoint: Any) -> dict[str, Any]:
    collection = capture.of_deployment(d)
    collected_to = (d.properties or {}).get("collected_to") or capture.azure_location(endpoint.name, d.name)
    return {
        "name": d.name,
        "provisioning_state": state_name(d.provisioning_state),
        "model": d.model if isinstance(d.model, str) else getattr(d.model, "path", str(d.model)),
        "code": _code(d),
        "instance_type": d.instance_type,
        "instance_count": d.instance_count,
        "traffic": int((endpoint.traffic or {}).get(d.name, 0)),
        "settings": deployment_settings.in_force(d),
        # the local target reports how each deployment's server is doing; Azure reports no such property
        **{key: (d.properties or {})[key] for key in HEALTH_PROPERTIES if key in (d.properties or {})},
        **({"collected_to": collected_to} if collection.enabled else {}),
        # the local target's count of collected records its servers could not write (a full disk)
        **(
            {"dropped_records": int(d.properties["dropped_records"])}
            if "dropped_records" in (d.properties or {})
            else {}
        ),
    }


def _code(d: Any) -> dict[str, str] | None:
    """The code the deployment runs: its scoring script and the folder (locally) or code asset (Azure) holding it."""
    configuration = getattr(d, "code_configuration", None)
    if configuration is None or not getattr(configuration, "scoring_script", None):
        return None
    return {"folder": str(configuration.code), "scoring_script": str(configuration.scoring_script)}


def _deployment_lines(d: dict[str, Any], width: int) -> list[str]:
    health = f" {d['health']:10}" if "health" in d else ""
    lines = [
        f"  {d['name']:{width}} {d['provisioning_state'] or '?':10}{health} {d['traffic']:3}%  {d['model']}  "
        f"{d['instance_count']} x {d['instance_type']}"
    ]
    if d.get("health_reason"):
        lines.append(f"    {d['health_reason'].splitlines()[0]}")
    if d.get("code"):
        lines.append(f"    code: {d['code']['scoring_script']} in {d['code']['folder']}")
    else:  # Azure keeps no code configuration for a no-code (MLflow) deployment
        lines.append("    code: none (a no-code deployment: Azure scores the MLflow (or Triton) model itself)")
    if d.get("local_environment"):
        lines.append(f"    environment: {d['local_environment']}")
    lines.append(f"    settings: {deployment_settings.describe(d['settings'])}")
    if d.get("collected_to"):
        collection = capture.Collection(tuple(d["settings"]["data_collection"]["collections"]))
        dropped = f" ({d['dropped_records']} records could not be written)" if d.get("dropped_records") else ""
        lines.append(f"    data collection: {', '.join(collection.names)} -> {d['collected_to']}{dropped}")
    return lines
