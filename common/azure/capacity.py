"""Capacity before an Azure deployment: is the instance type offered in the workspace's region, and does the
subscription have the cores? Read (never written) through azure-ai-ml: `compute.list_sizes` and
`compute.list_usage` for the workspace's location, one call each.

The rule (how-to-manage-quotas, "Virtual machine quota" for managed online endpoints): Azure reserves 20% more
instances than a deployment asks for, for upgrades, so a deployment of N instances of a type with C vCPUs needs
ceil(1.2 x N) x C cores of the type's VM family, and as many of the region's total; types the SKU list marks
"Skip 20 percent reservation" (common/azure/skus.py) need N x C. An update counts what the deployment already holds (its
current size, by the same rule) as in use already: only the difference is needed.

Sizes come from the answer, not a hand-kept table: a type is offered for managed online deployments when its
supportedComputeTypes name MIR (the VM sizes API's name for managed inference). azure-ai-ml 1.35.2 builds its
Usage and VmSize entities by copying the wire fields onto them (`currentValue` beside an unset `current_value`):
what the service sent is read.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Any

from common.azure import prices
from common.azure.azure_errors import QUOTA_PAGE
from common.azure.sizing import Price
from common.azure.skus import canonical, documented
from common.azure.surface import Client, on_azure
from common.errors import EXIT_QUOTA, CliError, UsageError

RESERVE = 1.2
ONLINE_COMPUTE_TYPE = "mir"  # supportedComputeTypes' name for managed online endpoints
REGIONAL_TOTAL = "total cluster dedicated regional vcpus"


@dataclass(frozen=True)
class Size:
    name: str
    family: str
    vcpus: int
    memory_gb: float | None
    online: bool
    price: Price | None = None  # Linux standard tier, per hour, where the region's answer gives one


@dataclass(frozen=True)
class Quota:
    """A usage's figures; a limit of -1 is no limit (the Usage API's way)."""

    name: str
    in_use: int
    limit: int

    @property
    def free(self) -> int:
        return self.limit - self.in_use


@dataclass(frozen=True)
class Quotas:
    """The usages the capacity check reads: the subscription's dedicated cores per family key and the region's
    total, and this workspace's own per family where it has one (a workspace can be given a quota of its own: the
    Usage API lists it as a `workspaces/usages` entry under the workspace's id, Usage/list.json in the REST spec)."""

    families: dict[str, Quota]
    region: Quota | None
    workspace: dict[str, Quota] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """What a deployment needs against what the subscription has, in cores."""

    size: Size
    count: int
    held_count: int  # instances the deployment holds already (an update), counted by the same rule
    needed: int  # cores the deployment needs beyond what it holds
    family: Quota | None
    region: Quota | None
    notes: list[str] = field(default_factory=list)
    workspace_family: Quota | None = None

    def shortfalls(self) -> list[str]:
        found = []
        for what, quota in (
            ("family " + self.size.family, self.family),
            ("the workspace's family " + self.size.family, self.workspace_family),
            ("region's total", self.region),
        ):
            if quota is not None and quota.limit >= 0 and self.needed > quota.free:
                found.append(
                    f"{what}: needed {self.needed}, in use {quota.in_use}, limit {quota.limit} ({quota.free} free)"
                )
        return found

    @property
    def free(self) -> int | None:
        """The fewest cores free among the quotas that bound this plan (None: no limit reported)."""
        bounded = [q.free for q in (self.family, self.workspace_family, self.region) if q is not None and q.limit >= 0]
        return min(bounded) if bounded else None

    def as_dict(self) -> dict[str, Any]:
        def quota(q: Quota | None) -> dict[str, Any] | None:
            return None if q is None else {"name": q.name, "in_use": q.in_use, "limit": q.limit, "free": q.free}

        return {
            "instance_type": self.size.name,
            "instance_count": self.count,
            "vcpus": self.size.vcpus,
            "family": self.size.family,
            "held_instances": self.held_count,
            "cores_needed": self.needed,
            "family_quota": quota(self.family),
            "workspace_family_quota": quota(self.workspace_family),
            "regional_quota": quota(self.region),
            "enough": not self.shortfalls(),
            "notes": self.notes,
        }


class CapacityUnknown(Exception):
    """A read that failed: the check cannot be made (a warning, and the deployment goes on)."""


class NotEnoughQuota(CliError):
    exit_code = EXIT_QUOTA


def cores_for(count: int, size: Size) -> int:
    sku = documented(size.name)
    skips = sku is not None and sku.skips_reservation
    instances = count if skips else math.ceil(RESERVE * count - 1e-9)
    return instances * size.vcpus


def largest_fitting(size: Size, free_cores: int) -> int:
    """The most instances of `size` whose cores (by cores_for's rule) fit in `free_cores`: 0 when none does."""
    count = 0
    while size.vcpus > 0 and cores_for(count + 1, size) <= free_cores:
        count += 1
    return count


def _field(entity: Any, wire: str, attribute: str) -> Any:
    value = getattr(entity, wire, None)
    return value if value is not None else getattr(entity, attribute, None)


def sizes_of(entities: Any) -> dict[str, Size]:
    found = {}
    for entity in entities:
        name = str(_field(entity, "name", "name") or "")
        types = _field(entity, "supportedComputeTypes", "supported_compute_types") or []
        found[canonical(name)] = Size(
            name=name,
            family=str(_field(entity, "family", "family") or "?"),
            vcpus=int(_field(entity, "vCPUs", "v_cp_us") or 0),
            memory_gb=_field(entity, "memoryGB", "memory_gb"),
            online=ONLINE_COMPUTE_TYPE in {str(t).lower() for t in types},
            price=prices.from_sizes([entity]).get(name.lower()),
        )
    return found


