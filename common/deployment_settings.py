"""A deployment's tunable settings: request handling, probes, environment variables, Application Insights, egress,
data collection (common/monitoring/capture.py).

The deployment command's flags, checked against the ranges Azure documents for a managed online
deployment's YAML (reference-yaml-deployment-managed-online: RequestSettings, ProbeSettings), then put on the
ManagedOnlineDeployment entity. A deployment PUT replaces the whole deployment, so a setting left out would fall back
to Azure's default: a flag not given keeps the value the existing deployment has (as az ml online-deployment update
does), and a probe flag naming some fields keeps the others.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from common.cli import add_flag
from common.control.wire import enum_value
from common.errors import UsageError
from common.monitoring import capture

REQUEST_TIMEOUT_MS_MAX = 180_000  # Azure's documented maximum
AZURE_REQUEST_TIMEOUT_MS = 5000  # request_settings.request_timeout_ms when a deployment sets none (YAML reference)
AZURE_MAX_CONCURRENT_REQUESTS = 1  # request_settings.max_concurrent_requests_per_instance's default (the same)
AZURE_PROBE_DEFAULTS = {
    "initial_delay": 10,
    "period": 10,
    "timeout": 2,
    "success_threshold": 1,
    "failure_threshold": 30,
}
PROBES = ("liveness_probe", "readiness_probe")
ENVIRONMENT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# set by the platform for the scoring script: a deployment variable must not hide them
RESERVED_VARIABLES = ("AZUREML_MODEL_DIR", "AZUREML_ENTRY_SCRIPT")
# The inference server's worker processes per instance: the YAML reference says to set it with
# max_concurrent_requests_per_instance, or the one default worker serves the requests one at a time
WORKER_COUNT = "WORKER_COUNT"
SWITCH = ("enabled", "disabled")


@dataclass(frozen=True)
class Requested:
    """What the flags ask for; None: not given (keep the deployment's current value, or Azure's default)."""

    request_timeout_ms: int | None = None
    max_concurrent_requests_per_instance: int | None = None
    liveness_probe: dict[str, int] | None = None
    readiness_probe: dict[str, int] | None = None
    environment_variables: dict[str, str] | None = None
    app_insights_enabled: bool | None = None
    egress_public_network_access: str | None = None
    data_collection: capture.Collection | None = None


def add_flags(parser: argparse.ArgumentParser) -> None:
    add_flag(
        parser,
        "--request_timeout_ms",
        type=int,
        help=f"scoring timeout, 1-{REQUEST_TIMEOUT_MS_MAX} ms (Azure's default {AZURE_REQUEST_TIMEOUT_MS}; "
        "default: the current value)",
    )
    add_flag(
        parser,
        "--max_concurrent_requests_per_instance",
        type=int,
        help="requests one instance serves at once, 1 or more (Azure's default 1; default: the current value)",
    )
    fields = " ".join(f"{name}={value}" for name, value in AZURE_PROBE_DEFAULTS.items())
    for probe in PROBES:
        add_flag(
            parser,
            f"--{probe}",
            nargs="+",
            metavar="FIELD=SECONDS_OR_COUNT",
            help=f"e.g. {fields} (Azure's defaults); fields left out keep their current value",
        )
    add_flag(
        parser,
        "--env",
        nargs="+",
        metavar="KEY=VALUE",
        help="the deployment's environment variables (replaces them all; `--env none` clears them)",
    )
    add_flag(parser, "--app_insights", choices=SWITCH, help="Application Insights logging (Azure; default: current)")
    add_flag(
        parser,
        "--egress_public_network",
        choices=SWITCH,
        help="outbound access of the deployment (Azure, legacy network isolation; default: current)",
    )
    add_flag(
        parser,
        "--data_collection",
        metavar="COLLECTIONS",
        help=f"collect what the deployment scores: {','.join(capture.COLLECTIONS)} (Azure's data collector; "
        "`none` turns it off; default: the current setting)",
    )
    add_flag(
        parser,
        "--sampling_rate",
        type=float,
        help="the share of requests collected, 0.0-1.0 (with --data_collection; default 1.0)",
    )


def parse(
    *,
    request_timeout_ms: int | None,
    max_concurrent_requests_per_instance: int | None,
    liveness_probe: list[str] | None,
    readiness_probe: list[str] | None,
    env: list[str] | None,
    app_insights: str | None,
    egress_public_network: str | None,
    data_collection: str | None = None,
    sampling_rate: float | None = None,
) -> Requested:
    """The settings the flags ask for (None: not given), each checked against Azure's documented range (UsageError
    naming the bad value)."""
    if request_timeout_ms is not None and not 1 <= request_timeout_ms <= REQUEST_TIMEOUT_MS_MAX:
        raise UsageError(
            f"invalid --request_timeout_ms {request_timeout_ms}: use 1 to {REQUEST_TIMEOUT_MS_MAX} (Azure's maximum)"
        )
    concurrency = max_concurrent_requests_per_instance
    if concurrency is not None and concurrency < 1:
        raise UsageError(f"invalid --max_concurrent_requests_per_instance {concurrency}: use 1 or more")
    return Requested(
        request_timeout_ms=request_timeout_ms,
        max_concurrent_requests_per_instance=concurrency,
        liveness_probe=_probe("liveness_probe", liveness_probe),
        readiness_probe=_probe("readiness_probe", readiness_probe),
        environment_variables=_variables(env),
        app_insights_enabled=None if app_insights is None else app_insights == "enabled",
        egress_public_network_access=egress_public_network,
        data_collection=capture.parse(data_collection, sampling_rate),
    )


def overriding(flags: Requested, written: Requested) -> Requested:
    """The flags' settings over a YAML file's: a flag given wins, a probe flag only for the fields it names."""
    merged: dict[str, Any] = {}
    for field in dataclasses.fields(Requested):
        given, from_file = getattr(flags, field.name), getattr(written, field.name)
        if field.name in PROBES and given is not None and from_file is not None:
            merged[field.name] = {**from_file, **given}
        else:
            merged[field.name] = given if given is not None else from_file
    return Requested(**merged)


def _pairs(flag: str, items: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise UsageError(f"invalid {flag} {item!r}: use KEY=VALUE")
        if key in pairs:
            raise UsageError(f"invalid {flag}: {key} is given twice")
        pairs[key] = value
    return pairs


def _probe(name: str, items: list[str] | None) -> dict[str, int] | None:
    if items is None:
        return None
    flag = f"--{name}"
    probe: dict[str, int] = {}
    for field, text in _pairs(flag, items).items():
        if field not in AZURE_PROBE_DEFAULTS:
            raise UsageError(f"invalid {flag} field {field!r}: use {', '.join(AZURE_PROBE_DEFAULTS)}")
        try:
            value = int(text)
        except ValueError:
            raise UsageError(f"invalid {flag} {field}={text!r}: use a whole number") from None
        if value < 1:
            raise UsageError(f"invalid {flag} {field}={value}: Azure's minimum is 1")
        probe[field] = value
    if name == "liveness_probe" and probe.get("success_threshold", 1) != 1:
        raise UsageError(
            f"invalid --liveness_probe success_threshold={probe['success_threshold']}: Azure fixes it at 1 for a "
            "liveness probe (a readiness probe may use more)"
        )
    return probe


def _variables(items: list[str] | None) -> dict[str, str] | None:
    if items is None:
        return None
    if items == ["none"]:
        return {}
    variables = _pairs("--env", items)
    for key in variables:
        if not ENVIRONMENT_NAME.match(key):
            raise UsageError(f"invalid --env name {key!r}: use letters, digits and _, not starting with a digit")
        if key in RESERVED_VARIABLES:
            raise UsageError(f"invalid --env name {key!r}: the platform sets it for the scoring script")
    workers = variables.get(WORKER_COUNT)
    if workers is not None and not (workers.isdigit() and int(workers) >= 1):
        raise UsageError(
            f"invalid --env {WORKER_COUNT}={workers!r}: the inference server needs a whole number, 1 or more"
        )
    return variables


def _kept_variables(requested: Requested, existing: Any | None) -> dict[str, str]:
    if requested.environment_variables is not None:
        return dict(requested.environment_variables)
    return dict(getattr(existing, "environment_variables", None) or {})


def worker_count(requested: Requested, existing: Any | None) -> str | None:
    """The WORKER_COUNT to set so the server runs as many workers as the deployment admits requests at once (None:
    the variables stay as they are). It follows max_concurrent_requests_per_instance unless --env names it: given
    this run, the count becomes the concurrency; kept from the existing deployment, it is added only where this
    run's --env replaced the variables without it. A run that gives neither flag leaves both as they are."""
    given_variables = requested.environment_variables
    if given_variables is not None and WORKER_COUNT in given_variables:
        return None
    if given_variables is None and requested.max_concurrent_requests_per_instance is None:
        return None
    variables = _kept_variables(requested, existing)
    concurrency = requested.max_concurrent_requests_per_instance
    if concurrency is None:
        kept = getattr(getattr(existing, "request_settings", None), "max_concurrent_requests_per_instance", None)
        if not kept or kept <= 1 or WORKER_COUNT in variables:
            return None
        concurrency = kept
    if concurrency <= 1 and WORKER_COUNT not in variables:
        return None
    return None if variables.get(WORKER_COUNT) == str(concurrency) else str(concurrency)


