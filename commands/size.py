"""size: measure a deployment's latency at rising concurrency on this machine (a local deployment directly; an Azure
one downloaded and tried here as --preflight tries one), then apply Azure's sizing rule per instance type:
instances, max_concurrent_requests_per_instance and WORKER_COUNT, request timeout, autoscale, cores against the
quota left, and cost (the region's prices on Azure)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commands import DeploymentRequest, Result
from commands.shared import add_deployment_flag, add_request_file_flag, endpoint_or_fail
from commands.target import AZURE, MANAGE
from common import references, scoring, validation
from common.azure import capacity, prices, sizing, skus
from common.azure.azure_errors import QUOTA_PAGE
from common.azure.sizing import Candidate, Step
from common.azure.skus import canonical
from common.azure.surface import Client
from common.cli import add_flag, progress, warn
from common.control.lookups import get_or_none
from common.errors import CliError, InterruptedByUser, NotFoundError, UsageError

DEFAULT_TYPES = ("Standard_DS2_v2", "Standard_DS3_v2", "Standard_DS4_v2", "Standard_F4s_v2")
MAX_STEP_REQUESTS = 5_000  # per step, whatever its seconds
MAX_CONCURRENCY = 64
HEADER = (
    f"{'instance type':18} vCPUs  ratio  per inst.  instances  429 beyond  timeout ms  cores  per month  per 1k req"
    "  quota"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_deployment_flag(parser, required=True)
    add_flag(parser, "--target_rps", type=float, required=True, help="requests per second the deployment must serve")
    add_flag(parser, "--p95_ms", type=float, default=500.0, help="highest p95 latency allowed (default: %(default)s)")
    add_request_file_flag(parser)
    add_flag(
        parser,
        "--instance_type",
        nargs="+",
        default=list(DEFAULT_TYPES),
        help=f"instance types to size for (default: {' '.join(DEFAULT_TYPES)})",
    )
    add_flag(parser, "--plot", metavar="FILE", help="draw latency against concurrency with the chosen point (.png)")
    add_flag(parser, "--seconds", type=float, default=3.0, help="per concurrency step, 1-60 (default: %(default)s)")
    add_flag(parser, "--max_concurrency", type=int, help="highest concurrency tried (default: 2 x the cores here)")


@dataclass(frozen=True, kw_only=True)
class SizeRequest(DeploymentRequest):
    target_rps: float
    p95_ms: float
    request_file: Path
    instance_types: tuple[tuple[str, int], ...]  # (name as Azure spells it, vCPUs)
    seconds: float
    max_concurrency: int
    plot: Path | None


def validate(args: argparse.Namespace) -> SizeRequest:
    if not args.target_rps > 0:
        raise UsageError(f"invalid --target_rps {args.target_rps:g}: use a rate above 0")
    if not args.p95_ms > 0:
        raise UsageError(f"invalid --p95_ms {args.p95_ms:g}: use a number of milliseconds above 0")
    if not 1 <= args.seconds <= 60:
        raise UsageError(f"invalid --seconds {args.seconds:g}: use 1 to 60")
    cores = os.cpu_count() or 1
    highest = args.max_concurrency if args.max_concurrency is not None else 2 * cores
    if not 1 <= highest <= MAX_CONCURRENCY:
        raise UsageError(f"invalid --max_concurrency {highest}: use 1 to {MAX_CONCURRENCY}")
    validation.request_file(Path(args.request_file))
    plot = validation.png_file(args.plot) if args.plot else None
    return SizeRequest.of(
        args,
        deployment_name=args.deployment_name,
        target_rps=args.target_rps,
        p95_ms=args.p95_ms,
        request_file=Path(args.request_file),
        instance_types=tuple(_documented(name) for name in args.instance_type),
        seconds=args.seconds,
        max_concurrency=highest,
        plot=plot,
    )


def _documented(name: str) -> tuple[str, int]:
    sku = skus.documented(name)
    if sku is not None:
        return sku.name, sku.cores
    raise UsageError(
        f"unknown --instance_type {name!r}: not in the SKU list of managed online endpoints; closest: "
        f"{', '.join(skus.closest(name))}"
    )


@dataclass(frozen=True)
class Measured:
    """What the measurement found, and how the deployment measured was set up here."""

    steps: list[Step]
    found: Step
    workers: int  # the deployment's WORKER_COUNT
    cores_used: int  # of this machine's: as many as its workers
    admitted: int  # requests in flight before it answers 429

    def describe(self) -> dict[str, int]:
        return {"workers": self.workers, "cores_used": self.cores_used, "admitted": self.admitted}


Region = tuple[dict[str, capacity.Size], capacity.Quotas]  # the workspace region's VM sizes and the quotas


def run(client: Client, request: SizeRequest) -> Result:
    endpoint = endpoint_or_fail(client, request)
    name = request.deployment_name
    deployment = get_or_none(client.online_deployments.get, name=name, endpoint_name=request.endpoint_name)
    if deployment is None:
        raise NotFoundError(f"endpoint {request.endpoint_name!r} has no deployment {name!r}")
    region = None
    if request.target.local:
        measured = measure(client, request, request.endpoint_name, deployment, endpoint.scoring_uri)
    else:
        region = _region(client, request)  # an instance type the region does not offer is refused before measuring
        measured = _measured_here(client, request, deployment)
    candidates = [
        _candidate(type_name, vcpus, measured, request, region) for type_name, vcpus in request.instance_types
    ]
    if region is not None:
        _refuse_beyond_quota(request, measured, candidates, region)
    result = report(client, request, deployment, measured, candidates)
    if request.plot is not None:
        from common.release.load_plot import plot

        title = f"{request.endpoint_name}/{name}: latency here, knee at {measured.found.concurrency}"
        plot(measured.steps, measured.found, request.p95_ms, request.plot, title)
        result.data["plot"] = str(request.plot)
        result.lines.append(f"Plot: {request.plot}")
    return result


def _region(client: Client, request: SizeRequest) -> Region | None:
    """The region's sizes (vCPUs, prices) and the quotas, read once; None (said) when Azure does not answer."""
    try:
        sizes, quotas = capacity.read(client, None)
    except capacity.CapacityUnknown as reason:
        warn(
            f"the region's VM sizes and quotas could not be read ({reason}): prices from the dated table, quota "
            "not checked"
        )
        return None
    for type_name, _ in request.instance_types:
        capacity.plan(sizes, quotas, type_name, 1)  # UsageError: not offered there, with the closest that are
    return sizes, quotas


