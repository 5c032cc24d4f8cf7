"""doctor: why a deployment failed, from its state, its error and both containers' logs (common/doctor/diagnosis.py)."""

from __future__ import annotations

import argparse
from typing import Any

from commands import DeploymentRequest, Result
from commands.shared import add_deployment_flag, deployment_states, endpoint_or_fail, require_deployments
from common import deployment_settings, validation
from common.azure.surface import Client
from common.control.wire import state_name
from common.doctor import diagnosis

LOG_LINES = 300
CONTAINERS = ("inference-server", "storage-initializer")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_deployment_flag(parser, required=True)


def validate(args: argparse.Namespace) -> DeploymentRequest:
    validation.resource_name("deployment", args.deployment_name)
    return DeploymentRequest.of(args, deployment_name=args.deployment_name)


def evidence(client: Client, request: DeploymentRequest, deployment: Any) -> diagnosis.Evidence:
    state = state_name(deployment.provisioning_state) or "unknown"
    properties = deployment.properties or {}
    error = f"provisioning state {state}"
    if properties.get("health_reason"):
        error += f"; {properties['health_reason']}"
    if not request.target.local and state != "Succeeded":
        error += f"; {last_failed_write(client, deployment)}"
    logs = {}
    for container in CONTAINERS:
        try:
            logs[container] = str(
                client.online_deployments.get_logs(
                    name=request.deployment_name,
                    endpoint_name=request.endpoint_name,
                    lines=LOG_LINES,
                    container_type=container,
                )
            )
        except Exception as failure:  # a container may have no log yet: the others still count
            logs[container] = f"(could not read the {container} log: {failure})"
    settings = deployment_settings.in_force(deployment)
    settings["instance_type"] = str(deployment.instance_type)
    return diagnosis.Evidence(error=error, logs=logs, settings=settings)


def last_failed_write(client: Client, deployment: Any) -> str:
    """On Azure, the error of the deployment's last failed write from the activity log (its GET has none)."""
    from common.azure import activity_log

    try:
        found = activity_log.failed_write(client, str(deployment.id))
    except Exception as failure:  # no permission to read it, throttling: the doctor goes on with the logs
        return f"the activity log could not be read ({str(failure).splitlines()[0] if str(failure) else failure!r})"
    return f"last failed write (activity log): {found}" if found else "no failed write in the activity log"


def is_healthy(deployment: Any) -> bool:
    """Succeeded, and (where the target reports it: locally) its server running."""
    health = (deployment.properties or {}).get("health", "running")
    return state_name(deployment.provisioning_state) == "Succeeded" and health == "running"


def instance_memory(client: Client, instance_type: str, local: bool) -> float | None:
    """The instance type's memory, from the region's sizes (Azure; one read, only when out of memory is suspected)."""
    if local:
        return None
    from common.azure import capacity
    from common.azure.skus import canonical

    try:
        sizes, _quotas = capacity.read(client, None)
    except capacity.CapacityUnknown:
        return None
    size = sizes.get(canonical(instance_type))
    return float(size.memory_gb) if size and size.memory_gb else None


def run(client: Client, request: DeploymentRequest) -> Result:
    endpoint_or_fail(client, request)
    require_deployments([request.deployment_name], deployment_states(client, request.endpoint_name), request)
    deployment = client.online_deployments.get(request.deployment_name, request.endpoint_name)
    found = evidence(client, request, deployment)
    findings = diagnosis.diagnose(found)
    if any(f.key == diagnosis.OUT_OF_MEMORY for f in findings):
        found.settings["memory_gb"] = instance_memory(client, found.settings["instance_type"], request.target.local)
        findings = diagnosis.diagnose(found)
    lines = [f"Doctor for {request.deployment_name} on {request.endpoint_name} ({found.error}):"]
    healthy = not findings and is_healthy(deployment)
    if healthy:
        lines.append(
            f"nothing wrong found: {request.deployment_name} succeeded and is running, and none of the doctor's "
            f"{len(diagnosis.CAUSES)} known causes shows in its state or its logs"
        )
    else:
        lines += diagnosis.lines(findings, found)
    data = {
        "endpoint": request.endpoint_name,
        "deployment": request.deployment_name,
        "state": found.error,
        "causes": [{"cause": f.cause, "source": f.source, "evidence": f.evidence, "fix": f.fix} for f in findings],
        "known": bool(findings),
        "healthy": healthy,
    }
    return Result(data, lines)
