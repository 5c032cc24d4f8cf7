"""The capacity check before an Azure deployment, through the fake control plane: sizes and usage read once each,
a deployment over quota refused with the numbers and nothing written, a type the region does not offer refused, a
failed read a warning; and the capacity verb."""

from __future__ import annotations

import json
import re

import pytest

import create_online_deployment
import manage_online_endpoint
from common.azure import capacity
from tests.fake_azure import RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE
from tests.fake_azure.capacity import SIZES, USAGES, usage, workspace_usage
from tests.seeds import DEPLOYMENT_SEED, with_flag, with_seed_assets

ENDPOINT = "diabetes-classify"


@pytest.fixture
def workspace(fake_azure):
    fake = with_seed_assets(fake_azure)
    fake.add_endpoint(ENDPOINT)
    return fake


def reads(workspace) -> tuple[int, int]:
    return len(workspace.sent("GET", SIZES)), len(workspace.sent("GET", USAGES))


def test_the_rule_is_ceil_of_1_2_times_the_count_times_the_vcpus():
    ds3 = capacity.Size("Standard_DS3_v2", "standardDSv2Family", 4, 14.0, True)
    assert [capacity.cores_for(count, ds3) for count in (1, 2, 5, 10)] == [8, 12, 24, 48]


def test_a_deployment_within_quota_goes_on_after_one_read_of_each(workspace, run_script):
    result = run_script(create_online_deployment, DEPLOYMENT_SEED)

    assert result.code == 0, result.err
    assert reads(workspace) == (1, 1)
    assert "Capacity: 8 cores needed for 1 x Standard_DS3_v2; family standardDSv2Family 0/100 in use" in result.err


def test_a_deployment_over_the_family_quota_is_refused_with_the_numbers_and_nothing_written(workspace, run_script):
    workspace.usages = [usage(None, 0, 100), usage("standardDSv2Family", 0, 6)]

    result = run_script(create_online_deployment, DEPLOYMENT_SEED)

    assert result.code == 7, result.err
    (line,) = result.err.strip().splitlines()[-1:]
    assert "family standardDSv2Family: needed 8, in use 0, limit 6 (6 free)" in line
    assert "https://ml.azure.com/quota" in line
    assert workspace.writes() == []


@pytest.mark.parametrize("spelled", ["workspaces", "workspace"])
def test_the_workspaces_own_quota_counts_too_and_another_workspaces_does_not(workspace, run_script, spelled):
    """Before: the workspace-level usage entries were ignored (a workspace can be given a quota of its own)."""
    workspace.usages = [
        usage(None, 0, 100),
        usage("standardDSv2Family", 0, 100),
        workspace_usage("another-workspace", "standardDSv2Family", 0, 4, spelled),  # not this one's: ignored
        workspace_usage(WORKSPACE, "standardDSv2Family", 2, 6, spelled),
    ]

    result = run_script(create_online_deployment, DEPLOYMENT_SEED)

    assert result.code == 7, result.err
    line = result.err.strip().splitlines()[-1]
    assert "the workspace's family standardDSv2Family: needed 8, in use 2, limit 6 (4 free)" in line
    assert "family standardDSv2Family: needed 8, in use 0" not in line  # the subscription's family has room
    assert workspace.writes() == []


def test_the_regional_total_counts_too(workspace, run_script):
    workspace.usages = [usage(None, 90, 96), usage("standardDSv2Family", 0, 100)]

    result = run_script(create_online_deployment, with_flag(DEPLOYMENT_SEED, "--instance_count", "3"))

    assert result.code == 7
    assert "region's total: needed 16, in use 90, limit 96 (6 free)" in result.err
    assert workspace.writes() == []


@pytest.mark.parametrize(
    ("instance_type", "message"),
    [
        ("Standard_DS1_v2", "is offered there, but not for managed online deployments"),
        ("Standard_DS9_v2", "is not offered in the workspace's region; closest offered: Standard_DS"),
    ],
)
def test_an_instance_type_the_region_does_not_offer_is_refused(workspace, run_script, instance_type, message):
    result = run_script(create_online_deployment, with_flag(DEPLOYMENT_SEED, "--instance_type", instance_type))

    assert result.code == 2
    assert message in result.err
    assert workspace.writes() == []


def test_a_failed_read_is_a_warning_and_the_deployment_goes_on(workspace, run_script):
    workspace.fail("GET", SIZES, 403, "AuthorizationFailed", "no read permission on vmSizes")

    result = run_script(create_online_deployment, DEPLOYMENT_SEED)

    assert result.code == 0, result.err
    assert "capacity not checked" in result.err and "deploying as asked" in result.err
    assert workspace.sent("PUT", f"/onlineEndpoints/{ENDPOINT}/deployments/diabetes-classify-blue-dp")


def test_skip_capacity_check_reads_nothing(workspace, run_script):
    result = run_script(create_online_deployment, [*DEPLOYMENT_SEED, "--skip_capacity_check"])

    assert result.code == 0, result.err
    assert reads(workspace) == (0, 0)


