"""rollback: restore the split in force before the last traffic change this toolkit recorded."""

from __future__ import annotations

import argparse
from typing import Any

from commands import Result
from commands.shared import deployment_states, endpoint_or_fail
from commands.target import of
from common import history, traffic


def add_arguments(_parser: argparse.ArgumentParser) -> None:
    pass


def validate(_args: argparse.Namespace) -> None:
    pass


def run(client: Any, args: argparse.Namespace) -> Result:
    endpoint_or_fail(client, args)
    existing = set(deployment_states(client, args.endpoint_name))
    before, after, entry = history.roll_back(client, args.endpoint_name, existing, target=of(args))
    data = {
        "traffic": after.live,
        "mirror_traffic": after.mirror,
        "before": before.as_dict(),
        "undone": entry.change,
        "undone_at": entry.at,
    }
    return Result(data, [f"Rolled back {entry.change!r} (made {entry.at}):", *traffic.change_lines(before, after)])
