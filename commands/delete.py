"""delete: a deployment (with --force, after moving its share to the others) or the whole endpoint."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from commands import Request, Result
from commands.shared import add_deployment_flag, deployment_states
from common.azure.surface import Client, on_local
from common.cli import add_flag, progress
from common.control.lookups import get_or_none
from common.control.waiting import wait_with_progress
from common.errors import NotFoundError, UsageError
from common.release import history, traffic


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_deployment_flag(parser, required=False)
    add_flag(parser, "--yes", action="store_true", help="confirm the deletion")
    add_flag(
        parser,
        "--force",
        action="store_true",
        help="delete a deployment that takes traffic: move its share to the others first (confirms, too)",
    )


@dataclass(frozen=True, kw_only=True)
class DeleteRequest(Request):
    deployment_name: str | None  # None: the whole endpoint
    force: bool


def validate(args: argparse.Namespace) -> DeleteRequest:
    if not args.yes and not (args.force and args.deployment_name):
        what = f"deployment {args.deployment_name!r} of " if args.deployment_name else ""
        raise UsageError(f"add --yes to confirm deleting {what}endpoint {args.endpoint_name!r}")
    return DeleteRequest.of(args, deployment_name=args.deployment_name, force=args.force)


def run(client: Client, request: DeleteRequest) -> Result:
    name = request.endpoint_name
    if request.target.local and not request.deployment_name:
        on_local(client).online_endpoints.without_state_warnings(name)  # never "start it with" just before deleting it
    endpoint = get_or_none(client.online_endpoints.get, name)
    if endpoint is None:
        raise NotFoundError(f"endpoint {name!r} not found: there is nothing to delete")
    check = request.target.show(name)
    if request.deployment_name:
        return delete_deployment(client, request, request.deployment_name, traffic.Split.of(endpoint), check)
    split = traffic.Split.of(endpoint)
    names = sorted(deployment_states(client, name))
    shares = ", ".join(f"{deployment} ({split.live.get(deployment, 0)}%)" for deployment in names) or "none"
    progress(f"Deleting endpoint {name} ({endpoint.scoring_uri}) and its deployments: {shares}")
    poller = client.online_endpoints.begin_delete(name=name)
    wait_with_progress(poller, f"deleting endpoint {name}", check)
    return Result(
        {"deleted": name, "deployments": names},
        [f"Deleted endpoint {name} and its deployments ({', '.join(names) or 'none'})"],
    )


def delete_deployment(client: Client, request: DeleteRequest, name: str, split: traffic.Split, check: str) -> Result:
    """Delete one deployment; with --force, first move its live share to the others (in proportion) and clear
    its mirror share, in one recorded traffic change."""
    share, mirrored = split.live.get(name, 0), split.mirror.get(name, 0)
    if (share or mirrored) and not request.force:
        raise UsageError(
            f"deployment {name!r} takes {share or mirrored}% of the {'live' if share else 'mirror'} traffic of "
            f"{request.endpoint_name!r}; add --force to move it to the other deployments first, or set the traffic "
            "with manage_online_endpoint.py traffic --set ..."
        )
    kept = collected_data_kept(client, request, name)
    if share or mirrored:
        move_share_away(client, request, name, share)
    poller = client.online_deployments.begin_delete(name=name, endpoint_name=request.endpoint_name)
    wait_with_progress(poller, f"deleting deployment {name}", check)
    lines = [f"Deleted deployment {name}"]
    if kept:
        lines.append(
            f"Its collected data stays in {kept} (as Azure keeps the data collector's blobs): delete it there when "
            "it is no longer needed"
        )
    return Result({"deleted": name, **({"collected_data_kept_in": kept} if kept else {})}, lines)


def collected_data_kept(client: Client, request: DeleteRequest, name: str) -> str | None:
    """Where the deployment's collected data (and, locally, its mirrored answer pairs) outlives it; None when it
    collected nothing."""
    from pathlib import Path

    from common.control.lookups import get_deployment
    from common.monitoring import capture, collected

    endpoint = client.online_endpoints.get(request.endpoint_name)
    where = collected.source(client, endpoint, target=request.target).where(name)
    if request.target.local:  # its folder says it: no need to ask what the deployment collects
        return where if Path(where).is_dir() and any(Path(where).iterdir()) else None
    deployment = get_deployment(client, name, request.endpoint_name)
    return where if deployment is not None and capture.of_deployment(deployment).enabled else None


def move_share_away(client: Client, request: DeleteRequest, name: str, share: int) -> None:
    def without(current: traffic.Split) -> traffic.Split:
        live = traffic.rebalance(current.live, name, 0) if current.live.get(name) else current.live
        return traffic.Split(live, {k: v for k, v in current.mirror.items() if k != name})

    try:  # change_split runs `without` before it writes: a share with nowhere to go is refused first
        before, after = history.change_split(
            client, request.endpoint_name, without, target=request.target, change=f"delete {name} --force"
        )
    except traffic.ImpossibleTrafficError:
        raise UsageError(
            f"cannot delete {name!r} with --force: it takes {share}% of the live traffic and no other deployment "
            "takes any to share it with; give another deployment traffic first (promote, or traffic --set)"
        ) from None
    for line in traffic.change_lines(before, after):
        progress(line)
