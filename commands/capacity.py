"""capacity: what a deployment of N instances of a type needs against what the subscription has (Azure)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from commands import Request, Result
from common import validation
from common.azure import capacity, prices, sizing
from common.azure.sizing import Price
from common.azure.skus import canonical
from common.azure.surface import Client
from common.cli import add_flag
from common.errors import CliError, UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "--instance_type", required=True, help="the VM SKU, e.g. Standard_DS3_v2")
    add_flag(parser, "--instance_count", type=int, required=True, help="instances, 1-50")


@dataclass(frozen=True, kw_only=True)
class CapacityRequest(Request):
    instance_type: str
    instance_count: int


def validate(args: argparse.Namespace) -> CapacityRequest:
    if args.local:
        raise UsageError("capacity reads Azure's quota; the local target has none (drop --local)")
    validation.instance_count(args.instance_count)
    return CapacityRequest.of(args, instance_type=canonical(args.instance_type), instance_count=args.instance_count)


def _row(what: str, quota: capacity.Quota | None, needed: int) -> str:
    if quota is None:
        return f"  {what:34} {'not reported':>30}"
    enough = "yes" if quota.limit < 0 or needed <= quota.free else "NO"
    return f"  {what:34} {quota.in_use:7d} {quota.limit:7d} {quota.free:7d} {needed:7d}   {enough}"


def cost_line(count: int, instance_type: str, price: Price | None) -> str:
    if price is None:
        return f"Cost: unknown (neither the region's answer nor the toolkit's table prices {instance_type})"
    return (
        f"Cost: {count} x {price.hourly:g} {price.currency}/hour x {sizing.HOURS_PER_MONTH} hours = "
        f"{price.monthly(count):,.0f} {price.currency} a month ({price.source})"
    )


def run(client: Client, request: CapacityRequest) -> Result:
    try:
        sizes, quotas = capacity.read(client, None)
    except capacity.CapacityUnknown as reason:
        raise CliError(f"cannot read the region's VM sizes or the subscription's usage: {reason}") from None
    found = capacity.plan(sizes, quotas, request.instance_type, request.instance_count)
    size, count = found.size, request.instance_count
    reserved = capacity.cores_for(count, size) // size.vcpus
    lines = [
        f"Capacity for {count} x {size.name} ({size.vcpus} vCPUs, {size.memory_gb} GB, family {size.family}) in the "
        "workspace's region:",
        f"  cores needed: {reserved} instances (ceil({capacity.RESERVE} x {count}), Azure's 20% upgrade reserve) x "
        f"{size.vcpus} vCPUs = {found.needed}",
        f"  {'quota':34} {'in use':>7} {'limit':>7} {'free':>7} {'needed':>7}   enough",
        _row(f"family {size.family}", found.family, found.needed),
        *(
            [_row("the workspace's own family quota", found.workspace_family, found.needed)]
            if found.workspace_family
            else []
        ),
        _row("region total", found.region, found.needed),
    ]
    short = found.shortfalls()
    lines += [f"Not enough: {line}" for line in short] or ["Enough quota for this deployment."]
    price = prices.price_of(size.name, {size.name.lower(): size.price} if size.price else None)
    lines.append(cost_line(count, size.name, price))
    lines += [f"Note: {note}" for note in found.notes]
    data: dict[str, Any] = found.as_dict()
    data["cost"] = (
        None
        if price is None
        else {
            "hourly": price.hourly,
            "currency": price.currency,
            "monthly": price.monthly(count),
            "source": price.source,
        }
    )
    if request.endpoint_name:
        held = []
        for deployment in client.online_deployments.list(request.endpoint_name):
            kind, instances = str(deployment.instance_type), int(deployment.instance_count or 1)
            known = sizes.get(canonical(kind))
            cores = capacity.cores_for(instances, known) if known else None
            held.append({"deployment": deployment.name, "instance_type": kind, "instances": instances, "cores": cores})
            lines.append(
                f"  {deployment.name} on {request.endpoint_name}: {instances} x {kind} holds "
                + (f"{cores} cores" if cores is not None else "cores unknown (size not offered in the region)")
            )
        data["deployments"] = held
    return Result(data, lines)
