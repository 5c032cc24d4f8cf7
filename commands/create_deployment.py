"""create_online_deployment.py: create or update a deployment on a managed online endpoint, then set its traffic.

The script is a dispatcher; its docstring is the --help text this module prints.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from commands import client_for_args
from commands.target import LOCAL, Target, of
from common import deployment_settings, history, references, traffic, validation
from common.assets import (
    DEFAULT_BASE_IMAGE,
    build_environment,
    register_environment,
    resolve_environment,
    resolve_model,
)
from common.azure_errors import is_azure_error, is_quota_error, is_transient, quota_hint, service_message
from common.cli import (
    add_flag,
    add_output_flags,
    add_target_flags,
    add_timeout_flag,
    configure_logging,
    emit,
    new_parser,
    output,
    progress,
    warn,
)
from common.errors import CliError, UsageError
from common.operations import (
    DEPLOYMENT_SCHEMA_URL,
    deployment_failed,
    dry_run_output,
    get_or_none,
    require_endpoint,
    state_name,
    wait_with_progress,
)
from common.skus import canonical, instance_type_warning, same_instance_type

SAMPLE_REQUEST = "09-deploy-model/sample-request.json"
CREATE_SIZE = ("Standard_DS3_v2", 1)  # a new deployment's size when the flags leave it out


def parse_args(argv: Sequence[str] | None, doc: str | None) -> argparse.Namespace:
    parser = new_parser(doc)
    add_flag(parser, "--deployment_name", required=True, help="3-32 letters, digits or hyphens")
    add_flag(parser, "--endpoint_name", required=True, help="an existing endpoint")
    add_flag(
        parser,
        "--model_path",
        required=True,
        help="azureml:NAME:VERSION, azureml:NAME@latest, or a local model file or folder (uploaded)",
    )
    add_flag(
        parser, "--environment", required=True, help="registered environment: NAME (latest), NAME:VERSION, azureml:..."
    )
    add_flag(
        parser,
        "--create_environment",
        action="store_true",
        help="register (or update) --environment from --conda_file on --base_image before deploying",
    )
    add_flag(parser, "--conda_file", default="environment.yml", help="conda file for --create_environment")
    add_flag(parser, "--base_image", default=DEFAULT_BASE_IMAGE, help="base image for --create_environment")
    add_flag(
        parser, "--score_path", default="09-deploy-model", help="folder uploaded as the code (default: %(default)s)"
    )
    add_flag(parser, "--score_script", default="score.py", help="scoring script inside --score_path")
    add_flag(
        parser,
        "--instance_type",
        help=f"VM SKU (on create: {CREATE_SIZE[0]}; on update: the deployment's own, which Azure does not change)",
    )
    add_flag(
        parser,
        "--instance_count",
        type=int,
        help=f"number of instances, 1-50 (on create: {CREATE_SIZE[1]}; on update: the count Azure reports now)",
    )
    add_flag(
        parser,
        "--traffic_allocation",
        type=int,
        help="percent of live traffic for this deployment once it succeeds, 0-100 (default: traffic unchanged)",
    )
    deployment_settings.add_flags(parser)
    add_flag(parser, "--no_wait", action="store_true", help="return once Azure accepted the deployment")
    add_timeout_flag(parser, default_minutes=90)
    add_flag(parser, "--dry_run", action="store_true", help="print the deployment YAML; contact nothing")
    add_flag(
        parser,
        "--preflight",
        action="store_true",
        help="try the deployment on the local target first; create it in Azure only if it answers",
    )
    add_flag(
        parser,
        "--preflight_request",
        default=SAMPLE_REQUEST,
        help="request the preflight sends (default: %(default)s)",
    )
    add_target_flags(parser)
    add_output_flags(parser)
    args = parser.parse_args(argv)
    validate(args)
    return args


def validate(args: argparse.Namespace) -> None:
    """Every check that needs no Azure; results are stored on args (parsed references)."""
    validation.resource_name("deployment", args.deployment_name)
    validation.resource_name("endpoint", args.endpoint_name)
    validation.scoring_code(args.score_path, args.score_script)
    if args.instance_count is not None:
        validation.instance_count(args.instance_count)
    if args.traffic_allocation is not None:
        validation.percentage("--traffic_allocation", args.traffic_allocation)
    args.settings = deployment_settings.parse(
        request_timeout_ms=args.request_timeout_ms,
        max_concurrent_requests_per_instance=args.max_concurrent_requests_per_instance,
        liveness_probe=args.liveness_probe,
        readiness_probe=args.readiness_probe,
        env=args.env,
        app_insights=args.app_insights,
        egress_public_network=args.egress_public_network,
    )
    args.model = references.parse_model(args.model_path)
    args.environment_ref = references.parse_environment(args.environment)
    if args.create_environment and not Path(args.conda_file).is_file():
        raise UsageError(f"--conda_file {args.conda_file!r} not found: --create_environment needs a conda file")
    if args.preflight and args.local:
        raise UsageError(
            "--preflight tries an Azure deployment on the local target first; with --local there is no need"
        )
    if args.preflight:
        validation.request_file(Path(args.preflight_request), "--preflight_request")
    if args.instance_type is not None:
        sku_warning = instance_type_warning(args.instance_type)
        if sku_warning:
            warn(sku_warning)
        args.instance_type = canonical(args.instance_type)


def model_reference(model: references.ModelRef) -> Any:
    if isinstance(model, references.LocalModel):
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Model

        return Model(path=str(model.path), type=AssetTypes.CUSTOM_MODEL)
    return model.arm_reference


def planned_size(args: argparse.Namespace, existing: Any = None) -> tuple[str, int]:
    """(instance type, instance count): the flags', else the existing deployment's (its count as Azure reports it
    now, autoscale included), else CREATE_SIZE. A different instance type for an existing deployment is refused:
    Azure changes only the instance count of a managed deployment in place (reference-yaml-deployment-managed-online:
    "instance_count can be updated after deployment creation"; a new size is a new deployment)."""
    if existing is None:
        return args.instance_type or CREATE_SIZE[0], args.instance_count or CREATE_SIZE[1]
    current_type = str(existing.instance_type)
    if args.instance_type is not None and not same_instance_type(args.instance_type, current_type):
        raise UsageError(
            f"deployment {existing.name!r} runs on {current_type}; Azure does not change the instance type of an "
            f"existing deployment: create a new deployment (e.g. green) with --instance_type {args.instance_type} "
            "and move the traffic to it"
        )
    count = args.instance_count or int(existing.instance_count or CREATE_SIZE[1])
    return current_type, count


def build_deployment(
    args: argparse.Namespace,
    model: references.ModelRef,
    environment: references.AssetRef,
    existing: Any = None,
    size: tuple[str, int] | None = None,
) -> Any:
    """The deployment asked for; what the command line leaves out is `existing`'s (None: a new one)."""
    from azure.ai.ml.entities import CodeConfiguration, ManagedOnlineDeployment

    instance_type, instance_count = size or planned_size(args, existing)
    deployment = ManagedOnlineDeployment(
        name=args.deployment_name,
        endpoint_name=args.endpoint_name,
        model=model_reference(model),
        environment=environment.arm_reference,
        code_configuration=CodeConfiguration(code=args.score_path, scoring_script=args.score_script),
        instance_type=instance_type,
        instance_count=instance_count,
    )
    deployment_settings.apply(deployment, args.settings, existing)
    return deployment


