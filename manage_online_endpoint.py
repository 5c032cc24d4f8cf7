"""Look after an online endpoint: show it, keys, logs, traffic and safe rollout, metrics, delete.

Examples:
  python manage_online_endpoint.py show --endpoint_name diabetes-classify
  python manage_online_endpoint.py keys --endpoint_name diabetes-classify
  python manage_online_endpoint.py keys --endpoint_name diabetes-classify --regenerate secondary
  python manage_online_endpoint.py logs --endpoint_name diabetes-classify --deployment_name blue --lines 50
  python manage_online_endpoint.py logs --endpoint_name diabetes-classify --deployment_name blue --local --follow
  python manage_online_endpoint.py traffic --endpoint_name diabetes-classify --set blue=90 green=10
  python manage_online_endpoint.py traffic --endpoint_name diabetes-classify --mirror green=10
  python manage_online_endpoint.py metrics --endpoint_name diabetes-classify --minutes 10
  python manage_online_endpoint.py rollout --endpoint_name diabetes-classify --deployment_name green \\
      --steps 10 50 100 --bake_seconds 300 --max_error_percent 1 --max_p95_ms 500
  python manage_online_endpoint.py promote --endpoint_name diabetes-classify --deployment_name green
  python manage_online_endpoint.py rollback --endpoint_name diabetes-classify
  python manage_online_endpoint.py delete --endpoint_name diabetes-classify --deployment_name green --yes
  python manage_online_endpoint.py delete --endpoint_name diabetes-classify --deployment_name blue --force --yes
  python manage_online_endpoint.py delete --endpoint_name diabetes-classify --yes
  python manage_online_endpoint.py autoscale --endpoint_name diabetes-classify --deployment_name blue \\
      --min 1 --max 5 --default 2 --cpu_out 70 --cpu_in 30 --latency_out_ms 70 --cooldown_minutes 5
  python manage_online_endpoint.py probe --endpoint_name diabetes-classify --requests 200
  python manage_online_endpoint.py stop --endpoint_name diabetes-classify --local
  python manage_online_endpoint.py start --endpoint_name diabetes-classify --local

Every subcommand takes --local for the local target; start and stop exist only there (an Azure endpoint runs until
it is deleted). traffic, promote, rollout and create_online_deployment.py --traffic_allocation record the split
they replace in the endpoint's tags; rollback restores the most recent one. Exit codes: 0 done, 1 failed, 2 bad
input, 3 not found (rollback: no history), 9 a rollout crossed a limit and was rolled back, 130 interrupted (a
rollout restores the split from before it). Environment variables: AZURE_SUBSCRIPTION_ID,
AZURE_RESOURCE_GROUP, AZUREML_WORKSPACE_NAME (when the workspace flags are not given), and those
DefaultAzureCredential reads.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import autoscale, deployment_settings, history, metrics, rollout, scoring, traffic, validation
from common.cli import (
    add_flag,
    add_output_flags,
    add_target_flags,
    configure_logging,
    emit,
    new_parser,
    output,
    progress,
    run_main,
    show_command,
    toolkit_command,
    workspace_flags,
)
from common.clients import get_client, get_monitor_client
from common.errors import CliError, NotFoundError, UsageError
from common.operations import (
    DEPLOYMENT_HEADER,
    get_or_none,
    require_endpoint,
    state_name,
    wait_with_progress,
)
from common.workspace import resolve_workspace

SAMPLE_REQUEST = "09-deploy-model/sample-request.json"
HEALTH_PROPERTIES = ("health", "health_reason", "restarts", "local_environment")
MAX_PROBES = 10_000
PROBE_TIMEOUT_SECONDS = 30.0
PROGRESS_SECONDS = 2.0
LOCAL_ONLY = ("start", "stop")
DRY_RUN_LOCATION = "<the endpoint's location>"  # read from the endpoint when the setting is applied


SUBCOMMANDS = {
    "show": "the endpoint: scoring URI, auth mode, traffic, deployments and their state",
    "keys": "the endpoint's keys (auth_mode key) or a token (aml_token)",
    "logs": "the last lines of a deployment's log",
    "traffic": "set the live traffic split (--set) and the mirror (shadow) traffic (--mirror)",
    "promote": "give a deployment 100%% of the live traffic (and none of the mirror traffic)",
    "rollback": "restore the split in force before the last traffic change this toolkit made",
    "metrics": "requests, 4xx and 5xx, p50/p95/p99 latency per deployment over the last minutes",
    "rollout": "raise a deployment's share step by step, judge each step's metrics, roll back on a crossed limit",
    "autoscale": "an Azure Monitor autoscale setting for a deployment: CPU rules, optionally request latency",
    "delete": "delete a deployment (--deployment_name) or the whole endpoint",
    "probe": "send a request N times and count which deployment answered each (the traffic split at work)",
    "start": "local target: bring a stopped endpoint back as it was (port, keys, traffic, deployments)",
    "stop": "local target: stop the endpoint's processes and keep its state",
}
NEEDS_DEPLOYMENT = ("logs", "promote", "rollout", "autoscale")
KEY_TYPES = ("primary", "secondary", "token")
LOG_CONTAINERS = ("inference-server", "storage-initializer")  # Azure's two, as az ml online-deployment get-logs
ROLLOUT_DEFAULTS = {"bake_seconds": 300, "max_error_percent": 1.0, "max_p95_ms": 500.0, "min_requests": 20}
MAX_BAKE_SECONDS = 24 * 3600


def add_command_flags(name: str, sub: argparse.ArgumentParser) -> None:
    """The flags of one subcommand, beside --endpoint_name and the target and output flags."""
    if name in ("logs", "delete", "metrics", *NEEDS_DEPLOYMENT):
        add_flag(sub, "--deployment_name", required=name in NEEDS_DEPLOYMENT, help="the deployment")
    if name == "keys":
        add_flag(
            sub,
            "--regenerate",
            choices=KEY_TYPES,
            help="replace this key (auth_mode key); token: revoke every token issued (local target)",
        )
    if name == "logs":
        add_flag(sub, "--lines", type=int, default=100, help="how many lines (default: %(default)s)")
        add_flag(
            sub,
            "--container",
            choices=LOG_CONTAINERS,
            default=LOG_CONTAINERS[0],
            help="the deployment's container whose log to read (default: %(default)s)",
        )
        add_flag(sub, "--follow", action="store_true", help="local target: stream new lines until Ctrl-C")
    if name == "traffic":
        add_flag(sub, "--set", nargs="+", metavar="DEPLOYMENT=PERCENT", dest="assignments", help="live shares")
        add_flag(sub, "--mirror", nargs="+", metavar="DEPLOYMENT=PERCENT", help="mirror share (at most 50), or none")
    if name == "delete":
        add_flag(sub, "--yes", action="store_true", help="confirm the deletion")
        add_flag(
            sub,
            "--force",
            action="store_true",
            help="delete a deployment that takes traffic: move its share to the others first (confirms, too)",
        )
    if name == "autoscale":
        add_autoscale_flags(sub)
    if name == "metrics":
        add_flag(sub, "--minutes", type=int, default=5, help="the window: the last N minutes (default: %(default)s)")
    if name == "rollout":
        add_flag(sub, "--steps", nargs="+", type=int, required=True, metavar="PERCENT", help="e.g. 10 50 100")
        for flag, kind, what in (
            ("bake_seconds", int, "how long each step runs before it is judged"),
            ("max_error_percent", float, "highest error percentage (4xx and 5xx) a step may show"),
            ("max_p95_ms", float, "highest p95 latency a step may show"),
            ("min_requests", int, "fewest requests the deployment must serve in a step"),
        ):
            default = ROLLOUT_DEFAULTS[flag]
            add_flag(sub, f"--{flag}", type=kind, default=default, help=f"{what} (default: %(default)s)")
        add_flag(
            sub,
            "--probe_requests",
            type=int,
            default=0,
            help="local target: send the sample request N times "
            "during each bake, through the traffic split (default: none)",
        )
    if name in ("probe", "rollout"):
        add_flag(sub, "--request_file", default=SAMPLE_REQUEST, help="request body (default: %(default)s)")
    if name == "probe":
        add_flag(sub, "--requests", type=int, default=200, help=f"how many, 1-{MAX_PROBES} (default: %(default)s)")


AUTOSCALE_CAPACITY = ("min", "max", "default", "cpu_out", "cpu_in")


def add_autoscale_flags(sub: argparse.ArgumentParser) -> None:
    for flag, kind, what in (
        ("min", int, "fewest instances"),
        ("max", int, "most instances"),
        ("default", int, "instances when no metric is available"),
        ("cpu_out", float, "add an instance above this average CPU %%"),
        ("cpu_in", float, "remove an instance below this average CPU %%"),
        ("latency_out_ms", float, "also add an instance above this average request latency (the endpoint's)"),
    ):
        add_flag(sub, f"--{flag}", type=kind, help=what)
    add_flag(sub, "--cooldown_minutes", type=int, default=5, help="wait after a scale action (default: %(default)s)")
    add_flag(sub, "--dry_run", action="store_true", help="print the setting's JSON; contact nothing")
    add_flag(sub, "--show", action="store_true", help="show the deployment's autoscale setting")
    add_flag(sub, "--delete", action="store_true", help="delete the deployment's autoscale setting")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = new_parser(__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, summary in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        add_flag(sub, "--endpoint_name", required=True, help="the endpoint")
        add_command_flags(name, sub)
        add_target_flags(sub)
        add_output_flags(sub)
    args = parser.parse_args(argv)
    validate(args)
    return args


def validate(args: argparse.Namespace) -> None:
    """Every check that needs no call: bad values are refused before anything is read or written."""
    validation.resource_name("endpoint", args.endpoint_name)
    if getattr(args, "deployment_name", None):
        validation.resource_name("deployment", args.deployment_name)
    if args.command == "keys" and args.regenerate == "token" and not args.local:
        show_keys = toolkit_command(
            "manage_online_endpoint.py", "keys", "--endpoint_name", args.endpoint_name, local=False
        )
        raise UsageError(
            "Azure has no way to revoke aml_token tokens: each expires on its own (after 24 hours at most); a new one "
            f"comes from: {show_keys}"
        )
    if args.command == "logs":
        validate_logs(args)
    if args.command == "probe" and not 1 <= args.requests <= MAX_PROBES:
        raise UsageError(f"invalid --requests {args.requests}: use 1 to {MAX_PROBES}")
    if args.command in ("probe", "rollout"):
        validation.request_file(Path(args.request_file))
    if args.command == "traffic":
        if not args.assignments and not args.mirror:
            raise UsageError(
                "traffic needs --set DEPLOYMENT=PERCENT ..., --mirror DEPLOYMENT=PERCENT (or none), or both"
            )
        args.plan = traffic.parse_assignments(args.assignments) if args.assignments else None
        args.mirror_plan = traffic.parse_mirror(args.mirror) if args.mirror else None
    if args.command == "metrics":
        limit = metrics.LOCAL_RETENTION_MINUTES if args.local else metrics.AzureMonitorMetrics.max_minutes
        if not 1 <= args.minutes <= limit:
            where = "the local front door keeps the last hour" if args.local else "Azure Monitor keeps 93 days"
            raise UsageError(f"invalid --minutes {args.minutes}: use 1 to {limit} ({where})")
    if args.command == "rollout":
        validate_rollout(args)
    if args.command == "autoscale":
        validate_autoscale(args)
    if args.command in LOCAL_ONLY and not args.local:
        raise UsageError(
            f"{args.command} is for local endpoints (add --local): an Azure managed online endpoint runs until it is "
            "deleted"
        )
    if args.command == "delete" and not args.yes and not (args.force and args.deployment_name):
        what = f"deployment {args.deployment_name!r} of " if args.deployment_name else ""
        raise UsageError(f"add --yes to confirm deleting {what}endpoint {args.endpoint_name!r}")


def validate_logs(args: argparse.Namespace) -> None:
    validation.positive_count("--lines", args.lines)
    if args.follow and not args.local:
        raise UsageError(
            "--follow is for the local target (add --local): Azure's logs API returns the last lines only; run the "
            "command again, or query the deployment's console logs in Log Analytics"
        )
    if args.follow and (args.container != "inference-server" or args.output == "json"):
        raise UsageError("--follow streams the inference-server log as text: leave out --container and --output json")


def validate_autoscale(args: argparse.Namespace) -> None:
    if args.local:
        raise UsageError(
            "autoscale is an Azure Monitor setting on an Azure deployment: the local target runs a fixed number of "
            "workers per deployment (--instance_count of create_online_deployment.py), so it has nothing to scale"
        )
    if sum((args.show, args.delete, args.dry_run)) > 1:
        raise UsageError("use one of --show, --delete and --dry_run")
    if args.show or args.delete:
        return
    missing = [f"--{flag}" for flag in AUTOSCALE_CAPACITY if getattr(args, flag) is None]
    if missing:
        raise UsageError(f"autoscale needs {' '.join(missing)} (or --show, or --delete)")
    args.plan = autoscale.check(
        autoscale.Plan(
            minimum=args.min,
            maximum=args.max,
            default=args.default,
            cpu_out=args.cpu_out,
            cpu_in=args.cpu_in,
            latency_out_ms=args.latency_out_ms,
            cooldown_minutes=args.cooldown_minutes,
        )
    )


def validate_rollout(args: argparse.Namespace) -> None:
    args.steps = rollout.check_steps(args.steps)
    if not 1 <= args.bake_seconds <= MAX_BAKE_SECONDS:
        raise UsageError(f"invalid --bake_seconds {args.bake_seconds}: use 1 to {MAX_BAKE_SECONDS}")
    if not 0 <= args.max_error_percent <= 100:
        raise UsageError(f"invalid --max_error_percent {args.max_error_percent:g}: use 0 to 100")
    if not args.max_p95_ms > 0:
        raise UsageError(f"invalid --max_p95_ms {args.max_p95_ms:g}: use a number of milliseconds above 0")
    validation.positive_count("--min_requests", args.min_requests)
    if args.probe_requests and not args.local:
        raise UsageError(
            "--probe_requests is for the local target (add --local): on Azure a rollout judges the traffic your "
            "clients send"
        )
    if not 0 <= args.probe_requests <= MAX_PROBES:
        raise UsageError(f"invalid --probe_requests {args.probe_requests}: use 0 to {MAX_PROBES}")
    expected = args.probe_requests * args.steps[0] / 100
    if args.probe_requests and expected < 2 * args.min_requests:
        needed = -(-2 * args.min_requests * 100 // args.steps[0])
        raise UsageError(
            f"--probe_requests {args.probe_requests} gives {args.deployment_name} about {expected:g} requests at its "
            f"first step ({args.steps[0]}%), too close to --min_requests {args.min_requests} to judge it: use "
            f"--probe_requests {needed} or more"
        )


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
            "settings": deployment_settings.in_force(d),
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
        lines.append(f"    settings: {deployment_settings.describe(d['settings'])}")
    emit(result, args.output, lines)


def keys(client: Any, args: argparse.Namespace) -> None:
    endpoint = endpoint_or_fail(client, args)
    if args.regenerate:
        regenerate_key(client, args, str(endpoint.auth_mode).lower())
        return
    credentials = client.online_endpoints.get_keys(args.endpoint_name)
    if getattr(credentials, "primary_key", None):
        result = {"primary_key": credentials.primary_key, "secondary_key": credentials.secondary_key}
        lines = [f"Primary key:   {credentials.primary_key}", f"Secondary key: {credentials.secondary_key}"]
    else:
        expires = datetime.datetime.fromtimestamp(float(credentials.expiry_time_utc), tz=datetime.UTC)
        result = {"access_token": credentials.access_token, "expiry_time_utc": expires.isoformat()}
        lines = [f"Token:   {credentials.access_token}", f"Expires: {expires.isoformat()}"]
    emit(result, args.output, lines)


def regenerate_key(client: Any, args: argparse.Namespace, auth_mode: str) -> None:
    """Replace one key (or, locally, the token secret); the other key keeps working throughout."""
    name, key_type = args.endpoint_name, args.regenerate
    show_keys = toolkit_command("manage_online_endpoint.py", "keys", "--endpoint_name", name, local=args.local)
    if key_type == "token" and auth_mode == "key":
        raise UsageError(
            f"endpoint {name!r} uses auth_mode key, so it has keys, not tokens: use --regenerate primary or secondary"
        )
    if key_type != "token" and auth_mode != "key":
        revoke = ": --regenerate token revokes its tokens" if args.local else ""
        raise UsageError(f"endpoint {name!r} uses auth_mode {auth_mode}, which has no keys to regenerate{revoke}")
    before = client.online_endpoints.get_keys(name) if key_type != "token" else None
    poller = client.online_endpoints.begin_regenerate_keys(name, key_type=key_type)
    wait_with_progress(poller, f"regenerating the {key_type} key of {name}", show_command(name, local=args.local))
    if before is not None and getattr(client.online_endpoints.get_keys(name), f"{key_type}_key") == getattr(
        before, f"{key_type}_key"
    ):
        raise CliError(
            f"the {key_type} key of {name!r} is unchanged after the regenerate request: treat it as not rotated and "
            "try again"
        )
    if key_type == "token":
        line = f"Revoked every token issued for {name}; a new one comes from: {show_keys}"
    else:
        other = "secondary" if key_type == "primary" else "primary"
        line = f"Regenerated the {key_type} key of {name}: the old one is refused, the {other} key still works. "
        line += f"The new key: {show_keys}"
    emit({"endpoint": name, "regenerated": key_type}, args.output, [line])


def logs(client: Any, args: argparse.Namespace) -> None:
    endpoint_or_fail(client, args)
    if args.follow:
        follow_logs(client, args)
        return
    text = client.online_deployments.get_logs(
        name=args.deployment_name, endpoint_name=args.endpoint_name, lines=args.lines, container_type=args.container
    )
    result = {"deployment": args.deployment_name, "container": args.container, "logs": text}
    emit(result, args.output, [str(text).rstrip()])


def follow_logs(client: Any, args: argparse.Namespace) -> None:
    """Stream the local server's log; Ctrl-C is how it ends, so it ends quietly."""
    lines = client.online_deployments.follow_logs(args.deployment_name, args.endpoint_name, args.lines)
    try:
        for chunk in lines:
            output(chunk, end="")
    except KeyboardInterrupt:
        return
    progress(f"deployment {args.deployment_name} was deleted: its log ends here")


