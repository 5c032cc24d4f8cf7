"""The commands of all five scripts, one module per verb, and their registries: VERBS for
manage_online_endpoint.py's subcommands, SCRIPTS for the four scripts of one verb each (a registry of one). The
dispatcher (commands/dispatch.py) imports only the verb asked for (as pip's commands_dict does), so --help and a bad
flag stay fast.

A verb module has `add_arguments(parser)` (its own flags: --endpoint_name as its Verb says, the target and output
flags are the dispatcher's), `validate(args) -> Request` (a bad value is a UsageError before anything is sent; what
it returns is the typed request, a frozen dataclass, and `args` is left as parsed) and
`run(client, request) -> Result | None` (the calls; the data and lines to print, or None when it printed as it went;
`client` is None when the request says it needs none). commands/dispatch.py: VerbModule is that contract.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from commands.target import Target, of
from common.azure.surface import Client
from common.cli import workspace_flags

# the --endpoint_name the dispatcher adds for a verb; "none": the verb names no endpoint, or adds its own flag
EndpointFlag = Literal["required", "optional", "none"]


@dataclass(frozen=True)
class Verb:
    module: str
    summary: str
    endpoint: EndpointFlag = "required"


@dataclass
class Result:
    """What a verb found or did: `data` for --output json, `lines` for people."""

    data: dict[str, Any]
    lines: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Request:
    """What every verb is asked: the endpoint, the target, the workspace flags and the output format."""

    endpoint_name: str  # "" only for a verb that names no endpoint (register) or need not (capacity)
    target: Target
    workspace: Mapping[str, str | None] = field(default_factory=dict)
    output: str = "text"

    @classmethod
    def of(cls, args: argparse.Namespace, **fields: Any) -> Self:
        return cls(
            endpoint_name=getattr(args, "endpoint_name", None) or "",
            target=of(args),
            workspace=workspace_flags(args),
            output=getattr(args, "output", "text"),
            **fields,
        )

    @property
    def needs_client(self) -> bool:
        """Whether running it calls the target (a dry run may not): the dispatcher makes a client only then."""
        return True


@dataclass(frozen=True, kw_only=True)
class DeploymentRequest(Request):
    deployment_name: str


VERBS = {
    "show": Verb("commands.show", "the endpoint: scoring URI, auth mode, traffic, deployments and their state"),
    "keys": Verb("commands.keys", "the endpoint's keys (auth_mode key) or a token (aml_token)"),
    "logs": Verb("commands.logs", "the last lines of a deployment's log"),
    "contract": Verb(
        "commands.contract", "the endpoint's OpenAPI document (--save FILE), or a request checked against it (--check)"
    ),
    "traffic": Verb(
        "commands.traffic", "set the live traffic split (--set) and the mirror (shadow) traffic (--mirror)"
    ),
    "promote": Verb("commands.promote", "give a deployment 100%% of the live traffic (and none of the mirror traffic)"),
    "rollback": Verb(
        "commands.rollback", "restore the split in force before the last traffic change this toolkit made"
    ),
    "metrics": Verb(
        "commands.metrics", "requests, 4xx and 5xx, p50/p95/p99 latency per deployment over the last minutes"
    ),
    "rollout": Verb(
        "commands.rollout",
        "raise a deployment's share step by step, judge each step's metrics, roll back on a crossed limit",
    ),
    "compare": Verb(
        "commands.compare",
        "what a mirrored (shadow) deployment answered against the live one: agreement, 2x2 table, latency",
    ),
    "drift": Verb(
        "commands.drift",
        "the collected inputs against the training distribution: PSI per feature, label shares, a plot",
    ),
    "capacity": Verb(
        "commands.capacity",
        "Azure: the cores a deployment of N instances needs against the subscription's quota in the region",
        endpoint="optional",  # planning needs no endpoint; with one, its deployments' holdings are listed too
    ),
    "size": Verb(
        "commands.size",
        "measure a deployment's latency here (an Azure one tried here as the preflight does), then instances, "
        "concurrency, timeout, autoscale, cores against quota and cost per instance type",
    ),
    "doctor": Verb(
        "commands.doctor",
        "why a deployment failed: its error and both containers' logs against a table of known causes, with the fix",
    ),
    "autoscale": Verb(
        "commands.autoscale",
        "an Azure Monitor autoscale setting for a deployment: CPU rules, optionally request latency",
    ),
    "register": Verb(
        "commands.register",
        "register your own model file or folder (azureml:NAME:VERSION), on Azure or locally",
        endpoint="none",  # a model belongs to the workspace (or the local registry)
    ),
    "delete": Verb("commands.delete", "delete a deployment (--deployment_name) or the whole endpoint"),
    "probe": Verb(
        "commands.probe", "send a request N times and count which deployment answered each (the traffic split at work)"
    ),
    "start": Verb(
        "commands.start", "local target: bring a stopped endpoint back as it was (port, keys, traffic, deployments)"
    ),
    "stop": Verb("commands.stop", "local target: stop the endpoint's processes and keep its state"),
}

SINGLE = ""  # the one verb of a script without subcommands: a registry of one, under this name


def single(module: str, summary: str) -> dict[str, Verb]:
    """The registry of a script of one verb; its module adds its own --endpoint_name (with what the script does
    with it)."""
    return {SINGLE: Verb(module, summary, endpoint="none")}


# every script's registry, by the script's file name
REGISTRIES: dict[str, Mapping[str, Verb]] = {
    "manage_online_endpoint.py": VERBS,
    "create_online_endpoint.py": single("commands.create_endpoint", "create or update an endpoint"),
    "create_online_deployment.py": single(
        "commands.create_deployment", "create or update a deployment, then move the traffic"
    ),
    "invoke_online_endpoint.py": single("commands.invoke", "send a request to the endpoint"),
    "train_model.py": single("commands.train", "train the classifier and save it, optionally register it"),
}


def client_for(request: Request) -> Client:
    """The client of the request's target: the local target's, or an MLClient for the workspace its flags name."""
    from common.azure.clients import get_client

    return get_client(request.target, request.workspace, request.endpoint_name)


def run(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """A script's main through the error boundary: every failure one line and its exit code."""
    from commands.target import AZURE
    from common.cli import run_main

    return run_main(main, argv, show_verb=AZURE.verb("show"))
