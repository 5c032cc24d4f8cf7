"""The region's VM sizes and the subscription's usage (azure-rest-api-specs, Microsoft.MachineLearningServices
2024-04-01 examples VirtualMachineSize/list.json and Usage/list.json): what the capacity check reads."""

from __future__ import annotations

from typing import Any

from tests.fake_azure.wire import RESOURCE_GROUP, SUBSCRIPTION, Reply, SeenRequest, _ok

FAMILIES = {"standardDSv2Family": "DSv2", "standardFSv2Family": "FSv2", "standardDAv4Family": "DAv4"}


# The Linux standard-tier and low-priority hourly prices the REST example gives its sizes (USD, OneHour); the
# example lists no price for F4s_v2 and D4a_v4, which the fake answers without one (estimatedVMPrices is optional)
EXAMPLE_PRICES = {
    "Standard_DS1_v2": (0.07, 0.01),
    "Standard_DS2_v2": (0.15, 0.03),
    "Standard_DS3_v2": (0.29, 0.06),
    "Standard_DS4_v2": (0.58, 0.12),
}


SIZES = r"/subscriptions/[^/]+/providers/Microsoft.MachineLearningServices/locations/[^/]+/vmSizes"  # a read's path
USAGES = r"/subscriptions/[^/]+/providers/Microsoft.MachineLearningServices/locations/[^/]+/usages"


def size(name: str, family: str, vcpus: int, memory_gb: float, online: bool = True) -> dict[str, Any]:
    types = ["AmlCompute", "ComputeInstance", *(["MIR"] if online else [])]
    answer = {
        "name": name,
        "family": family,
        "vCPUs": vcpus,
        "gpus": 0,
        "memoryGB": memory_gb,
        "lowPriorityCapable": True,
        "premiumIO": True,
        "supportedComputeTypes": types,
    }
    if name in EXAMPLE_PRICES:
        standard, low = EXAMPLE_PRICES[name]
        answer["estimatedVMPrices"] = {
            "billingCurrency": "USD",
            "unitOfMeasure": "OneHour",
            "values": [
                {"retailPrice": low, "osType": "Linux", "vmTier": "LowPriority"},
                {"retailPrice": standard, "osType": "Linux", "vmTier": "Standard"},
            ],
        }
    return answer


def usage(family: str | None, current: int, limit: int) -> dict[str, Any]:
    """One family's dedicated vCPUs, or (family None) the region's total."""
    if family is None:
        label, kind, suffix = "Total Cluster Dedicated Regional vCPUs", "dedicatedCores", ""
    else:
        short = FAMILIES.get(family, family)
        label, kind = f"Standard {short} Family Cluster Dedicated vCPUs", "vmFamily"
        suffix = "/" + label.replace(" ", "_")
    return {
        "id": f"/subscriptions/{SUBSCRIPTION}/usages{suffix}",
        "type": f"Microsoft.MachineLearningServices/{kind}/usages",
        "currentValue": current,
        "limit": limit,
        "name": {"value": label, "localizedValue": label},
        "unit": "Count",
    }


def workspace_usage(
    workspace: str, family: str, current: int, limit: int, spelled: str = "workspaces"
) -> dict[str, Any]:
    """A workspace's own quota for a family, as the Usage/list.json example lists it: under the workspace's id, of
    type Microsoft.MachineLearningServices/workspaces/usages (the example also spells it workspace/usages)."""
    short = FAMILIES.get(family, family)
    label = f"Standard {short} Family Cluster Dedicated vCPUs"
    return {
        "id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/"
        f"Microsoft.MachineLearningServices/workspaces/{workspace}/usages/{label.replace(' ', '_')}",
        "type": f"Microsoft.MachineLearningServices/{spelled}/usages",
        "currentValue": current,
        "limit": limit,
        "name": {"value": label, "localizedValue": label},
        "unit": "Count",
    }


def default_sizes() -> list[dict[str, Any]]:
    return [
        size("Standard_DS1_v2", "standardDSv2Family", 1, 3.5, online=False),
        size("Standard_DS2_v2", "standardDSv2Family", 2, 7.0),
        size("Standard_DS3_v2", "standardDSv2Family", 4, 14.0),
        size("Standard_DS4_v2", "standardDSv2Family", 8, 28.0),
        size("Standard_F4s_v2", "standardFSv2Family", 4, 8.0),
        size("Standard_D4a_v4", "standardDAv4Family", 4, 16.0),
    ]


def default_usages() -> list[dict[str, Any]]:
    return [usage(None, 0, 100), usage("standardDSv2Family", 0, 100), usage("standardFSv2Family", 0, 100)]


class CapacityRoutes:
    """Routes of FakeAzureML (tests/fake_azure/__init__.py), on its state."""

    vm_sizes: list[dict[str, Any]]
    usages: list[dict[str, Any]]

    def _vm_sizes(self, _request: SeenRequest, _location: str) -> Reply:
        return _ok({"value": self.vm_sizes})

    def _usages(self, _request: SeenRequest, _location: str) -> Reply:
        return _ok({"value": self.usages})
