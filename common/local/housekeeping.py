"""The front door's housekeeping, beside its serving: the endpoint's logs kept under their size, each deployment's
collected data under its cap, and the batched writes of the access log and the mirrored answer pairs.

None of it runs on a request's path: the loops run as tasks of the front door's event loop, their file work in
threads, so serving goes on while they work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from common.local import capture_files, logfiles
from common.local.accounting import AccessLog, flush_every
from common.local.shadow_pairs import ShadowPairs
from common.local.state import LocalStore

log = logging.getLogger("frontdoor")


def keep_captures(store: LocalStore, endpoint: str) -> None:
    """Each deployment's collected data kept under its cap (common/local/capture_files.py)."""
    limit = capture_files.max_bytes()
    data = store.endpoint_dir(endpoint) / "data"
    for folder in data.iterdir() if data.is_dir() else ():
        removed = capture_files.prune(folder, limit)
        if removed:
            log.info("removed %d oldest collected file(s) of %s (over %d bytes)", len(removed), folder.name, limit)


async def keep_logs(store: LocalStore, endpoint: str, access: AccessLog) -> None:
    """Every log of the endpoint kept under its size (common/local/logfiles.py), then the collected data under its
    cap, every logfiles.CHECK_SECONDS."""
    folder, max_bytes = store.endpoint_dir(endpoint), logfiles.log_max_bytes()
    while True:
        await asyncio.sleep(logfiles.CHECK_SECONDS)
        servers = [store.server_log(endpoint, deployment) for deployment in store.deployments(endpoint)]
        logs = [folder / "frontdoor.log", access.path, *servers]
        for path in await asyncio.to_thread(logfiles.rotate, logs, max_bytes):
            log.info("rotated %s (over %d bytes; %d older files kept)", path.name, max_bytes, logfiles.LOG_KEEP)
        await asyncio.to_thread(keep_captures, store, endpoint)


Loop = Coroutine[Any, Any, None]


def loops(store: LocalStore, endpoint: str, access: AccessLog, pairs: ShadowPairs) -> dict[str, Loop]:
    """The housekeeping loops by name, for the front door to run as tasks while it serves."""
    return {
        "access log": access.run(),
        "logs": keep_logs(store, endpoint, access),
        "pairs": flush_every(pairs.flush, AccessLog.FLUSH_SECONDS, in_thread=True),
    }