def _measured_here(client: Client, request: SizeRequest, deployment: Any) -> Measured:
    """The Azure deployment (its registered model, environment and code, and its settings) tried on this machine
    as the preflight tries one, and measured there; nothing on Azure is written."""
    import tempfile

    from commands.target import LOCAL
    from common import preflight
    from common.azure.surface import on_azure

    progress(f"Size: {deployment.name} is tried on this machine, as --preflight tries one (only reads reach Azure)")
    with tempfile.TemporaryDirectory(prefix="azureml-size-") as folder:
        model, environment, planned = preflight.azure_deployment(on_azure(client), deployment, Path(folder))
        with preflight.tried_here(client, deployment.name, model, environment, planned, LOCAL, "size") as trial:
            uri = trial.client.online_endpoints.get(trial.endpoint_name).scoring_uri
            return measure(trial.client, request, trial.endpoint_name, deployment, uri)


def measure(client: Client, request: SizeRequest, endpoint_name: str, deployment: Any, uri: str) -> Measured:
    """Latency at rising concurrency, up to what the deployment admits; CliError when no step meets the limit."""
    name = request.deployment_name
    settings = deployment.request_settings
    per_instance_now = int(getattr(settings, "max_concurrent_requests_per_instance", None) or 1)
    admitted = 2 * per_instance_now * int(deployment.instance_count or 1)
    workers = int((deployment.environment_variables or {}).get("WORKER_COUNT", 1))
    if admitted < request.max_concurrency:
        progress(
            f"note: {name} admits {admitted} requests in flight (2 x max_concurrent_requests_per_instance x instances):"
            f" the measurement stops there; deploy it with a higher --max_concurrent_requests_per_instance (and "
            f"--env WORKER_COUNT=N) to measure further"
        )
    steps = measure_steps(client, request, endpoint_name, uri, min(request.max_concurrency, admitted))
    found = sizing.knee(steps, request.p95_ms)
    if found is None:
        first = steps[0]
        raise CliError(
            f"{name} cannot meet --p95_ms {request.p95_ms:g} here even one request at a time (p95 "
            f"{first.p95_ms:.0f} ms, {first.errors} errors of {first.requests}): no instance type changes one "
            "request's time; raise the limit or make the model faster"
        )
    return Measured(steps, found, workers, max(1, min(workers, os.cpu_count() or 1)), admitted)


