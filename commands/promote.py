"""promote: a deployment takes 100% of the live traffic and none of the mirror traffic."""

from __future__ import annotations

import argparse

from commands import DeploymentRequest, Result
from commands.shared import (
    add_deployment_flag,
    change_result,
    deployment_states,
    endpoint_or_fail,
    require_deployments,
)
from common.azure.surface import Client
from common.release import history, traffic


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_deployment_flag(parser, required=True)


def validate(args: argparse.Namespace) -> DeploymentRequest:
    return DeploymentRequest.of(args, deployment_name=args.deployment_name)


def run(client: Client, request: DeploymentRequest) -> Result:
    endpoint_or_fail(client, request)
    name = request.deployment_name
    require_deployments([name], deployment_states(client, request.endpoint_name), request, serving=[name])
    before, after = history.change_split(
        client,
        request.endpoint_name,
        lambda current: traffic.promoted(current, name),
        target=request.target,
        change=f"promote {name}",
    )
    return change_result(before, after, "promote")
