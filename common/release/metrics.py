"""What each deployment served in a time window (requests, 4xx and 5xx, p50/p95/p99 latency), on either target.

Locally the figures come from the endpoint's front door (common/local/recent.py): every request, exact, at once.
On Azure they come from Azure Monitor's endpoint metrics, through azure-mgmt-monitor (azure-monitor-query 2.0 no
longer queries metrics; its own notes point to azure-monitor-querymetrics or azure-mgmt-monitor, and
azure-mgmt-monitor goes through Azure Resource Manager with the credential and endpoint MLClient already uses):

  resource  Microsoft.MachineLearningServices/workspaces/onlineEndpoints (the endpoint)
  metrics   RequestsPerMinute (dimensions deployment, statusCode, statusCodeClass, modelStatusCode),
            RequestLatency_P50 / _P95 / _P99 (dimension deployment); aggregation Average, time grain PT1M
  docs      https://learn.microsoft.com/azure/azure-monitor/reference/supported-metrics/microsoft-machinelearningservices-workspaces-onlineendpoints-metrics

Azure's figures are per minute: a window is whole minutes, and a window's percentile is the mean of the minutes'
percentiles weighted by their requests (the exact figure is not published). They also arrive minutes late:
`settled` waits for them rather than judge a window with no data yet.
"""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.azure.surface import Client
from common.cli import progress
from common.errors import CliError

if TYPE_CHECKING:
    from common.target import Target

LOCAL_NOTE = (
    "local figures: every request the front door answered in the window (latency as the client sees it, "
    "exact nearest-rank percentiles); mirrored copies are counted apart"
)
AZURE_NOTE = (
    "Azure Monitor figures: whole minutes, percentiles are the per-minute percentiles averaged by requests (not "
    "the exact window percentile); they arrive 1-3 minutes late; mirrored copies are not reported apart"
)
# Azure Monitor: platform metrics typically arrive within 3 minutes; a window is read when that has passed, then
# again every minute until two reads agree (the data has settled), for at most MAX_DELAY_SECONDS after its end.
AZURE_FIRST_READ_DELAY_SECONDS = 120.0
AZURE_SETTLE_POLL_SECONDS = 60.0
AZURE_MAX_DELAY_SECONDS = 600.0
LOCAL_RETENTION_MINUTES = 60
QUERY_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Figures:
    requests: int = 0
    client_errors: int = 0  # 4xx
    server_errors: int = 0  # 5xx
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None

    @property
    def errors(self) -> int:
        return self.client_errors + self.server_errors

    def percent(self, count: int) -> float:
        return 100 * count / self.requests if self.requests else 0.0

    @property
    def error_percent(self) -> float:
        return self.percent(self.errors)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "4xx": self.client_errors,
            "5xx": self.server_errors,
            "error_percent": round(self.error_percent, 2),
            "4xx_percent": round(self.percent(self.client_errors), 2),
            "5xx_percent": round(self.percent(self.server_errors), 2),
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
        }

    def line(self) -> str:
        if not self.requests:
            return "no requests"
        latency = "  ".join(f"{name} {_ms(value)}" for name, value in self.latencies().items())
        return (
            f"{requests_text(self.requests)}, 4xx {self.percent(self.client_errors):.1f}%, "
            f"5xx {self.percent(self.server_errors):.1f}%  {latency}"
        )

    def latencies(self) -> dict[str, float | None]:
        return {"p50": self.p50_ms, "p95": self.p95_ms, "p99": self.p99_ms}


def requests_text(count: int) -> str:
    """'1 request', '20 requests'."""
    return f"{count} request" + ("" if count == 1 else "s")


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


@dataclass(frozen=True)
class DeploymentFigures:
    deployment: str
    live: Figures
    mirrored: Figures | None = None  # None where the target does not report mirrored copies apart (Azure)


