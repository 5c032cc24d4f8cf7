"""LocalMLClient: the part of MLClient the scripts use, run on this machine.

An endpoint is a front door process (common.local.frontdoor) on 127.0.0.1 that authenticates, routes by traffic,
mirrors and supervises the endpoint's deployments: azureml-inference-server-http processes (the server Azure runs
score.py in) on Unix sockets. This client never starts a deployment server itself: it writes what the user asked
for under the endpoint's lock and waits for the front door to report the outcome, as the SDK waits for Azure. So
an interrupted command leaves no process behind that the state does not name, and the operation goes on, as in
Azure.

Entities in and out are azure-ai-ml's own, and failures raise the SDK's exception types, so the scripts cannot
tell the targets apart. start and stop exist only here (Azure endpoints run until deleted).
"""

from __future__ import annotations

from pathlib import Path

from common.local.online_deployments import LocalDeployments
from common.local.online_endpoints import LocalEndpoints
from common.local.registry import LocalEnvironments, LocalModels
from common.local.state import LocalStore, default_home, make_private
from common.target import Target


class LocalMLClient:
    """The MLClient surface the scripts use, one operations class each (as azure-ai-ml's own operations)."""

    def __init__(self, home: Path | None = None, *, target: Target) -> None:
        self.store = LocalStore(home or default_home())
        make_private(self.store.home)
        self.models = LocalModels(self.store)
        self.environments = LocalEnvironments(self.store)
        self.online_endpoints = LocalEndpoints(self.store, target)
        self.online_deployments = LocalDeployments(self.store, self.online_endpoints, self.models, self.environments)
