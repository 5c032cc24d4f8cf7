"""The fake control plane's addresses, its record of a request, and the shapes of its answers."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

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
STORAGE_ACCOUNT_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Storage/storageAccounts/"
    f"{STORAGE_ACCOUNT}"
)
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


def tracked_resource(path: str, resource_type: str, body: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    """An ARM resource below the workspace as Azure answers it: id, name, type, location, tags, properties."""
    return {
        "id": f"{WORKSPACE_ID}/{path}",
        "name": path.rsplit("/", 1)[-1],
        "type": f"Microsoft.MachineLearningServices/workspaces/{resource_type}",
        "location": body.get("location", LOCATION),
        "tags": body.get("tags") or {},
        "kind": "Managed",
        "properties": properties,
        "systemData": SYSTEM_DATA,
    }
