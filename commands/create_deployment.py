"""create_online_deployment.py: create or update a deployment on a managed online endpoint, then set its traffic.

The script is a dispatcher; its docstring is the --help text this module prints.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commands import DeploymentRequest, client_for, deployment_plan
from commands.target import LOCAL, Target
from common import capacity, deployment_settings, history, references, traffic, validation
from common.assets import (
    DEFAULT_BASE_IMAGE,
    MODEL_NAME,
    build_environment,
    is_toolkit_model,
    latest_note,
    register_environment,
    resolve_environment,
    resolve_model,
)
from common.azure_errors import (
    is_azure_error,
    is_quota_error,
    is_transient,
    quota_hint,
    service_message,
    translate,
)
from common.cli import (
    add_flag,
    add_name_flag,
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
from common.errors import EXIT_CONFLICT, EXIT_INTERRUPTED, EXIT_TIMEOUT, CliError, UsageError
from common.operations import (
    deployment_failed,
    get_or_none,
    require_endpoint,
    state_name,
    wait_with_progress,
)
from common.skus import canonical, instance_type_warning

SAMPLE_REQUEST = "09-deploy-model/sample-request.json"
TOOLKIT_CODE = str(Path(SAMPLE_REQUEST).parent)  # the toolkit's own score.py, for its own model
CREATE_TYPE, CREATE_COUNT = deployment_plan.CREATE_SIZE


@dataclass(frozen=True, kw_only=True)
class CreateDeploymentRequest(DeploymentRequest):
    """The flags, checked and parsed: references and settings as the library takes them."""

    model: references.ModelRef
    environment: references.AssetRef
    create_environment: bool
    conda_file: Path
    base_image: str
    score_path: str
    score_script: str
    instance_type: str | None  # None: a new deployment's default, or the existing deployment's own
    instance_count: int | None
    traffic_allocation: int | None  # None: traffic unchanged
    settings: deployment_settings.Requested
    no_wait: bool
    timeout_minutes: int
    dry_run: bool
    preflight: bool
    preflight_request: Path
    verbose: bool
    skip_capacity_check: bool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_name_flag(parser, "--deployment_name", required=True, help="3-32 letters, digits or hyphens")
    add_name_flag(parser, "--endpoint_name", required=True, help="an existing endpoint")
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
        parser,
        "--score_path",
        help=f"folder uploaded as the code (default for the toolkit's own model only: {TOOLKIT_CODE})",
    )
    add_flag(parser, "--score_script", default="score.py", help="scoring script inside --score_path")
    add_flag(
        parser,
        "--instance_type",
        help=f"VM SKU (on create: {CREATE_TYPE}; on update: the deployment's own, which Azure does not change)",
    )
    add_flag(
        parser,
        "--instance_count",
        type=int,
        help=f"number of instances, 1-50 (on create: {CREATE_COUNT}; on update: the count Azure reports now)",
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
    add_flag(
        parser,
        "--dry_run",
        action="store_true",
        help="print the deployment YAML; contact nothing (with workspace flags: also the capacity check's result)",
    )
    add_flag(
        parser,
        "--skip_capacity_check",
        action="store_true",
        help="Azure: do not read the region's VM sizes and the subscription's quota before deploying",
    )
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


def validate(args: argparse.Namespace) -> CreateDeploymentRequest:
    """Every check that needs no Azure, and the request they make of the flags."""
    validation.resource_name("deployment", args.deployment_name)
    validation.resource_name("endpoint", args.endpoint_name)
    model = references.parse_model(args.model_path)
    score_path = args.score_path or code_for(model, args.model_path)
    validation.scoring_code(score_path, args.score_script)
    if args.instance_count is not None:
        validation.instance_count(args.instance_count)
    if args.traffic_allocation is not None:
        validation.percentage("--traffic_allocation", args.traffic_allocation)
    settings = deployment_settings.parse(
        request_timeout_ms=args.request_timeout_ms,
        max_concurrent_requests_per_instance=args.max_concurrent_requests_per_instance,
        liveness_probe=args.liveness_probe,
        readiness_probe=args.readiness_probe,
        env=args.env,
        app_insights=args.app_insights,
        egress_public_network=args.egress_public_network,
        data_collection=args.data_collection,
        sampling_rate=args.sampling_rate,
    )
    environment = references.parse_environment(args.environment)
    if args.create_environment and not Path(args.conda_file).is_file():
        raise UsageError(f"--conda_file {args.conda_file!r} not found: --create_environment needs a conda file")
    if args.preflight and args.local:
        raise UsageError(
            "--preflight tries an Azure deployment on the local target first; with --local there is no need"
        )
    if args.preflight:
        validation.request_file(Path(args.preflight_request), "--preflight_request")
    instance_type = args.instance_type
    if instance_type is not None:
        sku_warning = instance_type_warning(instance_type)
        if sku_warning:
            warn(sku_warning)
        instance_type = canonical(instance_type)
    return CreateDeploymentRequest.of(
        args,
        deployment_name=args.deployment_name,
        model=model,
        environment=environment,
        create_environment=args.create_environment,
        conda_file=Path(args.conda_file),
        base_image=args.base_image,
        score_path=score_path,
        score_script=args.score_script,
        instance_type=instance_type,
        instance_count=args.instance_count,
        traffic_allocation=args.traffic_allocation,
        settings=settings,
        no_wait=args.no_wait,
        timeout_minutes=args.timeout_minutes,
        dry_run=args.dry_run,
        preflight=args.preflight,
        preflight_request=Path(args.preflight_request),
        verbose=args.verbose,
        skip_capacity_check=args.skip_capacity_check,
    )


def code_for(model: references.ModelRef, given: str) -> str:
    """--score_path left out: the toolkit's own code, for the toolkit's own model only. Its score.py would load any
    other model and answer for the diabetes features, so anything else must name its code."""
    if is_toolkit_model(model):
        return TOOLKIT_CODE
    raise UsageError(
        f"--score_path is needed: --model_path {given!r} is not the toolkit's {MODEL_NAME}, and {TOOLKIT_CODE}'s "
        "score.py serves only that model; give the folder of your scoring code (and --score_script)"
    )


def resolve_assets(
    client: Any, request: CreateDeploymentRequest, existing: Any, size: tuple[str, int]
) -> tuple[references.ModelRef, references.AssetRef]:
    """The model and environment to deploy; with --preflight, tried on the local target before anything is written
    (registering the environment included), with the settings and size the Azure deployment will have."""
    model = (
        request.model
        if isinstance(request.model, references.LocalModel)
        else resolve_model(client, request.model, target=request.target)
    )
    if request.preflight:
        run_preflight(client, request, model, existing, size)
    if request.create_environment:
        environment = build_environment(request.environment, request.conda_file, request.base_image)
        progress(
            f"Registering environment {request.environment.name} from {request.conda_file} on {request.base_image}"
        )
        return model, register_environment(client, environment)
    return model, resolve_environment(client, request.environment)


def run_preflight(
    client: Any, request: CreateDeploymentRequest, model: references.ModelRef, existing: Any, size: tuple[str, int]
) -> None:
    """The local try runs with what the Azure deployment will run with: the flags, and for an existing deployment
    the settings and size kept from it."""
    from common import preflight

    environment = (
        request.environment if request.create_environment else resolve_environment(client, request.environment)
    )
    planned = deployment_plan.build_deployment(request, model, environment, existing, size)
    conda = preflight.conda_definition(client, environment, request.conda_file if request.create_environment else None)
    trial = preflight.PreflightRequest(
        deployment_name=request.deployment_name,
        environment_name=request.environment.name,
        score_path=request.score_path,
        score_script=request.score_script,
        request_file=request.preflight_request,
    )
    preflight.run(client, trial, model, conda, planned, LOCAL)


def current_traffic(client: Any, endpoint_name: str, target: Target) -> tuple[Any, dict[str, int]]:
    endpoint = require_endpoint(client, endpoint_name, target=target)
    return endpoint, {name: int(share) for name, share in (endpoint.traffic or {}).items()}


def apply(client: Any, request: CreateDeploymentRequest) -> dict[str, Any]:
    """Check the endpoint and the traffic plan, deploy, then (only on success) move the traffic."""
    name, endpoint_name = request.deployment_name, request.endpoint_name
    endpoint, before = current_traffic(client, endpoint_name, request.target)
    moves = request.traffic_allocation is not None
    planned = traffic.rebalance(before, name, request.traffic_allocation) if moves else before  # refuses up front
    note = traffic.mirror_note(traffic.without_live_mirrors(planned, dict(endpoint.mirror_traffic or {}))[1])
    if moves and note:
        progress(f"Once {name} succeeds: {note}")
    existing = get_or_none(client.online_deployments.get, name=name, endpoint_name=endpoint_name)
    deployment_settings.check_update(request.settings, existing)
    size = deployment_plan.planned_size(request, existing)
    if not request.target.local and not request.skip_capacity_check:
        capacity.before_deploying(client, size[0], size[1], existing)  # refused here: nothing written yet
    model, environment = resolve_assets(client, request, existing, size)
    if isinstance(request.model, references.AssetRef) and isinstance(model, references.AssetRef):
        note = latest_note(request.model, model, existing)
        if note:
            progress(note)
    deployment = deployment_plan.build_deployment(request, model, environment, existing, size)
    note = deployment_settings.worker_count_note(request.settings, existing)
    if note:
        progress(note)
    instances = f"{deployment.instance_count} x {deployment.instance_type}"
    if existing is None:
        progress(f"Deploying {name} to endpoint {endpoint_name} ({instances})")
    else:
        changed = ", ".join(deployment_plan.changes(existing, deployment)) or "nothing but the code, if it differs"
        progress(f"Updating deployment {name} on endpoint {endpoint_name} in place (changing {changed}; {instances})")
    with traffic_kept_on_failure(request, planned):
        return deploy_then_move_traffic(client, request, deployment, model, environment, before, planned)


def deploy_then_move_traffic(
    client: Any,
    request: CreateDeploymentRequest,
    deployment: Any,
    model: references.ModelRef,
    environment: references.AssetRef,
    before: dict[str, int],
    planned: dict[str, int],
) -> dict[str, Any]:
    name, endpoint_name = request.deployment_name, request.endpoint_name
    moves = request.traffic_allocation is not None
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
    if request.no_wait and not moves:
        return {**summary, "provisioning_state": "Creating", "traffic": before}
    if request.no_wait:
        command = traffic_command(request, planned)
        return {**summary, "provisioning_state": "Creating", "traffic": before, "traffic_command": command}
    check = request.target.show(endpoint_name)
    try:
        result = wait_with_progress(poller, f"deployment {name}", check, timeout=request.timeout_minutes * 60)
    except Exception as error:
        if not is_azure_error(error) or getattr(error, "status_code", None) in (401, 403):
            raise
        if is_transient(error):  # asking after the deployment failed, not the deployment: it may well succeed
            raise CliError(
                f"lost track of deployment {name} ({service_message(error)}): its state is unknown and it may still "
                f"succeed; check it with: {check}; traffic was not changed"
            ) from None
        reason = service_message(error) + (f"; {quota_hint(error)}" if is_quota_error(error) else "")
        raise deployment_failed(client, name, endpoint_name, reason, delete_command(request)) from None
    state = state_name(getattr(result, "provisioning_state", None))
    if state and state.lower() != "succeeded":
        raise deployment_failed(client, name, endpoint_name, f"provisioning state {state}", delete_command(request))
    after = set_traffic(client, request) if moves else current_traffic(client, endpoint_name, request.target)[1]
    return {**summary, "provisioning_state": state or "Succeeded", "traffic": after}


@contextlib.contextmanager
def traffic_kept_on_failure(request: CreateDeploymentRequest, planned: dict[str, int]) -> Iterator[None]:
    """A create whose deployment may still go ahead without it (interrupted, given up on, or refused because another
    operation on it is in progress) says that its --traffic_allocation was not applied. A create refused outright
    or a failed deployment changes nothing, and says what failed."""
    try:
        yield
    except KeyboardInterrupt:
        if request.traffic_allocation is None:
            raise
        raise with_traffic_note(CliError("interrupted", exit_code=EXIT_INTERRUPTED), request, planned) from None
    except CliError as error:
        raise with_traffic_note(error, request, planned) from None
    except Exception as error:
        translated = translate(error, request.target.show(request.endpoint_name))
        if translated is None:
            raise
        raise with_traffic_note(translated, request, planned) from None


UNFINISHED = (EXIT_INTERRUPTED, EXIT_TIMEOUT, EXIT_CONFLICT)  # the exits after which a deployment may still go ahead


def with_traffic_note(error: CliError, request: CreateDeploymentRequest, planned: dict[str, int]) -> CliError:
    if request.traffic_allocation is None or error.exit_code not in UNFINISHED:
        return error
    note = f"--traffic_allocation {request.traffic_allocation} was not applied (traffic unchanged)"
    if error.exit_code != EXIT_CONFLICT:  # a conflict's own message says to run the command again
        note += f"; once {request.deployment_name} has succeeded, apply it with: {traffic_command(request, planned)}"
    return CliError(f"{error.message}; {note}", exit_code=error.exit_code, details=error.details)


def traffic_command(request: CreateDeploymentRequest, planned: dict[str, int]) -> str:
    """The command that sets the split this create planned."""
    return request.target.command(
        "manage_online_endpoint.py",
        *("traffic", "--endpoint_name", request.endpoint_name, "--set", *traffic_arguments(planned)),
    )


def set_traffic(client: Any, request: CreateDeploymentRequest) -> dict[str, int]:
    """Re-read the endpoint (minutes have passed) and apply the rebalanced traffic if it changes anything; the split
    before is recorded for manage_online_endpoint.py rollback."""

    def rebalance(before: traffic.Split) -> traffic.Split:
        plan = traffic.rebalance(before.live, request.deployment_name, request.traffic_allocation)
        return traffic.Split(plan, traffic.without_live_mirrors(plan, before.mirror)[0])

    before, after = history.change_split(
        client,
        request.endpoint_name,
        rebalance,
        target=request.target,
        change=f"--traffic_allocation {request.deployment_name}={request.traffic_allocation}",
        timeout=request.timeout_minutes * 60,
    )
    cleared = traffic.mirrors_cleared(before, after)
    if cleared:
        progress(traffic.mirror_note(cleared))
    if after != before:
        progress(f"Set traffic: {traffic.describe(after.live)} (was: {traffic.describe(before.live) or 'none'})")
    return traffic.rebalance(before.live, request.deployment_name, request.traffic_allocation)


def traffic_arguments(plan: dict[str, int]) -> list[str]:
    return [f"{name}={share}" for name, share in plan.items()]


def delete_command(request: CreateDeploymentRequest) -> str:
    return request.target.delete_deployment(request.endpoint_name, request.deployment_name)


def request_for(score_path: str) -> str:
    """The request the Next: line suggests: the toolkit's sample for its own code; for yours, a sample-request*.json
    in its folder or the one above (where Azure's examples keep it); else a name to replace."""
    folder = Path(score_path)
    if folder.resolve() == Path(TOOLKIT_CODE).resolve():
        return SAMPLE_REQUEST
    for place in (folder, folder.parent):
        found = sorted(place.glob("sample-request*.json"))
        if found:
            return str(found[0])
    return "YOUR_REQUEST.json"


def report(result: dict[str, Any], output_format: str, target: Target, request_file: str = SAMPLE_REQUEST) -> None:
    invoke = target.command(
        "invoke_online_endpoint.py",
        *("--endpoint_name", result["endpoint"], "--deployment_name", result["deployment"]),
        *("--request_file", request_file),
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


def parse_args(argv: Sequence[str] | None, doc: str | None) -> CreateDeploymentRequest:
    parser = new_parser(doc)
    add_arguments(parser)
    return validate(parser.parse_args(argv))


def main(argv: Sequence[str] | None, doc: str | None) -> int:
    request = parse_args(argv, doc)
    configure_logging(request.verbose)
    if request.dry_run:
        if request.preflight:  # reads the model and environment from Azure, writes nothing there
            client = client_for(request)
            model = (
                request.model
                if isinstance(request.model, references.LocalModel)
                else resolve_model(client, request.model, target=request.target)
            )
            existing = get_or_none(
                client.online_deployments.get, name=request.deployment_name, endpoint_name=request.endpoint_name
            )
            run_preflight(client, request, model, existing, deployment_plan.planned_size(request, existing))
        if any(request.workspace.values()) and not request.target.local and not request.skip_capacity_check:
            client = client_for(request)
            existing = get_or_none(
                client.online_deployments.get, name=request.deployment_name, endpoint_name=request.endpoint_name
            )
            capacity.before_deploying(client, *deployment_plan.planned_size(request, existing), existing)
        output(deployment_plan.dry_run(request).rstrip("\n"))
        return 0
    client = client_for(request)
    report(apply(client, request), request.output, request.target, request_for(request.score_path))
    return 0
