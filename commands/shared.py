"""What several verbs share: the endpoint and its deployments looked up, a traffic change reported, common flags."""

from __future__ import annotations

import argparse
from typing import Any

from commands import Request, Result
from common.azure.surface import Client
from common.cli import add_flag, add_name_flag
from common.control.lookups import require_endpoint
from common.control.wire import state_name
from common.errors import CliError, NotFoundError, UsageError
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
