"""logs: the last lines of a deployment's container log; locally --follow streams it until Ctrl-C."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from commands import DeploymentRequest, Result
from commands.shared import add_deployment_flag, endpoint_or_fail
from common import validation
from common.azure.surface import Client, on_local
from common.cli import add_flag, output, progress
from common.errors import UsageError
from common.terminal import printable

LOG_CONTAINERS = ("inference-server", "storage-initializer")  # Azure's two, as az ml online-deployment get-logs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_deployment_flag(parser, required=True)
    add_flag(parser, "--lines", type=int, default=100, help="how many lines (default: %(default)s)")
    add_flag(
        parser,
        "--container",
        choices=LOG_CONTAINERS,
        default=LOG_CONTAINERS[0],
        help="the deployment's container whose log to read (default: %(default)s)",
    )
    add_flag(parser, "--follow", action="store_true", help="local target: stream new lines until Ctrl-C")


@dataclass(frozen=True, kw_only=True)
class LogsRequest(DeploymentRequest):
    lines: int
    container: str
    follow: bool


def validate(args: argparse.Namespace) -> LogsRequest:
    validation.positive_count("--lines", args.lines)
    if args.follow and not args.local:
        raise UsageError(
            "--follow is for the local target (add --local): Azure's logs API returns the last lines only; run the "
            "command again, or query the deployment's console logs in Log Analytics"
        )
    if args.follow and (args.container != "inference-server" or args.output == "json"):
        raise UsageError("--follow streams the inference-server log as text: leave out --container and --output json")
    return LogsRequest.of(
        args, deployment_name=args.deployment_name, lines=args.lines, container=args.container, follow=args.follow
    )


def run(client: Client, request: LogsRequest) -> Result | None:
    endpoint_or_fail(client, request)
    if request.follow:
        follow(client, request)
        return None
    text = client.online_deployments.get_logs(
        name=request.deployment_name,
        endpoint_name=request.endpoint_name,
        lines=request.lines,
        container_type=request.container,
    )
    data = {"deployment": request.deployment_name, "container": request.container, "logs": text}
    return Result(data, [str(text).rstrip()])


def follow(client: Client, request: LogsRequest) -> None:
    """Stream the local server's log; Ctrl-C is how it ends, so it ends quietly."""
    lines = on_local(client).online_deployments.follow_logs(
        request.deployment_name, request.endpoint_name, request.lines
    )
    try:
        for chunk in lines:
            output(printable(chunk), end="")
    except KeyboardInterrupt:
        return
    progress(f"deployment {request.deployment_name} was deleted: its log ends here")