def _family_key(text: str) -> str:
    """standardDSv2Family, Standard_DSv2_Family_Cluster_Dedicated_vCPUs and "Standard DSv2 Family Cluster Dedicated
    vCPUs" alike, as one key."""
    text = re.sub(r"[\s_]*cluster[\s_]*dedicated[\s_]*vcpus$", "", text.strip(), flags=re.IGNORECASE)
    return re.sub(r"[\s_]", "", text).lower()


def quotas_of(entities: Any, workspace: str | None = None) -> Quotas:
    """The subscription's dedicated-core quotas by family key and the region's total, and `workspace`'s own
    (entries of type workspaces/usages whose id names it; the REST example spells the type workspace/usages too)."""
    families: dict[str, Quota] = {}
    own: dict[str, Quota] = {}
    region = None
    marker = f"/workspaces/{workspace}/usages/".lower() if workspace else None
    for entity in entities:
        name = _field(entity, "name", "name")
        label = str(name.get("value") if isinstance(name, dict) else getattr(name, "value", name) or "")
        kind = str(_field(entity, "type", "type") or "").lower()
        limit = _field(entity, "limit", "limit")
        quota = Quota(
            label, int(_field(entity, "currentValue", "current_value") or 0), -1 if limit is None else int(limit)
        )
        dedicated = "dedicated" in label.lower()
        if label.lower() == REGIONAL_TOTAL:
            region = quota
        elif kind.endswith("vmfamily/usages") and dedicated:
            families[_family_key(label)] = quota
        elif (
            kind.endswith(("/workspaces/usages", "/workspace/usages"))
            and dedicated
            and marker
            and marker in str(_field(entity, "id", "id") or "").lower()
        ):
            own[_family_key(label)] = quota
    return Quotas(families, region, own)


def read(client: Client, location: str | None) -> tuple[dict[str, Size], Quotas]:
    """The region's sizes and the subscription's (and the workspace's) quotas: one read each; CapacityUnknown when
    either fails."""
    from azure.core.exceptions import AzureError

    try:
        azure = on_azure(client)  # the capacity check runs on the Azure path only
        sizes = sizes_of(azure.compute.list_sizes(location=location))
        quotas = quotas_of(azure.compute.list_usage(location=location), azure.workspace_name)
    except AzureError as error:
        reason = getattr(error, "reason", None) or str(error).splitlines()[0]
        status = getattr(error, "status_code", None)
        raise CapacityUnknown(f"{status} {reason}" if status else reason) from None
    if not sizes:
        raise CapacityUnknown("the region reported no VM sizes")
    return sizes, quotas


def plan(
    sizes: dict[str, Size],
    quotas: Quotas,
    instance_type: str,
    count: int,
    held: tuple[str, int] | None = None,
) -> Plan:
    """The plan for `count` x `instance_type`; `held` is what an existing deployment already holds. An instance
    type not offered in the region for online deployments is refused with the closest offered ones."""
    size = sizes.get(canonical(instance_type))
    if size is None or not size.online:
        offered = sorted(s.name for s in sizes.values() if s.online)
        closest = difflib.get_close_matches(instance_type, offered, n=3, cutoff=0.5) or offered[:3]
        why = "is not offered" if size is None else "is offered there, but not for managed online deployments"
        raise UsageError(
            f"--instance_type {instance_type} {why} in the workspace's region; closest offered: "
            f"{', '.join(closest) or 'none'}"
        )
    held_count = held[1] if held and canonical(held[0]) == canonical(instance_type) else 0
    needed = max(0, cores_for(count, size) - (cores_for(held_count, size) if held_count else 0))
    family = quotas.families.get(_family_key(size.family))
    notes = [] if family else [f"no usage reported for family {size.family}: only the region's total is checked"]
    workspace_family = quotas.workspace.get(_family_key(size.family))
    return Plan(size, count, held_count, needed, family, quotas.region, notes, workspace_family)


def refuse_if_short(found: Plan) -> None:
    short = found.shortfalls()
    if short:
        raise NotEnoughQuota(
            f"not enough quota for {found.count} x {found.size.name} ({found.size.vcpus} vCPUs, ceil({RESERVE} x "
            f"{found.count}) instances reserved): " + "; ".join(short) + f"; request more at {QUOTA_PAGE} or use a "
            "smaller --instance_type or --instance_count"
        )


def before_deploying(client: Client, instance_type: str, count: int, existing: Any | None) -> Plan | None:
    """The check before a deployment's PUT: on create, and on an update that grows the deployment. Refuses
    (NotEnoughQuota, UsageError) before any write; a read that fails is a warning and the deployment goes on;
    None when nothing was checked."""
    from common.cli import progress, warn

    held = None
    if existing is not None:
        held = (str(existing.instance_type), int(existing.instance_count or 1))
        if canonical(held[0]) == canonical(instance_type) and count <= held[1]:
            return None  # the same size or smaller: it holds what it needs already
    try:
        sizes, quotas = read(client, None)
    except CapacityUnknown as reason:
        warn(
            f"capacity not checked (could not read the region's sizes or the subscription's usage: {reason}); "
            "deploying as asked"
        )
        return None
    found = plan(sizes, quotas, instance_type, count, held)
    refuse_if_short(found)
    family, region, own = found.family, found.region, found.workspace_family
    progress(
        f"Capacity: {found.needed} cores needed for {count} x {found.size.name}; family {found.size.family} "
        + (f"{family.in_use}/{family.limit} in use" if family else "not reported")
        + (f", the workspace's {own.in_use}/{own.limit}" if own else "")
        + (f", region {region.in_use}/{region.limit}" if region else "")
    )
    return found
