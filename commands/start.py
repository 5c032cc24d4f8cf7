"""start (local target): bring a stopped endpoint back as it was, then show it."""

from __future__ import annotations

import argparse
from typing import Any

from commands import Result, show
from commands.stop import refuse_on_azure
from commands.target import LOCAL
from common.operations import wait_with_progress


def add_arguments(_parser: argparse.ArgumentParser) -> None:
    pass


def validate(args: argparse.Namespace) -> None:
    refuse_on_azure(args)


def run(client: Any, args: argparse.Namespace) -> Result:
    poller = client.online_endpoints.begin_start(args.endpoint_name)
    wait_with_progress(poller, f"starting {args.endpoint_name}", LOCAL.show(args.endpoint_name))
    return show.run(client, args)
