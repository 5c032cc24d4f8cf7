"""traffic: set the live split (--set) and the mirror share (--mirror), Azure's rules checked before any write."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from commands import Request, Result
from commands.shared import (
    add_contract_flag,
    change_result,
    contract_gate,
    deployment_states,
    endpoint_or_fail,
    require_deployments,
)
from common.azure.surface import Client
from common.cli import add_flag, progress
from common.errors import UsageError
from common.release import history, traffic


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "--set", nargs="+", metavar="DEPLOYMENT=PERCENT", dest="assignments", help="live shares")
    add_flag(
        parser,
        "--mirror",
        nargs="+",
        metavar="DEPLOYMENT=PERCENT",
        help=f"mirror share (at most {traffic.MAX_MIRROR_PERCENT}), or none",
    )
    add_contract_flag(parser)


@dataclass(frozen=True, kw_only=True)
class TrafficRequest(Request):
    plan: dict[str, int] | None  # the live split --set gives
    mirror_plan: dict[str, int] | None  # the mirror --mirror gives ({} for none)
    change: str  # the command as the rollback history records it
    allow_contract_change: bool


def validate(args: argparse.Namespace) -> TrafficRequest:
    if not args.assignments and not args.mirror:
        raise UsageError("traffic needs --set DEPLOYMENT=PERCENT ..., --mirror DEPLOYMENT=PERCENT (or none), or both")
    plan = traffic.parse_assignments(args.assignments) if args.assignments else None
    change = " ".join(
        [
            "traffic",
            *(["--set", *args.assignments] if plan else []),
            *(["--mirror", *args.mirror] if args.mirror else []),
        ]
    )
    mirror_plan = traffic.parse_mirror(args.mirror) if args.mirror else None
    return TrafficRequest.of(
        args, plan=plan, mirror_plan=mirror_plan, change=change, allow_contract_change=args.allow_contract_change
    )


def run(client: Client, request: TrafficRequest) -> Result:
    endpoint = endpoint_or_fail(client, request)
    existing = deployment_states(client, request.endpoint_name)
    given = request.plan or {}
    serving = [name for name, share in given.items() if share]
    require_deployments(given, existing, request, serving=serving, missing=UsageError)
    if request.plan is not None:
        live = {name: int(share) for name, share in (endpoint.traffic or {}).items()}
        contract_gate(client, request, live, request.plan, request.allow_contract_change)

    def decide(before: traffic.Split) -> traffic.Split:
        live = request.plan if request.plan is not None else before.live
        if request.mirror_plan is None:
            return traffic.Split(live, traffic.without_live_mirrors(live, before.mirror)[0])
        traffic.check_mirror(request.mirror_plan, live, existing)
        return traffic.Split(live, request.mirror_plan)

    # change_split runs `decide` on the endpoint as read before it writes: Azure's mirror rules refuse before any write
    before, after = history.change_split(
        client, request.endpoint_name, decide, target=request.target, change=request.change
    )
    cleared = traffic.mirrors_cleared(before, after)
    if request.mirror_plan is None and cleared:
        progress(traffic.mirror_note(cleared))
    return change_result(before, after, "traffic")