def test_an_update_counts_what_the_deployment_holds_and_one_that_does_not_grow_reads_nothing(workspace, run_script):
    workspace.add_deployment(ENDPOINT, "diabetes-classify-blue-dp")  # 1 x Standard_DS3_v2: 8 cores held
    workspace.usages = [usage(None, 8, 100), usage("standardDSv2Family", 8, 16)]

    same = run_script(create_online_deployment, DEPLOYMENT_SEED)
    grown = run_script(create_online_deployment, with_flag(DEPLOYMENT_SEED, "--instance_count", "3"))

    assert same.code == 0, same.err
    assert grown.code == 0, grown.err  # 3 instances need 16 cores; 8 are held, 8 more fit in the 8 free
    assert reads(workspace) == (1, 1)
    assert "Capacity: 8 cores needed for 3 x Standard_DS3_v2" in grown.err


def test_dry_run_with_a_workspace_reports_the_check_and_writes_nothing(workspace, run_script):
    flags = ["--subscription_id", SUBSCRIPTION, "--resource_group", RESOURCE_GROUP, "--workspace_name", WORKSPACE]
    workspace.usages = [usage(None, 0, 100), usage("standardDSv2Family", 0, 4)]

    result = run_script(create_online_deployment, [*DEPLOYMENT_SEED, *flags, "--dry_run"])

    assert result.code == 7
    assert "needed 8, in use 0, limit 4" in result.err
    assert workspace.writes() == []


def test_the_capacity_verb_prints_the_plan_and_what_each_deployment_holds(workspace, run_script):
    workspace.add_deployment(ENDPOINT, "blue")
    workspace.usages = [usage(None, 8, 100), usage("standardDSv2Family", 8, 24)]

    text = run_script(
        manage_online_endpoint,
        ["capacity", "--endpoint_name", ENDPOINT, "--instance_type", "Standard_DS3_v2", "--instance_count", "2"],
    )
    data = run_script(
        manage_online_endpoint,
        ["capacity", "--instance_type", "standard_ds3_v2", "--instance_count", "4", "--output", "json"],
    )

    assert text.code == 0, text.err
    assert "cores needed: 3 instances (ceil(1.2 x 2), Azure's 20% upgrade reserve) x 4 vCPUs = 12" in text.out
    assert "  blue on diabetes-classify: 1 x Standard_DS3_v2 holds 8 cores" in text.out
    assert "Enough quota for this deployment." in text.out
    found = json.loads(data.out)
    assert (found["cores_needed"], found["enough"]) == (20, False)  # ceil(4.8) = 5 x 4 vCPUs; 16 free
    assert found["family_quota"] == {
        "name": "Standard DSv2 Family Cluster Dedicated vCPUs",
        "in_use": 8,
        "limit": 24,
        "free": 16,
    }
    assert workspace.writes() == []


def test_the_capacity_verb_shows_the_workspaces_own_quota_when_reported(workspace, run_script):
    workspace.usages = [*workspace.usages, workspace_usage(WORKSPACE, "standardDSv2Family", 2, 6)]
    argv = ["capacity", "--instance_type", "Standard_DS3_v2", "--instance_count", "1"]

    text = run_script(manage_online_endpoint, argv)
    data = run_script(manage_online_endpoint, [*argv, "--output", "json"])

    assert text.code == 0, text.err
    assert re.search(r"^  the workspace's own family quota\s+2\s+6\s+4\s+8\s+NO$", text.out, re.M), text.out
    assert json.loads(data.out)["workspace_family_quota"] == {
        "name": "Standard DSv2 Family Cluster Dedicated vCPUs",
        "in_use": 2,
        "limit": 6,
        "free": 4,
    }


def test_capacity_prices_the_plan_from_the_regions_answer_else_the_dated_table(workspace, run_script):
    """The VM sizes answer carries estimatedVMPrices (the REST example's Linux standard tier for DS3_v2: 0.29 USD an
    hour); F4s_v2 has none there, so the toolkit's dated table prices it, labelled."""
    from common.azure import prices

    answered = run_script(
        manage_online_endpoint, ["capacity", "--instance_type", "Standard_DS3_v2", "--instance_count", "3"]
    )
    table = run_script(
        manage_online_endpoint,
        ["capacity", "--instance_type", "Standard_F4s_v2", "--instance_count", "2", "--output", "json"],
    )

    assert answered.code == 0, answered.err
    assert (
        "Cost: 3 x 0.29 USD/hour x 730 hours = 635 USD a month (Azure (the region's VM sizes, estimatedVMPrices))"
        in answered.out
    )
    cost = json.loads(table.out)["cost"]
    assert cost["source"] == prices.TABLE_SOURCE and cost["hourly"] == prices.TABLE["Standard_F4s_v2"]
    assert cost["monthly"] == pytest.approx(2 * prices.TABLE["Standard_F4s_v2"] * 730)