def deployment_states(client: Any, endpoint_name: str) -> dict[str, str]:
    """{deployment: provisioning state} of the endpoint's deployments."""
    return {
        d.name: (state_name(d.provisioning_state) or "Succeeded") for d in client.online_deployments.list(endpoint_name)
    }


def require_deployments(
    names: Any,
    existing: dict[str, str],
    args: argparse.Namespace,
    *,
    serving: Any = (),
    missing: type[CliError] = NotFoundError,
) -> None:
    """Each of `names` exists, and each of `serving` succeeded (Azure sends traffic to nothing else)."""
    unknown = sorted(set(names) - set(existing))
    if unknown:
        raise missing(
            f"endpoint {args.endpoint_name!r} has no deployment {', '.join(map(repr, unknown))}; "
            f"it has: {', '.join(sorted(existing)) or 'none'}"
        )
    failed = sorted(name for name in serving if existing[name].lower() != "succeeded")
    if failed:
        raise UsageError(
            f"deployment {failed[0]!r} is {existing[failed[0]]}, not Succeeded: it cannot take traffic; check it "
            f"with: {show_command(args.endpoint_name, local=args.local)}"
        )


def report_change(args: argparse.Namespace, before: traffic.Split, after: traffic.Split, what: str) -> None:
    lines = traffic.change_lines(before, after)
    if after == before:
        lines.append(f"{what}: nothing to change")
    result = {"traffic": after.live, "mirror_traffic": after.mirror, "before": before.as_dict()}
    emit(result, args.output, lines)


