"""Online deployments (create, read, delete, logs) and the long-running operations the SDK polls."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.fake_azure.wire import (
    ARM,
    DEFAULT_PROBE,
    FAST_POLL,
    LOCATION,
    OPERATIONS_PREFIX,
    POLLS_BEFORE_DONE,
    WORKSPACE_GUID,
    Reply,
    SeenRequest,
    _error,
    _ok,
    tracked_resource,
)


class DeploymentRoutes:
    """Routes of FakeAzureML (tests/fake_azure/__init__.py), on its state."""

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
        collector = properties.get("dataCollector")
        if collector:  # the service answers the REST spec's enum casing (azure-ai-ml 1.35.2 sends "enabled")
            collections = {}
            for collection_name, collection in (collector.get("collections") or {}).items():
                mode = str(collection.get("dataCollectionMode", "")).capitalize()
                collections[collection_name] = {**collection, "dataCollectionMode": mode}
            properties["dataCollector"] = {"rollingRate": "Hour", **collector, "collections": collections}
        properties["provisioningState"] = state
        path = f"onlineEndpoints/{endpoint}/deployments/{name}"
        resource = tracked_resource(path, "onlineEndpoints/deployments", body, properties)
        return {**resource, "sku": body.get("sku") or {"name": "Default", "capacity": 1}}

    def _list_deployments(self, _request: SeenRequest, endpoint: str) -> Reply:
        return _ok({"value": [body for (e, _d), body in self.deployments.items() if e == endpoint]})

    def _get_deployment(self, _request: SeenRequest, endpoint: str, name: str) -> Reply:
        if (endpoint, name) not in self.deployments:
            return _error(404, "UserError", f"Deployment {name} not found.")
        return _ok(self.deployments[(endpoint, name)])

    def _put_deployment(self, request: SeenRequest, endpoint: str, name: str) -> Reply:
        state = "Updating" if (endpoint, name) in self.deployments else "Creating"
        self.deployments[(endpoint, name)] = self._deployment_resource(endpoint, name, request.body, state)
        if self.deployment_outcome == "Failed":  # Azure logs the failed write with its error (the GET has none)
            code, message = self.deployment_error
            resource_id = self.deployments[(endpoint, name)]["id"]
            self.activity_log.append(
                self.failed_write_event(resource_id, code or "DeploymentFailed", message or "failed")
            )
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