def measure_steps(client: Client, request: SizeRequest, endpoint_name: str, uri: str, highest: int) -> list[Step]:
    """1, 2, 4, ... clients up to `highest`, stopping after the first step past the p95 limit or with errors."""
    from common.release.load import measure

    headers = scoring.request_headers(client, endpoint_name, request.deployment_name)
    body = request.request_file.read_bytes()
    measure(uri, headers, body, 1, 0.5, 50)  # warm-up: the first requests pay for loading and caches
    steps: list[Step] = []
    started, concurrency = time.monotonic(), 1
    try:
        while concurrency <= highest:
            step = measure(uri, headers, body, concurrency, request.seconds, MAX_STEP_REQUESTS)
            steps.append(step)
            progress(
                f"  concurrency {concurrency}: {step.requests} requests, p50 {step.p50_ms:.1f} ms, p95 "
                f"{step.p95_ms:.1f} ms, {step.errors} errors ({time.monotonic() - started:.1f} s)"
            )
            if step.requests and step.errors == step.requests:
                names = ("--endpoint_name", request.endpoint_name, "--deployment_name", request.deployment_name)
                logs = request.target.command(MANAGE, "logs", *names)
                raise CliError(
                    f"{request.deployment_name} answered none of {step.requests} requests at concurrency "
                    f"{concurrency}: it failed during the measurement; nothing was changed (its log: {logs})"
                )
            if step.errors or step.p95_ms > request.p95_ms:
                break
            concurrency *= 2
    except KeyboardInterrupt:
        measured = "; ".join(f"{s.concurrency}: p95 {s.p95_ms:.1f} ms" for s in steps) or "nothing yet"
        raise InterruptedByUser(f"size stopped: measured {measured}; nothing was changed") from None
    return steps


def _candidate(name: str, vcpus: int, measured: Measured, request: SizeRequest, region: Region | None) -> Candidate:
    """Azure's rule for `name`; on Azure with the region's vCPUs, price and the quota left, else the SKU list's
    vCPUs and the dated price table."""
    size = capacity.Size(name, "", vcpus, None, True)
    if region is not None:
        size = region[0][canonical(name)]
    price = size.price or prices.price_of(name)
    found, cores_used = measured.found, measured.cores_used
    estimate = sizing.candidate(name, size.vcpus, found, request.target_rps, cores_used, price=price)
    if region is None:
        return dataclasses.replace(estimate, cores_needed=capacity.cores_for(estimate.instances, size))
    plan = capacity.plan(region[0], region[1], name, estimate.instances)
    return dataclasses.replace(estimate, cores_needed=plan.needed, quota_free=plan.free)


def _refuse_beyond_quota(request: SizeRequest, measured: Measured, candidates: list[Candidate], region: Region) -> None:
    """NotEnoughQuota when no instance type tried fits the quota left, naming the largest deployment that does."""
    if any(c.fits_quota is not False for c in candidates):
        return
    short = "; ".join(
        f"{c.instance_type}: {c.instances} instances need {c.cores_needed} cores, {c.quota_free} free"
        for c in candidates
    )
    fitting = []
    for c in candidates:
        count = capacity.largest_fitting(region[0][canonical(c.instance_type)], c.quota_free or 0)
        fitting.append((sizing.capacity_rps(measured.found, c.per_instance, count), count, c.instance_type))
    rps, count, type_name = max(fitting)
    largest = (
        f"the largest that fits: {count} x {type_name}, about {rps:.0f} requests/s by the same rule"
        if count
        else "not one instance of these types fits"
    )
    raise capacity.NotEnoughQuota(
        f"--target_rps {request.target_rps:g} cannot be met within the subscription's quota by any instance type "
        f"tried ({short}); {largest}; request more at {QUOTA_PAGE}, or lower --target_rps; nothing was changed"
    )


