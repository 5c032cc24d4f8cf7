"""What create_online_deployment.py asks Azure for: the ManagedOnlineDeployment built from the request (what the
flags leave out kept from the existing deployment), its size, what an update changes, and the --dry_run YAML."""

from __future__ import annotations

from typing import Any

from commands.deployment_request import CREATE_SIZE, CreateDeploymentRequest
from common import deployment_settings, references
from common.azure.skus import same_instance_type
from common.cli import progress
from common.control.wire import DEPLOYMENT_SCHEMA_URL, dry_run_output
from common.errors import UsageError


def model_reference(model: references.ModelRef) -> Any:
    """A registered model's reference, or the inline model azure-ai-ml uploads and registers (anonymous, or under
    the name and version a YAML file gives)."""
    if isinstance(model, references.LocalModel):
        from azure.ai.ml.entities import Model

        return Model(path=str(model.path), type=model.type, name=model.name, version=model.version)
    return model.arm_reference


def environment_reference(environment: references.EnvironmentRef | None) -> Any:
    """A registered environment's reference, an inline one as the anonymous Environment azure-ai-ml registers, or
    None (an MLflow model without code: Azure picks the environment)."""
    if isinstance(environment, references.InlineEnvironment):
        from azure.ai.ml.entities import Environment

        return Environment(conda_file=environment.conda, image=environment.image)
    return None if environment is None else environment.arm_reference


def planned_size(request: CreateDeploymentRequest, existing: Any = None) -> tuple[str, int]:
    """(instance type, instance count): the flags', else the existing deployment's (its count as Azure reports it
    now, autoscale included), else CREATE_SIZE. A different instance type for an existing deployment is refused:
    Azure changes only the instance count of a managed deployment in place (reference-yaml-deployment-managed-online:
    "instance_count can be updated after deployment creation"; a new size is a new deployment)."""
    if existing is None:
        return request.instance_type or CREATE_SIZE[0], request.instance_count or CREATE_SIZE[1]
    current_type = str(existing.instance_type)
    if request.instance_type is not None and not same_instance_type(request.instance_type, current_type):
        raise UsageError(
            f"deployment {existing.name!r} runs on {current_type}; Azure does not change the instance type of an "
            f"existing deployment: create a new deployment (e.g. green) with --instance_type {request.instance_type} "
            "and move the traffic to it"
        )
    count = request.instance_count or int(existing.instance_count or CREATE_SIZE[1])
    return current_type, count


def build_deployment(
    request: CreateDeploymentRequest,
    model: references.ModelRef,
    environment: references.EnvironmentRef | None,
    existing: Any = None,
    size: tuple[str, int] | None = None,
) -> Any:
    """The deployment asked for; what the command line leaves out is `existing`'s (None: a new one)."""
    from azure.ai.ml.entities import CodeConfiguration, ManagedOnlineDeployment

    instance_type, instance_count = size or planned_size(request, existing)
    deployment = ManagedOnlineDeployment(
        name=request.deployment_name,
        endpoint_name=request.endpoint_name,
        model=model_reference(model),
        environment=environment_reference(environment),
        code_configuration=(
            None
            if request.score_path is None
            else CodeConfiguration(code=request.score_path, scoring_script=request.score_script)
        ),
        instance_type=instance_type,
        instance_count=instance_count,
    )
    deployment_settings.apply(deployment, request.settings, existing)
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
            getattr(deployment.code_configuration, "scoring_script", None),
        ),
        "instance_count": (int(existing.instance_count or 1), int(deployment.instance_count)),
    }
    found = [f"{name} {old} -> {new}" for name, (old, new) in pairs.items() if old != new]
    old_settings, new_settings = deployment_settings.in_force(existing), deployment_settings.in_force(deployment)
    return found + [name for name in new_settings if old_settings[name] != new_settings[name]]


def dry_run(request: CreateDeploymentRequest) -> str:
    workers = deployment_settings.worker_count_note(request.settings, None)
    if workers:
        progress(workers)
    deployment = build_deployment(request, request.model, request.environment)
    if request.traffic_allocation is None:
        note = "traffic after success: unchanged (no --traffic_allocation)"
    else:
        rest = 100 - request.traffic_allocation
        note = f"traffic after success: {request.deployment_name}={request.traffic_allocation}%"
        if rest:
            note += f"; the other deployments share {rest}% in proportion to their current shares (not looked up)"
    if request.instance_type is None or request.instance_count is None:
        note += "; the size is a new deployment's (where left out): an existing deployment keeps its own"
    return dry_run_output(deployment, DEPLOYMENT_SCHEMA_URL, request.output, note)
