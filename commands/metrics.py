"""metrics: requests, 4xx and 5xx, p50/p95/p99 per deployment over the last minutes (front door or Azure Monitor)."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

from commands import Request, Result
from commands.shared import add_deployment_flag, deployment_states, endpoint_or_fail, require_deployments
from common.azure.surface import Client
from common.cli import add_flag
from common.errors import UsageError
from common.release import metrics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_deployment_flag(parser, required=False)
    add_flag(parser, "--minutes", type=int, default=5, help="the window: the last N minutes (default: %(default)s)")


@dataclass(frozen=True, kw_only=True)
class MetricsRequest(Request):
    deployment_name: str | None  # None: every deployment
    minutes: int


def validate(args: argparse.Namespace) -> MetricsRequest:
    limit = metrics.LOCAL_RETENTION_MINUTES if args.local else metrics.AzureMonitorMetrics.max_minutes
    if not 1 <= args.minutes <= limit:
        where = "the local front door keeps the last hour" if args.local else "Azure Monitor keeps 93 days"
        raise UsageError(f"invalid --minutes {args.minutes}: use 1 to {limit} ({where})")
    return MetricsRequest.of(args, deployment_name=args.deployment_name, minutes=args.minutes)


def run(client: Client, request: MetricsRequest) -> Result:
    endpoint = endpoint_or_fail(client, request)
    names = sorted(deployment_states(client, request.endpoint_name))
    if request.deployment_name:
        require_deployments([request.deployment_name], dict.fromkeys(names, "Succeeded"), request)
        names = [request.deployment_name]
    end, local = time.time(), request.target.local
    found = metrics.source(client, endpoint, target=request.target).window(end - request.minutes * 60, end)
    lines = [f"Metrics of {request.endpoint_name}, the last {request.minutes} min (per deployment):"]
    data: dict[str, Any] = {"endpoint": request.endpoint_name, "minutes": request.minutes, "deployments": {}}
    for name in names:
        figures = found.get(name) or metrics.DeploymentFigures(name, metrics.Figures())
        lines.append(f"  {name:24} {figures.live.line()}")
        entry: dict[str, Any] = {"live": figures.live.as_dict()}
        if local:
            mirrored = figures.mirrored or metrics.Figures()
            entry["mirrored"] = mirrored.as_dict()
            if mirrored.requests:
                lines.append(f"  {'':24} mirrored copies: {mirrored.line()}")
        data["deployments"][name] = entry
    note = metrics.LOCAL_NOTE if local else metrics.AZURE_NOTE
    data["note"] = note
    lines.append(f"Note: {note}")
    return Result(data, lines)
