"""Blue/green traffic planning: a pure function, table-tested."""

from __future__ import annotations

import math
from collections.abc import Mapping

from common.errors import UsageError


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
    return ", ".join(f"{name}={share}%" for name, share in plan.items())


def parse_assignments(pairs: list[str]) -> dict[str, int]:
    """['blue=90', 'green=10'] -> {'blue': 90, 'green': 10}; shares must sum to 100 (or all be 0)."""
    from common import validation

    plan: dict[str, int] = {}
    for pair in pairs:
        name, sep, share = pair.partition("=")
        if not sep or not share.strip().isdigit():
            raise UsageError(f"invalid traffic {pair!r}: use DEPLOYMENT=PERCENT, for example blue=90")
        validation.resource_name("deployment", name)
        if name in plan:
            raise UsageError(f"deployment {name!r} is given twice in --set")
        plan[name] = validation.percentage(f"share for {name}", int(share))
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


def mirror_note(cleared: Mapping[str, int]) -> str:
    """What a command says when it clears mirror shares (empty when it clears none)."""
    if not cleared:
        return ""
    return f"clearing the mirror traffic of {describe(cleared)}: a deployment takes live or mirrored traffic, not both"
