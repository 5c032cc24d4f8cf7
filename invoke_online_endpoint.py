"""Send a request file to an online endpoint and print the predictions, e.g. ["not-diabetic"].

Examples:
  python invoke_online_endpoint.py --endpoint_name diabetes-classify --request_file 09-deploy-model/sample-request.json
  python invoke_online_endpoint.py --endpoint_name diabetes-classify --deployment_name green --local

The endpoint's key or token is fetched for you and the request is POSTed to its scoring URI (on Azure, or the
local front door with --local). --deployment_name sends the request to that deployment whatever the traffic
split (the azureml-model-deployment header). A refused request is one line: the endpoint's status, the model's
own status (Azure answers 424 when score.py answers 400), and the error text.

Environment variables: AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZUREML_WORKSPACE_NAME (when the
workspace flags are not given), and those DefaultAzureCredential reads.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import scoring, validation
from common.cli import (
    add_flag,
    add_output_flags,
    add_target_flags,
    configure_logging,
    emit,
    new_parser,
    output,
    run_main,
)
from common.clients import get_client

SAMPLE_REQUEST = "09-deploy-model/sample-request.json"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = new_parser(__doc__)
    add_flag(parser, "--endpoint_name", required=True, help="the endpoint to call")
    add_flag(parser, "--deployment_name", help="call this deployment only (even one with 0%% of the traffic)")
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
    return scoring.score(client, args.endpoint_name, body, args.deployment_name, local=args.local)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.verbose)
    answer = invoke(get_client(args), args).strip()
    if args.output == "json":
        try:
            parsed: Any = json.loads(answer)
        except ValueError:
            parsed = answer
        emit({"endpoint": args.endpoint_name, "deployment": args.deployment_name, "answer": parsed}, "json", [])
    else:
        output(answer)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