def changes(existing: Any, deployment: Any) -> list[str]:
    """What an update changes: `name old -> new` for the model, environment, scoring script and count, the names of
    the settings that change. The code is uploaded again each time (Azure keeps a version whose content it has)."""
    found = []
    pairs = {
        "model": (references.asset_key(existing.model), references.asset_key(deployment.model)),
        "environment": (references.asset_key(existing.environment), references.asset_key(deployment.environment)),
        "scoring_script": (
            getattr(existing.code_configuration, "scoring_script", None),
            deployment.code_configuration.scoring_script,
        ),
        "instance_count": (int(existing.instance_count or 1), int(deployment.instance_count)),
    }
    found = [f"{name} {old} -> {new}" for name, (old, new) in pairs.items() if old != new]
    old_settings, new_settings = deployment_settings.in_force(existing), deployment_settings.in_force(deployment)
    return found + [name for name in new_settings if old_settings[name] != new_settings[name]]


def dry_run(args: argparse.Namespace) -> str:
    workers = deployment_settings.worker_count_note(args.settings, None)
    if workers:
        progress(workers)
    deployment = build_deployment(args, args.model, args.environment_ref)
    if args.traffic_allocation is None:
        note = "traffic after success: unchanged (no --traffic_allocation)"
    else:
        rest = 100 - args.traffic_allocation
        note = f"traffic after success: {args.deployment_name}={args.traffic_allocation}%"
        if rest:
            note += f"; the other deployments share {rest}% in proportion to their current shares (not looked up)"
    if args.instance_type is None or args.instance_count is None:
        note += "; the size is a new deployment's (where left out): an existing deployment keeps its own"
    return dry_run_output(deployment, DEPLOYMENT_SCHEMA_URL, args.output, note)


