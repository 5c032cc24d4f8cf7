"""compare: what a shadow (mirrored) deployment answered against the live one, for the same requests."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from commands import DeploymentRequest, Result
from commands.shared import add_deployment_flag, deployment_states, endpoint_or_fail, require_deployments
from common import validation
from common.azure.surface import Client
from common.cli import add_flag, add_name_flag
from common.errors import UsageError
from common.monitoring import capture, collected
from common.release import shadow, traffic

MAX_MINUTES = 7 * 24 * 60  # a week of hour folders, listed one by one (locally: what the capture cap kept)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_deployment_flag(parser, required=True)
    add_name_flag(
        parser,
        "--against",
        metavar="DEPLOYMENT",
        help="the live deployment to compare with (default: the one with the largest live share)",
    )
    add_flag(parser, "--minutes", type=int, default=60, help="the window: the last N minutes (default: %(default)s)")
    add_flag(
        parser,
        "--include_previous",
        action="store_true",
        help="also count rows a deployment of the same name collected before this one was created",
    )


@dataclass(frozen=True, kw_only=True)
class CompareRequest(DeploymentRequest):
    against: str | None
    minutes: int
    include_previous: bool


def validate(args: argparse.Namespace) -> CompareRequest:
    validation.resource_name("deployment", args.deployment_name)
    if args.against is not None:
        validation.resource_name("deployment", args.against)
        if args.against == args.deployment_name:
            raise UsageError(f"--against {args.against!r} is the deployment compared: name the live one")
    if not 1 <= args.minutes <= MAX_MINUTES:
        raise UsageError(f"invalid --minutes {args.minutes}: use 1 to {MAX_MINUTES} (a week at most)")
    return CompareRequest.of(
        args,
        deployment_name=args.deployment_name,
        against=args.against,
        minutes=args.minutes,
        include_previous=args.include_previous,
    )


def run(client: Client, request: CompareRequest) -> Result:
    endpoint = endpoint_or_fail(client, request)
    states = deployment_states(client, request.endpoint_name)
    against = request.against or traffic.largest_live(traffic.Split.of(endpoint), request.deployment_name)
    if against is None:
        raise UsageError(
            f"no deployment of {request.endpoint_name!r} other than {request.deployment_name!r} takes live traffic: "
            "name the one to compare with in --against"
        )
    require_deployments([request.deployment_name, against], states, request)
    until = time.time()
    since, notes = until - request.minutes * 60, []
    for name in (request.deployment_name, against):  # the later of the two creations starts the window
        deployment = client.online_deployments.get(name, request.endpoint_name)
        since, shortened = capture.window_since(deployment, since, request.include_previous)
        notes += [shortened] if shortened else []
    source = collected.source(client, endpoint, target=request.target)
    found = shadow.gather(source, against, request.deployment_name, since, until, local=request.target.local)
    data = {"endpoint": request.endpoint_name, "minutes": request.minutes, **found.as_dict()}
    lines = [f"Comparison on {request.endpoint_name}, the last {request.minutes} min:", *found.lines()]
    if notes:
        lines.append(f"  {notes[-1]}")
        data["window"] = notes[-1]
    said = collected.skipped_line(source.skipped)
    if said:
        lines.append(said)
        data["skipped"] = dict(source.skipped)
    if found.rows == 0:
        share = f"{request.deployment_name}={traffic.MAX_MIRROR_PERCENT}"
        mirror = request.target.verb("traffic", "--endpoint_name", request.endpoint_name, "--mirror", share)
        lines.append(
            f"Nothing to compare yet: mirror live traffic to {request.deployment_name} ({mirror}), or collect "
            "model_outputs on both deployments (create_online_deployment.py --data_collection model_outputs)"
        )
    return Result(data, lines)