def set_traffic(client: Any, args: argparse.Namespace) -> None:
    endpoint_or_fail(client, args)
    existing = deployment_states(client, args.endpoint_name)
    given = args.plan or {}
    serving = [name for name, share in given.items() if share]
    require_deployments(given, existing, args, serving=serving, missing=UsageError)

    def decide(before: traffic.Split) -> traffic.Split:
        live = args.plan if args.plan is not None else before.live
        if args.mirror_plan is None:
            return traffic.Split(live, traffic.without_live_mirrors(live, before.mirror)[0])
        traffic.check_mirror(args.mirror_plan, live, existing)
        return traffic.Split(live, args.mirror_plan)

    change = " ".join(
        [
            "traffic",
            *(["--set", *args.assignments] if args.plan else []),
            *(["--mirror", *args.mirror] if args.mirror else []),
        ]
    )
    # change_split runs `decide` on the endpoint as read before it writes: Azure's mirror rules refuse before any write
    before, after = history.change_split(client, args.endpoint_name, decide, local=args.local, change=change)
    cleared = traffic.mirrors_cleared(before, after)
    if args.mirror_plan is None and cleared:
        progress(traffic.mirror_note(cleared))
    report_change(args, before, after, "traffic")


def promote(client: Any, args: argparse.Namespace) -> None:
    endpoint_or_fail(client, args)
    name = args.deployment_name
    require_deployments([name], deployment_states(client, args.endpoint_name), args, serving=[name])
    before, after = history.change_split(
        client,
        args.endpoint_name,
        lambda current: traffic.promoted(current, args.deployment_name),
        local=args.local,
        change=f"promote {args.deployment_name}",
    )
    report_change(args, before, after, "promote")