def worker_count_note(requested: Requested, existing: Any | None) -> str | None:
    workers = worker_count(requested, existing)
    if workers is None:
        return None
    return (
        f"Setting {WORKER_COUNT}={workers} to match max_concurrent_requests_per_instance {workers}: the inference "
        f"server runs {WORKER_COUNT} workers per instance (name {WORKER_COUNT} in --env to choose another number)"
    )


def check_update(requested: Requested, existing: Any | None) -> None:
    """What Azure refuses on an existing deployment, refused before any write: its egress setting is fixed at
    creation (concept-secure-online-endpoint, legacy network isolation)."""
    if existing is None or requested.egress_public_network_access is None:
        return
    current = _egress(existing) or "enabled"
    if requested.egress_public_network_access != current:
        raise UsageError(
            f"deployment {existing.name!r} was created with --egress_public_network {current}; Azure does not change "
            "it on an existing deployment: create a new deployment (e.g. green) with the setting and move the traffic"
        )


def apply(deployment: Any, requested: Requested, existing: Any | None) -> None:
    """Put the settings on `deployment`: each as asked for, else as `existing` has it (None: a new deployment)."""
    from azure.ai.ml.entities import OnlineRequestSettings, ProbeSettings

    request = copy.deepcopy(getattr(existing, "request_settings", None))
    if requested.request_timeout_ms is not None or requested.max_concurrent_requests_per_instance is not None:
        request = request or OnlineRequestSettings()
        if requested.request_timeout_ms is not None:
            request.request_timeout_ms = requested.request_timeout_ms
        if requested.max_concurrent_requests_per_instance is not None:
            request.max_concurrent_requests_per_instance = requested.max_concurrent_requests_per_instance
    deployment.request_settings = request
    for name in PROBES:
        probe = copy.deepcopy(getattr(existing, name, None))
        fields = getattr(requested, name)
        if fields:
            probe = probe or ProbeSettings()
            for field, value in fields.items():
                setattr(probe, field, value)
        setattr(deployment, name, probe)
    variables = _kept_variables(requested, existing)
    workers = worker_count(requested, existing)
    if workers is not None:
        variables[WORKER_COUNT] = workers
    deployment.environment_variables = variables
    deployment.app_insights_enabled = (
        requested.app_insights_enabled
        if requested.app_insights_enabled is not None
        else bool(getattr(existing, "app_insights_enabled", False))
    )
    egress = requested.egress_public_network_access or _egress(existing)
    deployment.egress_public_network_access = egress
    collection = requested.data_collection
    if collection is None:
        collection = capture.of_deployment(existing) if existing is not None else capture.OFF
    deployment.data_collector = capture.data_collector(collection, getattr(existing, "data_collector", None))


