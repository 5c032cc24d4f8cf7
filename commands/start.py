"""start (local target): bring a stopped endpoint back as it was, then show it."""

from __future__ import annotations

import argparse

from commands import Request, Result, show
from commands.stop import refuse_on_azure
from commands.target import LOCAL
from common.azure.surface import Client, on_local
from common.control.waiting import wait_with_progress


def add_arguments(_parser: argparse.ArgumentParser) -> None:
    pass


def validate(args: argparse.Namespace) -> Request:
    refuse_on_azure(args)
    return Request.of(args)


def run(client: Client, request: Request) -> Result:
    poller = on_local(client).online_endpoints.begin_start(request.endpoint_name)  # start exists only there
    wait_with_progress(poller, f"starting {request.endpoint_name}", LOCAL.show(request.endpoint_name))
    return show.run(client, request)
