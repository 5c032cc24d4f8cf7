"""stop (local target): stop the endpoint's front door and deployment servers, keep its state."""

from __future__ import annotations

import argparse

from commands import Request, Result
from commands.target import LOCAL
from common.azure.surface import Client, on_local
from common.control.waiting import wait_with_progress
from common.errors import UsageError


def add_arguments(_parser: argparse.ArgumentParser) -> None:
    pass


def refuse_on_azure(args: argparse.Namespace) -> None:
    if not args.local:
        raise UsageError(
            f"{args.command} is for local endpoints (add --local): an Azure managed online endpoint runs until it is "
            "deleted"
        )


def validate(args: argparse.Namespace) -> Request:
    refuse_on_azure(args)
    return Request.of(args)


def run(client: Client, request: Request) -> Result:
    name = request.endpoint_name
    poller = on_local(client).online_endpoints.begin_stop(name)  # stop exists only there
    wait_with_progress(poller, f"stopping {name}", LOCAL.show(name))
    again = LOCAL.start(name)
    lines = [
        f"Stopped local endpoint {name}: its front door and deployment servers; its state is kept.",
        f"Start it again with: {again}",
    ]
    return Result({"stopped": name, "start_command": again}, lines)