def rollback(client: Any, args: argparse.Namespace) -> None:
    endpoint_or_fail(client, args)
    existing = set(deployment_states(client, args.endpoint_name))
    before, after, entry = history.roll_back(client, args.endpoint_name, existing, local=args.local)
    lines = [f"Rolled back {entry.change!r} (made {entry.at}):", *traffic.change_lines(before, after)]
    result = {
        "traffic": after.live,
        "mirror_traffic": after.mirror,
        "before": before.as_dict(),
        "undone": entry.change,
        "undone_at": entry.at,
    }
    emit(result, args.output, lines)


def show_metrics(client: Any, args: argparse.Namespace) -> None:
    endpoint = endpoint_or_fail(client, args)
    names = sorted(deployment_states(client, args.endpoint_name))
    if args.deployment_name:
        require_deployments([args.deployment_name], dict.fromkeys(names, "Succeeded"), args)
        names = [args.deployment_name]
    end = time.time()
    start = end - args.minutes * 60
    found = metrics.source(client, endpoint, local=args.local).window(start, end)
    lines = [f"Metrics of {args.endpoint_name}, the last {args.minutes} min (per deployment):"]
    result: dict[str, Any] = {"endpoint": args.endpoint_name, "minutes": args.minutes, "deployments": {}}
    for name in names:
        figures = found.get(name) or metrics.DeploymentFigures(name, metrics.Figures())
        lines.append(f"  {name:24} {figures.live.line()}")
        entry: dict[str, Any] = {"live": figures.live.as_dict()}
        if args.local:
            mirrored = figures.mirrored or metrics.Figures()
            entry["mirrored"] = mirrored.as_dict()
            if mirrored.requests:
                lines.append(f"  {'':24} mirrored copies: {mirrored.line()}")
        result["deployments"][name] = entry
    note = metrics.LOCAL_NOTE if args.local else metrics.AZURE_NOTE
    result["note"] = note
    lines.append(f"Note: {note}")
    emit(result, args.output, lines)


