"""Autoscale of a managed online deployment: an Azure Monitor autoscale setting on the deployment resource.

Built the way the Azure ML autoscale guide does it with azure-mgmt-monitor (how-to-autoscale-endpoints): one
profile whose capacity is the deployment's instance count (minimum, maximum, default), a scale-out and a scale-in
rule on the deployment's CpuUtilizationPercentage (average over 5 minutes, one instance at a time), and optionally
a scale-out rule on the endpoint's RequestLatency. The setting lives in the workspace's resource group, named after
the endpoint and deployment, so each deployment has at most one.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from common.control.wire import enum_value
from common.errors import UsageError
from common.validation import MAX_INSTANCES

RULE_WINDOW = datetime.timedelta(minutes=5)  # the guide's time window for each rule
TIME_GRAIN = datetime.timedelta(minutes=1)
MAX_COOLDOWN_MINUTES = 7 * 24 * 60  # Azure Monitor autoscale's longest cool down (one week)
PROFILE_NAME = "toolkit-autoscale"
CPU_METRIC = "CpuUtilizationPercentage"  # a deployment metric
LATENCY_METRIC = "RequestLatency"  # an endpoint metric (milliseconds)


@dataclass(frozen=True)
class Plan:
    minimum: int
    maximum: int
    default: int
    cpu_out: float
    cpu_in: float
    latency_out_ms: float | None = None
    cooldown_minutes: int = 5


def setting_name(endpoint: str, deployment: str) -> str:
    return f"{endpoint}-{deployment}-autoscale"


def check(plan: Plan) -> Plan:
    """Azure Monitor's and the deployment's rules, before any call (UsageError naming the bad value)."""
    if not 1 <= plan.minimum <= plan.default <= plan.maximum <= MAX_INSTANCES:
        raise UsageError(
            f"invalid capacity --min {plan.minimum} --default {plan.default} --max {plan.maximum}: use "
            f"1 <= min <= default <= max <= {MAX_INSTANCES} (a managed deployment's most instances)"
        )
    for flag, value in (("--cpu_out", plan.cpu_out), ("--cpu_in", plan.cpu_in)):
        if not 0 < value <= 100:
            raise UsageError(f"invalid {flag} {value:g}: use a CPU percentage above 0, at most 100")
    if plan.cpu_in > plan.cpu_out:
        raise UsageError(
            f"invalid --cpu_in {plan.cpu_in:g} above --cpu_out {plan.cpu_out:g}: scale in at a lower CPU than out "
            "(else the two rules fight each other)"
        )
    if plan.latency_out_ms is not None and not plan.latency_out_ms > 0:
        raise UsageError(f"invalid --latency_out_ms {plan.latency_out_ms:g}: use milliseconds above 0")
    if not 1 <= plan.cooldown_minutes <= MAX_COOLDOWN_MINUTES:
        raise UsageError(f"invalid --cooldown_minutes {plan.cooldown_minutes}: use 1 to {MAX_COOLDOWN_MINUTES}")
    return plan


def build(plan: Plan, *, name: str, location: str, deployment_id: str, endpoint_id: str) -> Any:
    """The autoscale setting, as azure-mgmt-monitor's model (enabled: the model's own default is disabled)."""
    from azure.mgmt.monitor.models import (
        AutoscaleProfile,
        AutoscaleSettingResource,
        MetricTrigger,
        ScaleAction,
        ScaleCapacity,
        ScaleRule,
    )

    cooldown = datetime.timedelta(minutes=plan.cooldown_minutes)

    def rule(metric: str, resource: str, operator: str, threshold: float, direction: str) -> ScaleRule:
        trigger = MetricTrigger(
            metric_name=metric,
            metric_resource_uri=resource,
            time_grain=TIME_GRAIN,
            statistic="Average",
            time_window=RULE_WINDOW,
            time_aggregation="Average",
            operator=operator,
            threshold=threshold,
        )
        action = ScaleAction(direction=direction, type="ChangeCount", value="1", cooldown=cooldown)
        return ScaleRule(metric_trigger=trigger, scale_action=action)

    rules = [
        rule(CPU_METRIC, deployment_id, "GreaterThan", plan.cpu_out, "Increase"),
        rule(CPU_METRIC, deployment_id, "LessThan", plan.cpu_in, "Decrease"),
    ]
    if plan.latency_out_ms is not None:
        rules.append(rule(LATENCY_METRIC, endpoint_id, "GreaterThan", plan.latency_out_ms, "Increase"))
    capacity = ScaleCapacity(minimum=str(plan.minimum), maximum=str(plan.maximum), default=str(plan.default))
    return AutoscaleSettingResource(
        location=location,
        profiles=[AutoscaleProfile(name=PROFILE_NAME, capacity=capacity, rules=rules)],
        enabled=True,
        name_properties_name=name,
        target_resource_uri=deployment_id,
    )


def as_json(setting: Any) -> dict[str, Any]:
    """The setting's REST body (what the PUT sends, and what --dry_run prints)."""
    body: dict[str, Any] = setting.serialize()
    return body


def describe(setting: Any) -> list[str]:
    """What the setting does, a line per rule."""
    profile = setting.profiles[0]
    capacity = profile.capacity
    lines = [
        f"Autoscale {setting.name_properties_name or setting.name} ({'enabled' if setting.enabled else 'disabled'}) on "
        f"{setting.target_resource_uri}:",
        f"  instances: min {capacity.minimum}, max {capacity.maximum}, default {capacity.default}",
    ]
    for rule in profile.rules:
        trigger, action = rule.metric_trigger, rule.scale_action
        sign = ">" if enum_value(trigger.operator) == "GreaterThan" else "<"
        direction = "out" if enum_value(action.direction) == "Increase" else "in"
        lines.append(
            f"  scale {direction} by {action.value} when {trigger.metric_name} {sign} {trigger.threshold:g} "
            f"(average over {_minutes(trigger.time_window)} min; cool down {_minutes(action.cooldown)} min)"
        )
    return lines


def _minutes(duration: Any) -> str:
    if isinstance(duration, datetime.timedelta):
        return f"{duration.total_seconds() / 60:g}"
    return str(duration)
