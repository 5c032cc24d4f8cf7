"""The client surface the toolkit uses: the parts of azure-ai-ml's MLClient it calls, as typing Protocols.

MLClient has them (tests/test_client_surface.py checks the installed SDK's signatures), LocalMLClient implements
them (checked the same way), and the tests' mocked MLClient is built from them with create_autospec, so the three
cannot drift apart: a call the toolkit makes that one of them lacks fails a test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, cast


class OnlineEndpoints(Protocol):
    def get(self, name: str) -> Any: ...

    def list(self) -> Any: ...

    def get_keys(self, name: str) -> Any: ...

    def begin_create_or_update(self, endpoint: Any) -> Any: ...

    def begin_delete(self, name: str) -> Any: ...

    def begin_regenerate_keys(self, name: str, *, key_type: str = "primary") -> Any: ...


class OnlineDeployments(Protocol):
    def get(self, name: str, endpoint_name: str) -> Any: ...

    def list(self, endpoint_name: str) -> Any: ...

    def begin_create_or_update(self, deployment: Any) -> Any: ...

    def begin_delete(self, name: str, endpoint_name: str) -> Any: ...

    def get_logs(self, name: str, endpoint_name: str, lines: int, *, container_type: str | None = None) -> str: ...


class Models(Protocol):
    def get(self, name: str, version: str | None = None, label: str | None = None) -> Any: ...

    def create_or_update(self, model: Any) -> Any: ...

    def download(self, name: str, version: str, download_path: str = ".") -> None: ...


class Environments(Protocol):
    def get(self, name: str, version: str | None = None, label: str | None = None) -> Any: ...

    def create_or_update(self, environment: Any) -> Any: ...


class Client(Protocol):
    """What get_client returns, on either target (read-only members: MLClient has them as properties, LocalMLClient
    as attributes of its own, narrower types)."""

    @property
    def online_endpoints(self) -> OnlineEndpoints: ...

    @property
    def online_deployments(self) -> OnlineDeployments: ...

    @property
    def models(self) -> Models: ...

    @property
    def environments(self) -> Environments: ...


class Compute(Protocol):
    def list_sizes(self, *, location: str | None = None) -> Any: ...

    def list_usage(self, *, location: str | None = None) -> Any: ...


class AzureClient(Client, Protocol):
    """Azure's MLClient beyond what both targets share: the workspace's ids (Azure Monitor), the region's sizes and
    quotas (the capacity check), the datastores (collected data) and the code assets (size tries a deployment here)."""

    @property
    def subscription_id(self) -> str: ...

    @property
    def resource_group_name(self) -> str: ...

    @property
    def workspace_name(self) -> str | None: ...

    @property
    def compute(self) -> Compute: ...

    @property
    def datastores(self) -> Any: ...  # handed whole to azure-ai-ml's own datastore helper

    @property
    def _code(self) -> Any: ...  # azure-ai-ml's CodeOperations (download): MLClient keeps it private


class LocalOnlineEndpoints(OnlineEndpoints, Protocol):
    def begin_start(self, name: str) -> Any: ...

    def begin_stop(self, name: str) -> Any: ...

    def without_state_warnings(self, name: str) -> None: ...


class LocalOnlineDeployments(OnlineDeployments, Protocol):
    def follow_logs(self, name: str, endpoint_name: str, lines: int, *, poll_seconds: float = 0.2) -> Iterator[str]: ...


class LocalClient(Protocol):
    """The local target's client: the shared surface, start and stop, logs that follow, and its state's home."""

    @property
    def online_endpoints(self) -> LocalOnlineEndpoints: ...

    @property
    def online_deployments(self) -> LocalOnlineDeployments: ...

    @property
    def store(self) -> Any: ...  # common.local.state.LocalStore (common/azure names nothing of common/local)


def on_azure(client: Client) -> AzureClient:
    """The client as Azure's MLClient, for a call only Azure has; the caller is on the Azure path (its target is not
    local: the capacity check, Azure Monitor, the workspace's datastores)."""
    return cast(AzureClient, client)


def on_local(client: Client) -> LocalClient:
    """The client as the local target's, for a call only it has; the caller's target is local."""
    return cast(LocalClient, client)


OPERATIONS = {
    "online_endpoints": OnlineEndpoints,
    "online_deployments": OnlineDeployments,
    "models": Models,
    "environments": Environments,
}
