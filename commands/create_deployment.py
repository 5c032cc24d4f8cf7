"""create_online_deployment.py: create or update a deployment on a managed online endpoint, then set its traffic.

The script is a dispatcher; its docstring is the --help text this module prints.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commands import DeploymentRequest, client_for, deployment_plan
from commands.target import LOCAL, Target
from common import capacity, deployment_settings, history, references, specs, traffic, validation
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
DEFAULT_SCORING_SCRIPT = "score.py"
TOOLKIT_CODE = str(Path(SAMPLE_REQUEST).parent)  # the toolkit's own score.py, for its own model
CREATE_TYPE, CREATE_COUNT = deployment_plan.CREATE_SIZE


@dataclass(frozen=True, kw_only=True)
class CreateDeploymentRequest(DeploymentRequest):
    """The flags, checked and parsed: references and settings as the library takes them."""

    file: Path | None  # the --file the request was read from
    model: references.ModelRef
    environment: references.EnvironmentRef | None  # None: an MLflow model deployed without code (no-code)
    create_environment: bool
    conda_file: Path
    base_image: str
    score_path: str | None  # None with the environment: Azure's MLflow scoring script
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
    add_name_flag(parser, "--deployment_name", help="3-32 letters, digits or hyphens (or the file's name:)")
    add_name_flag(parser, "--endpoint_name", help="an existing endpoint (or the file's endpoint_name:)")
    add_flag(
        parser,
        "--file",
        type=Path,
        help="an az ml deployment YAML file (managedOnlineDeployment schema); a flag given beside it overrides its "
        "value",
    )
    add_flag(
        parser,
        "--model_path",
        help="azureml:NAME:VERSION, azureml:NAME@latest, or a local model file or folder (uploaded; a folder with an "
        "MLmodel file is an MLflow model)",
    )
    add_flag(
        parser,
        "--environment",
        help="registered environment: NAME (latest), NAME:VERSION, azureml:... (an MLflow model without "
        "--score_path needs none)",
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
    add_flag(parser, "--score_script", help=f"scoring script inside --score_path (default: {DEFAULT_SCORING_SCRIPT})")
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
    """Every check that needs no Azure, and the request they make of the flags and the --file they override."""
    written = None
    if args.file is not None:
        overrides = {"name": args.deployment_name, "endpoint_name": args.endpoint_name}
        written = specs.load_deployment(args.file, {**overrides, "instance_type": args.instance_type})
    deployment_name = validation.resource_name("deployment", _given(args, written, "deployment_name", "name"))
    endpoint_name = validation.resource_name("endpoint", _given(args, written, "endpoint_name", "endpoint_name"))
    model = (
        references.parse_model(args.model_path)
        if args.model_path is not None
        else _given(args, written, "model_path", "model")
    )
    environment = getattr(written, "environment", None)
    if args.environment is not None:
        environment = references.parse_environment(args.environment)
    score_path = args.score_path or getattr(written, "code", None)
    score_script = args.score_script or getattr(written, "scoring_script", None) or DEFAULT_SCORING_SCRIPT
    if score_path is not None:
        validation.scoring_code(score_path, score_script)
    elif not _mlflow(model):
        score_path = code_for(model, args.model_path or str(getattr(model, "path", model)))
    elif environment is not None:
        raise UsageError(
            "an MLflow model deployed with an environment needs its scoring code too (--score_path); leave both out "
            "for Azure's no-code deployment"
        )
    if environment is None and score_path is not None:
        raise UsageError(
            "give --environment (or --file with an environment:): only an MLflow model deployed without code needs none"
        )
    instance_count = args.instance_count
    if instance_count is None:
        instance_count = getattr(written, "instance_count", None)
    if instance_count is not None:
        validation.instance_count(instance_count)
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
    if written is not None:
        settings = deployment_settings.overriding(settings, written.settings)
    if args.create_environment and not isinstance(environment, references.AssetRef):
        raise UsageError("--create_environment registers --environment NAME from --conda_file: give --environment")
    if args.create_environment and not Path(args.conda_file).is_file():
        raise UsageError(f"--conda_file {args.conda_file!r} not found: --create_environment needs a conda file")
    if args.preflight and args.local:
        raise UsageError(
            "--preflight tries an Azure deployment on the local target first; with --local there is no need"
        )
    if args.preflight:
        validation.request_file(Path(args.preflight_request), "--preflight_request")
    instance_type = args.instance_type or getattr(written, "instance_type", None)
    if instance_type is not None:
        sku_warning = instance_type_warning(instance_type)
        if sku_warning:
            warn(sku_warning)
        instance_type = canonical(instance_type)
    request = CreateDeploymentRequest.of(
        args,
        deployment_name=deployment_name,
        file=args.file,
        model=model,
        environment=environment,
        create_environment=args.create_environment,
        conda_file=Path(args.conda_file),
        base_image=args.base_image,
        score_path=score_path,
        score_script=score_script,
        instance_type=instance_type,
        instance_count=instance_count,
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
    return dataclasses.replace(request, endpoint_name=endpoint_name)


FILE_FIELDS = {"deployment_name": "name:", "endpoint_name": "endpoint_name:", "model_path": "model:"}


def _given(args: argparse.Namespace, written: specs.DeploymentFile | None, flag: str, field: str) -> Any:
    """The flag's value, else the file's; one line saying both are missing."""
    value = getattr(args, flag, None)
    if value is None and written is not None:
        value = getattr(written, field)
    if value is None:
        raise UsageError(f"give --{flag}, or --file with {FILE_FIELDS[flag]} (an az ml deployment YAML file)")
    return value


def _mlflow(model: references.ModelRef) -> bool:
    """An MLflow model with no code is deployed as Azure's no-code deployment (its own scoring and environment)."""
    return isinstance(model, references.LocalModel) and model.is_mlflow


