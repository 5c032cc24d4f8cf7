"""Instance types Azure documents for managed online deployments ("Managed online endpoints SKU list")."""

from __future__ import annotations

import difflib
import re

# Reference: learn.microsoft.com/azure/machine-learning/reference-managed-online-endpoints-vm-sku-list.
# The list changes with Azure; an unknown SKU is a warning, never a hard stop.
MANAGED_ONLINE_SKUS: tuple[str, ...] = (
    # General purpose
    "Standard_DS1_v2",
    "Standard_DS2_v2",
    "Standard_DS3_v2",
    "Standard_DS4_v2",
    "Standard_DS5_v2",
    "Standard_D2a_v4",
    "Standard_D4a_v4",
    "Standard_D8a_v4",
    "Standard_D16a_v4",
    "Standard_D32a_v4",
    "Standard_D48a_v4",
    "Standard_D64a_v4",
    "Standard_D96a_v4",
    "Standard_D2as_v4",
    "Standard_D4as_v4",
    "Standard_D8as_v4",
    "Standard_D16as_v4",
    "Standard_D32as_v4",
    "Standard_D48as_v4",
    "Standard_D64as_v4",
    "Standard_D96as_v4",
    # Compute optimized
    "Standard_F2s_v2",
    "Standard_F4s_v2",
    "Standard_F8s_v2",
    "Standard_F16s_v2",
    "Standard_F32s_v2",
    "Standard_F48s_v2",
    "Standard_F64s_v2",
    "Standard_F72s_v2",
    "Standard_FX24mds",
    "Standard_FX36mds",
    "Standard_FX48mds",
    # Memory optimized
    "Standard_E2s_v3",
    "Standard_E4s_v3",
    "Standard_E8s_v3",
    "Standard_E16s_v3",
    "Standard_E32s_v3",
    "Standard_E48s_v3",
    "Standard_E64s_v3",
    "Standard_E2a_v4",
    "Standard_E4a_v4",
    "Standard_E8a_v4",
    "Standard_E16a_v4",
    "Standard_E32a_v4",
    "Standard_E48a_v4",
    "Standard_E64a_v4",
    "Standard_E96a_v4",
    "Standard_E2as_v4",
    "Standard_E4as_v4",
    "Standard_E8as_v4",
    "Standard_E16as_v4",
    "Standard_E32as_v4",
    "Standard_E48as_v4",
    "Standard_E64as_v4",
    "Standard_E96as_v4",
    # GPU
    "Standard_NC4as_T4_v3",
    "Standard_NC8as_T4_v3",
    "Standard_NC16as_T4_v3",
    "Standard_NC64as_T4_v3",
    "Standard_NC6s_v3",
    "Standard_NC12s_v3",
    "Standard_NC24s_v3",
    "Standard_NC24rs_v3",
    "Standard_NC24ads_A100_v4",
    "Standard_NC48ads_A100_v4",
    "Standard_NC96ads_A100_v4",
    "Standard_NC40ads_H100_v5",
    "Standard_NC80adis_H100_v5",
    "Standard_ND96asr_v4",
    "Standard_ND96amsr_A100_v4",
    "Standard_ND40rs_v2",
    "Standard_ND96isr_H100_v5",
)
_BY_LOWER = {sku.lower(): sku for sku in MANAGED_ONLINE_SKUS}

# The SDK warns that these are too small for most models; Azure recommends Standard_DS3_v2 as the minimum.
SMALL_SKUS = frozenset({"standard_ds1_v2", "standard_ds2_v2"})


def instance_type_warning(instance_type: str) -> str | None:
    """None for a documented SKU; otherwise a warning naming the closest documented SKUs."""
    lowered = instance_type.lower()
    if lowered in SMALL_SKUS:
        return f"instance type {instance_type} may be too small for a model server; Azure recommends Standard_DS3_v2"
    if lowered in _BY_LOWER:
        return None
    close = difflib.get_close_matches(lowered, list(_BY_LOWER), n=3, cutoff=0.6)
    hint = ", ".join(_BY_LOWER[c] for c in close) if close else "Standard_DS3_v2, Standard_F4s_v2, Standard_E4s_v3"
    return (
        f"instance type {instance_type!r} is not in the documented SKU list for managed online deployments; "
        f"closest known: {hint} (continuing: Azure has the final word)"
    )


def smaller_skus(instance_type: str) -> list[str]:
    """Documented SKUs of the same family and generation with fewer vCPUs, largest first (for quota hints)."""
    match = re.fullmatch(r"(Standard_[A-Z]+?)(\d+)(.*)", _BY_LOWER.get(instance_type.lower(), instance_type))
    if not match:
        return []
    family, size, rest = match.group(1), int(match.group(2)), match.group(3)
    found = []
    for sku in MANAGED_ONLINE_SKUS:
        other = re.fullmatch(r"(Standard_[A-Z]+?)(\d+)(.*)", sku)
        if other and other.group(1) == family and other.group(3) == rest and int(other.group(2)) < size:
            found.append((int(other.group(2)), sku))
    return [sku for _, sku in sorted(found, reverse=True)]
