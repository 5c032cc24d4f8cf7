"""Azure Monitor: the endpoint metrics API and autoscale settings."""

from __future__ import annotations

import datetime
import json
import re
import uuid
from typing import Any

from tests.fake_azure.wire import (
    AUTOSCALE_PREFIX,
    WORKSPACE_ID,
    Reply,
    SeenRequest,
    _error,
    _ok,
)


class MonitorRoutes:
    """Routes of FakeAzureML (tests/fake_azure/__init__.py), on its state."""

    # ---- the activity log ----------------------------------------------------------------------------------

    def failed_write_event(self, resource_id: str, code: str, message: str) -> dict[str, Any]:
        """The Administrative event of a failed write, in the shape of the REST spec's example
        (monitor 2015-04-01, GetActivityLogsFiltered.json), its status Failed and properties.statusMessage the ARM
        error as JSON (Azure Monitor's activity log schema: statusMessage)."""
        status_message = {
            "status": "Failed",
            "error": {
                "code": "DeploymentFailed",
                "message": "Deployment failed.",
                "details": [{"code": code, "message": message}],
            },
        }
        operation = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments/write"
        event_id = str(uuid.uuid4())
        return {
            "caller": "user@contoso.com",
            "correlationId": str(uuid.uuid4()),
            "description": "",
            "eventDataId": event_id,
            "eventName": {"value": "EndRequest", "localizedValue": "End request"},
            "category": {"value": "Administrative", "localizedValue": "Administrative"},
            "id": f"{resource_id}/events/{event_id}/ticks/638680000000000000",
            "level": "Error",
            "resourceGroupName": resource_id.split("/")[4],
            "resourceProviderName": {"value": "Microsoft.MachineLearningServices"},
            "resourceId": resource_id,
            "operationId": str(uuid.uuid4()),
            "operationName": {"value": operation, "localizedValue": "Create or update online deployment"},
            "properties": {"statusCode": "BadRequest", "statusMessage": json.dumps(status_message)},
            "status": {"value": "Failed", "localizedValue": "Failed"},
            "subStatus": {"value": "", "localizedValue": ""},
            "eventTimestamp": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "submissionTimestamp": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "subscriptionId": resource_id.split("/")[2],
        }

    def _activity_events(self, request: SeenRequest) -> Reply:
        """The events whose resource the $filter names (resourceUri eq '...'), newest first."""
        wanted = re.search(r"resourceUri eq '([^']+)'", request.query.get("$filter", [""])[0])
        found = [e for e in self.activity_log if wanted and e["resourceId"].lower() == wanted.group(1).lower()]
        return _ok({"value": sorted(found, key=lambda e: e["eventTimestamp"], reverse=True)})

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
