"""invoke_online_endpoint.py: send a request file to an online endpoint and print the predictions.

The script is a dispatcher; its docstring is the --help text this module prints.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from commands import client_for_args
from commands.shared import SAMPLE_REQUEST
from commands.target import of
from common import scoring, validation
from common.cli import (
    add_flag,
    add_name_flag,
    add_output_flags,
    add_target_flags,
    configure_logging,
    emit,
    new_parser,
    output,
)


def parse_args(argv: Sequence[str] | None, doc: str | None) -> argparse.Namespace:
    parser = new_parser(doc)
    add_name_flag(parser, "--endpoint_name", required=True, help="the endpoint to call")
    add_name_flag(parser, "--deployment_name", help="call this deployment only (even one with 0%% of the traffic)")
    add_flag(parser, "--request_file", default=SAMPLE_REQUEST, help="JSON request body (default: %(default)s)")
    add_target_flags(parser)
    add_output_flags(parser)
    args = parser.parse_args(argv)
    validation.resource_name("endpoint", args.endpoint_name)
    if args.deployment_name is not None:  # an empty name would quietly route by traffic instead
        validation.resource_name("deployment", args.deployment_name)
    validation.request_file(Path(args.request_file))
    return args


def invoke(client: Any, args: argparse.Namespace) -> str:
    body = Path(args.request_file).read_bytes()
    return scoring.score(client, args.endpoint_name, body, args.deployment_name, target=of(args))


def main(argv: Sequence[str] | None, doc: str | None) -> int:
    args = parse_args(argv, doc)
    configure_logging(args.verbose)
    answer = invoke(client_for_args(args), args).strip()
    if args.output == "json":
        try:
            parsed: Any = json.loads(answer)
        except ValueError:
            parsed = answer
        emit({"endpoint": args.endpoint_name, "deployment": args.deployment_name, "answer": parsed}, "json", [])
    else:
        output(answer)
    return 0
