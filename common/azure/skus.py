"""Instance types Azure documents for managed online deployments ("Managed online endpoints SKU list").

Source: learn.microsoft.com/azure/machine-learning/reference-managed-online-endpoints-vm-sku-list (the table of
family, VM size, architecture, GPUs, cores and "Skip 20 percent Reservation"), synced 2026-12-01. Names are kept in
Azure's usual spelling (Standard_DS3_v2); the page writes them in capitals, and Azure matches them regardless of
case, so this module does too. The list changes with Azure: an unknown SKU is a warning, never a hard stop.
"""

from __future__ import annotations

import difflib
import re
from typing import NamedTuple


class Sku(NamedTuple):
    name: str
    family: str  # the quota family, as the page names it
    cores: int
    gpu: bool
    skips_reservation: bool  # exempt from the extra 20 percent of quota Azure reserves for upgrades


DOCUMENTED_SKUS: tuple[Sku, ...] = (
    Sku("Standard_D2as_v4", "standardDASv4Family", 2, False, False),
    Sku("Standard_D4as_v4", "standardDASv4Family", 4, False, False),
    Sku("Standard_D8as_v4", "standardDASv4Family", 8, False, False),
    Sku("Standard_D16as_v4", "standardDASv4Family", 16, False, False),
    Sku("Standard_D32as_v4", "standardDASv4Family", 32, False, False),
    Sku("Standard_D48as_v4", "standardDASv4Family", 48, False, False),
    Sku("Standard_D64as_v4", "standardDASv4Family", 64, False, False),
    Sku("Standard_D96as_v4", "standardDASv4Family", 96, False, False),
    Sku("Standard_D2a_v4", "standardDAv4Family", 2, False, False),
    Sku("Standard_D4a_v4", "standardDAv4Family", 4, False, False),
    Sku("Standard_D8a_v4", "standardDAv4Family", 8, False, False),
    Sku("Standard_D16a_v4", "standardDAv4Family", 16, False, False),
    Sku("Standard_D32a_v4", "standardDAv4Family", 32, False, False),
    Sku("Standard_D48a_v4", "standardDAv4Family", 48, False, False),
    Sku("Standard_D64a_v4", "standardDAv4Family", 64, False, False),
    Sku("Standard_D96a_v4", "standardDAv4Family", 96, False, False),
    Sku("Standard_DS1_v2", "standardDSv2Family", 1, False, False),
    Sku("Standard_DS2_v2", "standardDSv2Family", 2, False, False),
    Sku("Standard_DS3_v2", "standardDSv2Family", 4, False, False),
    Sku("Standard_DS4_v2", "standardDSv2Family", 8, False, False),
    Sku("Standard_DS5_v2", "standardDSv2Family", 16, False, False),
    Sku("Standard_E2s_v3", "standardESv3Family", 2, False, False),
    Sku("Standard_E4s_v3", "standardESv3Family", 4, False, False),
    Sku("Standard_E8s_v3", "standardESv3Family", 8, False, False),
    Sku("Standard_E16s_v3", "standardESv3Family", 16, False, False),
    Sku("Standard_E32s_v3", "standardESv3Family", 32, False, False),
    Sku("Standard_E48s_v3", "standardESv3Family", 48, False, False),
    Sku("Standard_E64s_v3", "standardESv3Family", 64, False, False),
    Sku("Standard_F2s_v2", "standardFSv2Family", 2, False, False),
    Sku("Standard_F4s_v2", "standardFSv2Family", 4, False, False),
    Sku("Standard_F8s_v2", "standardFSv2Family", 8, False, False),
    Sku("Standard_F16s_v2", "standardFSv2Family", 16, False, False),
    Sku("Standard_F32s_v2", "standardFSv2Family", 32, False, False),
    Sku("Standard_F48s_v2", "standardFSv2Family", 48, False, False),
    Sku("Standard_F64s_v2", "standardFSv2Family", 64, False, False),
    Sku("Standard_F72s_v2", "standardFSv2Family", 72, False, False),
    Sku("Standard_FX4mds", "standardFXMDVSFamily", 4, False, False),
    Sku("Standard_FX12mds", "standardFXMDVSFamily", 12, False, False),
    Sku("Standard_FX24mds", "standardFXMDVSFamily", 24, False, False),
    Sku("Standard_FX36mds", "standardFXMDVSFamily", 36, False, False),
    Sku("Standard_FX48mds", "standardFXMDVSFamily", 48, False, False),
    Sku("Standard_L8as_v3", "standardLASv3Family", 8, False, False),
    Sku("Standard_L16as_v3", "standardLASv3Family", 16, False, False),
    Sku("Standard_L32as_v3", "standardLASv3Family", 32, False, False),
    Sku("Standard_L48as_v3", "standardLASv3Family", 48, False, False),
    Sku("Standard_L64as_v3", "standardLASv3Family", 64, False, False),
    Sku("Standard_L80as_v3", "standardLASv3Family", 80, False, False),
    Sku("Standard_L8s_v2", "standardLSv2Family", 8, False, False),
    Sku("Standard_L16s_v2", "standardLSv2Family", 16, False, False),
    Sku("Standard_L32s_v2", "standardLSv2Family", 32, False, False),
    Sku("Standard_L48s_v2", "standardLSv2Family", 48, False, False),
    Sku("Standard_L64s_v2", "standardLSv2Family", 64, False, False),
    Sku("Standard_L80s_v2", "standardLSv2Family", 80, False, False),
    Sku("Standard_L8s_v3", "standardLSv3Family", 8, False, False),
    Sku("Standard_L16s_v3", "standardLSv3Family", 16, False, False),
    Sku("Standard_L32s_v3", "standardLSv3Family", 32, False, False),
    Sku("Standard_L48s_v3", "standardLSv3Family", 48, False, False),
    Sku("Standard_L64s_v3", "standardLSv3Family", 64, False, False),
    Sku("Standard_L80s_v3", "standardLSv3Family", 80, False, False),
    Sku("Standard_NC24ads_A100_v4", "standardNCADSA100v4Family", 24, True, True),
    Sku("Standard_NC48ads_A100_v4", "standardNCADSA100v4Family", 48, True, True),
    Sku("Standard_NC96ads_A100_v4", "standardNCADSA100v4Family", 96, True, True),
    Sku("Standard_NC4as_T4_v3", "standard NCASv3_T4 Family", 4, True, False),
    Sku("Standard_NC8as_T4_v3", "standard NCASv3_T4 Family", 8, True, False),
    Sku("Standard_NC16as_T4_v3", "standard NCASv3_T4 Family", 16, True, False),
    Sku("Standard_NC64as_T4_v3", "standard NCASv3_T4 Family", 64, True, False),
    Sku("Standard_NC6s_v2", "standardNCSv2Family", 6, True, False),
    Sku("Standard_NC12s_v2", "standardNCSv2Family", 12, True, False),
    Sku("Standard_NC24s_v2", "standardNCSv2Family", 24, True, False),
    Sku("Standard_NC6s_v3", "standardNCSv3Family", 6, True, False),
    Sku("Standard_NC12s_v3", "standardNCSv3Family", 12, True, False),
    Sku("Standard_NC24s_v3", "standardNCSv3Family", 24, True, False),
    Sku("Standard_NC40ads_H100_v5", "standardNCADSH100v5Family", 40, True, True),
    Sku("Standard_NC80adis_H100_v5", "standardNCADSH100v5Family", 80, True, True),
    Sku("Standard_ND96amsr_A100_v4", "standard NDAMSv4_A100Family", 96, True, True),
    Sku("Standard_ND96asr_v4", "standard NDASv4_A100 Family", 96, True, True),
    Sku("Standard_ND40rs_v2", "standardNDSv2Family", 40, True, True),
    Sku("Standard_ND96is_H100_v5", "standardNDv5H100Family", 96, True, True),
    Sku("Standard_ND96isr_H100_v5", "standardNDv5H100Family", 96, True, True),
    Sku("Standard_NV6ads_A10_v5", "standardNVADSA10v5Family", 6, True, False),
    Sku("Standard_NV12ads_A10_v5", "standardNVADSA10v5Family", 12, True, False),
    Sku("Standard_NV18ads_A10_v5", "standardNVADSA10v5Family", 18, True, False),
    Sku("Standard_NV36ads_A10_v5", "standardNVADSA10v5Family", 36, True, False),
    Sku("Standard_NV36adms_A10_v5", "standardNVADSA10v5Family", 36, True, False),
    Sku("Standard_NV72ads_A10_v5", "standardNVADSA10v5Family", 72, True, False),
)
MANAGED_ONLINE_SKUS: tuple[str, ...] = tuple(sku.name for sku in DOCUMENTED_SKUS)
_BY_LOWER = {sku.name.lower(): sku.name for sku in DOCUMENTED_SKUS}
_SKU_BY_LOWER = {sku.name.lower(): sku for sku in DOCUMENTED_SKUS}