def from_status_codes(codes: Mapping[str, int], latency: Mapping[str, float]) -> Figures:
    """Figures from a count per status code and the window's percentiles (the local front door's summary)."""
    counts = {int(code): int(count) for code, count in codes.items()}
    return Figures(
        requests=sum(counts.values()),
        client_errors=sum(n for code, n in counts.items() if 400 <= code < 500),
        server_errors=sum(n for code, n in counts.items() if 500 <= code < 600),
        p50_ms=latency.get("p50"),
        p95_ms=latency.get("p95"),
        p99_ms=latency.get("p99"),
    )


def from_minutes(requests: Mapping[str, Mapping[str, float]], latency: Mapping[str, Mapping[str, float]]) -> Figures:
    """Figures from Azure Monitor's per-minute points: `requests` {status class ('2xx', '4xx', ...): {minute:
    requests}}, `latency` {'p50'|'p95'|'p99': {minute: ms}}. A window's percentile is the minutes' percentiles
    averaged with their requests as weights (each minute weighs 1 when no request count came for it)."""
    by_class = {cls.lower(): round(sum(points.values())) for cls, points in requests.items()}
    per_minute: dict[str, float] = {}
    for points in requests.values():
        for minute, count in points.items():
            per_minute[minute] = per_minute.get(minute, 0.0) + count
    averaged: dict[str, float | None] = {}
    for name in ("p50", "p95", "p99"):
        points = latency.get(name, {})
        weights = {minute: per_minute.get(minute, 1.0) for minute in points}
        total = sum(weights.values())
        averaged[name] = round(sum(points[m] * weights[m] for m in points) / total, 3) if points and total > 0 else None
    return Figures(
        requests=sum(by_class.values()),
        client_errors=by_class.get("4xx", 0),
        server_errors=by_class.get("5xx", 0),
        p50_ms=averaged["p50"],
        p95_ms=averaged["p95"],
        p99_ms=averaged["p99"],
    )


class LocalMetrics:
    """The local endpoint's front door: GET /metrics/window, with the endpoint's key or token."""

    note = LOCAL_NOTE
    max_minutes = LOCAL_RETENTION_MINUTES

    def __init__(self, client: Client, endpoint: Any, target: Target) -> None:
        self.client = client
        self.endpoint = endpoint
        self.target = target

    def window(self, start: float, end: float) -> dict[str, DeploymentFigures]:
        import httpx

        from common import scoring

        url = self.endpoint.scoring_uri.rsplit("/", 1)[0] + "/metrics/window"
        headers = scoring.request_headers(self.client, self.endpoint.name)
        try:
            response = httpx.get(
                url, params={"since": start, "until": end}, headers=headers, timeout=QUERY_TIMEOUT_SECONDS
            )
        except httpx.TransportError as error:
            raise CliError(f"the front door of {self.endpoint.name!r} is not reachable: {error}") from None
        if response.status_code != 200:
            raise scoring.refusal(response.status_code, response.headers, response.text, self.target)
        found: dict[str, DeploymentFigures] = {}
        for name, parts in response.json()["deployments"].items():
            live, mirrored = parts.get("live"), parts.get("mirrored")
            found[name] = DeploymentFigures(
                name,
                from_status_codes(live["status_codes"], live["latency_ms"]) if live else Figures(),
                from_status_codes(mirrored["status_codes"], mirrored["latency_ms"]) if mirrored else Figures(),
            )
        return found

    def settled(self, deployment: str, start: float, end: float, **_: Any) -> DeploymentFigures:
        """The front door's figures are complete the moment they are read."""
        return self.window(start, end).get(deployment) or DeploymentFigures(deployment, Figures(), Figures())


