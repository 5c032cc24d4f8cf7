"""How a local deployment is served, from its deployment.json: request settings, probes, workers, and the
health and provisioning state the supervisor reports."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from common.deployment_settings import (
    AZURE_MAX_CONCURRENT_REQUESTS,
    AZURE_PROBE_DEFAULTS,
    AZURE_REQUEST_TIMEOUT_MS,
    WORKER_COUNT,
)
from common.local.state_types import DeploymentSpec

# Azure's defaults for managed online deployments' request_settings (common/deployment_settings.py holds them); the
# probes are the local target's own, see Settings.
DEFAULT_REQUEST_TIMEOUT_MS = AZURE_REQUEST_TIMEOUT_MS
DEFAULT_MAX_CONCURRENT_REQUESTS_PER_INSTANCE = AZURE_MAX_CONCURRENT_REQUESTS
START_POLL_SECONDS = 0.1  # how often a starting server is asked whether it answers, unless a readiness probe says


def server_workers(spec: DeploymentSpec) -> int:
    """The server's worker processes: Azure runs WORKER_COUNT (default 1) in each instance's server; the local
    target runs one server per deployment standing for all its instances."""
    configured = str(spec.environment_variables.get(WORKER_COUNT, "1"))
    per_instance = int(configured) if configured.isdigit() and int(configured) >= 1 else 1
    return per_instance * max(spec.instance_count, 1)


class Health(enum.StrEnum):
    """How a deployment's server is doing, as status.json and show report it."""

    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    UNHEALTHY = "unhealthy"
    STOPPED = "stopped"


class State(enum.StrEnum):
    """Azure's provisioning states of a deployment."""

    CREATING = "Creating"
    UPDATING = "Updating"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    DELETING = "Deleting"


@dataclass(frozen=True)
class Probe:
    """A liveness or readiness probe (GET / on the server), in seconds and counts; `configured`: the deployment set
    it (else the local target's quicker defaults apply)."""

    initial_delay: float
    period: float
    timeout: float
    success_threshold: int
    failure_threshold: int
    configured: bool = False

    @classmethod
    def from_spec(cls, given: dict[str, Any] | None, local_default: Probe) -> Probe:
        """A probe the deployment sets takes Azure's default for each field it leaves out, as on Azure."""
        if not given:
            return local_default
        fields = {name: given.get(name) or default for name, default in AZURE_PROBE_DEFAULTS.items()}
        return cls(
            initial_delay=float(fields["initial_delay"]),
            period=float(fields["period"]),
            timeout=float(fields["timeout"]),
            success_threshold=int(fields["success_threshold"]),
            failure_threshold=int(fields["failure_threshold"]),
            configured=True,
        )


# Azure probes every 10 s and restarts after 30 failures (5 minutes); unless a deployment sets its probes, the local
# target takes a frozen server out of the rotation after one failed probe and restarts it after 3 (about 6 s).
LOCAL_LIVENESS = Probe(initial_delay=0.0, period=1.0, timeout=2.0, success_threshold=1, failure_threshold=3)
LOCAL_READINESS = Probe(initial_delay=0.0, period=1.0, timeout=2.0, success_threshold=1, failure_threshold=1)


@dataclass(frozen=True)
class Settings:
    """How a deployment is served, from its deployment.json.

    request_timeout_ms and max_concurrent_requests_per_instance default to Azure's; the probes to LOCAL_LIVENESS
    and LOCAL_READINESS unless the deployment sets them.
    """

    request_timeout_ms: int = DEFAULT_REQUEST_TIMEOUT_MS
    max_concurrent_requests_per_instance: int = DEFAULT_MAX_CONCURRENT_REQUESTS_PER_INSTANCE
    instance_count: int = 1
    liveness: Probe = LOCAL_LIVENESS
    readiness: Probe = LOCAL_READINESS

    @property
    def request_timeout(self) -> float:
        return self.request_timeout_ms / 1000

    @property
    def admitted_requests(self) -> int:
        """Requests in flight Azure admits before answering 429 (troubleshooting page, status code 429)."""
        return 2 * self.max_concurrent_requests_per_instance * self.instance_count

    @classmethod
    def from_spec(cls, spec: DeploymentSpec) -> Settings:
        request = spec.request_settings
        return cls(
            request_timeout_ms=int(request.get("request_timeout_ms") or DEFAULT_REQUEST_TIMEOUT_MS),
            max_concurrent_requests_per_instance=int(
                request.get("max_concurrent_requests_per_instance") or DEFAULT_MAX_CONCURRENT_REQUESTS_PER_INSTANCE
            ),
            instance_count=max(spec.instance_count, 1),
            liveness=Probe.from_spec(spec.liveness_probe, LOCAL_LIVENESS),
            readiness=Probe.from_spec(spec.readiness_probe, LOCAL_READINESS),
        )