def code_for(model: references.ModelRef, given: str) -> str:
    """--score_path left out: the toolkit's own code, for the toolkit's own model only. Its score.py would load any
    other model and answer for the diabetes features, so anything else must name its code."""
    if is_toolkit_model(model):
        return TOOLKIT_CODE
    raise UsageError(
        f"--score_path is needed: --model_path {given!r} is not the toolkit's {MODEL_NAME}, and {TOOLKIT_CODE}'s "
        "score.py serves only that model; give the folder of your scoring code (and --score_script); an MLflow "
        "model folder (with its MLmodel file) needs none"
    )


def resolve_assets(
    client: Any, request: CreateDeploymentRequest, existing: Any, size: tuple[str, int]
) -> tuple[references.ModelRef, references.EnvironmentRef | None]:
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
    if not isinstance(request.environment, references.AssetRef):  # inline, or none: the deployment carries it
        return model, request.environment
    return model, resolve_environment(client, request.environment)


def run_preflight(
    client: Any, request: CreateDeploymentRequest, model: references.ModelRef, existing: Any, size: tuple[str, int]
) -> None:
    """The local try runs with what the Azure deployment will run with: the flags, and for an existing deployment
    the settings and size kept from it."""
    from common import preflight

    environment = request.environment
    if isinstance(environment, references.AssetRef) and not request.create_environment:
        environment = resolve_environment(client, environment)
    planned = deployment_plan.build_deployment(request, model, environment, existing, size)
    conda = preflight.conda_definition(client, environment, request.conda_file if request.create_environment else None)
    trial = preflight.PreflightRequest(deployment_name=request.deployment_name, request_file=request.preflight_request)
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
    environment: references.EnvironmentRef | None,
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
        "environment": references.environment_label(environment),
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


def request_for(score_path: str | None, model: references.ModelRef | None = None, file: Path | None = None) -> str:
    """The request the Next: line suggests: the toolkit's sample for its own code; for yours, a sample-request*.json
    beside the --file, the code or the model, or up to two folders above (where Azure's examples keep it), the one named
    after the file or the model first (ncd/ has sample-request-sklearn.json and -lightgbm.json); else a name to
    replace."""
    if score_path is not None and Path(score_path).resolve() == Path(TOOLKIT_CODE).resolve():
        return SAMPLE_REQUEST
    places = [file.parent] if file is not None else []
    places += [Path(score_path)] if score_path is not None else []
    model_path = model.path if isinstance(model, references.LocalModel) else None
    places += [model_path] if model_path is not None else []
    hints = " ".join(str(path) for path in (file, model_path) if path is not None)
    for place in [*places, *(folder.parent for folder in places), *(folder.parent.parent for folder in places)]:
        found = sorted(place.glob("sample-request*.json")) if place.is_dir() else []
        named = [path for path in found if path.stem.removeprefix("sample-request").strip("-_") in hints]
        if found:
            return str((named or found)[0])
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
    report(
        apply(client, request),
        request.output,
        request.target,
        request_for(request.score_path, request.model, request.file),
    )
    return 0
