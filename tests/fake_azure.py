"""A fake Azure ML control plane (and blob store) at the HTTP layer, for the real, unmodified azure-ai-ml SDK.

Every HTTP request the SDK sends goes through azure-core's requests transport, which `responses` intercepts: ARM
management calls and the blob uploads of code alike. Nothing reaches a socket; a request no route knows fails
the test. Bodies follow the Azure ML REST API's shapes (the public REST spec's examples). The fake keeps the
resources it was sent, answers long-running operations with Azure-AsyncOperation headers that the SDK polls,
and records every request for the tests to assert on.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import responses

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "rg-test"
WORKSPACE = "ws-test"
LOCATION = "eastus"
STORAGE_ACCOUNT = "wsteststorage"
CONTAINER = "azureml-blobstore-0000"
WORKSPACE_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
    f"/providers/Microsoft.MachineLearningServices/workspaces/{WORKSPACE}"
)
ARM = "https://management.azure.com"
OPERATIONS_PREFIX = f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.MachineLearningServices"
WORKSPACE_GUID = "ee8c8c7b-8359-4874-b140-2a13f80fdccd"
POLLS_BEFORE_DONE = 2  # as recorded: an operation reports "Updating" a few times before its outcome
FAST_POLL = "0.01"
SYSTEM_DATA = {
    "createdAt": "2026-11-24T10:00:00.0000000+00:00",
    "createdBy": "someone@example.com",
    "createdByType": "User",
    "lastModifiedAt": "2026-11-24T10:00:00.0000000+00:00",
}
DEFAULT_PROBE = {
    "initialDelay": "PT10S",
    "period": "PT10S",
    "timeout": "PT2S",
    "successThreshold": 1,
    "failureThreshold": 30,
}  # seconds between polls ("0" would mean the SDK's own interval: many seconds per test)
BLOB = f"https://{STORAGE_ACCOUNT}.blob.core.windows.net"
AUTOSCALE_PREFIX = (
    f"/subscriptions/{SUBSCRIPTION}/resourcegroups/{RESOURCE_GROUP}/providers/Microsoft.Insights/autoscalesettings"
)

Reply = tuple[int, dict[str, str], str]


@dataclass
class SeenRequest:
    method: str
    url: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any

    @property
    def resource(self) -> str:
        """The path below the workspace (or the blob path), e.g. '/onlineEndpoints/e'."""
        return self.path.removeprefix(WORKSPACE_ID)


@dataclass
class Failure:
    status: int
    code: str
    message: str
    times: int = 1


@dataclass
class FakeAzureML:
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployments: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    models: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    environments: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    codes: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
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
    after_endpoint_put: Callable[[str], None] | None = None
    endpoint_gets: int = 0

    # ---- what the tests set up and read --------------------------------------------------------------------

    def add_model(self, name: str, version: str) -> None:
        self.models[(name, version)] = _asset("models", name, version, {"modelType": "custom_model", "flavors": {}})

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

    def add_deployment(self, endpoint: str, name: str) -> None:
        """An existing deployment as Azure answers it: its instance type, and its count in the sku."""
        body = {"properties": {"instanceType": "Standard_DS3_v2"}, "sku": {"name": "Default", "capacity": 1}}
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
            ("GET", f"/environments/{name}/versions/{name}", self._asset_get(self.environments)),
            ("GET", f"/environments/{name}/versions", self._asset_list(self.environments)),
            ("GET", f"/codes/{name}/versions/{name}", self._asset_get(self.codes)),
            ("GET", f"/codes/{name}/versions", self._codes_by_hash),
            ("PUT", f"/codes/{name}/versions/{name}", self._put_code),
            ("POST", f"/codes/{name}/versions/{name}/startPendingUpload", self._start_pending_upload),
            ("GET", "/datastores", self._datastores),
            ("GET", f"/datastores/{name}", self._datastore),
            ("POST", f"/datastores/{name}/listSecrets", self._datastore_secrets),
            ("GET", OPERATIONS_PREFIX + f"/locations/{name}/mfeOperationsStatus/{name}", self._operation),
            ("GET", "/([^/]+/.+)", self._get_blob),
            ("HEAD", "/([^/]+/.+)", self._get_blob),
            ("PUT", "/([^/]+/.+)", self._put_blob),
            ("GET", "/([^/]+)", self._list_blobs),
        ]

    # ---- workspace and datastore --------------------------------------------------------------------------

    def _workspace(self, _request: SeenRequest) -> Reply:
        return _ok(
            {
                "id": WORKSPACE_ID,
                "name": WORKSPACE,
                "type": "Microsoft.MachineLearningServices/workspaces",
                "location": LOCATION,
                "kind": "Default",
                "identity": {"type": "SystemAssigned", "principalId": str(uuid.uuid4()), "tenantId": str(uuid.uuid4())},
                "properties": {
                    "friendlyName": WORKSPACE,
                    "storageAccount": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
                    f"/providers/Microsoft.Storage/storageAccounts/{STORAGE_ACCOUNT}",
                    "discoveryUrl": f"https://{LOCATION}.api.azureml.ms/discovery",
                    "mlFlowTrackingUri": f"azureml://{LOCATION}.api.azureml.ms/mlflow/v1.0{WORKSPACE_ID}",
                    "provisioningState": "Succeeded",
                    "publicNetworkAccess": "Enabled",
                },
            }
        )

    def _datastore_body(self, name: str) -> dict[str, Any]:
        return {
            "id": f"{WORKSPACE_ID}/datastores/{name}",
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/datastores",
            "properties": {
                "datastoreType": "AzureBlob",
                "accountName": STORAGE_ACCOUNT,
                "containerName": CONTAINER,
                "endpoint": "core.windows.net",
                "protocol": "https",
                "credentials": {"credentialsType": "AccountKey"},
                "isDefault": True,
            },
        }

    def _datastores(self, _request: SeenRequest) -> Reply:
        return _ok({"value": [self._datastore_body("workspaceblobstore")]})

    def _datastore(self, _request: SeenRequest, name: str) -> Reply:
        return _ok(self._datastore_body(name))

    def _datastore_secrets(self, _request: SeenRequest, _name: str) -> Reply:
        return _ok({"secretsType": "AccountKey", "key": "ZmFrZS1zdG9yYWdlLWtleQ=="})

    # ---- blobs (the code and model uploads) ---------------------------------------------------------------

    def _get_blob(self, request: SeenRequest, path: str) -> Reply:
        if path not in self.blobs:
            return 404, {"x-ms-error-code": "BlobNotFound"}, ""
        return 200, {"Content-Length": str(len(self.blobs[path])), "x-ms-meta-upload_status": "completed"}, ""

    def _put_blob(self, request: SeenRequest, path: str) -> Reply:
        headers = {"ETag": '"0x1"', "Last-Modified": "Mon, 01 Jan 2030 00:00:00 GMT"}
        if "comp" in request.query:  # set metadata (the SDK marks an upload complete)
            return 200, headers, ""
        self.blobs[path] = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        return 201, headers, ""

    def _list_blobs(self, request: SeenRequest, container: str) -> Reply:
        prefix = container + "/" + request.query.get("prefix", [""])[0]
        names = "".join(
            f"<Blob><Name>{p.split('/', 1)[1]}</Name><Properties/></Blob>" for p in self.blobs if p.startswith(prefix)
        )
        xml = f'<?xml version="1.0" encoding="utf-8"?><EnumerationResults><Blobs>{names}</Blobs></EnumerationResults>'
        return 200, {"Content-Type": "application/xml"}, xml

    # ---- assets -------------------------------------------------------------------------------------------

    def _asset_get(self, store: dict[tuple[str, str], dict[str, Any]]) -> Callable[..., Reply]:
        def get(_request: SeenRequest, name: str, version: str) -> Reply:
            if (name, version) not in store:
                return _error(404, "UserError", f"Could not find asset with ID: {name}:{version}")
            return _ok(store[(name, version)])

        return get

    def _asset_list(self, store: dict[tuple[str, str], dict[str, Any]]) -> Callable[..., Reply]:
        def versions(_request: SeenRequest, name: str) -> Reply:
            found = [body for (n, _v), body in store.items() if n == name]
            found.sort(key=lambda body: int(body["name"]) if body["name"].isdigit() else 0, reverse=True)
            return _ok({"value": found[:1]})

        return versions

    def _codes_by_hash(self, request: SeenRequest, _name: str) -> Reply:
        wanted = request.query.get("hash", [None])[0]
        found = [body for body in self.codes.values() if body["properties"].get("contentHash") == wanted]
        return _ok({"value": found})

    def _start_pending_upload(self, _request: SeenRequest, name: str, version: str) -> Reply:
        blob_uri = f"{BLOB}/{CONTAINER}/LocalUpload/{name}"
        return _ok(
            {
                "blobReferenceForConsumption": {
                    "blobUri": blob_uri,
                    "credential": {"credentialType": "SAS", "sasUri": f"{blob_uri}?sv=2021-08-06&sig=fake"},
                },
                "pendingUploadId": f"{name}-{version}",
                "pendingUploadType": "TemporaryBlobReference",
            }
        )

    def _put_code(self, request: SeenRequest, name: str, version: str) -> Reply:
        self.codes[(name, version)] = _asset("codes", name, version, request.body["properties"])
        return _ok(self.codes[(name, version)], status=201)

    # ---- endpoints ----------------------------------------------------------------------------------------

    def _endpoint_resource(self, name: str, body: dict[str, Any], state: str = "Succeeded") -> dict[str, Any]:
        properties = dict(body.get("properties", {}))
        properties.update(
            scoringUri=f"https://{name}.{LOCATION}.inference.ml.azure.com/score",
            swaggerUri=f"https://{name}.{LOCATION}.inference.ml.azure.com/swagger.json",
            provisioningState=state,
        )
        properties.setdefault("publicNetworkAccess", "Enabled")
        # as recorded: Azure fills in the endpoint's own id (the SDK reads this dict whenever systemData is there)
        properties["properties"] = {
            **(properties.get("properties") or {}),
            "azureml.onlineendpointid": f"{WORKSPACE_ID}/onlineEndpoints/{name}".lower(),
        }
        properties["traffic"] = {k: v for k, v in (properties.get("traffic") or {}).items() if v}
        return {
            "id": f"{WORKSPACE_ID}/onlineEndpoints/{name}",
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
            "location": body.get("location", LOCATION),
            "tags": body.get("tags") or {},
            "kind": "Managed",
            "identity": {"type": "SystemAssigned", "principalId": "p-1", "tenantId": "t-1"},
            "properties": properties,
            "systemData": SYSTEM_DATA,
        }

    def _get_endpoint(self, _request: SeenRequest, name: str) -> Reply:
        if name not in self.endpoints:
            return _error(404, "UserError", f"Endpoint {name} not found.")
        answer = _ok(self.endpoints[name])
        self.endpoint_gets += 1
        other_writer = self.after_endpoint_get.pop(self.endpoint_gets, None)
        if other_writer is not None:
            other_writer()
        return answer

    def _put_endpoint(self, request: SeenRequest, name: str) -> Reply:
        refused = _tag_refusal(request.body.get("tags") or {})
        if refused:
            return refused
        traffic = request.body.get("properties", {}).get("traffic") or {}
        mirror = request.body.get("properties", {}).get("mirrorTraffic") or {}
        missing = [d for d in traffic if (name, d) not in self.deployments]
        if missing:
            return _error(400, "BadArgument", f"Traffic rule refers to deployments that do not exist: {missing}")
        both = sorted(d for d in traffic if traffic[d] and mirror.get(d))
        if both:
            message = f"A deployment can receive only live traffic or mirrored traffic, not both: {both}"
            return _error(400, "BadArgument", message)
        state = "Updating" if name in self.endpoints else "Creating"
        self.endpoints[name] = self._endpoint_resource(name, request.body, state)
        answer = copy.deepcopy(self.endpoints[name])
        if self.after_endpoint_put is not None:
            self.after_endpoint_put(name)
        if state == "Creating":  # as recorded: no scoring URI until the endpoint exists
            answer["properties"].update(scoringUri=None, swaggerUri=None)
        return self._accepted(answer, "Succeeded", kind="oe")

    def _delete_endpoint(self, _request: SeenRequest, name: str) -> Reply:
        self.endpoints.pop(name, None)
        for key in [k for k in self.deployments if k[0] == name]:
            del self.deployments[key]
        return self._accepted(None, "Succeeded", kind="oe", status=202)

    def endpoint_keys(self, name: str) -> dict[str, str]:
        return self.keys.setdefault(name, {"primaryKey": "primary-key-0", "secondaryKey": "secondary-key-0"})

    def _list_keys(self, _request: SeenRequest, name: str) -> Reply:
        return _ok(dict(self.endpoint_keys(name)))

    def _regenerate_keys(self, request: SeenRequest, name: str) -> Reply:
        """POST regenerateKeys {"keyType": "Primary"|"Secondary", "keyValue": ...}: Azure answers 202 with a Location
        to poll; the key is new (the service generates it) unless `regenerate_keeps_key`."""
        if name not in self.endpoints:
            return _error(404, "UserError", f"Endpoint {name} not found.")
        field_name = {"Primary": "primaryKey", "Secondary": "secondaryKey"}[request.body["keyType"]]
        keys = self.endpoint_keys(name)
        if not self.regenerate_keeps_key:
            keys[field_name] = f"{field_name.removesuffix('Key')}-key-{int(keys[field_name].rsplit('-', 1)[1]) + 1}"
        location = f"{ARM}{OPERATIONS_PREFIX}/locations/{LOCATION}/mfeOperationResults/oe:{uuid.uuid4()}"
        return 202, {"Location": location, "Retry-After": "1"}, ""

    def _operation_result(self, _request: SeenRequest, _location: str, _operation: str) -> Reply:
        return 200, {}, ""

    def _token(self, _request: SeenRequest, _name: str) -> Reply:
        return _ok(
            {
                "accessToken": "aml-token-0",
                "expiryTimeUtc": 1893456000,
                "refreshAfterTimeUtc": 1893450000,
                "tokenType": "Bearer",
            }
        )

    def _score(self, request: SeenRequest, endpoint: str) -> Reply:
        """The scoring URI: checks the key as a managed endpoint would and answers like score.py."""
        accepted = [f"Bearer {key}" for key in self.endpoint_keys(endpoint).values()] + ["Bearer aml-token-0"]
        if request.headers.get("Authorization") not in accepted:
            return _error(401, "Unauthorized", "invalid key or token")
        served_by = request.headers.get("azureml-model-deployment") or next(
            iter(self.endpoints[endpoint]["properties"]["traffic"]), "none"
        )
        headers = {"Content-Type": "application/json", "azureml-model-deployment": served_by}
        try:
            score_py().parse_request(json.dumps(request.body))
        except score_py().BadRequest:  # score.py answers 400; Azure turns a model's error into 424
            headers |= {"ms-azureml-model-error-statuscode": "400", "ms-azureml-model-error-reason": "model_error"}
            return 424, headers, refusal_of_score_py(json.dumps(request.body))
        return 200, headers, '["diabetic"]'

    # ---- deployments --------------------------------------------------------------------------------------

    def _deployment_resource(
        self, endpoint: str, name: str, body: dict[str, Any], state: str = "Succeeded"
    ) -> dict[str, Any]:
        properties = dict(body.get("properties", {}))
        properties.setdefault("endpointComputeType", "Managed")
        properties["properties"] = dict(properties.get("properties") or {})
        # what the service fills in when the request leaves it out (as in the REST spec's examples)
        properties.setdefault("scaleSettings", {"scaleType": "Default"})
        properties.setdefault(
            "requestSettings",
            {"requestTimeout": "PT5S", "maxConcurrentRequestsPerInstance": 1, "maxQueueWait": "PT0.5S"},
        )
        for probe in ("livenessProbe", "readinessProbe"):  # Azure's defaults for managed online deployments
            properties.setdefault(probe, dict(DEFAULT_PROBE))
        properties["provisioningState"] = state
        return {
            "id": f"{WORKSPACE_ID}/onlineEndpoints/{endpoint}/deployments/{name}",
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments",
            "location": body.get("location", LOCATION),
            "tags": body.get("tags") or {},
            "kind": "Managed",
            "sku": body.get("sku") or {"name": "Default", "capacity": 1},
            "properties": properties,
            "systemData": SYSTEM_DATA,
        }

    def _list_deployments(self, _request: SeenRequest, endpoint: str) -> Reply:
        return _ok({"value": [body for (e, _d), body in self.deployments.items() if e == endpoint]})

    def _get_deployment(self, _request: SeenRequest, endpoint: str, name: str) -> Reply:
        if (endpoint, name) not in self.deployments:
            return _error(404, "UserError", f"Deployment {name} not found.")
        return _ok(self.deployments[(endpoint, name)])

    def _put_deployment(self, request: SeenRequest, endpoint: str, name: str) -> Reply:
        state = "Updating" if (endpoint, name) in self.deployments else "Creating"
        self.deployments[(endpoint, name)] = self._deployment_resource(endpoint, name, request.body, state)
        return self._accepted(
            self.deployments[(endpoint, name)], self.deployment_outcome, kind="od", error=self.deployment_error
        )

    def _delete_deployment(self, _request: SeenRequest, endpoint: str, name: str) -> Reply:
        self.deployments.pop((endpoint, name), None)
        return self._accepted(None, "Succeeded", kind="od", status=202)

    def _get_logs(self, request: SeenRequest, _endpoint: str, _name: str) -> Reply:
        """{"containerType": "InferenceServer"|"StorageInitializer" (default the first), "tail": lines}"""
        body = request.body or {}
        text = self.logs if body.get("containerType", "InferenceServer") == "InferenceServer" else self.storage_logs
        lines = text.splitlines()
        return _ok({"content": "\n".join(lines[-body["tail"] :] if body.get("tail") else lines)})

    # ---- Azure Monitor -------------------------------------------------------------------------------------

    def _metrics(self, request: SeenRequest, endpoint: str) -> Reply:
        """Azure Monitor's metrics API (Microsoft.Insights/metrics) on the endpoint resource: one minute's point per
        series, from `monitor`; a series per deployment (and per status class for RequestsPerMinute)."""
        names = request.query["metricnames"][0].split(",")
        minute = request.query["timespan"][0].split("/")[0]
        empty = self.monitor_empty_reads > 0
        self.monitor_empty_reads -= 1 if "RequestsPerMinute" in names else 0
        value = []
        for name in names:
            series = []
            for deployment, figures in ({} if empty else self.monitor).items():
                dimensions = [{"name": {"value": "deployment", "localizedValue": "deployment"}, "value": deployment}]
                if name == "RequestsPerMinute":
                    for code_class in ("2xx", "4xx", "5xx"):
                        if code_class in figures:
                            by_class = [*dimensions, {"name": {"value": "statuscodeclass"}, "value": code_class}]
                            point = {"timeStamp": minute, "average": figures[code_class]}
                            series.append({"metadatavalues": by_class, "data": [point]})
                else:
                    percentile = name.rsplit("_", 1)[1].lower()
                    point = {"timeStamp": minute, **({"average": figures[percentile]} if percentile in figures else {})}
                    series.append({"metadatavalues": dimensions, "data": [point]})
            value.append(
                {
                    "id": f"{WORKSPACE_ID}/onlineEndpoints/{endpoint}/providers/Microsoft.Insights/metrics/{name}",
                    "type": "Microsoft.Insights/metrics",
                    "name": {"value": name, "localizedValue": name},
                    "unit": "Count" if name == "RequestsPerMinute" else "MilliSeconds",
                    "timeseries": series,
                    "errorCode": "Success",
                }
            )
        return _ok({"cost": 0, "timespan": request.query["timespan"][0], "interval": "PT1M", "value": value})

    def _put_autoscale(self, request: SeenRequest, name: str) -> Reply:
        """Azure Monitor answers a PUT with the resource as stored, id and name added."""
        body = {
            "id": f"{AUTOSCALE_PREFIX}/{name}",
            "name": name,
            "type": "Microsoft.Insights/autoscaleSettings",
            **request.body,
        }
        status = 200 if name in self.autoscale else 201
        self.autoscale[name] = body
        return _ok(body, status)

    def _get_autoscale(self, _request: SeenRequest, name: str) -> Reply:
        if name not in self.autoscale:
            return _error(404, "ResourceNotFound", f"The autoscale setting {name} was not found.")
        return _ok(self.autoscale[name])

    def _delete_autoscale(self, _request: SeenRequest, name: str) -> Reply:
        return 200 if self.autoscale.pop(name, None) is not None else 204, {}, ""

    # ---- long-running operations --------------------------------------------------------------------------

    def _accepted(
        self,
        resource: dict[str, Any] | None,
        outcome: str,
        *,
        kind: str,
        status: int = 201,
        error: tuple[str, str] = ("", ""),
    ) -> Reply:
        """Azure's answer to a PUT or DELETE of an endpoint (kind "oe") or deployment ("od"): 201/202 with the
        resource as it is now and an Azure-AsyncOperation URL that reports "Updating" for a few polls, then the
        outcome ("InProgress": it keeps reporting "Updating")."""
        operation = f"{kind}:{WORKSPACE_GUID}:{uuid.uuid4()}"
        record: dict[str, Any] = {
            "id": f"{OPERATIONS_PREFIX}/locations/{LOCATION}/mfeOperationsStatus/{operation}",
            "name": operation,
            "startTime": "2026-11-24T10:00:00.0000000+00:00",
            "percentComplete": 0.0,
            "status": "Updating",
        }
        # a DELETE's Retry-After is read as a whole number of seconds by the SDK: its operation ends at the first poll
        polls = 0 if status == 202 else POLLS_BEFORE_DONE
        self.operations[operation] = {"record": record, "outcome": outcome, "polls_left": polls}
        if outcome == "Failed":
            record_error = {"code": error[0] or "DeploymentFailed", "message": error[1] or "failed"}
            self.operations[operation]["error"] = record_error
        url = f"{ARM}{OPERATIONS_PREFIX}/locations/{LOCATION}/mfeOperationsStatus/{operation}?api-version=2024-10-01"
        headers = {
            "Content-Type": "application/json",
            "Azure-AsyncOperation": url,
            "x-ms-async-operation-timeout": "PT30M" if kind == "oe" else "PT90M",
            "Retry-After": "1" if status == 202 else FAST_POLL,
            "x-ms-request-id": str(uuid.uuid4()),
        }
        return status, headers, json.dumps(resource) if resource is not None else ""

    def _operation(self, _request: SeenRequest, _location: str, operation: str) -> Reply:
        state = self.operations[operation]
        record = state["record"]
        if state["outcome"] != "InProgress" and state["polls_left"] <= 0:
            record["status"], record["percentComplete"] = state["outcome"], 100.0
            if "error" in state:
                record["error"] = state["error"]
            self._settle(state["outcome"])
        state["polls_left"] -= 1
        status, headers, body = _ok(record)
        # an operation still running is polled once a second, so a test that stops waiting leaves a calm poller
        headers["Retry-After"] = "1" if state["outcome"] == "InProgress" else FAST_POLL
        return status, headers, body

    def _settle(self, outcome: str) -> None:
        """Resources reach the operation's outcome when it ends, as Azure's do."""
        for body in [*self.endpoints.values(), *self.deployments.values()]:
            if body["properties"].get("provisioningState") in ("Creating", "Updating"):
                body["properties"]["provisioningState"] = outcome if outcome != "InProgress" else "Succeeded"

    def finish_operations(self) -> None:
        """Let every running operation succeed (what Azure does while nobody waits)."""
        for state in self.operations.values():
            if state["outcome"] == "InProgress":
                state["outcome"], state["polls_left"] = "Succeeded", 0
        self._settle("Succeeded")


def _asset(kind: str, name: str, version: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"{WORKSPACE_ID}/{kind}/{name}/versions/{version}",
        "name": version,
        "type": f"Microsoft.MachineLearningServices/workspaces/{kind}/versions",
        "properties": {"description": None, "tags": {}, "properties": {}, **properties},
    }


def _tag_refusal(tags: dict[str, str]) -> Reply | None:
    """Azure Resource Manager's tag limits (tag-resources, "Limitations"): 50 tags, names of 512 characters without
    < > % & \\ ? /, values of 256. The codes are ARM's general ones; the wording of a real refusal may differ."""
    if len(tags) > 50:
        return _error(400, "InvalidTemplate", f"The resource has {len(tags)} tags; at most 50 are allowed.")
    for key, value in tags.items():
        if len(key) > 512 or re.search(r"[<>%&\\?/]", key):
            return _error(400, "InvalidTagNameCharacters", f"The tag name '{key}' has invalid characters or length.")
        if len(str(value)) > 256:
            return _error(400, "InvalidTagValueLength", f"The tag value of '{key}' exceeds 256 characters.")
    return None


def _ok(body: Any, status: int = 200) -> Reply:
    headers = {"Content-Type": "application/json", "x-ms-request-id": str(uuid.uuid4())}
    return status, headers, json.dumps(body)


def _error(status: int, code: str, message: str) -> Reply:
    headers = {
        "Content-Type": "application/json",
        "x-ms-request-id": "00000000-aaaa-bbbb-cccc-" + f"{status:012d}",
        "x-ms-correlation-request-id": "11111111-aaaa-bbbb-cccc-" + f"{status:012d}",
    }
    return status, headers, json.dumps({"error": {"code": code, "message": message}})


def refusal_of_score_py(body: str) -> str:
    """The body score.py's run() answers a request it refuses, without its log line (the scoring URI's log is not
    the test's output)."""
    logger = logging.getLogger("score")
    logger.disabled = True
    try:
        return score_py().run(body).get_data(as_text=True)
    finally:
        logger.disabled = False


@functools.cache
def score_py() -> Any:
    """09-deploy-model/score.py, so the fake scoring URI refuses exactly what the real one does."""
    from tests.conftest import load_score_module

    return load_score_module()
