"""Look after an online endpoint: show it, get its keys, read a deployment's logs, set traffic, delete.

Examples:
  python manage_online_endpoint.py show --endpoint_name diabetes-classify
  python manage_online_endpoint.py keys --endpoint_name diabetes-classify
  python manage_online_endpoint.py logs --endpoint_name diabetes-classify --deployment_name blue --lines 50
  python manage_online_endpoint.py traffic --endpoint_name diabetes-classify --set blue=90 green=10
  python manage_online_endpoint.py delete --endpoint_name diabetes-classify --deployment_name green --yes
  python manage_online_endpoint.py delete --endpoint_name diabetes-classify --yes
  python manage_online_endpoint.py probe --endpoint_name diabetes-classify --requests 200
  python manage_online_endpoint.py stop --endpoint_name diabetes-classify --local
  python manage_online_endpoint.py start --endpoint_name diabetes-classify --local

Every subcommand takes --local for the local target; start and stop exist only there (an Azure endpoint runs until
it is deleted). Environment variables: AZURE_SUBSCRIPTION_ID,
AZURE_RESOURCE_GROUP, AZUREML_WORKSPACE_NAME (when the workspace flags are not given), and those
DefaultAzureCredential reads.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import scoring, traffic, validation
from common.cli import (
    add_flag,
    add_output_flags,
    add_target_flags,
    configure_logging,
    emit,
    new_parser,
    progress,
    run_main,
    show_command,
    toolkit_command,
)
from common.clients import get_client
from common.errors import CliError, NotFoundError, UsageError
from common.operations import (
    DEPLOYMENT_HEADER,
    get_or_none,
    require_endpoint,
    state_name,
    update_endpoint,
    wait_with_progress,
)

SAMPLE_REQUEST = "09-deploy-model/sample-request.json"
HEALTH_PROPERTIES = ("health", "health_reason", "restarts", "local_environment")
MAX_PROBES = 10_000
PROBE_TIMEOUT_SECONDS = 30.0
PROGRESS_SECONDS = 2.0
LOCAL_ONLY = ("start", "stop")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = new_parser(__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    subcommands = {
        "show": "the endpoint: scoring URI, auth mode, traffic, deployments and their state",
        "keys": "the endpoint's keys (auth_mode key) or a token (aml_token)",
        "logs": "the last lines of a deployment's log",
        "traffic": "set the live traffic split",
        "delete": "delete a deployment (--deployment_name) or the whole endpoint",
        "probe": "send a request N times and count which deployment answered each (the traffic split at work)",
        "start": "local target: bring a stopped endpoint back as it was (port, keys, traffic, deployments)",
        "stop": "local target: stop the endpoint's processes and keep its state",
    }
    for name, summary in subcommands.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        add_flag(sub, "--endpoint_name", required=True, help="the endpoint")
        if name in ("logs", "delete"):
            add_flag(sub, "--deployment_name", required=name == "logs", help="the deployment")
        if name == "logs":
            add_flag(sub, "--lines", type=int, default=100, help="how many lines (default: %(default)s)")
        if name == "traffic":
            add_flag(sub, "--set", nargs="+", required=True, metavar="DEPLOYMENT=PERCENT", dest="assignments")
        if name == "delete":
            add_flag(sub, "--yes", action="store_true", help="confirm the deletion")
        if name == "probe":
            add_flag(sub, "--requests", type=int, default=200, help=f"how many, 1-{MAX_PROBES} (default: %(default)s)")
            add_flag(sub, "--request_file", default=SAMPLE_REQUEST, help="request body (default: %(default)s)")
        add_target_flags(sub)
        add_output_flags(sub)
    args = parser.parse_args(argv)
    validation.resource_name("endpoint", args.endpoint_name)
    if getattr(args, "deployment_name", None):
        validation.resource_name("deployment", args.deployment_name)
    if args.command == "logs":
        validation.positive_count("--lines", args.lines)
    if args.command == "probe" and not 1 <= args.requests <= MAX_PROBES:
        raise UsageError(f"invalid --requests {args.requests}: use 1 to {MAX_PROBES}")
    if args.command == "probe":
        validation.request_file(Path(args.request_file))
    if args.command == "traffic":
        args.plan = traffic.parse_assignments(args.assignments)
    if args.command in LOCAL_ONLY and not args.local:
        raise UsageError(
            f"{args.command} is for local endpoints (add --local): an Azure managed online endpoint runs until it is "
            "deleted"
        )
    if args.command == "delete" and not args.yes:
        what = f"deployment {args.deployment_name!r} of " if args.deployment_name else ""
        raise UsageError(f"add --yes to confirm deleting {what}endpoint {args.endpoint_name!r}")
    return args


def endpoint_or_fail(client: Any, args: argparse.Namespace) -> Any:
    return require_endpoint(client, args.endpoint_name, local=args.local)


def show(client: Any, args: argparse.Namespace) -> None:
    endpoint = endpoint_or_fail(client, args)
    deployments = [
        {
            "name": d.name,
            "provisioning_state": state_name(d.provisioning_state),
            "model": d.model if isinstance(d.model, str) else getattr(d.model, "path", str(d.model)),
            "instance_type": d.instance_type,
            "instance_count": d.instance_count,
            "traffic": int((endpoint.traffic or {}).get(d.name, 0)),
            # the local target reports how each deployment's server is doing; Azure reports no such property
            **{key: (d.properties or {})[key] for key in HEALTH_PROPERTIES if key in (d.properties or {})},
        }
        for d in client.online_deployments.list(args.endpoint_name)
    ]
    result = {
        "name": endpoint.name,
        "scoring_uri": endpoint.scoring_uri,
        "auth_mode": endpoint.auth_mode,
        "provisioning_state": state_name(endpoint.provisioning_state),
        "traffic": dict(endpoint.traffic or {}),
        "mirror_traffic": dict(endpoint.mirror_traffic or {}),
        "deployments": deployments,
    }
    lines = [
        f"Endpoint:           {endpoint.name}",
        f"Scoring URI:        {endpoint.scoring_uri}",
        f"Auth mode:          {endpoint.auth_mode}",
        f"Provisioning state: {result['provisioning_state']}",
        f"Traffic:            {traffic.describe(result['traffic']) or 'none'}",
        f"Mirror traffic:     {traffic.describe(result['mirror_traffic']) or 'none'}",
        "Deployments:" if deployments else "Deployments:        none",
    ]
    for d in deployments:
        health = f" {d['health']:10}" if "health" in d else ""
        lines.append(
            f"  {d['name']:24} {d['provisioning_state'] or '?':10}{health} {d['traffic']:3}%  {d['model']}  "
            f"{d['instance_count']} x {d['instance_type']}"
        )
        if d.get("health_reason"):
            lines.append(f"    {d['health_reason'].splitlines()[0]}")
        if d.get("local_environment"):
            lines.append(f"    environment: {d['local_environment']}")
    emit(result, args.output, lines)


def keys(client: Any, args: argparse.Namespace) -> None:
    endpoint_or_fail(client, args)
    credentials = client.online_endpoints.get_keys(args.endpoint_name)
    if getattr(credentials, "primary_key", None):
        result = {"primary_key": credentials.primary_key, "secondary_key": credentials.secondary_key}
        lines = [f"Primary key:   {credentials.primary_key}", f"Secondary key: {credentials.secondary_key}"]
    else:
        expires = datetime.datetime.fromtimestamp(float(credentials.expiry_time_utc), tz=datetime.UTC)
        result = {"access_token": credentials.access_token, "expiry_time_utc": expires.isoformat()}
        lines = [f"Token:   {credentials.access_token}", f"Expires: {expires.isoformat()}"]
    emit(result, args.output, lines)


def logs(client: Any, args: argparse.Namespace) -> None:
    endpoint_or_fail(client, args)
    text = client.online_deployments.get_logs(
        name=args.deployment_name, endpoint_name=args.endpoint_name, lines=args.lines
    )
    emit({"deployment": args.deployment_name, "logs": text}, args.output, [str(text).rstrip()])


def set_traffic(client: Any, args: argparse.Namespace) -> None:
    endpoint_or_fail(client, args)
    existing = {d.name for d in client.online_deployments.list(args.endpoint_name)}
    unknown = sorted(set(args.plan) - existing)
    if unknown:
        raise UsageError(
            f"endpoint {args.endpoint_name!r} has no deployment {', '.join(map(repr, unknown))}; "
            f"it has: {', '.join(sorted(existing)) or 'none'}"
        )

    def assign(endpoint: Any) -> None:
        endpoint.traffic = dict(args.plan)
        endpoint.mirror_traffic, cleared = traffic.without_live_mirrors(args.plan, dict(endpoint.mirror_traffic or {}))
        if cleared:
            progress(traffic.mirror_note(cleared))

    update_endpoint(client, args.endpoint_name, assign, local=args.local, what=f"traffic on {args.endpoint_name}")
    emit({"traffic": args.plan}, args.output, [f"Traffic: {traffic.describe(args.plan)}"])


def delete(client: Any, args: argparse.Namespace) -> None:
    endpoint = get_or_none(client.online_endpoints.get, args.endpoint_name)
    if endpoint is None:
        raise NotFoundError(f"endpoint {args.endpoint_name!r} not found: there is nothing to delete")
    check = show_command(args.endpoint_name, local=args.local)
    if args.deployment_name:
        share = int((endpoint.traffic or {}).get(args.deployment_name, 0))
        mirrored = int((endpoint.mirror_traffic or {}).get(args.deployment_name, 0))
        if share or mirrored:
            raise UsageError(
                f"deployment {args.deployment_name!r} takes {share or mirrored}% of the "
                f"{'live' if share else 'mirror'} traffic of {args.endpoint_name!r}; move it to other deployments "
                "first (manage_online_endpoint.py traffic --set ...)"
            )
        poller = client.online_deployments.begin_delete(name=args.deployment_name, endpoint_name=args.endpoint_name)
        wait_with_progress(poller, f"deleting deployment {args.deployment_name}", check)
        emit({"deleted": args.deployment_name}, args.output, [f"Deleted deployment {args.deployment_name}"])
        return
    poller = client.online_endpoints.begin_delete(name=args.endpoint_name)
    wait_with_progress(poller, f"deleting endpoint {args.endpoint_name}", check)
    emit({"deleted": args.endpoint_name}, args.output, [f"Deleted endpoint {args.endpoint_name} and its deployments"])


def probe(client: Any, args: argparse.Namespace) -> None:
    """POST the request file N times to the scoring URI and count the azureml-model-deployment response header."""
    import httpx

    endpoint = endpoint_or_fail(client, args)
    headers = scoring.request_headers(client, args.endpoint_name)
    body = Path(args.request_file).read_bytes()
    answered: collections.Counter[str] = collections.Counter()
    progress(f"Sending {args.requests} requests to {endpoint.scoring_uri} ...")
    last_progress = time.monotonic()
    with httpx.Client(timeout=PROBE_TIMEOUT_SECONDS) as http:
        for sent in range(1, args.requests + 1):
            if time.monotonic() - last_progress >= PROGRESS_SECONDS:
                progress(f"  {sent - 1}/{args.requests} answered")
                last_progress = time.monotonic()
            try:
                response = http.post(endpoint.scoring_uri, content=body, headers=headers)
            except httpx.TransportError as error:
                raise CliError(f"{endpoint.scoring_uri} is not reachable: {error}") from None
            served_by = response.headers.get(DEPLOYMENT_HEADER, "unknown")
            answered[served_by if response.status_code < 400 else f"{served_by} (HTTP {response.status_code})"] += 1
    split = dict(answered.most_common())
    lines = [f"{args.requests} requests to {args.endpoint_name}:"]
    lines += [f"  {name:24} {count:5}  {100 * count / args.requests:5.1f}%" for name, count in split.items()]
    lines.append(f"Configured traffic: {traffic.describe(dict(endpoint.traffic or {})) or 'none'}")
    emit({"requests": args.requests, "answered_by": split, "traffic": dict(endpoint.traffic or {})}, args.output, lines)


def start(client: Any, args: argparse.Namespace) -> None:
    poller = client.online_endpoints.begin_start(args.endpoint_name)
    wait_with_progress(poller, f"starting {args.endpoint_name}", show_command(args.endpoint_name, local=True))
    show(client, args)


def stop(client: Any, args: argparse.Namespace) -> None:
    poller = client.online_endpoints.begin_stop(args.endpoint_name)
    wait_with_progress(poller, f"stopping {args.endpoint_name}", show_command(args.endpoint_name, local=True))
    again = toolkit_command("manage_online_endpoint.py", "start", "--endpoint_name", args.endpoint_name, local=True)
    lines = [
        f"Stopped local endpoint {args.endpoint_name}: its front door and deployment servers; its state is kept.",
        f"Start it again with: {again}",
    ]
    emit({"stopped": args.endpoint_name, "start_command": again}, args.output, lines)


COMMANDS = {
    "show": show,
    "keys": keys,
    "logs": logs,
    "traffic": set_traffic,
    "delete": delete,
    "probe": probe,
    "start": start,
    "stop": stop,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.verbose)
    COMMANDS[args.command](get_client(args), args)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
