"""Right-sizing: Azure's rule for a deployment's instances and concurrency, applied to a latency measured here.

Azure's rule (how-to-troubleshoot-online-endpoints, "HTTP status codes", 429 "Too many pending requests"):
    concurrent requests = target requests per second x request time in seconds / target utilization
    instances = ceil(concurrent requests / max_concurrent_requests_per_instance)
and a deployment refuses with 429 what goes beyond 2 x max_concurrent_requests_per_instance x instance_count; the
same page and the SKU list advise at least three instances for high availability. The inference server runs
WORKER_COUNT processes, one request each, so max_concurrent_requests_per_instance is set to match it (with the default
1 and several workers, requests queue and 429 early: azure-docs #107479).

What this machine measures (the deployment's latency at rising concurrency, with as many workers as it has cores) is
scaled to each instance type by the ratio of its vCPUs to this machine's cores: an estimate, said as one. Every
figure the rule takes is kept in the result, so a reader can redo it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

TARGET_UTILIZATION = 0.7  # the rule's example utilization; also where autoscale adds an instance (CPU %)
HA_MINIMUM = 3  # instances: Azure's advice for high availability
HOURS_PER_MONTH = 730  # Azure's pricing calculator's month
SCALE_IN_CPU = 30.0
MIN_REQUEST_TIMEOUT_MS = 5_000  # Azure's default request timeout
MAX_REQUEST_TIMEOUT_MS = 180_000  # Azure's largest
TIMEOUT_HEADROOM = 3  # the suggested request timeout: this many times the measured p95


@dataclass(frozen=True)
class Step:
    """One measured concurrency: what came back and how fast."""

    concurrency: int
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float
    per_second: float


def knee(steps: Sequence[Step], p95_limit_ms: float) -> Step | None:
    """The highest concurrency whose p95 stays within the limit with no error (None: not even the lowest)."""
    within = [step for step in steps if step.errors == 0 and step.requests > 0 and step.p95_ms <= p95_limit_ms]
    return max(within, key=lambda step: step.concurrency) if within else None


@dataclass(frozen=True)
class Price:
    """An instance type's hourly price (Linux, standard tier) and where it comes from."""

    hourly: float
    currency: str
    source: str  # "Azure (estimatedVMPrices)" or the dated table's label

    def monthly(self, instances: int) -> float:
        """`instances` running a whole month (HOURS_PER_MONTH hours)."""
        return self.hourly * instances * HOURS_PER_MONTH


@dataclass(frozen=True)
class Candidate:
    """One instance type's settings for the target, with the rule's inputs."""

    instance_type: str
    vcpus: int
    core_ratio: float  # the instance type's vCPUs over this machine's cores
    per_instance: int  # max_concurrent_requests_per_instance = WORKER_COUNT
    request_seconds: float  # the rule's request time: the measured p50 at the knee
    concurrent: int  # the rule's concurrent requests
    by_rule: int  # ceil(concurrent / per_instance)
    instances: int  # at least HA_MINIMUM
    refused_beyond: int  # in-flight requests past which Azure answers 429
    request_timeout_ms: int
    autoscale_max: int
    cores_needed: int | None  # with Azure's 20% reserve; None when the size is unknown
    quota_free: int | None  # None: not known (offline, or the local target)
    price: Price | None

    @property
    def fits_quota(self) -> bool | None:
        if self.quota_free is None or self.cores_needed is None:
            return None
        return self.cores_needed <= self.quota_free

    @property
    def monthly(self) -> float | None:
        return None if self.price is None else self.price.monthly(self.instances)

    def per_thousand(self, target_rps: float) -> float | None:
        """The cost of 1,000 requests at the target rate (the instances' hour over the hour's requests)."""
        if self.price is None or target_rps <= 0:
            return None
        return self.price.hourly * self.instances / (target_rps * 3600) * 1000


def per_instance_concurrency(knee_concurrency: int, vcpus: int, local_cores: int) -> int:
    """The knee scaled by the instance type's vCPUs over this machine's cores (at least 1)."""
    return max(1, math.floor(knee_concurrency * vcpus / max(1, local_cores)))


def concurrent_requests(target_rps: float, request_seconds: float) -> int:
    return max(1, math.ceil(target_rps * request_seconds / TARGET_UTILIZATION - 1e-9))


def request_timeout_ms(p95_ms: float) -> int:
    """A few times the measured p95, in whole seconds, within Azure's default and its largest."""
    suggested = math.ceil(TIMEOUT_HEADROOM * p95_ms / 1000) * 1000
    return min(MAX_REQUEST_TIMEOUT_MS, max(MIN_REQUEST_TIMEOUT_MS, suggested))


def candidate(
    instance_type: str,
    vcpus: int,
    found: Step,
    target_rps: float,
    local_cores: int,
    *,
    cores_needed: int | None = None,
    quota_free: int | None = None,
    price: Price | None = None,
) -> Candidate:
    """Azure's rule for one instance type, from the measured knee."""
    per_instance = per_instance_concurrency(found.concurrency, vcpus, local_cores)
    request_seconds = found.p50_ms / 1000
    concurrent = concurrent_requests(target_rps, request_seconds)
    by_rule = math.ceil(concurrent / per_instance)
    instances = max(HA_MINIMUM, by_rule)
    return Candidate(
        instance_type=instance_type,
        vcpus=vcpus,
        core_ratio=vcpus / max(1, local_cores),
        per_instance=per_instance,
        request_seconds=request_seconds,
        concurrent=concurrent,
        by_rule=by_rule,
        instances=instances,
        refused_beyond=2 * per_instance * instances,
        request_timeout_ms=request_timeout_ms(found.p95_ms),
        autoscale_max=max(instances + 1, math.ceil(instances * 1.5)),
        cores_needed=cores_needed,
        quota_free=quota_free,
        price=price,
    )


def capacity_rps(found: Step, per_instance: int, instances: int) -> float:
    """The requests per second `instances` instances serve at the target utilization, by the same rule."""
    return per_instance * instances * TARGET_UTILIZATION / max(found.p50_ms / 1000, 1e-9)
