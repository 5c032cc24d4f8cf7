"""Waiting for a long-running operation (a poller of either target) with progress, a timeout and Ctrl-C, which stop
the waiting and never the operation."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from common.cli import progress
from common.errors import InterruptedByUser, TimedOutError

POLL_INTERVAL_SECONDS = 10.0


def wait_with_progress(
    poller: Any,
    what: str,
    check_command: str,
    *,
    timeout: float | None = None,
    interval: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Any:
    """Wait for a long-running operation, printing elapsed time and status.

    Ctrl-C, or `timeout` seconds passing, stops the waiting, not the operation: the error says so and how to
    check on it.
    """
    started = clock()
    where = poller.where if isinstance(getattr(poller, "where", None), str) else "in Azure"
    try:
        while not poller.done():
            poller.wait(interval if interval is not None else POLL_INTERVAL_SECONDS)
            elapsed = int(clock() - started)
            progress(f"  [{elapsed // 60:02d}:{elapsed % 60:02d}] {what}: {poller.status()}")
            if timeout is not None and elapsed >= timeout and not poller.done():
                raise TimedOutError(
                    f"gave up waiting after {elapsed // 60} min {elapsed % 60} s: {what} keeps running {where}; "
                    f"check it with: {check_command}"
                )
        return poller.result()
    except KeyboardInterrupt:
        raise InterruptedByUser(
            f"interrupted while waiting: {what} keeps running {where}; check it with: {check_command}"
        ) from None
