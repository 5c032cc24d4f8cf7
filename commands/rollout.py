"""rollout: raise a deployment's share step by step, judge each step's metrics, restore the split on a crossed
limit."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from commands import DeploymentRequest, Result
from commands.shared import (
    MAX_PROBES,
    add_contract_flag,
    add_deployment_flag,
    add_request_file_flag,
    contract_gate,
    deployment_states,
    endpoint_or_fail,
    require_deployments,
)
from common import scoring, validation
from common.azure.surface import Client
from common.cli import add_flag, output, progress
from common.errors import UsageError
from common.monitoring import collected
from common.release import metrics, rollout, traffic

DEFAULTS = {"bake_seconds": 300, "max_error_percent": 1.0, "max_p95_ms": 500.0, "min_requests": 20}
MAX_BAKE_SECONDS = 24 * 3600


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_deployment_flag(parser, required=True)
    add_flag(parser, "--steps", nargs="+", type=int, required=True, metavar="PERCENT", help="e.g. 10 50 100")
    for flag, kind, what in (
        ("bake_seconds", int, "how long each step runs before it is judged"),
        ("max_error_percent", float, "highest error percentage (4xx and 5xx) a step may show"),
        ("max_p95_ms", float, "highest p95 latency a step may show"),
        ("min_requests", int, "fewest requests the deployment must serve in a step"),
    ):
        add_flag(parser, f"--{flag}", type=kind, default=DEFAULTS[flag], help=f"{what} (default: %(default)s)")
    add_flag(
        parser,
        "--probe_requests",
        type=int,
        default=0,
        help="local target: send the sample request N times during each bake, through the traffic split "
        "(default: none)",
    )
    add_flag(
        parser,
        "--max_disagreement_percent",
        type=float,
        help="before the first live step, mirror the deployment for one bake and stop when its labels disagree with "
        "the live deployment's on more than this percentage of the compared requests (default: no shadow bake)",
    )
    add_request_file_flag(parser)
    add_contract_flag(parser)


@dataclass(frozen=True, kw_only=True)
class RolloutRequest(DeploymentRequest):
    steps: list[int]
    bake_seconds: int
    limits: rollout.Limits
    probe_requests: int  # 0: the clients' own traffic is judged
    request_file: Path
    max_disagreement_percent: float | None  # None: no shadow bake
    allow_contract_change: bool


def validate(args: argparse.Namespace) -> RolloutRequest:
    validation.request_file(Path(args.request_file))
    steps = rollout.check_steps(args.steps)
    if not 1 <= args.bake_seconds <= MAX_BAKE_SECONDS:
        raise UsageError(f"invalid --bake_seconds {args.bake_seconds}: use 1 to {MAX_BAKE_SECONDS}")
    if not 0 <= args.max_error_percent <= 100:
        raise UsageError(f"invalid --max_error_percent {args.max_error_percent:g}: use 0 to 100")
    if not args.max_p95_ms > 0:
        raise UsageError(f"invalid --max_p95_ms {args.max_p95_ms:g}: use a number of milliseconds above 0")
    validation.positive_count("--min_requests", args.min_requests)
    disagreement = args.max_disagreement_percent
    if disagreement is not None and not 0 <= disagreement <= 100:
        raise UsageError(f"invalid --max_disagreement_percent {disagreement:g}: use 0 to 100")
    if args.probe_requests and not args.local:
        raise UsageError(
            "--probe_requests is for the local target (add --local): on Azure a rollout judges the traffic your "
            "clients send"
        )
    if not 0 <= args.probe_requests <= MAX_PROBES:
        raise UsageError(f"invalid --probe_requests {args.probe_requests}: use 0 to {MAX_PROBES}")
    expected = args.probe_requests * steps[0] / 100
    if args.probe_requests and expected < 2 * args.min_requests:
        needed = -(-2 * args.min_requests * 100 // steps[0])
        raise UsageError(
            f"--probe_requests {args.probe_requests} gives {args.deployment_name} about {expected:g} requests at its "
            f"first step ({steps[0]}%), too close to --min_requests {args.min_requests} to judge it: use "
            f"--probe_requests {needed} or more"
        )
    return RolloutRequest.of(
        args,
        deployment_name=args.deployment_name,
        steps=steps,
        bake_seconds=args.bake_seconds,
        limits=rollout.Limits(args.max_error_percent, args.max_p95_ms, args.min_requests),
        probe_requests=args.probe_requests,
        request_file=Path(args.request_file),
        max_disagreement_percent=disagreement,
        allow_contract_change=args.allow_contract_change,
    )


def run(client: Client, request: RolloutRequest) -> Result:
    endpoint = endpoint_or_fail(client, request)
    name = request.deployment_name
    require_deployments([name], deployment_states(client, request.endpoint_name), request, serving=[name])
    before = traffic.Split.of(endpoint)
    rollout.plan(before, name, request.steps)  # an impossible step is refused before any write
    contract_gate(client, request, before.live, {name: request.steps[-1]}, request.allow_contract_change)
    if not request.target.local and request.bake_seconds < 60:
        progress("note: Azure Monitor reports per minute, so each step is judged on whole minutes")
    prober = None
    if request.probe_requests:
        headers = scoring.request_headers(client, request.endpoint_name)
        body = request.request_file.read_bytes()
        prober = rollout.Prober(endpoint.scoring_uri, headers, body, request.probe_requests)
    gate = None
    if request.max_disagreement_percent is not None:
        rollout.shadow_split(before, name)  # refused before any write when Azure's mirror rules would refuse it
        live = traffic.largest_live(before, name)
        if live is None:
            raise UsageError(
                f"--max_disagreement_percent compares {name!r} with the live deployment, but no other deployment of "
                f"{request.endpoint_name!r} takes live traffic"
            )
        source = collected.source(client, endpoint, target=request.target)
        gate = rollout.ShadowGate(request.max_disagreement_percent, live, source)
    staged = rollout.Rollout(
        client=client,
        endpoint_name=request.endpoint_name,
        deployment=name,
        steps=request.steps,
        bake_seconds=request.bake_seconds,
        limits=request.limits,
        target=request.target,
        source=metrics.source(client, endpoint, target=request.target),
        report=progress if request.output == "json" else output,
        prober=prober,
        shadow_gate=gate,
    )
    final = staged.run(before)
    data = {
        "endpoint": request.endpoint_name,
        "deployment": name,
        "outcome": "completed",
        "traffic": final.live,
        "mirror_traffic": final.mirror,
        "before": before.as_dict(),
        "steps": [record.as_dict() for record in staged.records],
    }
    if staged.shadow_comparison is not None:
        data["shadow_bake"] = staged.shadow_comparison.as_dict()
    return Result(data, [f"Rollout of {name} completed:", *traffic.change_lines(before, final)])