def run_rollout(client: Any, args: argparse.Namespace) -> None:
    endpoint = endpoint_or_fail(client, args)
    existing = deployment_states(client, args.endpoint_name)
    require_deployments([args.deployment_name], existing, args, serving=[args.deployment_name])
    before = traffic.Split.of(endpoint)
    rollout.plan(before, args.deployment_name, args.steps)  # an impossible step is refused before any write
    if not args.local and args.bake_seconds < 60:
        progress("note: Azure Monitor reports per minute, so each step is judged on whole minutes")
    prober = None
    if args.probe_requests:
        headers = scoring.request_headers(client, args.endpoint_name)
        prober = rollout.Prober(
            endpoint.scoring_uri, headers, Path(args.request_file).read_bytes(), args.probe_requests
        )
    limits = rollout.Limits(args.max_error_percent, args.max_p95_ms, args.min_requests)
    run = rollout.Rollout(
        client=client,
        endpoint_name=args.endpoint_name,
        deployment=args.deployment_name,
        steps=args.steps,
        bake_seconds=args.bake_seconds,
        limits=limits,
        local=args.local,
        source=metrics.source(client, endpoint, local=args.local),
        report=progress if args.output == "json" else output,
        prober=prober,
    )
    final = run.run(before)
    result = {
        "endpoint": args.endpoint_name,
        "deployment": args.deployment_name,
        "outcome": "completed",
        "traffic": final.live,
        "mirror_traffic": final.mirror,
        "before": before.as_dict(),
        "steps": [record.as_dict() for record in run.records],
    }
    emit(result, args.output, [f"Rollout of {args.deployment_name} completed:", *traffic.change_lines(before, final)])


