"""Rollback history: the split in force before each traffic change this toolkit made, kept in the endpoint's tags.

Tags live with the endpoint, on both targets (Azure keeps them on the endpoint resource; the local target in the
endpoint's state file), so the history survives across processes and machines and is deleted with the endpoint.
Each entry is one tag, readable in the portal and in `az ml online-endpoint show`:

  toolkit.rollback.1 = "2026-11-24T10:00:00Z|promote green|blue=90,green=10|-"   (the most recent)
  toolkit.rollback.2 = ...

An Azure tag value holds at most 256 characters: an entry that does not fit clears the history rather than leave
one that would skip a change. A resource holds at most 50 tags: the history keeps as many of its most recent entries
as the endpoint's own tags leave room for (the oldest dropped, with a warning), so a traffic change is never a PUT
Azure refuses. The traffic change and its history entry are one write (one PUT of the endpoint).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.azure.surface import Client
from common.cli import warn
from common.control.endpoint_update import update_endpoint
from common.control.lookups import require_endpoint
from common.errors import NotFoundError, UsageError
from common.release.traffic import Split
from common.validation import MAX_TAG_VALUE, MAX_TAGS

if TYPE_CHECKING:
    from common.target import Target

TAG_PREFIX = "toolkit.rollback."
MAX_ENTRIES = 5
_SHARES = re.compile(r"^(?:[A-Za-z][-A-Za-z0-9]*=\d{1,3})(?:,[A-Za-z][-A-Za-z0-9]*=\d{1,3})*$")


@dataclass(frozen=True)
class Entry:
    """The split before a change, what the change was, and when (UTC)."""

    before: Split
    change: str
    at: str

    def encode(self) -> str:
        return "|".join([self.at, self.change, _shares(self.before.live), _shares(self.before.mirror)])

    @classmethod
    def decode(cls, text: str) -> Entry | None:
        parts = text.split("|")
        if len(parts) != 4 or not all(_SHARES.match(p) or p == "-" for p in parts[2:]):
            return None  # not ours, or edited by hand: ignored rather than restored
        return cls(Split(_parse(parts[2]), _parse(parts[3])), parts[1], parts[0])


def _shares(shares: Mapping[str, int]) -> str:
    return ",".join(f"{name}={share}" for name, share in shares.items()) or "-"


def _parse(text: str) -> dict[str, int]:
    if text == "-":
        return {}
    return {name: int(share) for name, share in (pair.split("=") for pair in text.split(","))}


def entries(tags: Mapping[str, Any] | None) -> list[Entry]:
    """The recorded entries, most recent first (a gap in the numbering ends the history)."""
    found: list[Entry] = []
    for index in range(1, MAX_ENTRIES + 1):
        entry = Entry.decode(str((tags or {}).get(f"{TAG_PREFIX}{index}", "")))
        if entry is None:
            break
        found.append(entry)
    return found


def with_entries(tags: Mapping[str, Any] | None, kept: list[Entry]) -> tuple[dict[str, Any], bool]:
    """The endpoint's tags with the history replaced by `kept` (most recent first, at most MAX_ENTRIES), and
    whether the most recent entry fitted in a tag (when it does not, there is no history). An older entry that
    does not fit ends the history there. The user's own tags are left as they are."""
    result = without_history(tags)
    room = min(MAX_ENTRIES, max(0, MAX_TAGS - len(result)))
    if len(kept) > room and room < MAX_ENTRIES:
        warn(
            f"the endpoint has {len(result)} tags of its own and Azure allows {MAX_TAGS}: the rollback history keeps "
            + (f"only the last {room} change(s)" if room else "no changes")
            + f" (dropped: {len(kept) - room} older)"
        )
    for index, entry in enumerate(kept[:room], start=1):
        value = entry.encode()
        if len(value) > MAX_TAG_VALUE:
            return result, index > 1
        result[f"{TAG_PREFIX}{index}"] = value
    return result, True


