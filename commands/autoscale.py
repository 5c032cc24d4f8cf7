"""autoscale: an Azure Monitor autoscale setting on a deployment (CPU rules, optionally request latency), shown,
deleted, or printed with --dry_run without a call."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from commands import DeploymentRequest, Result
from commands.shared import add_deployment_flag, deployment_states, endpoint_or_fail, require_deployments
from common.azure import autoscale
from common.azure.clients import get_monitor_client
from common.azure.surface import Client, on_azure
from common.azure.workspace import resolve_workspace
from common.cli import add_flag, output, progress
from common.control.lookups import get_or_none
from common.errors import NotFoundError, UsageError

CAPACITY = ("min", "max", "default", "cpu_out", "cpu_in")
DRY_RUN_LOCATION = "<the endpoint's location>"  # read from the endpoint when the setting is applied


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_deployment_flag(parser, required=True)
    for flag, kind, what in (
        ("min", int, "fewest instances"),
        ("max", int, "most instances"),
        ("default", int, "instances when no metric is available"),
        ("cpu_out", float, "add an instance above this average CPU %%"),
        ("cpu_in", float, "remove an instance below this average CPU %%"),
        ("latency_out_ms", float, "also add an instance above this average request latency (the endpoint's)"),
    ):
        add_flag(parser, f"--{flag}", type=kind, help=what)
    add_flag(parser, "--cooldown_minutes", type=int, default=5, help="wait after a scale action (default: %(default)s)")
    add_flag(parser, "--dry_run", action="store_true", help="print the setting's JSON; contact nothing")
    add_flag(parser, "--show", action="store_true", help="show the deployment's autoscale setting")
    add_flag(parser, "--delete", action="store_true", help="delete the deployment's autoscale setting")


@dataclass(frozen=True, kw_only=True)
class AutoscaleRequest(DeploymentRequest):
    action: str  # "apply", "show", "delete" or "dry_run"
    plan: autoscale.Plan | None  # what to apply or print (None: show or delete)

    @property
    def needs_client(self) -> bool:
        return self.action != "dry_run"  # a dry run prints the setting it would write


def validate(args: argparse.Namespace) -> AutoscaleRequest:
    if args.local:
        raise UsageError(
            "autoscale is an Azure Monitor setting on an Azure deployment: the local target runs a fixed number of "
            "workers per deployment (--instance_count of create_online_deployment.py), so it has nothing to scale"
        )
    if sum((args.show, args.delete, args.dry_run)) > 1:
        raise UsageError("use one of --show, --delete and --dry_run")
    if args.show or args.delete:
        action = "show" if args.show else "delete"
        return AutoscaleRequest.of(args, deployment_name=args.deployment_name, action=action, plan=None)
    missing = [f"--{flag}" for flag in CAPACITY if getattr(args, flag) is None]
    if missing:
        raise UsageError(f"autoscale needs {' '.join(missing)} (or --show, or --delete)")
    plan = autoscale.check(
        autoscale.Plan(
            minimum=args.min,
            maximum=args.max,
            default=args.default,
            cpu_out=args.cpu_out,
            cpu_in=args.cpu_in,
            latency_out_ms=args.latency_out_ms,
            cooldown_minutes=args.cooldown_minutes,
        )
    )
    action = "dry_run" if args.dry_run else "apply"
    return AutoscaleRequest.of(args, deployment_name=args.deployment_name, action=action, plan=plan)


def run(client: Client, request: AutoscaleRequest) -> Result | None:
    """Create or update (or show, or delete) the deployment's autoscale setting."""
    if request.action == "dry_run":
        dry_run(request)
        return None
    name = autoscale.setting_name(request.endpoint_name, request.deployment_name)
    endpoint = endpoint_or_fail(client, request)
    deployment = get_or_none(client.online_deployments.get, name=request.deployment_name, endpoint_name=endpoint.name)
    if deployment is None:
        require_deployments([request.deployment_name], deployment_states(client, request.endpoint_name), request)
    monitor = get_monitor_client(client)
    group = on_azure(client).resource_group_name  # validate refused --local
    if request.action in ("show", "delete"):
        found = get_or_none(monitor.autoscale_settings.get, group, name)
        if found is None:
            raise NotFoundError(f"deployment {request.deployment_name!r} has no autoscale setting ({name!r})")
        if request.action == "delete":
            monitor.autoscale_settings.delete(group, name)
            return Result({"deleted": name}, [f"Deleted autoscale setting {name}; the instance count stays as is"])
        return Result(autoscale.as_json(found), autoscale.describe(found))
    assert request.plan is not None, "validate() gives every create or update a plan"
    setting = autoscale.build(
        request.plan, name=name, location=endpoint.location, deployment_id=deployment.id, endpoint_id=endpoint.id
    )
    saved = monitor.autoscale_settings.create_or_update(group, name, setting)
    return Result(autoscale.as_json(saved), autoscale.describe(saved))


def dry_run(request: AutoscaleRequest) -> None:
    """The setting's JSON, with the resource IDs made from the workspace settings (placeholders when none are given,
    as for the location): nothing is contacted."""
    try:
        workspace = resolve_workspace(request.workspace)
        subscription, group, name = workspace.subscription_id, workspace.resource_group, workspace.workspace_name
    except UsageError:
        subscription, group, name = "<subscription_id>", "<resource_group>", "<workspace_name>"
        progress("No workspace given: its subscription, resource group and name are placeholders in the IDs")
    endpoint_id = (
        f"/subscriptions/{subscription}/resourceGroups/{group}/providers/"
        f"Microsoft.MachineLearningServices/workspaces/{name}/onlineEndpoints/{request.endpoint_name}"
    )
    deployment_id = f"{endpoint_id}/deployments/{request.deployment_name}"
    assert request.plan is not None, "validate() gives every create or update a plan"
    setting = autoscale.build(
        request.plan,
        name=autoscale.setting_name(request.endpoint_name, request.deployment_name),
        location=DRY_RUN_LOCATION,
        deployment_id=deployment_id,
        endpoint_id=endpoint_id,
    )
    output(json.dumps(autoscale.as_json(setting), indent=2))