def delete(client: Any, args: argparse.Namespace) -> None:
    endpoint = get_or_none(client.online_endpoints.get, args.endpoint_name)
    if endpoint is None:
        raise NotFoundError(f"endpoint {args.endpoint_name!r} not found: there is nothing to delete")
    check = show_command(args.endpoint_name, local=args.local)
    if args.deployment_name:
        delete_deployment(client, args, traffic.Split.of(endpoint), check)
        return
    split = traffic.Split.of(endpoint)
    names = sorted(deployment_states(client, args.endpoint_name))
    shares = ", ".join(f"{name} ({split.live.get(name, 0)}%)" for name in names) or "none"
    progress(f"Deleting endpoint {args.endpoint_name} ({endpoint.scoring_uri}) and its deployments: {shares}")
    poller = client.online_endpoints.begin_delete(name=args.endpoint_name)
    wait_with_progress(poller, f"deleting endpoint {args.endpoint_name}", check)
    result = {"deleted": args.endpoint_name, "deployments": names}
    emit(
        result,
        args.output,
        [f"Deleted endpoint {args.endpoint_name} and its deployments ({', '.join(names) or 'none'})"],
    )


def delete_deployment(client: Any, args: argparse.Namespace, split: traffic.Split, check: str) -> None:
    """Delete one deployment; with --force, first move its live share to the others (in proportion) and clear
    its mirror share, in one recorded traffic change."""
    name = args.deployment_name
    share, mirrored = split.live.get(name, 0), split.mirror.get(name, 0)
    if (share or mirrored) and not args.force:
        raise UsageError(
            f"deployment {name!r} takes {share or mirrored}% of the {'live' if share else 'mirror'} traffic of "
            f"{args.endpoint_name!r}; add --force to move it to the other deployments first, or set the traffic "
            "with manage_online_endpoint.py traffic --set ..."
        )
    if share or mirrored:

        def without(current: traffic.Split) -> traffic.Split:
            live = traffic.rebalance(current.live, name, 0) if current.live.get(name) else current.live
            return traffic.Split(live, {k: v for k, v in current.mirror.items() if k != name})

        try:  # change_split runs `without` before it writes: a share with nowhere to go is refused first
            before, after = history.change_split(
                client, args.endpoint_name, without, local=args.local, change=f"delete {name} --force"
            )
        except traffic.ImpossibleTrafficError:
            raise UsageError(
                f"cannot delete {name!r} with --force: it takes {share}% of the live traffic and no other deployment "
                "takes any to share it with; give another deployment traffic first (promote, or traffic --set)"
            ) from None
        for line in traffic.change_lines(before, after):
            progress(line)
    poller = client.online_deployments.begin_delete(name=name, endpoint_name=args.endpoint_name)
    wait_with_progress(poller, f"deleting deployment {name}", check)
    emit({"deleted": name}, args.output, [f"Deleted deployment {name}"])