def _egress(deployment: Any) -> str | None:
    """ "enabled", "disabled" or None; read back from Azure it is an enum (EgressPublicNetworkAccessType)."""
    value = enum_value(getattr(deployment, "egress_public_network_access", None))
    return value.lower() if value else None


def in_force(deployment: Any) -> dict[str, Any]:
    """The settings of a deployment as plain values (None: Azure's default applies), for show and reports."""
    request = deployment.request_settings
    probes = {
        name: {field: getattr(probe, field) for field in AZURE_PROBE_DEFAULTS if getattr(probe, field, None)}
        for name in PROBES
        if (probe := getattr(deployment, name, None)) is not None
    }
    egress = _egress(deployment)
    return {
        "request_timeout_ms": getattr(request, "request_timeout_ms", None),
        "max_concurrent_requests_per_instance": getattr(request, "max_concurrent_requests_per_instance", None),
        **{name: probes.get(name) for name in PROBES},
        "environment_variables": sorted(deployment.environment_variables or {}),
        "app_insights": "enabled" if deployment.app_insights_enabled else "disabled",
        "egress_public_network": egress or "enabled",
        "data_collection": capture.of_deployment(deployment).as_dict(),
    }


def describe(settings: dict[str, Any]) -> str:
    """One line: request timeout and concurrency, probes, variables (names only: values may be secrets), switches."""
    timeout = settings["request_timeout_ms"] or AZURE_REQUEST_TIMEOUT_MS
    concurrency = settings["max_concurrent_requests_per_instance"] or AZURE_MAX_CONCURRENT_REQUESTS
    parts = [f"timeout {timeout} ms", f"{concurrency} concurrent/instance"]
    for name in PROBES:
        probe = settings[name]
        if probe:
            parts.append(f"{name.split('_')[0]} " + ",".join(f"{k}={v}" for k, v in probe.items()))
    variables = settings["environment_variables"]
    parts.append(f"env {','.join(variables)}" if variables else "no env")
    parts += [f"app insights {settings['app_insights']}", f"egress {settings['egress_public_network']}"]
    collection = settings.get("data_collection") or {}
    if collection.get("collections"):
        parts.append(f"collects {'+'.join(collection['collections'])} at {collection['sampling_rate']:.0%}")
    return "; ".join(parts)
