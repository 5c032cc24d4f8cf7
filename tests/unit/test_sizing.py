"""Right-sizing's rules without a server: the knee of a measurement, Azure's instance rule, the suggested settings,
and prices from Azure's VM sizes answer or the dated table."""

from __future__ import annotations

import pytest

from common import references
from common.azure import capacity, prices, sizing
from common.azure.sizing import Step
from common.references import AssetRef


def step(concurrency: int, p95_ms: float, errors: int = 0, p50_ms: float = 70.0) -> Step:
    return Step(concurrency, requests=100, errors=errors, p50_ms=p50_ms, p95_ms=p95_ms, per_second=10.0 * concurrency)


def test_the_knee_is_the_highest_concurrency_within_the_p95_limit_and_without_errors():
    steps = [step(1, 80), step(2, 120), step(4, 300, errors=1), step(8, 900)]

    assert sizing.knee(steps, 500).concurrency == 2  # 4 had an error
    assert sizing.knee(steps, 100).concurrency == 1
    assert sizing.knee(steps, 50) is None  # not even one request at a time


@pytest.mark.parametrize(
    ("target_rps", "p50_ms", "concurrent"),
    [(100, 70, 10), (10, 2000, 29), (1, 10, 1), (1000, 70, 100)],
)
def test_concurrent_requests_are_target_times_request_time_over_utilization(target_rps, p50_ms, concurrent):
    assert sizing.concurrent_requests(target_rps, p50_ms / 1000) == concurrent


@pytest.mark.parametrize(
    ("knee", "vcpus", "local_cores", "per_instance"), [(2, 4, 2, 4), (2, 1, 2, 1), (1, 2, 4, 1), (3, 8, 2, 12)]
)
def test_the_knee_is_scaled_by_vcpus_over_this_machines_cores(knee, vcpus, local_cores, per_instance):
    assert sizing.per_instance_concurrency(knee, vcpus, local_cores) == per_instance


def test_azures_rule_per_instance_type_with_the_high_availability_minimum():
    found = step(2, 120, p50_ms=70)

    small = sizing.candidate("Standard_DS3_v2", 4, found, target_rps=100, local_cores=2)
    large = sizing.candidate("Standard_DS3_v2", 4, found, target_rps=1000, local_cores=2)

    assert (small.per_instance, small.concurrent, small.by_rule, small.instances) == (4, 10, 3, 3)
    assert (large.concurrent, large.by_rule, large.instances) == (100, 25, 25)
    assert small.refused_beyond == 2 * 4 * 3
    assert sizing.candidate("Standard_DS3_v2", 4, found, target_rps=10, local_cores=2).instances == 3  # by rule 1
    assert small.core_ratio == 2.0 and small.request_seconds == 0.07
    assert large.autoscale_max == 38  # half again, for bursts


@pytest.mark.parametrize(("p95_ms", "timeout_ms"), [(100, 5000), (2500, 8000), (10_000, 30_000), (100_000, 180_000)])
def test_the_suggested_request_timeout_is_three_p95s_within_azures_bounds(p95_ms, timeout_ms):
    assert sizing.request_timeout_ms(p95_ms) == timeout_ms


def test_monthly_and_per_thousand_request_costs():
    price = sizing.Price(0.293, "USD", prices.TABLE_SOURCE)
    chosen = sizing.candidate("Standard_DS3_v2", 4, step(2, 120), target_rps=100, local_cores=2, price=price)

    assert chosen.monthly == pytest.approx(0.293 * 3 * 730)
    assert chosen.per_thousand(100) == pytest.approx(0.293 * 3 / 360)
    assert sizing.candidate("Standard_X", 4, step(2, 120), target_rps=100, local_cores=2).monthly is None


def test_quota_is_compared_only_when_both_figures_are_known():
    found = step(2, 120)
    assert sizing.candidate("T", 4, found, 100, 2, cores_needed=16, quota_free=20).fits_quota is True
    assert sizing.candidate("T", 4, found, 100, 2, cores_needed=16, quota_free=10).fits_quota is False
    assert sizing.candidate("T", 4, found, 100, 2, cores_needed=16).fits_quota is None


