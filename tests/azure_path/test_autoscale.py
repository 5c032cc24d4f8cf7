"""autoscale: an Azure Monitor autoscale setting for a deployment, through azure-mgmt-monitor against the fake control
plane; --dry_run prints a setting azure-mgmt-monitor's own model accepts; bad input refused before any call."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from azure.mgmt.monitor import models
from azure.mgmt.monitor._utils.serialization import Serializer  # the one the SDK's operations use
from azure.mgmt.monitor.models import AutoscaleSettingResource

import manage_online_endpoint
from tests.fake_azure import AUTOSCALE_PREFIX, WORKSPACE_ID

AUTOSCALE = ["autoscale", "--endpoint_name", "diabetes-classify", "--deployment_name", "blue"]
CAPACITY = ["--min", "1", "--max", "5", "--default", "2", "--cpu_out", "70", "--cpu_in", "30"]
SETTING = f"{AUTOSCALE_PREFIX}/diabetes-classify-blue-autoscale"
DEPLOYMENT_ID = f"{WORKSPACE_ID}/onlineEndpoints/diabetes-classify/deployments/blue"


def test_dry_run_prints_a_setting_the_monitor_model_accepts(fake_azure, run_script):
    argv = [*AUTOSCALE, *CAPACITY, "--latency_out_ms", "70", "--cooldown_minutes", "10", "--dry_run"]

    result = run_script(manage_online_endpoint, argv)

    assert result.code == 0, result.err
    assert fake_azure.requests == []
    printed = json.loads(result.out)
    # what the SDK's create_or_update does with a body: build the model from it and serialize it back
    assert monitor_serializer().body(copy.deepcopy(printed), "AutoscaleSettingResource") == printed
    setting = AutoscaleSettingResource.deserialize(printed)
    assert missing_required(setting) == []
    assert setting.enabled is True and setting.target_resource_uri == DEPLOYMENT_ID
    [profile] = setting.profiles
    assert (profile.capacity.minimum, profile.capacity.maximum, profile.capacity.default) == ("1", "5", "2")
    rules = [
        (r.metric_trigger.metric_name, r.metric_trigger.operator, r.metric_trigger.threshold, r.scale_action.direction)
        for r in profile.rules
    ]
    assert rules == [
        ("CpuUtilizationPercentage", "GreaterThan", 70, "Increase"),
        ("CpuUtilizationPercentage", "LessThan", 30, "Decrease"),
        ("RequestLatency", "GreaterThan", 70, "Increase"),
    ]
    assert profile.rules[2].metric_trigger.metric_resource_uri == f"{WORKSPACE_ID}/onlineEndpoints/diabetes-classify"
    assert {r.scale_action.cooldown.total_seconds() for r in profile.rules} == {600}
    assert printed["properties"]["name"] == "diabetes-classify-blue-autoscale"


def monitor_serializer() -> Serializer:
    return Serializer({name: kind for name, kind in vars(models).items() if isinstance(kind, type)})


def missing_required(model: Any) -> list[str]:
    """The model's own rules (its _validation table: required fields, item counts), which the 7.x serializer no
    longer checks by itself; nested models too."""
    problems = []
    for attribute, rules in type(model)._validation.items():
        value = getattr(model, attribute, None)
        if rules.get("required") and value is None:
            problems.append(f"{type(model).__name__}.{attribute} is required")
        if isinstance(value, list) and len(value) > rules.get("max_items", len(value)):
            problems.append(f"{type(model).__name__}.{attribute} has over {rules['max_items']} items")
    for value in vars(model).values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, models.AutoscaleProfile | models.ScaleRule | models.MetricTrigger | models.ScaleAction):
                problems += missing_required(item)
    return problems


def test_the_model_check_can_fail():
    setting = AutoscaleSettingResource.deserialize({"properties": {"profiles": [{"name": "p"}], "enabled": True}})

    assert missing_required(setting) == [
        "AutoscaleSettingResource.location is required",
        "AutoscaleProfile.capacity is required",
        "AutoscaleProfile.rules is required",
    ]


@pytest.fixture
def with_blue(fake_azure):
    fake_azure.add_endpoint("diabetes-classify", {"blue": 100})
    return fake_azure


def test_autoscale_creates_the_setting_on_the_deployment(with_blue, run_script):
    result = run_script(manage_online_endpoint, [*AUTOSCALE, *CAPACITY])

    assert result.code == 0, result.err
    [put] = with_blue.sent("PUT", SETTING)
    assert put.body["location"] == "eastus"
    assert put.body["properties"]["enabled"] is True
    assert put.body["properties"]["targetResourceUri"] == DEPLOYMENT_ID
    assert len(put.body["properties"]["profiles"][0]["rules"]) == 2
    assert "instances: min 1, max 5, default 2" in result.out
    assert "scale out by 1 when CpuUtilizationPercentage > 70 (average over 5 min; cool down 5 min)" in result.out
    assert "scale in by 1 when CpuUtilizationPercentage < 30" in result.out


def test_show_and_delete_manage_the_existing_setting(with_blue, run_script):
    assert run_script(manage_online_endpoint, [*AUTOSCALE, *CAPACITY, "--latency_out_ms", "70"]).code == 0

    shown = run_script(manage_online_endpoint, [*AUTOSCALE, "--show"])
    deleted = run_script(manage_online_endpoint, [*AUTOSCALE, "--delete"])
    again = run_script(manage_online_endpoint, [*AUTOSCALE, "--show"])

    assert shown.code == 0 and "scale out by 1 when RequestLatency > 70" in shown.out
    assert deleted.code == 0 and with_blue.sent("DELETE", SETTING) and with_blue.autoscale == {}
    assert again.code == 3 and "deployment 'blue' has no autoscale setting" in again.err


def test_autoscale_of_a_missing_deployment_is_refused(with_blue, run_script):
    argv = ["autoscale", "--endpoint_name", "diabetes-classify", "--deployment_name", "green", *CAPACITY]

    result = run_script(manage_online_endpoint, argv)

    assert result.code == 3 and "has no deployment 'green'" in result.err
    assert with_blue.sent("PUT", SETTING + ".*") == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--min", "3", "--max", "5", "--default", "2", "--cpu_out", "70", "--cpu_in", "30"], "1 <= min <= default"),
        (["--min", "1", "--max", "60", "--default", "2", "--cpu_out", "70", "--cpu_in", "30"], "max <= 50"),
        (["--min", "1", "--max", "5", "--default", "2", "--cpu_out", "30", "--cpu_in", "70"], "--cpu_in 70 above"),
        ([*CAPACITY[:8], "--cpu_in", "0"], "invalid --cpu_in 0"),
        ([*CAPACITY, "--cooldown_minutes", "0"], "invalid --cooldown_minutes 0"),
        ([*CAPACITY, "--latency_out_ms", "-1"], "invalid --latency_out_ms -1"),
        (CAPACITY[:6], "autoscale needs --cpu_out --cpu_in"),
        (["--show", "--delete"], "use one of --show, --delete and --dry_run"),
        ([*CAPACITY, "--local"], "the local target runs a fixed number of workers per deployment"),
    ],
)
def test_bad_autoscale_input_is_refused_before_any_call(fake_azure, run_script, argv, message):
    result = run_script(manage_online_endpoint, [*AUTOSCALE, *argv])

    assert result.code == 2 and message in result.err
    assert fake_azure.requests == []