class AzureMonitorMetrics:
    """Azure Monitor's metrics of the endpoint resource, by deployment (azure-mgmt-monitor, through ARM)."""

    note = AZURE_NOTE
    max_minutes = 93 * 24 * 60  # Azure Monitor keeps platform metrics 93 days

    def __init__(self, client: Client, endpoint: Any) -> None:
        from common.azure.clients import get_monitor_client

        self.endpoint = endpoint
        self.resource_uri = str(endpoint.id).lstrip("/")
        self.monitor = get_monitor_client(client)

    def _query(self, start: float, end: float, names: str, dimension_filter: str) -> Any:
        return self.monitor.metrics.list(
            self.resource_uri,
            timespan=f"{_iso(_minute_floor(start))}/{_iso(_minute_ceil(end))}",
            interval="PT1M",
            metricnames=names,
            aggregation="Average",
            filter=dimension_filter,
            top=100,
            metricnamespace="Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
        )

    def window(self, start: float, end: float) -> dict[str, DeploymentFigures]:
        requests = self._query(start, end, "RequestsPerMinute", "deployment eq '*' and statusCodeClass eq '*'")
        latency = self._query(
            start, end, "RequestLatency_P50,RequestLatency_P95,RequestLatency_P99", "deployment eq '*'"
        )
        counts: dict[str, dict[str, dict[str, float]]] = {}
        for series, points in _series(requests, "RequestsPerMinute"):
            counts.setdefault(series.get("deployment", "?"), {})[series.get("statuscodeclass", "?")] = points
        latencies: dict[str, dict[str, dict[str, float]]] = {}
        for percentile in ("p50", "p95", "p99"):
            for series, points in _series(latency, f"RequestLatency_{percentile.upper()}"):
                latencies.setdefault(series.get("deployment", "?"), {})[percentile] = points
        return {
            name: DeploymentFigures(name, from_minutes(counts.get(name, {}), latencies.get(name, {})))
            for name in sorted(set(counts) | set(latencies))
        }

    def settled(
        self,
        deployment: str,
        start: float,
        end: float,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> DeploymentFigures:
        """The window's figures once Azure Monitor has them: read AZURE_FIRST_READ_DELAY_SECONDS after its end,
        then every minute until two reads agree, at most AZURE_MAX_DELAY_SECONDS after its end."""
        first_read = end + AZURE_FIRST_READ_DELAY_SECONDS
        if clock() < first_read:
            progress(
                f"  waiting {first_read - clock():.0f} s for Azure Monitor's figures of the window (they arrive late)"
            )
            sleep(first_read - clock())
        previous: DeploymentFigures | None = None
        while True:
            found = self.window(start, end).get(deployment) or DeploymentFigures(deployment, Figures())
            if previous is not None and found.live == previous.live:
                return found
            if clock() >= end + AZURE_MAX_DELAY_SECONDS:
                progress(f"  Azure Monitor's figures still changed {AZURE_MAX_DELAY_SECONDS:.0f} s after the window")
                return found
            previous = found
            progress(f"  Azure Monitor so far: {found.live.line()}; reading again in {AZURE_SETTLE_POLL_SECONDS:.0f} s")
            sleep(AZURE_SETTLE_POLL_SECONDS)


def _series(response: Any, metric: str) -> list[tuple[dict[str, str], dict[str, float]]]:
    """[(dimensions, {minute: value})] of one metric in azure-mgmt-monitor's Response; minutes with no data are
    left out. Dimension names are lower-cased (Azure answers 'statuscodeclass' for statusCodeClass)."""
    found = []
    for item in response.value or []:
        if (getattr(item.name, "value", "") or "").lower() != metric.lower():
            continue
        if item.error_code and item.error_code != "Success":
            raise CliError(f"Azure Monitor could not give {metric}: {item.error_message or item.error_code}")
        for series in item.timeseries or []:
            dimensions = {(m.name.value or "").lower(): m.value for m in series.metadatavalues or []}
            points = {
                point.time_stamp.isoformat(): float(point.average)
                for point in series.data or []
                if point.average is not None
            }
            found.append((dimensions, points))
    return found


def _minute_floor(epoch: float) -> float:
    return math.floor(epoch / 60) * 60


def _minute_ceil(epoch: float) -> float:
    return math.ceil(epoch / 60) * 60


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def source(client: Client, endpoint: Any, *, target: Target) -> LocalMetrics | AzureMonitorMetrics:
    return LocalMetrics(client, endpoint, target) if target.local else AzureMonitorMetrics(client, endpoint)
