"""What several verbs share: the endpoint and its deployments looked up, a traffic change reported, common flags."""

from __future__ import annotations

import argparse
from typing import Any

from commands import Request, Result
from commands.target import MANAGE
from common.azure.surface import Client
from common.cli import add_flag, add_name_flag
from common.control.lookups import require_endpoint
from common.control.wire import state_name
from common.errors import BreakingContractChange, CliError, NotFoundError, UsageError
from common.release import traffic

SAMPLE_REQUEST = "09-deploy-model/sample-request.json"
MAX_PROBES = 10_000


def add_deployment_flag(parser: argparse.ArgumentParser, *, required: bool) -> None:
    add_name_flag(parser, "--deployment_name", required=required, help="the deployment")


def add_request_file_flag(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "--request_file", default=SAMPLE_REQUEST, help="request body (default: %(default)s)")


def endpoint_or_fail(client: Client, request: Request) -> Any:
    return require_endpoint(client, request.endpoint_name, target=request.target)


def deployment_states(client: Client, endpoint_name: str) -> dict[str, str]:
    """{deployment: provisioning state} of the endpoint's deployments."""
    return {
        d.name: (state_name(d.provisioning_state) or "Succeeded") for d in client.online_deployments.list(endpoint_name)
    }


def require_deployments(
    names: Any,
    existing: dict[str, str],
    request: Request,
    *,
    serving: Any = (),
    missing: type[CliError] = NotFoundError,
) -> None:
    """Each of `names` exists, and each of `serving` succeeded (Azure sends traffic to nothing else)."""
    unknown = sorted(set(names) - set(existing))
    if unknown:
        raise missing(
            f"endpoint {request.endpoint_name!r} has no deployment {', '.join(map(repr, unknown))}; "
            f"it has: {', '.join(sorted(existing)) or 'none'}"
        )
    failed = sorted(name for name in serving if existing[name].lower() != "succeeded")
    if failed:
        raise UsageError(
            f"deployment {failed[0]!r} is {existing[failed[0]]}, not Succeeded: it cannot take traffic; check it "
            f"with: {request.target.show(request.endpoint_name)}"
        )


def change_result(before: traffic.Split, after: traffic.Split, what: str) -> Result:
    lines = traffic.change_lines(before, after)
    if after == before:
        lines.append(f"{what}: nothing to change")
    return Result({"traffic": after.live, "mirror_traffic": after.mirror, "before": before.as_dict()}, lines)


def add_contract_flag(parser: argparse.ArgumentParser) -> None:
    add_flag(
        parser,
        "--allow_contract_change",
        action="store_true",
        help="move the traffic even when the deployment gaining it breaks the live one's contract (features "
        "added, removed, renamed, retyped; labels changed)",
    )


def contract_gate(client: Client, request: Request, before: dict[str, int], after: dict[str, int], allow: bool) -> None:
    """Refuse live traffic to a deployment whose contract breaks the live deployments' callers, before any write;
    an unknown contract (a score.py without a schema) is a warning."""
    from common import contract
    from common.cli import progress, warn

    gaining = contract.gaining_traffic(before, after)
    live = [name for name, share in before.items() if share > 0 and name not in gaining]
    if not gaining or not live:
        return
    changes, unknown = contract.compare_live(client, request.endpoint_name, gaining, live, target=request.target)
    for line in unknown:
        warn(f"{line}: its contract is not compared")
    if changes and not allow:
        listed = "\n".join(f"  {change}" for change in changes)
        shown = request.target.command(
            MANAGE, "contract", "--endpoint_name", request.endpoint_name, "--deployment_name", gaining[0]
        )
        raise BreakingContractChange(
            f"refused: the traffic would reach a deployment whose contract breaks the callers of "
            f"{request.endpoint_name!r}; nothing was changed:\n{listed}\n"
            f"Its document: {shown}; --allow_contract_change moves the traffic anyway"
        )
    for change in changes:
        progress(f"note: contract change allowed by --allow_contract_change: {change}")
