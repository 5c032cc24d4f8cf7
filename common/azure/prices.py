"""An instance type's hourly price: Azure's own where the VM sizes API answers, else a dated table, always labelled.

The region's VM sizes (the list the capacity check reads, common/azure/capacity.py) carry each size's
estimatedVMPrices: {"billingCurrency": "USD", "unitOfMeasure": "OneHour", "values": [{"retailPrice", "osType",
"vmTier"}, ...]} (azure-rest-api-specs, Microsoft.MachineLearningServices 2024-04-01, VirtualMachineSize/list.json).
A managed online deployment runs Linux at the standard tier, so that value is the price. Offline, and for the local
target, TABLE gives approximate pay-as-you-go Linux rates of East US, labelled with its date and currency: it was not
read from Azure, and prices differ by region and change.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from common.azure.sizing import Price

AZURE_SOURCE = "Azure (the region's VM sizes, estimatedVMPrices)"
TABLE_DATE = "2026-12-07"
TABLE_CURRENCY = "USD"
TABLE_SOURCE = (
    f"the toolkit's table of {TABLE_DATE}: approximate East US pay-as-you-go Linux rates, not read from Azure"
)
TABLE = {  # per hour, in TABLE_CURRENCY
    "Standard_DS1_v2": 0.073,
    "Standard_DS2_v2": 0.146,
    "Standard_DS3_v2": 0.293,
    "Standard_DS4_v2": 0.585,
    "Standard_DS5_v2": 1.17,
    "Standard_F2s_v2": 0.0846,
    "Standard_F4s_v2": 0.169,
    "Standard_F8s_v2": 0.338,
    "Standard_F16s_v2": 0.677,
    "Standard_D2as_v4": 0.096,
    "Standard_D4as_v4": 0.192,
    "Standard_D8as_v4": 0.384,
    "Standard_D16as_v4": 0.768,
    "Standard_E2s_v3": 0.126,
    "Standard_E4s_v3": 0.252,
    "Standard_E8s_v3": 0.504,
    "Standard_E16s_v3": 1.008,
}


def _wire(entity: Any, name: str) -> Any:
    """A wire field of an SDK entity (azure-ai-ml keeps them beside unset snake_case attributes) or of a dict."""
    if isinstance(entity, dict):
        return entity.get(name)
    found = getattr(entity, name, None)
    if found is None:
        found = (getattr(entity, "__dict__", {}) or {}).get(name)
    return found


def from_sizes(entities: Iterable[Any]) -> dict[str, Price]:
    """The Linux standard-tier hourly price of each size whose answer has one, by lower-case name."""
    prices: dict[str, Price] = {}
    for entity in entities:
        estimated = _wire(entity, "estimatedVMPrices") or _wire(entity, "estimated_vm_prices")
        if not isinstance(estimated, dict) or estimated.get("unitOfMeasure", "OneHour") != "OneHour":
            continue
        for value in estimated.get("values") or []:
            if not isinstance(value, dict) or value.get("osType") != "Linux" or value.get("vmTier") != "Standard":
                continue
            retail = value.get("retailPrice")
            if isinstance(retail, int | float) and retail >= 0:
                name = str(_wire(entity, "name") or "").lower()
                prices[name] = Price(float(retail), str(estimated.get("billingCurrency", "USD")), AZURE_SOURCE)
    return prices


def price_of(instance_type: str, answered: dict[str, Price] | None = None) -> Price | None:
    """Azure's price where it answered one, else the table's (None: neither knows the size)."""
    if answered and instance_type.lower() in answered:
        return answered[instance_type.lower()]
    for name, hourly in TABLE.items():
        if name.lower() == instance_type.lower():
            return Price(hourly, TABLE_CURRENCY, TABLE_SOURCE)
    return None