def without_history(tags: Mapping[str, Any] | None) -> dict[str, Any]:
    """The endpoint's own tags."""
    return {key: value for key, value in (tags or {}).items() if not key.startswith(TAG_PREFIX)}


def kept_in(new_tags: Mapping[str, Any], existing: Mapping[str, Any] | None) -> dict[str, Any]:
    """`--tags` replaces the endpoint's tags, but not its rollback history (as much of it as the 50 tags allow)."""
    return with_entries(without_history(new_tags), entries(existing))[0]


def recorded(tags: Mapping[str, Any] | None, entry: Entry) -> dict[str, Any]:
    """The tags with `entry` added as the most recent."""
    updated, fitted = with_entries(tags, [entry, *entries(tags)])
    if not fitted:
        warn(
            f"the split before this change ({entry.before.describe()}) is longer than an Azure tag value "
            f"({MAX_TAG_VALUE} characters): the rollback history is cleared rather than left with a gap"
        )
    return updated


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def change_split(
    client: Client,
    endpoint_name: str,
    decide: Callable[[Split], Split],
    *,
    target: Target,
    change: str,
    remember: bool = True,
    timeout: float | None = None,
) -> tuple[Split, Split]:
    """Apply `decide(current split)` to the endpoint, with the split before it recorded for rollback (unless
    `remember` is False). (before, after); nothing is written when the split would not change.

    `decide` runs on the endpoint as read for the write (again when another command changed it in between), so
    the recorded split is the one actually replaced.
    """

    def apply(endpoint: Any) -> tuple[Split, Split]:
        before = Split.of(endpoint)
        after = decide(before)
        endpoint.traffic, endpoint.mirror_traffic = dict(after.live), dict(after.mirror)
        if remember:
            endpoint.tags = recorded(endpoint.tags, Entry(before, change, now()))
        return before, after

    current = Split.of(require_endpoint(client, endpoint_name, target=target))
    if decide(current) == current:
        return current, current
    _, (before, after) = update_endpoint(
        client, endpoint_name, apply, target=target, what=f"traffic on {endpoint_name}", timeout=timeout
    )
    return before, after


def roll_back(
    client: Client, endpoint_name: str, deployments: set[str], *, target: Target
) -> tuple[Split, Split, Entry]:
    """Restore the split from before the last recorded change and drop that entry: (before, after, the entry)."""
    history = entries(require_endpoint(client, endpoint_name, target=target).tags)
    if not history:
        raise NotFoundError(
            f"endpoint {endpoint_name!r} has no rollback history: no traffic change by this toolkit is recorded "
            "(promote, traffic, rollout and --traffic_allocation record one); nothing was changed"
        )
    _check_restorable(history[0], deployments, target)

    def apply(endpoint: Any) -> tuple[Split, Split, Entry]:
        current = entries(endpoint.tags)
        if not current:  # another command rolled back the last entry in between
            raise NotFoundError(f"endpoint {endpoint_name!r} has no rollback history left; nothing was changed")
        latest, *older = current
        _check_restorable(latest, deployments, target)
        before = Split.of(endpoint)
        endpoint.traffic, endpoint.mirror_traffic = dict(latest.before.live), dict(latest.before.mirror)
        endpoint.tags, _ = with_entries(endpoint.tags, older)
        return before, latest.before, latest

    _, outcome = update_endpoint(client, endpoint_name, apply, target=target, what=f"traffic on {endpoint_name}")
    return outcome


def _check_restorable(entry: Entry, deployments: set[str], target: Target) -> None:
    gone = sorted((set(entry.before.live) | set(entry.before.mirror)) - deployments)
    if gone:
        raise UsageError(
            f"cannot roll back to the split before {entry.change!r} ({entry.before.describe()}): deployment "
            f"{', '.join(map(repr, gone))} no longer exists; deploy it again under the same name and run rollback "
            f"again (the history is kept), or set the traffic with: {target.verb('traffic', '--set', '...')}"
        )
