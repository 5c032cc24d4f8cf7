"""The client surface the toolkit uses: the parts of azure-ai-ml's MLClient it calls, as typing Protocols.

MLClient has them (tests/test_client_surface.py checks the installed SDK's signatures), LocalMLClient implements
them (checked the same way), and the tests' mocked MLClient is built from them with create_autospec, so the three
cannot drift apart: a call the toolkit makes that one of them lacks fails a test.
"""

from __future__ import annotations

from typing import Any, Protocol


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
    """What get_client returns, on either target."""

    online_endpoints: OnlineEndpoints
    online_deployments: OnlineDeployments
    models: Models
    environments: Environments


OPERATIONS = {
    "online_endpoints": OnlineEndpoints,
    "online_deployments": OnlineDeployments,
    "models": Models,
    "environments": Environments,
}
