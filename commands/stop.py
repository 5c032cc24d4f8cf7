"""stop (local target): stop the endpoint's front door and deployment servers, keep its state."""

from __future__ import annotations

import argparse
from typing import Any

from commands import Result
from commands.target import LOCAL
from common.errors import UsageError
from common.operations import wait_with_progress


def add_arguments(_parser: argparse.ArgumentParser) -> None:
    pass


def refuse_on_azure(args: argparse.Namespace) -> None:
    if not args.local:
        raise UsageError(
            f"{args.command} is for local endpoints (add --local): an Azure managed online endpoint runs until it is "
            "deleted"
        )


def validate(args: argparse.Namespace) -> None:
    refuse_on_azure(args)


def run(client: Any, args: argparse.Namespace) -> Result:
    poller = client.online_endpoints.begin_stop(args.endpoint_name)
    wait_with_progress(poller, f"stopping {args.endpoint_name}", LOCAL.show(args.endpoint_name))
    again = LOCAL.command("manage_online_endpoint.py", "start", "--endpoint_name", args.endpoint_name)
    lines = [
        f"Stopped local endpoint {args.endpoint_name}: its front door and deployment servers; its state is kept.",
        f"Start it again with: {again}",
    ]
    return Result({"stopped": args.endpoint_name, "start_command": again}, lines)
