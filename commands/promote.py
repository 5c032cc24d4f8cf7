"""promote: a deployment takes 100% of the live traffic and none of the mirror traffic."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from commands import DeploymentRequest, Result
from commands.shared import (
    add_contract_flag,
    add_deployment_flag,
    change_result,
    contract_gate,
    deployment_states,
    endpoint_or_fail,
    require_deployments,
)
from common.azure.surface import Client
from common.release import history, traffic


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_deployment_flag(parser, required=True)
    add_contract_flag(parser)


@dataclass(frozen=True, kw_only=True)
class PromoteRequest(DeploymentRequest):
    allow_contract_change: bool


def validate(args: argparse.Namespace) -> PromoteRequest:
    return PromoteRequest.of(
        args, deployment_name=args.deployment_name, allow_contract_change=args.allow_contract_change
    )


def run(client: Client, request: PromoteRequest) -> Result:
    endpoint = endpoint_or_fail(client, request)
    name = request.deployment_name
    require_deployments([name], deployment_states(client, request.endpoint_name), request, serving=[name])
    live = {deployment: int(share) for deployment, share in (endpoint.traffic or {}).items()}
    contract_gate(client, request, live, {name: 100}, request.allow_contract_change)
    before, after = history.change_split(
        client,
        request.endpoint_name,
        lambda current: traffic.promoted(current, name),
        target=request.target,
        change=f"promote {name}",
    )
    return change_result(before, after, "promote")
