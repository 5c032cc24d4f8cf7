"""promote: a deployment takes 100% of the live traffic and none of the mirror traffic."""

from __future__ import annotations

import argparse
from typing import Any

from commands import Result
from commands.shared import (
    add_deployment_flag,
    change_result,
    deployment_states,
    endpoint_or_fail,
    require_deployments,
)
from commands.target import of
from common import history, traffic


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_deployment_flag(parser, required=True)


def validate(_args: argparse.Namespace) -> None:
    pass


def run(client: Any, args: argparse.Namespace) -> Result:
    endpoint_or_fail(client, args)
    name = args.deployment_name
    require_deployments([name], deployment_states(client, args.endpoint_name), args, serving=[name])
    before, after = history.change_split(
        client,
        args.endpoint_name,
        lambda current: traffic.promoted(current, name),
        target=of(args),
        change=f"promote {name}",
    )
    return change_result(before, after, "promote")