# The SKU list's caution names these two: "Small VM SKUs such as Standard_DS1_v2 and Standard_F2s_v2 may be too small
# for bigger models" (reference-managed-online-endpoints-vm-sku-list). It recommends no minimum size.
SMALL_SKUS = frozenset({"standard_ds1_v2", "standard_f2s_v2"})


def canonical(instance_type: str) -> str:
    """The documented spelling of an instance type given in any case (as given when it is not documented)."""
    return _BY_LOWER.get(instance_type.lower(), instance_type)


def documented(instance_type: str) -> Sku | None:
    """The SKU list's entry for an instance type given in any case (None: not in the list)."""
    return _SKU_BY_LOWER.get(instance_type.lower())


def same_instance_type(first: str | None, second: str | None) -> bool:
    """Whether two instance types name the same SKU (Azure compares them regardless of case)."""
    return (first or "").lower() == (second or "").lower()


def instance_type_warning(instance_type: str) -> str | None:
    """None for a documented SKU; otherwise a warning naming the closest documented SKUs."""
    lowered = instance_type.lower()
    if lowered in SMALL_SKUS:
        return (
            f"instance type {instance_type} may be too small for bigger models (Azure's SKU list cautions: not enough "
            "memory or disk, or probes failing while the container starts); a bigger size if the deployment fails"
        )
    if lowered in _BY_LOWER:
        return None
    return (
        f"instance type {instance_type!r} is not in the documented SKU list for managed online deployments; "
        f"closest known: {', '.join(closest(instance_type))} (continuing: Azure has the final word)"
    )


def closest(instance_type: str) -> list[str]:
    """The documented SKUs nearest in spelling (else three common ones)."""
    close = difflib.get_close_matches(instance_type.lower(), list(_BY_LOWER), n=3, cutoff=0.6)
    return [_BY_LOWER[c] for c in close] if close else ["Standard_DS3_v2", "Standard_F4s_v2", "Standard_E4s_v3"]


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
