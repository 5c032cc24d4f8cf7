"""invoke_online_endpoint.py: send a request file to an online endpoint and print the predictions.

The script is a dispatcher; its docstring is the --help text this module prints.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commands import Request
from commands.shared import SAMPLE_REQUEST
from common import contract, scoring, validation
from common.azure.surface import Client
from common.cli import add_flag, add_name_flag, emit, output, progress


@dataclass(frozen=True, kw_only=True)
class InvokeRequest(Request):
    deployment_name: str | None  # None: the endpoint's traffic split picks
    request_file: Path
    check_contract: bool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_name_flag(parser, "--endpoint_name", required=True, help="the endpoint to call")
    add_name_flag(parser, "--deployment_name", help="call this deployment only (even one with 0%% of the traffic)")
    add_flag(parser, "--request_file", default=SAMPLE_REQUEST, help="JSON request body (default: %(default)s)")
    add_flag(
        parser,
        "--check_contract",
        action="store_true",
        help="first check the request against the endpoint's OpenAPI document; send nothing when it does not fit",
    )


def validate(args: argparse.Namespace) -> InvokeRequest:
    validation.resource_name("endpoint", args.endpoint_name)
    if args.deployment_name is not None:  # an empty name would quietly route by traffic instead
        validation.resource_name("deployment", args.deployment_name)
    validation.request_file(Path(args.request_file))
    return InvokeRequest.of(
        args,
        deployment_name=args.deployment_name,
        request_file=Path(args.request_file),
        check_contract=args.check_contract,
    )


def run(client: Client, request: InvokeRequest) -> None:
    """The answer as the endpoint gave it (text), or inside one JSON object (--output json)."""
    body = request.request_file.read_bytes()
    if request.check_contract:
        name, deployment, target = request.endpoint_name, request.deployment_name, request.target
        progress(contract.require_fits(client, name, deployment, request.request_file, target=target))
    answer = scoring.score(client, request.endpoint_name, body, request.deployment_name, target=request.target)
    answer = answer.strip()
    if request.output == "json":
        try:
            parsed: Any = json.loads(answer)
        except ValueError:
            parsed = answer
        emit({"endpoint": request.endpoint_name, "deployment": request.deployment_name, "answer": parsed}, "json", [])
    else:
        output(answer)
