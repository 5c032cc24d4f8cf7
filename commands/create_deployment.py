"""create_online_deployment.py: create or update a deployment on a managed online endpoint, then set its traffic.

The script is a dispatcher; its docstring is the --help text this module prints.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from commands import deployment_plan, deployment_request
from commands.deployment_request import TOOLKIT_CODE, CreateDeploymentRequest
from commands.shared import SAMPLE_REQUEST
from commands.target import LOCAL, Target
from common import deployment_settings, references
from common.assets import (
    build_environment,
    latest_note,
    register_environment,
    resolve_environment,
    resolve_model,
)
from common.azure import capacity
from common.azure.azure_errors import operation_failure, translate
from common.azure.surface import Client
from common.cli import (
    emit,
    output,
    progress,
)
from common.control.failures import deployment_failed
from common.control.lookups import get_deployment, require_endpoint
from common.control.waiting import wait_with_progress
from common.control.wire import state_name
from common.errors import CliError, ConflictError, InterruptedByUser, TimedOutError
from common.release import history, traffic

# the verb's flags and their checks live with its request
add_arguments = deployment_request.add_arguments
validate = deployment_request.validate


def resolve_assets(
    client: Client, request: CreateDeploymentRequest, existing: Any, size: tuple[str, int]
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
        assert isinstance(request.environment, references.AssetRef), "validate() names the environment to create"
        environment = build_environment(request.environment, request.conda_file, request.base_image)
        progress(
            f"Registering environment {request.environment.name} from {request.conda_file} on {request.base_image}"
        )
        return model, register_environment(client, environment)
    if not isinstance(request.environment, references.AssetRef):  # inline, or none: the deployment carries it
        return model, request.environment
    return model, resolve_environment(client, request.environment)


def run_preflight(
    client: Client, request: CreateDeploymentRequest, model: references.ModelRef, existing: Any, size: tuple[str, int]
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


def current_traffic(client: Client, endpoint_name: str, target: Target) -> tuple[Any, dict[str, int]]:
    endpoint = require_endpoint(client, endpoint_name, target=target)
    return endpoint, {name: int(share) for name, share in (endpoint.traffic or {}).items()}


def apply(client: Client, request: CreateDeploymentRequest) -> dict[str, Any]:
    """Check the endpoint and the traffic plan, deploy, then (only on success) move the traffic."""
    name, endpoint_name = request.deployment_name, request.endpoint_name
    endpoint, before = current_traffic(client, endpoint_name, request.target)
    share = request.traffic_allocation
    planned = before if share is None else traffic.rebalance(before, name, share)  # refuses up front
    mirror_note = traffic.mirror_note(traffic.without_live_mirrors(planned, dict(endpoint.mirror_traffic or {}))[1])
    if share is not None and mirror_note:
        progress(f"Once {name} succeeds: {mirror_note}")
    existing = get_deployment(client, name, endpoint_name)
    deployment_settings.check_update(request.settings, existing)
    size = deployment_plan.planned_size(request, existing)
    if not request.target.local and not request.skip_capacity_check:
        capacity.before_deploying(client, size[0], size[1], existing)  # refused here: nothing written yet
    model, environment = resolve_assets(client, request, existing, size)
    if isinstance(request.model, references.AssetRef) and isinstance(model, references.AssetRef):
        resolved = latest_note(request.model, model, existing)
        if resolved:
            progress(resolved)
    deployment = deployment_plan.build_deployment(request, model, environment, existing, size)
    workers = deployment_settings.worker_count_note(request.settings, existing)
    if workers:
        progress(workers)
    instances = f"{deployment.instance_count} x {deployment.instance_type}"
    if existing is None:
        progress(f"Deploying {name} to endpoint {endpoint_name} ({instances})")
    else:
        changed = ", ".join(deployment_plan.changes(existing, deployment)) or "nothing but the code, if it differs"
        progress(f"Updating deployment {name} on endpoint {endpoint_name} in place (changing {changed}; {instances})")
    with traffic_kept_on_failure(request, planned):
        return deploy_then_move_traffic(client, request, deployment, model, environment, before, planned)


def deploy_then_move_traffic(
    client: Client,
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
        failure = operation_failure(error)
        if failure is None:
            raise
        kind, reason = failure
        if kind == "lost":  # asking after the deployment failed, not the deployment: it may well succeed
            raise CliError(
                f"lost track of deployment {name} ({reason}): its state is unknown and it may still succeed; check "
                f"it with: {check}; traffic was not changed"
            ) from None
        raise deployment_failed(client, name, endpoint_name, reason, delete_command(request)) from None
    state = state_name(getattr(result, "provisioning_state", None))
    if state and state.lower() != "succeeded":
        raise deployment_failed(client, name, endpoint_name, f"provisioning state {state}", delete_command(request))
    if request.traffic_allocation is None:
        after = current_traffic(client, endpoint_name, request.target)[1]
    else:
        after = set_traffic(client, request, request.traffic_allocation)
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
        raise with_traffic_note(InterruptedByUser("interrupted"), request, planned) from None
    except CliError as error:
        raise with_traffic_note(error, request, planned) from None
    except Exception as error:
        translated = translate(error, request.target.show(request.endpoint_name))
        if translated is None:
            raise
        raise with_traffic_note(translated, request, planned) from None


UNFINISHED = (InterruptedByUser, TimedOutError, ConflictError)  # the failures after which a deployment may go ahead


def with_traffic_note(error: CliError, request: CreateDeploymentRequest, planned: dict[str, int]) -> CliError:
    if request.traffic_allocation is None or not isinstance(error, UNFINISHED):
        return error
    note = f"--traffic_allocation {request.traffic_allocation} was not applied (traffic unchanged)"
    if not isinstance(error, ConflictError):  # a conflict's own message says to run the command again
        note += f"; once {request.deployment_name} has succeeded, apply it with: {traffic_command(request, planned)}"
    return error.reworded(f"{error.message}; {note}")


def traffic_command(request: CreateDeploymentRequest, planned: dict[str, int]) -> str:
    """The command that sets the split this create planned."""
    return request.target.command(
        "manage_online_endpoint.py",
        *("traffic", "--endpoint_name", request.endpoint_name, "--set", *traffic_arguments(planned)),
    )


def set_traffic(client: Client, request: CreateDeploymentRequest, share: int) -> dict[str, int]:
    """Re-read the endpoint (minutes have passed) and apply the rebalanced traffic if it changes anything; the split
    before is recorded for manage_online_endpoint.py rollback."""

    def rebalance(before: traffic.Split) -> traffic.Split:
        plan = traffic.rebalance(before.live, request.deployment_name, share)
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
    return traffic.rebalance(before.live, request.deployment_name, share)


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


def run(client: Client, request: CreateDeploymentRequest) -> None:
    if request.dry_run:
        if request.preflight:  # reads the model and environment from Azure, writes nothing there
            model = (
                request.model
                if isinstance(request.model, references.LocalModel)
                else resolve_model(client, request.model, target=request.target)
            )
            existing = get_deployment(client, request.deployment_name, request.endpoint_name)
            run_preflight(client, request, model, existing, deployment_plan.planned_size(request, existing))
        if request.dry_run_checks_capacity:
            existing = get_deployment(client, request.deployment_name, request.endpoint_name)
            capacity.before_deploying(client, *deployment_plan.planned_size(request, existing), existing)
        output(deployment_plan.dry_run(request).rstrip("\n"))
        return
    report(
        apply(client, request),
        request.output,
        request.target,
        request_for(request.score_path, request.model, request.file),
    )