def run_autoscale(client: Any, args: argparse.Namespace) -> None:
    """Create or update (or show, or delete) the deployment's autoscale setting."""
    name = autoscale.setting_name(args.endpoint_name, args.deployment_name)
    endpoint = endpoint_or_fail(client, args)
    deployment = get_or_none(client.online_deployments.get, name=args.deployment_name, endpoint_name=endpoint.name)
    if deployment is None:
        existing = deployment_states(client, args.endpoint_name)
        require_deployments([args.deployment_name], existing, args)
    monitor = get_monitor_client(client)
    group = client.resource_group_name
    if args.show or args.delete:
        found = get_or_none(monitor.autoscale_settings.get, group, name)
        if found is None:
            raise NotFoundError(f"deployment {args.deployment_name!r} has no autoscale setting ({name!r})")
        if args.delete:
            monitor.autoscale_settings.delete(group, name)
            emit({"deleted": name}, args.output, [f"Deleted autoscale setting {name}; the instance count stays as is"])
            return
        emit(autoscale.as_json(found), args.output, autoscale.describe(found))
        return
    setting = autoscale.build(
        args.plan, name=name, location=endpoint.location, deployment_id=deployment.id, endpoint_id=endpoint.id
    )
    saved = monitor.autoscale_settings.create_or_update(group, name, setting)
    emit(autoscale.as_json(saved), args.output, autoscale.describe(saved))


