"""Send a request file to an online endpoint and print the predictions, e.g. ["not-diabetic"].

Examples:
  python invoke_online_endpoint.py --endpoint_name diabetes-classify --request_file 09-deploy-model/sample-request.json
  python invoke_online_endpoint.py --endpoint_name diabetes-classify --deployment_name green --local

On Azure this goes through MLClient.online_endpoints.invoke (the endpoint's key or token is fetched for you);
with --local, through the local endpoint's front door with its primary key. --deployment_name sends the request
to that deployment whatever the traffic split (the azureml-model-deployment header).

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

from common import validation
from common.cli import add_flag, add_target_flags, configure_logging, new_parser, run_main
from common.clients import get_client
from common.errors import UsageError

SAMPLE_REQUEST = "09-deploy-model/sample-request.json"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = new_parser(__doc__)
    add_flag(parser, "--endpoint_name", required=True, help="the endpoint to call")
    add_flag(parser, "--deployment_name", help="call this deployment only (even one with 0%% of the traffic)")
    add_flag(parser, "--request_file", default=SAMPLE_REQUEST, help="JSON request body (default: %(default)s)")
    add_target_flags(parser)
    add_flag(parser, "--verbose", action="store_true", help="debug logging, including the Azure SDK's HTTP calls")
    args = parser.parse_args(argv)
    validation.resource_name("endpoint", args.endpoint_name)
    if args.deployment_name:
        validation.resource_name("deployment", args.deployment_name)
    check_request_file(Path(args.request_file))
    return args


def check_request_file(path: Path) -> None:
    try:
        json.loads(path.read_text())
    except OSError as error:
        raise UsageError(f"--request_file {str(path)!r} cannot be read: {error.strerror}") from None
    except ValueError as error:
        raise UsageError(f"--request_file {str(path)!r} is not JSON: {error}") from None


def invoke(client: Any, args: argparse.Namespace) -> str:
    return str(
        client.online_endpoints.invoke(
            endpoint_name=args.endpoint_name, request_file=args.request_file, deployment_name=args.deployment_name
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.verbose)
    print(invoke(get_client(args), args).strip())
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
