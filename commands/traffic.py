"""traffic: set the live split (--set) and the mirror share (--mirror), Azure's rules checked before any write."""

from __future__ import annotations

import argparse
from typing import Any

from commands import Result
from commands.shared import change_result, deployment_states, endpoint_or_fail, require_deployments
from commands.target import of
from common import history, traffic
from common.cli import add_flag, progress
from common.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "--set", nargs="+", metavar="DEPLOYMENT=PERCENT", dest="assignments", help="live shares")
    add_flag(parser, "--mirror", nargs="+", metavar="DEPLOYMENT=PERCENT", help="mirror share (at most 50), or none")


def validate(args: argparse.Namespace) -> None:
    if not args.assignments and not args.mirror:
        raise UsageError("traffic needs --set DEPLOYMENT=PERCENT ..., --mirror DEPLOYMENT=PERCENT (or none), or both")
    args.plan = traffic.parse_assignments(args.assignments) if args.assignments else None
    args.mirror_plan = traffic.parse_mirror(args.mirror) if args.mirror else None


def run(client: Any, args: argparse.Namespace) -> Result:
    endpoint_or_fail(client, args)
    existing = deployment_states(client, args.endpoint_name)
    given = args.plan or {}
    serving = [name for name, share in given.items() if share]
    require_deployments(given, existing, args, serving=serving, missing=UsageError)

    def decide(before: traffic.Split) -> traffic.Split:
        live = args.plan if args.plan is not None else before.live
        if args.mirror_plan is None:
            return traffic.Split(live, traffic.without_live_mirrors(live, before.mirror)[0])
        traffic.check_mirror(args.mirror_plan, live, existing)
        return traffic.Split(live, args.mirror_plan)

    change = " ".join(
        [
            "traffic",
            *(["--set", *args.assignments] if args.plan else []),
            *(["--mirror", *args.mirror] if args.mirror else []),
        ]
    )
    # change_split runs `decide` on the endpoint as read before it writes: Azure's mirror rules refuse before any write
    before, after = history.change_split(client, args.endpoint_name, decide, target=of(args), change=change)
    cleared = traffic.mirrors_cleared(before, after)
    if args.mirror_plan is None and cleared:
        progress(traffic.mirror_note(cleared))
    return change_result(before, after, "traffic")