def resolve_assets(
    client: Any, args: argparse.Namespace, existing: Any, size: tuple[str, int]
) -> tuple[references.ModelRef, references.AssetRef]:
    """The model and environment to deploy; with --preflight, tried on the local target before anything is written
    (registering the environment included), with the settings and size the Azure deployment will have."""
    model = (
        args.model
        if isinstance(args.model, references.LocalModel)
        else resolve_model(client, args.model, target=of(args))
    )
    if args.preflight:
        run_preflight(client, args, model, existing, size)
    if args.create_environment:
        environment = build_environment(args.environment_ref, Path(args.conda_file), args.base_image)
        progress(f"Registering environment {args.environment_ref.name} from {args.conda_file} on {args.base_image}")
        return model, register_environment(client, environment)
    return model, resolve_environment(client, args.environment_ref)


def run_preflight(
    client: Any, args: argparse.Namespace, model: references.ModelRef, existing: Any, size: tuple[str, int]
) -> None:
    """The local try runs with what the Azure deployment will run with: the flags, and for an existing deployment
    the settings and size kept from it."""
    from common import preflight

    environment = args.environment_ref if args.create_environment else resolve_environment(client, args.environment_ref)
    planned = build_deployment(args, model, environment, existing, size)
    conda = preflight.conda_definition(client, environment, Path(args.conda_file) if args.create_environment else None)
    request = preflight.PreflightRequest(
        deployment_name=args.deployment_name,
        environment_name=args.environment_ref.name,
        score_path=args.score_path,
        score_script=args.score_script,
        request_file=Path(args.preflight_request),
    )
    preflight.run(client, request, model, conda, planned, LOCAL)


def current_traffic(client: Any, endpoint_name: str, target: Target) -> tuple[Any, dict[str, int]]:
    endpoint = require_endpoint(client, endpoint_name, target=target)
    return endpoint, {name: int(share) for name, share in (endpoint.traffic or {}).items()}


