"""The endpoint's read-modify-write: traffic, mirror, tags and settings changed without undoing another command's
change (conditional locally, read again around the write on Azure)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from common.azure.surface import Client
from common.control.lookups import require_endpoint
from common.control.waiting import wait_with_progress
from common.control.wire import enum_value

if TYPE_CHECKING:
    from common.target import Target


CHANGED_SINCE_READ = 412  # the local target refuses a write based on an older read of the endpoint

UPDATE_ATTEMPTS = 10


def public_network_access(endpoint: Any) -> str:
    """'enabled' or 'disabled' as the flag spells it ('' when the endpoint does not say): Azure answers Enabled, the
    local target enabled."""
    return (enum_value(getattr(endpoint, "public_network_access", None)) or "").lower()


def endpoint_fingerprint(endpoint: Any) -> dict[str, Any]:
    """What an update of the endpoint can change, as Azure keeps it (deployments at 0 dropped, traffic keys in
    lowercase as azure-ai-ml sends them), to tell whether someone else wrote the endpoint."""

    def shares(value: Any) -> dict[str, int]:
        return {str(name).lower(): int(share) for name, share in (value or {}).items() if int(share)}

    return {
        "traffic": shares(endpoint.traffic),
        "mirror_traffic": shares(getattr(endpoint, "mirror_traffic", None)),
        "tags": dict(endpoint.tags or {}),
        "auth_mode": str(endpoint.auth_mode or "").lower(),
        "public_network_access": public_network_access(endpoint),
        "description": endpoint.description or None,
    }


Changed = TypeVar("Changed")  # what an endpoint update's change returns


def update_endpoint(
    client: Client,
    name: str,
    change: Callable[[Any], Changed],
    *,
    target: Target,
    what: str,
    timeout: float | None = None,
) -> tuple[Any, Changed]:
    """Read the endpoint, let `change` modify it, write it back and wait: (the updated endpoint, `change`'s value).

    Locally the write is conditional: when another command changed the endpoint in between, the local target answers
    412 and `change` is applied again to what is there now, so concurrent commands never undo each other's changes.
    Azure offers no conditional write for an online endpoint (its resource carries no ETag and azure-ai-ml's
    begin_create_or_update takes no If-Match): the last writer wins. There the endpoint is read again just before the
    write (a change in between: `change` is applied again to the new state), and once more after it: when what
    Azure holds then is not what was written, another writer came at the same moment and the warning says so.
    """
    for attempt in range(UPDATE_ATTEMPTS):
        endpoint = require_endpoint(client, name, target=target)
        read = endpoint_fingerprint(endpoint)
        outcome = change(endpoint)
        written = endpoint_fingerprint(endpoint)
        last_attempt = attempt == UPDATE_ATTEMPTS - 1
        if not target.local and not last_attempt and _changed_since(client, name, endpoint, read, target):
            continue  # written by someone else since it was read: decide again on what is there now
        try:
            poller = client.online_endpoints.begin_create_or_update(endpoint)
            result = wait_with_progress(poller, what, target.show(name), timeout=timeout)
        except Exception as error:
            if getattr(error, "status_code", None) != CHANGED_SINCE_READ or last_attempt:
                raise
            time.sleep(random.uniform(0.01, 0.1) * (attempt + 1))
            continue
        if not target.local:
            _warn_if_overwritten(client, name, written, target)
        return result, outcome
    raise AssertionError("unreachable")


def _changed_since(client: Client, name: str, endpoint: Any, read: dict[str, Any], target: Target) -> bool:
    fresh = require_endpoint(client, name, target=target)
    return fresh is not endpoint and endpoint_fingerprint(fresh) != read


def _warn_if_overwritten(client: Client, name: str, written: dict[str, Any], target: Target) -> None:
    now = endpoint_fingerprint(require_endpoint(client, name, target=target))
    differs = [field for field in written if now[field] != written[field]]
    if differs:
        from common.cli import warn

        warn(
            f"endpoint {name!r} changed while this command wrote it ({', '.join(differs)} now differ from what it "
            "wrote): another writer came at the same moment, and Azure keeps the last write; check it with: "
            f"{target.show(name)}"
        )