def test_capacity_at_a_count_is_the_rule_read_backwards():
    found = step(2, 120, p50_ms=70)
    assert sizing.capacity_rps(found, per_instance=4, instances=3) == pytest.approx(4 * 3 * 0.7 / 0.07)


# what the VM sizes list answers (azure-rest-api-specs, 2024-04-01 examples, VirtualMachineSize/list.json)
DS3_V2 = {
    "name": "Standard_DS3_v2",
    "family": "standardDSv2Family",
    "vCPUs": 4,
    "estimatedVMPrices": {
        "billingCurrency": "USD",
        "unitOfMeasure": "OneHour",
        "values": [
            {"retailPrice": 0.2, "osType": "Windows", "vmTier": "LowPriority"},
            {"retailPrice": 0.06, "osType": "Linux", "vmTier": "LowPriority"},
            {"retailPrice": 0.5, "osType": "Windows", "vmTier": "Standard"},
            {"retailPrice": 0.29, "osType": "Linux", "vmTier": "Standard"},
        ],
    },
}


def test_azures_price_is_the_linux_standard_tier_and_the_table_is_labelled_with_its_date():
    answered = prices.from_sizes([DS3_V2, {"name": "Standard_DS2_v2", "vCPUs": 2}])

    assert answered == {"standard_ds3_v2": sizing.Price(0.29, "USD", prices.AZURE_SOURCE)}
    assert prices.price_of("standard_ds3_v2", answered).hourly == 0.29
    fallback = prices.price_of("Standard_DS2_v2", answered)
    assert fallback is not None and fallback.source == prices.TABLE_SOURCE and prices.TABLE_DATE in fallback.source
    assert prices.price_of("Standard_NC6s_v3") is None


@pytest.mark.parametrize(
    ("vcpus", "free", "largest"),
    [(2, 10, 4), (4, 8, 1), (4, 7, 0), (8, 0, 0), (4, 100, 20)],
    ids=["ds2-ceil-1.2x4-is-5", "f4-one-needs-2x4", "f4-none", "nothing-free", "roomy"],
)
def test_the_largest_deployment_that_fits_follows_the_reserve_rule(vcpus, free, largest):
    size = capacity.Size("Standard_X", "standardXFamily", vcpus, None, True)

    assert capacity.largest_fitting(size, free) == largest
    assert capacity.cores_for(largest + 1, size) > free  # one more would not fit


def test_a_plans_free_cores_are_the_fewest_among_the_quotas_that_bound_it():
    size = capacity.Size("Standard_DS3_v2", "standardDSv2Family", 4, None, True)
    family, region = capacity.Quota("family", 90, 100), capacity.Quota("region", 10, 200)
    unlimited = capacity.Quota("workspace", 5, -1)

    assert capacity.Plan(size, 3, 0, 16, family, region, workspace_family=unlimited).free == 10
    assert capacity.Plan(size, 3, 0, 16, None, None).free is None


@pytest.mark.parametrize(
    ("kind", "arm_id", "expected"),
    [
        (
            "codes",
            "azureml:/subscriptions/s/resourceGroups/r/providers/P/workspaces/w/codes/abc-1/versions/1",
            AssetRef("abc-1", "1"),
        ),
        (
            "environments",
            "/subscriptions/s/resourceGroups/r/workspaces/w/environments/env/versions/7",
            AssetRef("env", "7"),
        ),
        ("models", "azureml:diabetes-predict:3", None),  # not an ARM id: the scripts' own form
        ("models", "azureml://registries/azureml/models/mlflow-model/versions/2", None),  # a registry's
        ("models", None, None),
    ],
)
def test_a_workspace_asset_is_read_from_the_arm_id_a_deployment_answers_with(kind, arm_id, expected):
    assert references.registered_asset(kind, arm_id) == expected
