"""Blue/green traffic planning: pure functions, table-tested. A split is the endpoint's live traffic and its mirror
(shadow) traffic together: what a change sets, what rollback restores."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from common.errors import UsageError

MAX_MIRROR_PERCENT = 50  # Azure's rule: one deployment takes mirrored traffic, at most 50%


@dataclass(frozen=True)
class Split:
    """Live and mirror shares in percent; deployments at 0 are left out (Azure does not keep them either)."""

    live: dict[str, int] = field(default_factory=dict)
    mirror: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "live", _nonzero(self.live))
        object.__setattr__(self, "mirror", _nonzero(self.mirror))

    @classmethod
    def of(cls, endpoint: Any) -> Split:
        return cls(dict(endpoint.traffic or {}), dict(endpoint.mirror_traffic or {}))

    def describe(self) -> str:
        return f"live {describe(self.live) or 'none'}; mirror {describe(self.mirror) or 'none'}"

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {"traffic": dict(self.live), "mirror_traffic": dict(self.mirror)}


def _nonzero(shares: Mapping[str, Any]) -> dict[str, int]:
    return {name: int(share) for name, share in shares.items() if int(share) > 0}


def change_lines(before: Split, after: Split) -> list[str]:
    """What a command that changes the split prints: live and mirror, before -> after."""
    return [
        f"Live traffic:   {describe(before.live) or 'none'} -> {describe(after.live) or 'none'}",
        f"Mirror traffic: {describe(before.mirror) or 'none'} -> {describe(after.mirror) or 'none'}",
    ]


def largest_live(split: Split, excluding: str) -> str | None:
    """The deployment with the largest live share other than `excluding` (first by name on a tie): the one a new
    deployment is compared with."""
    ranked = sorted((-share, name) for name, share in split.live.items() if name != excluding)
    return ranked[0][1] if ranked else None


class ImpossibleTrafficError(UsageError):
    """The requested share leaves traffic with nowhere to go."""


def rebalance(current: Mapping[str, int], deployment: str, percent: int) -> dict[str, int]:
    """Give `deployment` `percent`% and share the rest among the others in proportion to their current shares.

    Shares are whole numbers summing to exactly 100 (largest-remainder rounding; ties go to the larger current
    share, then to the name that sorts first, so the result is deterministic). Deployments that hold no traffic
    keep 0. Raises ImpossibleTrafficError when percent < 100 and no other deployment holds traffic, except for a
    0% (dark) deployment on an endpoint that serves no traffic at all, which changes nothing.
    """
    if not 0 <= percent <= 100:
        raise UsageError(f"invalid traffic share {percent}: use a whole number from 0 to 100")
    others = {name: share for name, share in current.items() if name != deployment}
    donors = {name: share for name, share in others.items() if share > 0}
    remaining = 100 - percent
    plan = {name: 0 for name in others}
    plan[deployment] = percent
    if remaining == 0:
        return plan
    if not donors and percent == 0 and not any(current.values()):
        return plan  # a dark deployment on an endpoint that serves no traffic yet: nothing moves
    if not donors:
        held_by = ", ".join(f"{n}={s}" for n, s in current.items() if s) or "nothing"
        raise ImpossibleTrafficError(
            f"cannot give {deployment!r} {percent}% of the traffic: the other {remaining}% has no deployment to go to "
            f"(current traffic: {held_by}); use --traffic_allocation 100, or 0 for a deployment reachable only "
            "by the azureml-model-deployment header"
        )
    total = sum(donors.values())
    exact = {name: share * remaining / total for name, share in donors.items()}
    floors = {name: math.floor(value) for name, value in exact.items()}
    leftover = remaining - sum(floors.values())
    order = sorted(donors, key=lambda name: (-(exact[name] - floors[name]), -donors[name], name))
    for name in order[:leftover]:
        floors[name] += 1
    plan.update(floors)
    return plan


def describe(plan: Mapping[str, int]) -> str:
    """'blue=90%, green=10%', by deployment name: the order Azure (or a dict) happens to hold is not meaningful."""
    return ", ".join(f"{name}={plan[name]}%" for name in sorted(plan))


def _shares(values: list[str], what: str, example: str) -> dict[str, int]:
    """['blue=90', 'green=10'] -> {'blue': 90, 'green': 10}: each DEPLOYMENT=PERCENT checked, a name given once."""
    from common import validation

    shares: dict[str, int] = {}
    for value in values:
        name, sep, share = value.partition("=")
        if not sep or not share.strip().isdigit():
            raise UsageError(f"invalid {what} {value!r}: use DEPLOYMENT=PERCENT, for example {example}")
        name = validation.resource_name("deployment", name)
        if name in shares:
            raise UsageError(f"deployment {name!r} is given twice in {what}")
        shares[name] = int(share)
    return shares


def parse_assignments(pairs: list[str]) -> dict[str, int]:
    """['blue=90', 'green=10'] -> {'blue': 90, 'green': 10}; shares must sum to 100 (or all be 0)."""
    from common import validation

    plan = {
        name: validation.percentage(f"share for {name}", share)
        for name, share in _shares(pairs, "traffic", "blue=90").items()
    }
    total = sum(plan.values())
    if total not in (0, 100):
        raise UsageError(f"traffic {describe(plan)} sums to {total}%: the shares must sum to 100")
    return plan


def without_live_mirrors(live: Mapping[str, int], mirror: Mapping[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    """(the mirror traffic to keep, the mirror shares to clear) once `live` is in force.

    Azure refuses a deployment that takes both live and mirrored traffic ("a deployment can receive only live
    traffic or mirrored traffic, not both"): a deployment given live traffic loses its mirror share.
    """
    cleared = {name: share for name, share in mirror.items() if share and live.get(name, 0) > 0}
    kept = {name: share for name, share in mirror.items() if share and name not in cleared}
    return kept, cleared


def mirrors_cleared(before: Split, after: Split) -> dict[str, int]:
    """The mirror shares a change removed."""
    return {name: share for name, share in before.mirror.items() if name not in after.mirror}


def mirror_note(cleared: Mapping[str, int]) -> str:
    """What a command says when it clears mirror shares (empty when it clears none)."""
    if not cleared:
        return ""
    return f"clearing the mirror traffic of {describe(cleared)}: a deployment takes live or mirrored traffic, not both"


def parse_mirror(values: list[str]) -> dict[str, int]:
    """--mirror green=10 -> {'green': 10}; --mirror none -> {} (clears it). Azure's rules on the shares themselves
    (one deployment, at most 50%) are checked here; those that need the endpoint in check_mirror."""
    if [value.lower() for value in values] == ["none"]:
        return {}
    mirrored = {name: share for name, share in _shares(values, "--mirror", "green=10 (or none)").items() if share}
    if len(mirrored) > 1:
        raise UsageError(
            f"invalid --mirror {' '.join(values)}: mirror traffic goes to one deployment only (Azure's rule)"
        )
    for name, share in mirrored.items():
        if share > MAX_MIRROR_PERCENT:
            raise UsageError(
                f"invalid --mirror {name}={share}: mirror traffic is at most {MAX_MIRROR_PERCENT}% (Azure's rule)"
            )
    return mirrored


def check_mirror(mirror: Mapping[str, int], live: Mapping[str, int], deployments: Iterable[str]) -> None:
    """Azure's rules that need the endpoint: the mirror deployment exists and takes no live traffic."""
    existing = set(deployments)
    for name in mirror:
        if name not in existing:
            raise UsageError(
                f"cannot mirror traffic to {name!r}: the endpoint has no such deployment; it has: "
                f"{', '.join(sorted(existing)) or 'none'}"
            )
        if live.get(name, 0) > 0:
            raise UsageError(
                f"cannot mirror traffic to {name!r}: it takes {live[name]}% of the live traffic, and a deployment "
                "takes live or mirrored traffic, not both (Azure's rule); give it 0% live first"
            )


def promoted(before: Split, deployment: str) -> Split:
    """`deployment` takes 100% of the live traffic and no mirrored traffic; a mirror to another deployment stays."""
    mirror = {name: share for name, share in before.mirror.items() if name != deployment}
    return Split({deployment: 100}, mirror)