def autoscale_dry_run(args: argparse.Namespace) -> None:
    """The setting's JSON, with the resource IDs made from the workspace settings (placeholders when none are given,
    as for the location): nothing is contacted."""
    try:
        workspace = resolve_workspace(workspace_flags(args))
        subscription, group, name = workspace.subscription_id, workspace.resource_group, workspace.workspace_name
    except UsageError:
        subscription, group, name = "<subscription_id>", "<resource_group>", "<workspace_name>"
        progress("No workspace given: its subscription, resource group and name are placeholders in the IDs")
    endpoint_id = (
        f"/subscriptions/{subscription}/resourceGroups/{group}/providers/"
        f"Microsoft.MachineLearningServices/workspaces/{name}/onlineEndpoints/{args.endpoint_name}"
    )
    deployment_id = f"{endpoint_id}/deployments/{args.deployment_name}"
    name = autoscale.setting_name(args.endpoint_name, args.deployment_name)
    setting = autoscale.build(
        args.plan, name=name, location=DRY_RUN_LOCATION, deployment_id=deployment_id, endpoint_id=endpoint_id
    )
    output(json.dumps(autoscale.as_json(setting), indent=2))


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
    "promote": promote,
    "rollback": rollback,
    "metrics": show_metrics,
    "rollout": run_rollout,
    "autoscale": run_autoscale,
    "delete": delete,
    "probe": probe,
    "start": start,
    "stop": stop,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.verbose)
    if args.command == "autoscale" and args.dry_run:
        autoscale_dry_run(args)
        return 0
    COMMANDS[args.command](get_client(args), args)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
