"""rollback: restore the split in force before the last traffic change this toolkit recorded."""

from __future__ import annotations

import argparse

from commands import Request, Result
from commands.shared import deployment_states, endpoint_or_fail
from common.azure.surface import Client
from common.release import history, traffic


def add_arguments(_parser: argparse.ArgumentParser) -> None:
    pass


def validate(args: argparse.Namespace) -> Request:
    return Request.of(args)


def run(client: Client, request: Request) -> Result:
    endpoint_or_fail(client, request)
    existing = set(deployment_states(client, request.endpoint_name))
    before, after, entry = history.roll_back(client, request.endpoint_name, existing, target=request.target)
    data = {
        "traffic": after.live,
        "mirror_traffic": after.mirror,
        "before": before.as_dict(),
        "undone": entry.change,
        "undone_at": entry.at,
    }
    return Result(data, [f"Rolled back {entry.change!r} (made {entry.at}):", *traffic.change_lines(before, after)])