def report(
    client: Client, request: SizeRequest, deployment: Any, measured: Measured, candidates: list[Candidate]
) -> Result:
    found, machine = measured.found, os.cpu_count() or 1
    lines = [
        f"Estimate from this machine ({machine} cores; {request.deployment_name} ran {measured.workers} worker(s) "
        f"on {measured.cores_used} of them and admits {measured.admitted} requests in flight), scaled to each "
        f"instance type by its vCPUs over {measured.cores_used}:",
        f"  knee: concurrency {found.concurrency} (p50 {found.p50_ms:.1f} ms, p95 {found.p95_ms:.1f} ms within "
        f"{request.p95_ms:g} ms, {found.per_second:.0f} requests/s here)",
        f"  rule: concurrent requests = ceil({request.target_rps:g} req/s x {found.p50_ms / 1000:.4f} s / "
        f"{sizing.TARGET_UTILIZATION}) = {sizing.concurrent_requests(request.target_rps, found.p50_ms / 1000)}; "
        f"instances = max({sizing.HA_MINIMUM}, ceil(concurrent / per instance))",
        "",
        HEADER,
    ]
    for c in candidates:
        month = f"{c.monthly:,.0f} {c.price.currency}" if c.monthly is not None and c.price else "unknown"
        thousand = c.per_thousand(request.target_rps)
        per_k = f"{thousand:.4f}" if thousand is not None else "unknown"
        counts = f"{c.by_rule:>3} -> {c.instances:<3}"
        quota = {True: f"fits ({c.quota_free} free)", False: f"SHORT ({c.quota_free} free)", None: "not checked"}
        lines.append(
            f"{c.instance_type:18} {c.vcpus:5}  {c.core_ratio:5.1f}  {c.per_instance:9}  {counts}  "
            f"{c.refused_beyond:10}  {c.request_timeout_ms:10}  {c.cores_needed:5}  {month:>9}  {per_k:>10}  "
            f"{quota[c.fits_quota]}"
        )
    sources = sorted({c.price.source for c in candidates if c.price})
    lines += [f"Prices: {source}" for source in sources]
    eligible = [c for c in candidates if c.fits_quota is not False]
    chosen = min(eligible, key=lambda c: (c.monthly is None, c.monthly or 0))
    commands = apply_commands(request, deployment, chosen, score_path(client, deployment))
    which = "cheapest that fits the quota" if len(eligible) < len(candidates) else "cheapest"
    lines += ["", f"The {which}, {chosen.instance_type}, as a new Azure deployment beside {request.deployment_name}:"]
    lines += commands
    data = {
        "estimate_from": {"cores": machine, **measured.describe()},
        "steps": [dataclasses.asdict(step) for step in measured.steps],
        "knee": dataclasses.asdict(found),
        "candidates": [
            {
                **dataclasses.asdict(c),
                "monthly": c.monthly,
                "per_thousand": c.per_thousand(request.target_rps),
                "fits_quota": c.fits_quota,
            }
            for c in candidates
        ],
        "commands": commands,
    }
    return Result(data, lines)


def apply_commands(request: SizeRequest, deployment: Any, chosen: Candidate, score_path: str | None) -> list[str]:
    """The Azure command lines (the sizes are Azure's) that apply `chosen`: create_online_deployment.py and
    autoscale. The model and environment as the scripts take them (azureml:NAME:VERSION, not the ARM ids a
    deployment GET answers with); the code from `score_path`."""
    code = deployment.code_configuration
    env = {**(deployment.environment_variables or {}), "WORKER_COUNT": str(chosen.per_instance)}
    new_name = f"{request.deployment_name}-sized"[:32]
    model, environment = _as_flag("models", deployment.model), _as_flag("environments", deployment.environment)
    create = AZURE.command(
        "create_online_deployment.py",
        *("--endpoint_name", request.endpoint_name, "--deployment_name", new_name),
        *("--model_path", model),
        *(("--environment", environment) if deployment.environment is not None else ()),  # None: MLflow, no code
        *(("--score_path", str(score_path), "--score_script", str(code.scoring_script)) if code else ()),
        *("--instance_type", chosen.instance_type, "--instance_count", str(chosen.instances)),
        *("--max_concurrent_requests_per_instance", str(chosen.per_instance)),
        *("--request_timeout_ms", str(chosen.request_timeout_ms), "--env", *(f"{k}={v}" for k, v in env.items())),
        *("--traffic_allocation", "0"),
    )
    autoscale = AZURE.command(
        MANAGE,
        "autoscale",
        *("--endpoint_name", request.endpoint_name, "--deployment_name", new_name),
        *("--min", str(chosen.instances), "--max", str(chosen.autoscale_max), "--default", str(chosen.instances)),
        *("--cpu_out", f"{sizing.TARGET_UTILIZATION * 100:g}", "--cpu_in", f"{sizing.SCALE_IN_CPU:g}"),
    )
    return [create, autoscale]


def _as_flag(kind: str, value: Any) -> str:
    registered = references.registered_asset(kind, str(value))
    return registered.arm_reference if registered else str(value)


def score_path(client: Client, deployment: Any) -> str | None:
    """The code folder to name in the printed command: a local deployment's own; for an Azure one, the name of the
    folder its code asset was uploaded from (the last part of the asset's path: azure-ai-ml uploads a folder under
    its own name), which the user has where they deployed from (uploading it again reuses the same asset)."""
    code = deployment.code_configuration
    if code is None:
        return None
    registered = references.registered_asset("codes", str(code.code))
    if registered is None or registered.version is None:
        return str(code.code)
    from common.azure.surface import on_azure

    asset = on_azure(client)._code.get(name=registered.name, version=registered.version)
    return str(asset.path).rstrip("/").rsplit("/", 1)[-1]
