"""Supervision of a local endpoint's deployments, run inside the endpoint's front door.

The front door owns its deployments' server processes, as Azure's endpoint owns its deployments' containers: it
starts each one (common/local/inference_server.py, on a Unix socket), probes its liveness route, restarts it when
it dies or stops answering (with a growing pause), gives up after repeated failures (a crash loop: the deployment is
marked unhealthy with its log tail, as Azure's CrashLoopBackOff), rolls a new generation out beside the old one and
stops the old one only once the new one answers. The servers die with the front door (see inference_server.py), so
nothing runs that no live front door knows about.

The command-line side never starts a server: it writes what it wants (deployment.json, with a generation number)
and waits for the front door to report the outcome in status.json.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import Timeout

from common.local.deployment import TICK_SECONDS, Deployment
from common.local.state import LocalStateError, LocalStore, read_json
from common.local.state_types import DeploymentSpec, EndpointSpec, repair_activity

RECORDS_REFRESH_SECONDS = 2.0  # how soon a damaged frontdoor.json or status.json is whole again

log = logging.getLogger("frontdoor")


LiveTraffic = tuple[tuple[str, ...], tuple[int, ...]]  # deployments with a share, and their cumulative shares


def live_traffic(traffic: dict[str, int]) -> LiveTraffic:
    live = [(name, share) for name, share in traffic.items() if share > 0]
    return tuple(name for name, _ in live), tuple(itertools.accumulate(share for _, share in live))


def pick(live: LiveTraffic, rng: random.Random) -> str | None:
    """A deployment drawn by traffic weight; None when no deployment has any."""
    names, cumulative = live
    if len(names) < 2:
        return names[0] if names else None
    return rng.choices(names, cum_weights=cumulative)[0]


@dataclass
class Routing:
    """What the front door routes by: the endpoint's auth and traffic, as last read successfully."""

    auth_mode: str = "key"
    keys: dict[str, str] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)
    mirror_traffic: dict[str, int] = field(default_factory=dict)
    revision: int = 0

    @functools.cached_property
    def live_traffic(self) -> LiveTraffic:
        """Computed once per state change, not per request."""
        return live_traffic(self.traffic)


