"""size: measure a local deployment's latency at rising concurrency, then apply Azure's sizing rule per instance type:
instances, max_concurrent_requests_per_instance and WORKER_COUNT, request timeout, autoscale, cores and cost."""

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
from common import scoring, validation
from common.azure import capacity, prices, sizing, skus
from common.azure.sizing import Candidate, Step
from common.azure.surface import Client
from common.cli import add_flag, progress
from common.control.lookups import get_or_none
from common.errors import CliError, InterruptedByUser, NotFoundError, UsageError

DEFAULT_TYPES = ("Standard_DS2_v2", "Standard_DS3_v2", "Standard_DS4_v2", "Standard_F4s_v2")
MAX_STEP_REQUESTS = 5_000  # per step, whatever its seconds
MAX_CONCURRENCY = 64
HEADER = (
    f"{'instance type':18} vCPUs  ratio  per inst.  instances  429 beyond  timeout ms  cores  per month  per 1k req"
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
    if not args.local:
        raise UsageError(
            "size measures on the local target (add --local): deploy the same model and code there with "
            "create_online_deployment.py --local, then size it; its figures apply to Azure's instance types"
        )
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
    for sku in skus.DOCUMENTED_SKUS:
        if sku.name.lower() == name.lower():
            return sku.name, sku.cores
    raise UsageError(
        f"unknown --instance_type {name!r}: not in the SKU list of managed online endpoints; closest: "
        f"{', '.join(skus.closest(name))}"
    )


def run(client: Client, request: SizeRequest) -> Result:
    endpoint = endpoint_or_fail(client, request)
    name = request.deployment_name
    deployment = get_or_none(client.online_deployments.get, name=name, endpoint_name=request.endpoint_name)
    if deployment is None:
        raise NotFoundError(f"endpoint {request.endpoint_name!r} has no deployment {name!r}")
    settings = deployment.request_settings
    per_instance_now = int(getattr(settings, "max_concurrent_requests_per_instance", None) or 1)
    admitted = 2 * per_instance_now * int(deployment.instance_count or 1)
    workers = int((deployment.environment_variables or {}).get("WORKER_COUNT", 1))
    cores_used = max(1, min(workers, os.cpu_count() or 1))
    if admitted < request.max_concurrency:
        progress(
            f"note: {name} admits {admitted} requests in flight (2 x max_concurrent_requests_per_instance x instances):"
            f" the measurement stops there; deploy it with a higher --max_concurrent_requests_per_instance (and "
            f"--env WORKER_COUNT=N) to measure further"
        )
    steps = measure_steps(client, request, endpoint.scoring_uri, min(request.max_concurrency, admitted))
    found = sizing.knee(steps, request.p95_ms)
    if found is None:
        first = steps[0]
        raise CliError(
            f"{name} cannot meet --p95_ms {request.p95_ms:g} here even one request at a time (p95 "
            f"{first.p95_ms:.0f} ms, {first.errors} errors of {first.requests}): no instance type changes one "
            "request's time; raise the limit or make the model faster"
        )
    candidates = [
        _candidate(type_name, vcpus, found, request.target_rps, cores_used)
        for type_name, vcpus in request.instance_types
    ]
    result = report(request, deployment, steps, found, candidates, (workers, cores_used, admitted))
    if request.plot is not None:
        from common.release.load_plot import plot

        title = f"{request.endpoint_name}/{name}: latency here, knee at {found.concurrency}"
        plot(steps, found, request.p95_ms, request.plot, title)
        result.data["plot"] = str(request.plot)
        result.lines.append(f"Plot: {request.plot}")
    return result


def measure_steps(client: Client, request: SizeRequest, uri: str, highest: int) -> list[Step]:
    """1, 2, 4, ... clients up to `highest`, stopping after the first step past the p95 limit or with errors."""
    from common.release.load import measure

    headers = scoring.request_headers(client, request.endpoint_name, request.deployment_name)
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


def _candidate(name: str, vcpus: int, found: Step, target_rps: float, cores_used: int) -> Candidate:
    estimate = sizing.candidate(name, vcpus, found, target_rps, cores_used, price=prices.price_of(name))
    size = capacity.Size(name, "", vcpus, None, True)
    return dataclasses.replace(estimate, cores_needed=capacity.cores_for(estimate.instances, size))


def report(
    request: SizeRequest,
    deployment: Any,
    steps: list[Step],
    found: Step,
    candidates: list[Candidate],
    measured_with: tuple[int, int, int],
) -> Result:
    workers, cores_used, admitted = measured_with
    machine = os.cpu_count() or 1
    lines = [
        f"Estimate from this machine ({machine} cores; {request.deployment_name} ran {workers} worker(s) on "
        f"{cores_used} of them and admits {admitted} requests in flight), scaled to each instance type by its vCPUs "
        f"over {cores_used}:",
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
        lines.append(
            f"{c.instance_type:18} {c.vcpus:5}  {c.core_ratio:5.1f}  {c.per_instance:9}  {counts}  "
            f"{c.refused_beyond:10}  {c.request_timeout_ms:10}  {c.cores_needed:5}  {month:>9}  {per_k:>10}"
        )
    sources = sorted({c.price.source for c in candidates if c.price})
    lines += [f"Prices: {source}" for source in sources]
    chosen = min(candidates, key=lambda c: (c.monthly is None, c.monthly or 0))
    commands = apply_commands(request, deployment, chosen)
    lines += ["", f"The cheapest, {chosen.instance_type}, as a new Azure deployment beside {request.deployment_name}:"]
    lines += commands
    data = {
        "estimate_from": {"cores": machine, "workers": workers, "cores_used": cores_used, "admitted": admitted},
        "steps": [dataclasses.asdict(step) for step in steps],
        "knee": dataclasses.asdict(found),
        "candidates": [
            {**dataclasses.asdict(c), "monthly": c.monthly, "per_thousand": c.per_thousand(request.target_rps)}
            for c in candidates
        ],
        "commands": commands,
    }
    return Result(data, lines)


def apply_commands(request: SizeRequest, deployment: Any, chosen: Candidate) -> list[str]:
    """The Azure command lines (the sizes are Azure's) that apply `chosen`: create_online_deployment.py and
    autoscale."""
    code = deployment.code_configuration
    env = {**(deployment.environment_variables or {}), "WORKER_COUNT": str(chosen.per_instance)}
    new_name = f"{request.deployment_name}-sized"[:32]
    create = AZURE.command(
        "create_online_deployment.py",
        *("--endpoint_name", request.endpoint_name, "--deployment_name", new_name),
        *("--model_path", str(deployment.model), "--environment", str(deployment.environment)),
        *(("--score_path", str(code.code), "--score_script", str(code.scoring_script)) if code else ()),
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