def apply(client: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Check the endpoint and the traffic plan, deploy, then (only on success) move the traffic."""
    name, endpoint_name = args.deployment_name, args.endpoint_name
    endpoint, before = current_traffic(client, endpoint_name, of(args))
    moves = args.traffic_allocation is not None
    planned = traffic.rebalance(before, name, args.traffic_allocation) if moves else before  # refuses up front
    note = traffic.mirror_note(traffic.without_live_mirrors(planned, dict(endpoint.mirror_traffic or {}))[1])
    if moves and note:
        progress(f"Once {name} succeeds: {note}")
    existing = get_or_none(client.online_deployments.get, name=name, endpoint_name=endpoint_name)
    deployment_settings.check_update(args.settings, existing)
    size = planned_size(args, existing)
    model, environment = resolve_assets(client, args, existing, size)
    deployment = build_deployment(args, model, environment, existing, size)
    note = deployment_settings.worker_count_note(args.settings, existing)
    if note:
        progress(note)
    instances = f"{deployment.instance_count} x {deployment.instance_type}"
    if existing is None:
        progress(f"Deploying {name} to endpoint {endpoint_name} ({instances})")
    else:
        changed = ", ".join(changes(existing, deployment)) or "nothing but the code, if it differs"
        progress(f"Updating deployment {name} on endpoint {endpoint_name} in place (changing {changed}; {instances})")
    poller = client.online_deployments.begin_create_or_update(deployment)
    summary = {
        "deployment": name,
        "endpoint": endpoint_name,
        "model": model.arm_reference if isinstance(model, references.AssetRef) else str(model.path),
        "environment": environment.arm_reference,
        "instance_type": deployment.instance_type,
        "instance_count": deployment.instance_count,
        "settings": deployment_settings.in_force(deployment),
    }
    if args.no_wait and not moves:
        return {**summary, "provisioning_state": "Creating", "traffic": before}
    if args.no_wait:
        command = of(args).command(
            "manage_online_endpoint.py",
            *("traffic", "--endpoint_name", endpoint_name, "--set", *traffic_arguments(planned)),
        )
        return {**summary, "provisioning_state": "Creating", "traffic": before, "traffic_command": command}
    check = of(args).show(endpoint_name)
    try:
        result = wait_with_progress(poller, f"deployment {name}", check, timeout=args.timeout_minutes * 60)
    except Exception as error:
        if not is_azure_error(error) or getattr(error, "status_code", None) in (401, 403):
            raise
        if is_transient(error):  # asking after the deployment failed, not the deployment: it may well succeed
            raise CliError(
                f"lost track of deployment {name} ({service_message(error)}): its state is unknown and it may still "
                f"succeed; check it with: {check}; traffic was not changed"
            ) from None
        reason = service_message(error) + (f"; {quota_hint(error)}" if is_quota_error(error) else "")
        raise deployment_failed(client, name, endpoint_name, reason, delete_command(args)) from None
    state = state_name(getattr(result, "provisioning_state", None))
    if state and state.lower() != "succeeded":
        raise deployment_failed(client, name, endpoint_name, f"provisioning state {state}", delete_command(args))
    after = set_traffic(client, args) if moves else current_traffic(client, endpoint_name, of(args))[1]
    return {**summary, "provisioning_state": state or "Succeeded", "traffic": after}


def set_traffic(client: Any, args: argparse.Namespace) -> dict[str, int]:
    """Re-read the endpoint (minutes have passed) and apply the rebalanced traffic if it changes anything; the split
    before is recorded for manage_online_endpoint.py rollback."""

    def rebalance(before: traffic.Split) -> traffic.Split:
        plan = traffic.rebalance(before.live, args.deployment_name, args.traffic_allocation)
        return traffic.Split(plan, traffic.without_live_mirrors(plan, before.mirror)[0])

    before, after = history.change_split(
        client,
        args.endpoint_name,
        rebalance,
        target=of(args),
        change=f"--traffic_allocation {args.deployment_name}={args.traffic_allocation}",
        timeout=args.timeout_minutes * 60,
    )
    cleared = traffic.mirrors_cleared(before, after)
    if cleared:
        progress(traffic.mirror_note(cleared))
    if after != before:
        progress(f"Set traffic: {traffic.describe(after.live)} (was: {traffic.describe(before.live) or 'none'})")
    return traffic.rebalance(before.live, args.deployment_name, args.traffic_allocation)


def traffic_arguments(plan: dict[str, int]) -> list[str]:
    return [f"{name}={share}" for name, share in plan.items()]


def delete_command(args: argparse.Namespace) -> str:
    return of(args).command(
        "manage_online_endpoint.py",
        *("delete", "--endpoint_name", args.endpoint_name, "--deployment_name", args.deployment_name, "--yes"),
    )


def report(result: dict[str, Any], output_format: str, target: Target) -> None:
    invoke = target.command(
        "invoke_online_endpoint.py",
        *("--endpoint_name", result["endpoint"], "--deployment_name", result["deployment"]),
        *("--request_file", SAMPLE_REQUEST),
    )
    result = {**result, "next_command": invoke}
    lines = [
        f"Deployment:         {result['deployment']} on endpoint {result['endpoint']}",
        f"Model:              {result['model']}",
        f"Environment:        {result['environment']}",
        f"Instances:          {result['instance_count']} x {result['instance_type']}",
        f"Settings:           {deployment_settings.describe(result['settings'])}",
        f"Provisioning state: {result['provisioning_state']}",
        f"Traffic:            {traffic.describe(result['traffic']) or 'none'}",
    ]
    if "traffic_command" in result:
        lines += [
            "Traffic is not changed with --no_wait; once the deployment succeeds run:",
            f"  {result['traffic_command']}",
        ]
    lines += ["Next:", f"  {invoke}"]
    emit(result, output_format, lines)


def main(argv: Sequence[str] | None, doc: str | None) -> int:
    args = parse_args(argv, doc)
    configure_logging(args.verbose)
    if args.dry_run:
        if args.preflight:  # reads the model and environment from Azure, writes nothing there
            client = client_for_args(args)
            model = (
                args.model
                if isinstance(args.model, references.LocalModel)
                else resolve_model(client, args.model, target=of(args))
            )
            existing = get_or_none(
                client.online_deployments.get, name=args.deployment_name, endpoint_name=args.endpoint_name
            )
            run_preflight(client, args, model, existing, planned_size(args, existing))
        output(dry_run(args).rstrip("\n"))
        return 0
    client = client_for_args(args)
    report(apply(client, args), args.output, of(args))
    return 0