class Supervisor:
    """The endpoint's state, reloaded whenever a state file changes, and one Deployment per deployment.json."""

    def __init__(
        self, store: LocalStore, endpoint: str, on_applied: Callable[[int, str | None], None] | None = None
    ) -> None:
        self.store, self.endpoint = store, endpoint
        self.routing = Routing()
        self.state_error: str | None = None
        self.deployments: dict[str, Deployment] = {}
        self.on_applied = on_applied
        self._signature: tuple[Any, ...] | None = None
        self._running = False
        self._refreshed = time.monotonic()
        self._report_problem = ""
        self._activity_unchecked = False

    def _files(self) -> list[Path]:
        folder = self.store.endpoint_dir(self.endpoint) / "deployments"
        return [
            self.store.endpoint_file(self.endpoint),
            self.store.keys_file(self.endpoint),
            *sorted(folder.glob("*/deployment.json")),
        ]

    def reload(self) -> bool:
        """Re-read the state if a file changed. An unreadable file keeps the last good routing (and is logged)."""
        files = self._files()
        signature = tuple((str(p), s.st_mtime_ns, s.st_ino) for p in files if (s := _stat(p)) is not None)
        if signature == self._signature:
            return False
        self._signature = signature
        try:
            spec = EndpointSpec.load(files[0])
            keys = read_json(files[1])
            specs = {path.parent.name: DeploymentSpec.load(path) for path in files[2:] if path.exists()}
            routing = Routing(
                auth_mode=spec.auth_mode,
                keys={name: str(keys[name]) for name in ("primary_key", "secondary_key", "token_secret")},
                traffic=dict(spec.traffic),
                mirror_traffic=dict(spec.mirror_traffic),
                revision=spec.revision,
            )
        except (LocalStateError, FileNotFoundError, KeyError, TypeError, ValueError, AttributeError) as error:
            self.state_error = _describe(error)
            log.error("the endpoint's state is unreadable (%s); keeping the last good routing", self.state_error)
            self._report(self.routing.revision, self.state_error)
            return False
        if routing.revision != self.routing.revision:
            self._activity_unchecked = True
        self.routing, self.state_error = routing, None
        for name, deployment_spec in specs.items():
            self._update(name, deployment_spec)
        for name in [n for n in self.deployments if n not in specs]:
            gone = self.deployments.pop(name)
            if self._running:
                asyncio.get_running_loop().create_task(gone.stop())
        self._report(routing.revision, None)
        return True

    def _report(self, revision: int, state_error: str | None) -> None:
        """Tell the commands (frontdoor.json) what is applied; a full disk must not stop supervision, it is logged
        once and the record goes stale (commands then wait for the front door, and say so)."""
        if self.on_applied is None:
            return
        try:
            self.on_applied(revision, state_error)
        except (OSError, LocalStateError) as error:
            if str(error) != self._report_problem:
                log.error("cannot write the front door's record: %s", error)
            self._report_problem = str(error)
        else:
            self._report_problem = ""

    def _repair_activity(self) -> None:
        """A change whose command was killed before it logged it is logged now (see LocalEndpoints._record_change).
        Tried at each round until the lock is free: a command holding it logs its own change (and any missing one)
        first, and a killed one holds it until the system has released it."""
        try:
            with self.store.lock(self.endpoint, timeout=0):
                if repair_activity(self.store, self.endpoint):
                    log.warning("activity.jsonl lacked the last change: recorded it now")
        except Timeout:
            return
        except (OSError, LocalStateError) as error:
            log.error("cannot check activity.jsonl: %s", error)
        self._activity_unchecked = False

    def _update(self, name: str, spec: DeploymentSpec) -> None:
        deployment = self.deployments.get(name)
        if deployment is not None and deployment.closing and not spec.deleting:
            # deleted and created again under the same name before the deleted one was forgotten: a new deployment
            self.deployments.pop(name)
            deployment = None
        if deployment is None:
            deployment = Deployment(self.endpoint, name, self.store, spec)
            deployment.restore()
            self.deployments[name] = deployment
            if self._running:
                self._start(deployment)
            return
        if spec != deployment.spec:
            deployment.spec = spec
            deployment.wake.set()

    def _start(self, deployment: Deployment) -> None:
        deployment.task = asyncio.get_running_loop().create_task(deployment.run(), name=f"deployment {deployment.name}")

    async def run(self) -> None:
        """Reload state and start a supervision task per deployment; runs until cancelled."""
        self._running = True
        self.reload()
        for deployment in self.deployments.values():
            if deployment.task is None:
                self._start(deployment)
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                self.tick()
            except Exception:  # supervision must go on whatever one round hit; the log says what
                log.exception("supervising endpoint %r failed this round", self.endpoint)

    def tick(self) -> None:
        self.reload()
        if self._activity_unchecked:
            self._repair_activity()
        if time.monotonic() - self._refreshed >= RECORDS_REFRESH_SECONDS:
            self.refresh_records()
        for deployment in list(self.deployments.values()):
            if deployment.task is not None and deployment.task.done() and not deployment.closing:
                deployment.task = None  # a supervision loop that crashed: start it again
                self._start(deployment)
            if deployment.task is not None and deployment.task.done() and deployment.spec.deleting:
                self.deployments.pop(deployment.name, None)

    def refresh_records(self) -> None:
        """Rewrite the front door's record and every status file now and then, so that one damaged by hand or by
        another program is whole again within seconds (commands wait that long before they call it unknown)."""
        self._refreshed = time.monotonic()
        self._report(self.routing.revision, self.state_error)
        for deployment in list(self.deployments.values()):
            if not deployment.closing:
                deployment.write_status()

    async def shutdown(self) -> None:
        """Stop every server (in parallel) and record them as stopped."""
        deployments = list(self.deployments.values())
        await asyncio.gather(*(d.stop() for d in deployments), return_exceptions=True)
        for deployment in deployments:
            deployment.write_status()


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None


def _describe(error: BaseException) -> str:
    if isinstance(error, LocalStateError):
        return error.message
    return f"{type(error).__name__}: {error}"
