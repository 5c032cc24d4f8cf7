"""A fake Azure ML control plane (and blob store) at the HTTP layer, for the real, unmodified azure-ai-ml SDK.

Every HTTP request the SDK sends goes through azure-core's requests transport, which `responses` intercepts: ARM
management calls and the blob uploads of code alike. Nothing reaches a socket; a request no route knows fails
the test. Bodies follow the Azure ML REST API's shapes (the public REST spec's examples). The fake keeps the
resources it was sent, answers long-running operations with Azure-AsyncOperation headers that the SDK polls,
and records every request for the tests to assert on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import responses

from tests.fake_azure.assets import AssetRoutes
from tests.fake_azure.capacity import CapacityRoutes, default_sizes, default_usages
from tests.fake_azure.deployments import DeploymentRoutes
from tests.fake_azure.endpoints import EndpointRoutes, refusal_of_score_py, score_py
from tests.fake_azure.monitor import MonitorRoutes
from tests.fake_azure.wire import (
    ARM,
    AUTOSCALE_PREFIX,
    BLOB,
    CONTAINER,
    LOCATION,
    OPERATIONS_PREFIX,
    POLLS_BEFORE_DONE,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    WORKSPACE,
    WORKSPACE_ID,
    Failure,
    Reply,
    SeenRequest,
    _asset,
    _error,
    _tag_refusal,
)

__all__ = [
    "AUTOSCALE_PREFIX",
    "POLLS_BEFORE_DONE",
    "RESOURCE_GROUP",
    "SUBSCRIPTION",
    "WORKSPACE",
    "WORKSPACE_ID",
    "FakeAzureML",
    "_tag_refusal",
    "refusal_of_score_py",
    "score_py",
]


@dataclass
class FakeAzureML(AssetRoutes, EndpointRoutes, DeploymentRoutes, MonitorRoutes, CapacityRoutes):
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployments: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    models: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    environments: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    codes: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    data: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # data assets (a collection's)
    # the region's VM sizes and the subscription's dedicated-core usage (tests/fake_azure/capacity.py's defaults)
    vm_sizes: list[dict[str, Any]] = field(default_factory=default_sizes)
    usages: list[dict[str, Any]] = field(default_factory=default_usages)
    blobs: dict[str, bytes] = field(default_factory=dict)
    # The workspace's default datastore: workspaceblobstore unless a test makes another one the default (a user
    # may; the data collector still writes to workspaceblobstore, azure-ai-ml's DEFAULT_MDC_PATH)
    default_datastore: str = "workspaceblobstore"
    requests: list[SeenRequest] = field(default_factory=list)
    failures: dict[tuple[str, str], Failure] = field(default_factory=dict)
    deployment_outcome: str = "Succeeded"
    deployment_error: tuple[str, str] = ("", "")
    logs: str = ""  # the inference-server container's
    storage_logs: str = ""  # the storage-initializer container's
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Azure Monitor: per deployment, one minute's figures {"2xx": n, "4xx": n, "5xx": n, "p50": ms, ...}
    monitor: dict[str, dict[str, float]] = field(default_factory=dict)
    monitor_empty_reads: int = 0  # the first reads find no data yet (metrics arrive late)
    keys: dict[str, dict[str, str]] = field(default_factory=dict)  # per endpoint, once one was regenerated
    regenerate_keeps_key: bool = False  # answer a regenerate request but keep the key (what the tool must catch)
    autoscale: dict[str, dict[str, Any]] = field(default_factory=dict)  # Azure Monitor autoscale settings by name
    # another writer: run after the endpoint's Nth GET is answered (between a command's read and its write), and after
    # each endpoint PUT is kept (a write landing right after the command's own)
    after_endpoint_get: dict[int, Callable[[], None]] = field(default_factory=dict)
    # the subscription's activity log (Azure Monitor): a failed deployment write adds its event, as Azure does
    activity_log: list[dict[str, Any]] = field(default_factory=list)
    # called before each blob listing with its number (1, 2, ...): a test's collector that writes late
    before_blob_list: list[Callable[[int], None]] = field(default_factory=list)
    blob_lists: int = 0
    after_endpoint_put: Callable[[str], None] | None = None
    endpoint_gets: int = 0
    # what a deployment's inference server serves at GET /swagger.json instead of score.py's documents (by name),
    # and the metadata.json of the model score.py's documents are written from
    swagger: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_metadata: dict[str, Any] = field(default_factory=dict)

    # ---- what the tests set up and read --------------------------------------------------------------------

    def add_model(self, name: str, version: str, files: dict[str, bytes] | None = None) -> None:
        """A registered model; with `files`, their content in the datastore at the model's path (for downloads)."""
        properties: dict[str, Any] = {"modelType": "custom_model", "flavors": {}}
        if files is not None:
            folder = f"LocalUpload/{name}-{version}/model"
            for relative, content in files.items():
                self.blobs[f"{CONTAINER}/{folder}/{relative}"] = content
            properties["modelUri"] = (
                f"azureml://subscriptions/{SUBSCRIPTION}/resourcegroups/{RESOURCE_GROUP}/workspaces/{WORKSPACE}"
                f"/datastores/workspaceblobstore/paths/{folder}"
            )
        self.models[(name, version)] = _asset("models", name, version, properties)

    def add_collected(
        self,
        endpoint: str,
        deployment: str,
        collection: str,
        records: list[dict[str, Any]],
        rolling_rate: str = "Hour",
    ) -> None:
        """What Azure's data collector would have written: JSON lines in workspaceblobstore, under
        modelDataCollector/ENDPOINT/DEPLOYMENT/COLLECTION/ in the folders of the rolling rate (the REST spec's
        DataCollector.rollingRate: Hour is yyyy/MM/dd/HH/, Day yyyy/MM/dd/; Minute, Month and Year alike) by each
        record's time (ISO, UTC)."""
        layout = {"Year": 4, "Month": 7, "Day": 10, "Hour": 13, "Minute": 16}[rolling_rate]
        by_folder: dict[str, list[str]] = {}
        for record in records:
            folder = record["time"][:layout].replace("-", "/").replace("T", "/").replace(":", "/")
            by_folder.setdefault(folder, []).append(json.dumps(record))
        for folder, lines in by_folder.items():
            path = f"{CONTAINER}/modelDataCollector/{endpoint}/{deployment}/{collection}/{folder}/instance-0.jsonl"
            self.blobs[path] = ("\n".join(lines) + "\n").encode()

    @staticmethod
    def batched(records: list[dict[str, Any]], sizes: list[int]) -> list[dict[str, Any]]:
        """`records` (one per request) as Azure's collector writes requests sent close together: consecutive ones
        merged into one record whose `data` holds all their rows, under the first one's id and correlationid
        (how-to-collect-production-data, "Data collector batching": its example is two requests' rows in one
        record with one correlationid). `sizes` are the requests per record, in turn."""
        merged, start = [], 0
        for size in sizes:
            group = records[start : start + size]
            if not group:
                break
            merged.append({**group[0], "data": [row for record in group for row in record["data"]]})
            start += size
        return merged

    def add_environment(self, name: str, version: str, conda_file: str | None = None) -> None:
        properties = {"image": "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"}
        if conda_file is not None:
            properties["condaFile"] = conda_file  # the service keeps the conda file as YAML text
        self.environments[(name, version)] = _asset("environments", name, version, properties)

    def add_endpoint(
        self,
        name: str,
        traffic: dict[str, int] | None = None,
        auth_mode: str = "Key",
        tags: dict[str, str] | None = None,
        **properties: Any,
    ) -> None:
        """An existing endpoint; `properties` are REST ones (publicNetworkAccess, description, ...)."""
        body = {"authMode": auth_mode, "traffic": traffic or {}, **properties}
        self.endpoints[name] = self._endpoint_resource(
            name, {"location": LOCATION, "tags": tags or {}, "properties": body}
        )
        for deployment in traffic or {}:
            self.add_deployment(name, deployment)

    def add_deployment(self, endpoint: str, name: str, **properties: Any) -> None:
        """An existing deployment as Azure answers it: its instance type, and its count in the sku; `properties` are
        REST ones (model, dataCollector, ...)."""
        body = {
            "properties": {"instanceType": "Standard_DS3_v2", **properties},
            "sku": {"name": "Default", "capacity": 1},
        }
        self.deployments[(endpoint, name)] = self._deployment_resource(endpoint, name, body)

    def fail(self, method: str, resource_pattern: str, status: int, code: str, message: str, times: int = 1) -> None:
        """Answer the next `times` requests matching (method, resource regex) with an Azure error body."""
        self.failures[(method, resource_pattern)] = Failure(status, code, message, times)

    def sent(self, method: str, resource_pattern: str) -> list[SeenRequest]:
        return [r for r in self.requests if r.method == method and re.fullmatch(resource_pattern, r.resource)]

    def writes(self) -> list[str]:
        """Every request that would change something in Azure, as 'METHOD resource'."""
        reads = ("listKeys", "token", "listSecrets", "getLogs")
        return [
            f"{r.method} {r.resource}"
            for r in self.requests
            if r.method in ("PUT", "POST", "PATCH", "DELETE") and not r.resource.endswith(reads)
        ]

    # ---- plumbing -----------------------------------------------------------------------------------------

    def install(self, mock: responses.RequestsMock) -> None:
        for method in ("GET", "PUT", "POST", "PATCH", "DELETE", "HEAD"):
            mock.add_callback(method, re.compile(r"https://.*"), callback=self._dispatch)
        mock.add_passthru("http://127.0.0.1")  # a preflight's local endpoint (tests still reach nothing else)

    def _dispatch(self, request: Any) -> Reply:
        parsed = urlparse(request.url)
        body: Any = request.body
        if (
            isinstance(body, bytes | bytearray)
            and request.headers.get("Content-Type", "").startswith("application/json")
        ) or (isinstance(body, str) and body.startswith("{")):
            body = json.loads(body)
        seen = SeenRequest(
            request.method, request.url, parsed.path, parse_qs(parsed.query), dict(request.headers), body
        )
        self.requests.append(seen)
        for (method, pattern), failure in list(self.failures.items()):
            if method == seen.method and re.fullmatch(pattern, seen.resource) and failure.times > 0:
                failure.times -= 1
                return _error(failure.status, failure.code, failure.message)
        scoring = re.fullmatch(rf"([^.]+)\.{LOCATION}\.inference\.ml\.azure\.com", parsed.netloc)
        if scoring and seen.method == "POST" and parsed.path == "/score":
            return self._score(seen, scoring.group(1))
        if scoring and seen.method == "GET" and parsed.path == "/swagger.json":
            return self._swagger(seen, scoring.group(1))
        for method, pattern, handler in self._routes():
            match = re.fullmatch(pattern, seen.path if parsed.netloc != urlparse(ARM).netloc else seen.resource)
            if method == seen.method and match and (parsed.netloc in (urlparse(ARM).netloc, urlparse(BLOB).netloc)):
                return handler(seen, *match.groups())
        raise AssertionError(f"the fake Azure ML has no route for {seen.method} {seen.url}")

    def _routes(self) -> list[tuple[str, str, Callable[..., Reply]]]:
        name = r"([^/]+)"
        return [
            ("GET", "", self._workspace),
            ("GET", f"/onlineEndpoints/{name}", self._get_endpoint),
            ("PUT", f"/onlineEndpoints/{name}", self._put_endpoint),
            ("DELETE", f"/onlineEndpoints/{name}", self._delete_endpoint),
            ("POST", f"/onlineEndpoints/{name}/listKeys", self._list_keys),
            ("POST", f"/onlineEndpoints/{name}/token", self._token),
            ("POST", f"/onlineEndpoints/{name}/regenerateKeys", self._regenerate_keys),
            ("GET", OPERATIONS_PREFIX + f"/locations/{name}/mfeOperationResults/{name}", self._operation_result),
            ("GET", f"/onlineEndpoints/{name}/deployments", self._list_deployments),
            ("GET", f"/onlineEndpoints/{name}/deployments/{name}", self._get_deployment),
            ("PUT", f"/onlineEndpoints/{name}/deployments/{name}", self._put_deployment),
            ("DELETE", f"/onlineEndpoints/{name}/deployments/{name}", self._delete_deployment),
            ("POST", f"/onlineEndpoints/{name}/deployments/{name}/getLogs", self._get_logs),
            ("GET", f"/onlineEndpoints/{name}/providers/Microsoft.Insights/metrics", self._metrics),
            ("PUT", f"{AUTOSCALE_PREFIX}/{name}", self._put_autoscale),
            ("GET", f"{AUTOSCALE_PREFIX}/{name}", self._get_autoscale),
            ("DELETE", f"{AUTOSCALE_PREFIX}/{name}", self._delete_autoscale),
            ("GET", f"/models/{name}/versions/{name}", self._asset_get(self.models)),
            ("GET", f"/models/{name}/versions", self._asset_list(self.models)),
            ("PUT", f"/models/{name}/versions/{name}", self._asset_put("models", self.models)),
            ("PUT", f"/environments/{name}/versions/{name}", self._asset_put("environments", self.environments)),
            ("GET", f"/environments/{name}/versions/{name}", self._asset_get(self.environments)),
            ("GET", f"/environments/{name}/versions", self._asset_list(self.environments)),
            ("GET", f"/codes/{name}/versions/{name}", self._asset_get(self.codes)),
            ("GET", f"/codes/{name}/versions", self._codes_by_hash),
            ("PUT", f"/codes/{name}/versions/{name}", self._put_code),
            ("GET", f"/data/{name}/versions/{name}", self._asset_get(self.data)),
            ("PUT", f"/data/{name}/versions/{name}", self._put_data),
            ("POST", f"/codes/{name}/versions/{name}/startPendingUpload", self._start_pending_upload),
            ("GET", "/datastores", self._datastores),
            ("GET", f"/datastores/{name}", self._datastore),
            ("POST", f"/datastores/{name}/listSecrets", self._datastore_secrets),
            ("GET", OPERATIONS_PREFIX + f"/locations/{name}/mfeOperationsStatus/{name}", self._operation),
            ("GET", OPERATIONS_PREFIX + f"/locations/{name}/vmSizes", self._vm_sizes),
            ("GET", OPERATIONS_PREFIX + f"/locations/{name}/usages", self._usages),
            (
                "GET",
                f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Insights/eventtypes/management/values",
                self._activity_events,
            ),
            ("GET", "/([^/]+/.+)", self._get_blob),
            ("HEAD", "/([^/]+/.+)", self._get_blob),
            ("PUT", "/([^/]+/.+)", self._put_blob),
            ("GET", "/([^/]+)", self._list_blobs),
        ]
