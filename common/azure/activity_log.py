"""Why a deployment's last write failed, read after the fact from the subscription's activity log (Azure only).

A deployment's GET carries no error (the REST OnlineDeployment properties have none): once its operation is
over, the error is in the operation (whose URL only the command that wrote holds) and in the activity log, which
keeps every write to the resource for 90 days (Azure Monitor, "Azure Monitor activity log": an Administrative event
per write, its `status` Failed and its `properties.statusMessage` the ARM error as JSON). azure-mgmt-monitor reads
it (`activity_logs.list`, api-version 2015-04-01, a $filter on the time and the resource).
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from common.azure.surface import Client

DAYS = 7  # how far back the doctor looks for the deployment's last failed write
WRITE = "/onlineendpoints/deployments/write"


def failed_write(client: Client, resource_id: str, *, now: datetime.datetime | None = None) -> str | None:
    """The error of the deployment's newest failed write in the last DAYS days, as one line "CODE: message"
    (each detail's after it); None when there is none. Failures to read propagate (the caller says so)."""
    from common.azure.clients import get_monitor_client

    since = (now or datetime.datetime.now(datetime.UTC)) - datetime.timedelta(days=DAYS)
    events = get_monitor_client(client).activity_logs.list(
        filter=f"eventTimestamp ge '{since.strftime('%Y-%m-%dT%H:%M:%SZ')}' and resourceUri eq '{resource_id}'",
        select="eventTimestamp,operationName,status,properties,resourceId",
    )
    failed = [
        event for event in events if _value(event.status) == "failed" and _value(event.operation_name).endswith(WRITE)
    ]
    if not failed:
        return None
    newest = max(failed, key=lambda event: event.event_timestamp or datetime.datetime.min.replace(tzinfo=datetime.UTC))
    return error_line((newest.properties or {}).get("statusMessage"))


def _value(localizable: Any) -> str:
    return str(getattr(localizable, "value", localizable) or "").lower()


def error_line(status_message: Any) -> str | None:
    """statusMessage's ARM error ({"error": {"code", "message", "details": [...]}}, or the error itself) as one
    line; a message that is not JSON as it is."""
    if not status_message:
        return None
    try:
        parsed = json.loads(status_message) if isinstance(status_message, str) else status_message
    except ValueError:
        return str(status_message).strip() or None
    error = parsed.get("error", parsed) if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        return str(status_message).strip() or None
    parts = [f"{error.get('code') or 'Error'}: {error.get('message') or ''}".strip()]
    for detail in error.get("details") or []:
        if isinstance(detail, dict):
            parts.append(f"{detail.get('code') or 'Error'}: {detail.get('message') or ''}".strip())
    return "; ".join(parts)
