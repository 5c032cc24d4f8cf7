"""One local deployment under supervision: it starts servers, probes them, restarts them with a growing pause,
gives up on a crash loop, rolls a new generation out beside the old one, and reports its status."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from common.local import logfiles
from common.local.instance import STOP_GRACE_SECONDS, Instance, start_failure, start_server
from common.local.settings import (
    START_POLL_SECONDS,
    Health,
    Probe,
    Settings,
    State,
)
from common.local.state import LocalStateError, LocalStore
from common.local.state_types import DeploymentSpec, DeploymentStatus, to_json

log = logging.getLogger("frontdoor")

TICK_SECONDS = 0.1

START_TIMEOUT_SECONDS = 120.0
RESTART_PAUSES = (0.5, 1.0, 2.0, 4.0)  # before the 1st, 2nd, ... restart in a row; the last one repeats
CRASH_LOOP_RESTARTS = 5  # failed restarts in a row after which a deployment is unhealthy and left alone
STABLE_SECONDS = 30.0  # a server that has answered this long resets the count of failures in a row
UNRESPONSIVE_STOP_GRACE_SECONDS = 1.0
SNAPSHOT_GRACE_SECONDS = 300.0  # a snapshot folder younger than this may be one a command is still writing
LOG_TAIL_LINES = 30
FAILURE_LOG_LINES = 200  # kept in status.json; what a failure report prints is the last few


@dataclass
class Deployment:
    """One deployment under supervision: what is asked for (spec), what serves (current), and what to report."""

    endpoint: str
    name: str
    store: LocalStore
    spec: DeploymentSpec
    current: Instance | None = None
    starting: Instance | None = None  # a server launched and not yet answering (a new generation or a restart)
    retiring: Instance | None = None  # a server being stopped (drained, then its group ended): still a process
    ready: bool = False
    serving: DeploymentSpec | None = None  # the spec of the generation that serves (the last good one)
    state: State = State.CREATING
    health: Health = Health.STARTING
    reason: str = ""
    restarts: int = 0
    failures_in_a_row: int = 0
    failed_generation: int | None = None
    attempts: int = 0
    liveness_failures: int = 0
    readiness_failures: int = 0
    readiness_successes: int = 0
    closing: bool = False
    failure_log: str = ""  # the own output of the last server that failed to start (its log is shared)
    status_problem: str = ""  # why the last status write failed (logged once)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    _settings: tuple[DeploymentSpec, Settings] | None = field(default=None, init=False, repr=False)

    @property
    def settings(self) -> Settings:
        """The serving generation's settings (the asked-for one's before any serves), read once per spec: the
        front door asks on every request."""
        source = self.serving or self.spec
        if self._settings is None or self._settings[0] is not source:
            self._settings = (source, Settings.from_spec(source))
        return self._settings[1]

    @property
    def generation(self) -> int:
        return self.spec.generation

    @property
    def log_path(self) -> Path:
        return self.store.server_log(self.endpoint, self.name)

    def unavailable_reason(self) -> str:
        if self.health == Health.RESTARTING:
            return f"is restarting ({self.reason})"
        if self.health == Health.UNHEALTHY:
            return f"is unhealthy ({self.reason.splitlines()[0] if self.reason else 'crash loop'})"
        if self.health == Health.STARTING:
            return "is starting"
        if self.current is not None and not self.ready:
            return "is not answering its readiness probe"
        return "is not running"

    # --- what the command-line side reads -------------------------------------------------------------------

    def write_status(self) -> None:
        status = DeploymentStatus(
            name=self.name,
            generation=self.generation,
            serving_generation=self.serving.generation if self.serving else None,
            serving=to_json(self.serving) if self.serving else None,
            failed_generation=self.failed_generation,
            failure_log=self.failure_log,
            state=self.state,
            health=self.health,
            reason=self.reason,
            pid=self.current.pid if self.current else None,
            starting_pid=self.starting.pid if self.starting else None,
            retiring_pid=self.retiring.pid if self.retiring else None,
            socket=str(self.current.socket) if self.current else None,
            restarts=self.restarts,
            front_door_pid=os.getpid(),
            updated=time.time(),
        )
        path = self.store.status_file(self.endpoint, self.name)
        try:
            if path.parent.is_dir():
                status.dump(path)
        except (OSError, LocalStateError) as error:
            # a full disk must not stop supervision: commands see the file go stale and its server gone (observed)
            if str(error) != self.status_problem:
                log.error("deployment %r: cannot write its status: %s", self.name, error)
            self.status_problem = str(error)
        else:
            self.status_problem = ""

    def restore(self) -> None:
        """Pick up where an earlier front door left off: the last good generation serves again, and a generation
        that failed is not retried (as in Azure, where a failed update leaves the previous version serving)."""
        previous = DeploymentStatus.read(self.store.status_file(self.endpoint, self.name))
        self.serving = DeploymentSpec.from_json(previous.serving) if previous.serving else None
        if previous.failed_generation == self.generation:
            self.failed_generation, self.state = self.generation, State.FAILED
            self.reason = previous.reason or "its last update failed"
        elif self.serving is not None and self.serving.generation == self.generation:
            self.state = State.SUCCEEDED

    # --- the supervision loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            while not self.closing:
                if self.spec.deleting:
                    await self.delete()
                    return
                if self.generation not in (self._serving_generation(), self.failed_generation):
                    await self.roll_out(self.spec)
                    continue
                if self.current is None and self.serving is not None and self.health == Health.STARTING:
                    await self.resume()  # the front door has just started: serve the last good generation
                    continue
                if self.current is None and self.serving is not None and self.health != Health.UNHEALTHY:
                    await self.restart("it was not running")
                    continue
                if self.current is not None:
                    problem = await self.check(self.current)
                    if problem:
                        await self.restart(problem)
                        continue
                if self.current is None and self.serving is None and self.health == Health.STARTING:
                    self.health = Health.STOPPED
                    self.write_status()
                await self.pause(TICK_SECONDS)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("supervision of deployment %r failed", self.name)
            raise

    def _serving_generation(self) -> int | None:
        return self.serving.generation if self.serving else None

    async def pause(self, seconds: float) -> None:
        """Sleep, but wake at once for a new spec or a shutdown."""
        self.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), seconds)

    async def check(self, instance: Instance) -> str | None:
        """Why the serving instance must be restarted, or None. Runs the liveness and readiness probes, each on its
        own schedule (one GET / serves both when both are due): readiness takes the instance out of the rotation
        and back, liveness restarts it."""
        code = instance.exit_code()
        if code is not None:
            return f"its server exited with code {code}" if code >= 0 else f"its server was killed by signal {-code}"
        settings, now = self.settings, time.monotonic()
        age = now - instance.started
        liveness_due = (
            age >= settings.liveness.initial_delay and now - instance.last_liveness >= settings.liveness.period
        )
        readiness_due = (
            age >= settings.readiness.initial_delay and now - instance.last_readiness >= settings.readiness.period
        )
        if not liveness_due and not readiness_due:
            return None
        due = [
            probe
            for probe, is_due in ((settings.liveness, liveness_due), (settings.readiness, readiness_due))
            if is_due
        ]
        started = time.monotonic()
        answered = await instance.probe(max(probe.timeout for probe in due))
        elapsed = time.monotonic() - started
        busy, instance.answered = instance.answered, False  # a server answering scoring requests is alive and ready
        if readiness_due:
            instance.last_readiness = started
            self._readiness(busy or (answered and elapsed <= settings.readiness.timeout), settings.readiness)
        if liveness_due:
            instance.last_liveness = started
            return self._liveness(
                busy or (answered and elapsed <= settings.liveness.timeout), settings.liveness, instance
            )
        return None

    def _readiness(self, passed: bool, probe: Probe) -> None:
        if passed:
            self.readiness_failures, self.readiness_successes = 0, self.readiness_successes + 1
            if not self.ready and self.readiness_successes >= probe.success_threshold:
                log.info("deployment %r answers its readiness probe again: back in the rotation", self.name)
                self.ready = True
            return
        self.readiness_failures, self.readiness_successes = self.readiness_failures + 1, 0
        if self.ready and self.readiness_failures >= probe.failure_threshold:
            log.warning("deployment %r failed its readiness probe; its share gets 503 until it passes", self.name)
            self.ready = False

    def _liveness(self, passed: bool, probe: Probe, instance: Instance) -> str | None:
        if passed:
            self.liveness_failures = 0
            if time.monotonic() - instance.started > STABLE_SECONDS:
                self.failures_in_a_row = 0  # it has run long enough: a later crash starts a new count
            return None
        self.liveness_failures += 1
        if self.liveness_failures >= probe.failure_threshold:
            return f"it did not answer its liveness probe (GET /) {self.liveness_failures} times in a row"
        return None

    async def launch(self, spec: DeploymentSpec) -> Instance:
        self.attempts += 1
        generation = spec.generation
        socket = self.store.socket_path(self.endpoint, self.name, generation, self.attempts)
        socket.unlink(missing_ok=True)
        settings = Settings.from_spec(spec)
        banner = f"starting {self.name} generation {generation} (attempt {self.attempts})"
        process = start_server(spec, socket, self.log_path, banner, self.store.home)
        log.info("deployment %r generation %d: server pid %d on %s", self.name, generation, process.pid, socket)
        self.starting = Instance(generation, socket, process, settings.readiness, banner)
        self.write_status()  # the state names every server process from the moment it exists
        return self.starting

    async def wait_ready(self, instance: Instance, timeout: float = START_TIMEOUT_SECONDS) -> bool:
        """Whether the launched server passes its readiness probe in time (after the probe's initial delay, every
        period when the deployment sets it); the caller records the outcome."""
        readiness = instance.readiness
        deadline = time.monotonic() + readiness.initial_delay + timeout
        poll = readiness.period if readiness.configured else START_POLL_SECONDS
        try:
            await self.pause_unless_closing(readiness.initial_delay)
            while time.monotonic() < deadline and not self.closing:
                if instance.exit_code() is not None:
                    return False
                if await instance.probe(timeout=readiness.timeout):
                    return True
                await asyncio.sleep(poll)
            return False
        finally:
            self.starting = None

    async def pause_unless_closing(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.closing and time.monotonic() < deadline:
            await asyncio.sleep(min(TICK_SECONDS, deadline - time.monotonic()))

    async def roll_out(self, spec: DeploymentSpec) -> None:
        """Start the asked-for generation beside the serving one; swap only once it answers, as Azure's rolling
        update does. A failure leaves the previous generation serving."""
        generation = spec.generation
        self.state = State.UPDATING if self.serving else State.CREATING
        if self.current is None:
            self.health = Health.STARTING
        self.write_status()
        instance = await self.launch(spec)
        if await self.wait_ready(instance):
            previous = self.current
            self.current, self.serving, self.ready = instance, spec, True  # new requests go to the new generation
            self.health, self.reason = Health.RUNNING, ""
            self.failures_in_a_row, self.failed_generation, self.failure_log = 0, None, ""
            self.liveness_failures = self.readiness_failures = 0
            if previous is not None:
                await self.retire(previous, drain=self.settings.request_timeout)
            self.state = State.SUCCEEDED  # reported once the old generation is gone, as Azure's rolling update
            self.write_status()
            log.info("deployment %r generation %d serves", self.name, generation)
            self.remove_stale_snapshots()
            return
        if self.closing:
            await self.retire(instance)
            return
        exit_code = instance.exit_code()
        await self.retire(instance, grace=UNRESPONSIVE_STOP_GRACE_SECONDS)
        self.failure_log = self.own_output(instance)
        self.failed_generation, self.state = generation, State.FAILED
        self.reason = start_failure(self.failure_log, exit_code)
        if self.current is None:
            self.health = Health.STOPPED
        self.write_status()
        log.warning("deployment %r generation %d failed to start", self.name, generation)

    async def resume(self) -> None:
        """Start the serving generation when the front door starts; a failure is handled as a crash."""
        assert self.serving is not None
        instance = await self.launch(self.serving)
        if await self.wait_ready(instance):
            self._adopt(instance)
            log.info("deployment %r serves generation %s", self.name, self.serving.generation)
            return
        await self.retire(instance, grace=UNRESPONSIVE_STOP_GRACE_SECONDS)
        await self.restart(self.start_failure(instance))

    def start_failure(self, instance: Instance) -> str:
        """Why `instance` did not become ready, naming what failed (instance.start_failure)."""
        return start_failure(self.own_output(instance), instance.exit_code())

    def own_output(self, instance: Instance) -> str:
        """What a server that failed to start wrote itself (the log is shared with the generation still serving)."""
        if instance.pid is None:
            return ""
        found = logfiles.process_output(self.log_path, instance.banner, instance.pid, FAILURE_LOG_LINES)
        return found if found is not None else logfiles.tail(self.log_path, LOG_TAIL_LINES)

    def _adopt(self, instance: Instance) -> None:
        """The instance serves from now on."""
        self.current, self.ready = instance, True
        self.liveness_failures = self.readiness_failures = 0
        self.health, self.reason = Health.RUNNING, ""
        self.write_status()

    async def restart(self, problem: str) -> None:
        """Restart the serving generation after `problem`, pausing longer each time; give up after a crash loop."""
        self.ready = False
        if self.current is not None:
            log.warning("deployment %r: %s; restarting it", self.name, problem)
            dead = self.current
            self.current = None
            self.health, self.reason = Health.RESTARTING, problem
            await self.retire(dead, grace=UNRESPONSIVE_STOP_GRACE_SECONDS)
        while not self.closing and self.serving is not None:
            if self.failures_in_a_row >= CRASH_LOOP_RESTARTS:
                self.health = Health.UNHEALTHY
                self.reason = (
                    f"crash loop: {problem}; restarted {self.failures_in_a_row} times in a row without success, "
                    "not retried (run the create command again, or stop and start the endpoint)\n"
                    + (self.failure_log or logfiles.tail(self.log_path, LOG_TAIL_LINES))
                )
                self.write_status()
                log.error("deployment %r is unhealthy: %s", self.name, problem)
                return
            self.health, self.reason = Health.RESTARTING, problem
            self.write_status()
            await self.pause(RESTART_PAUSES[min(self.failures_in_a_row, len(RESTART_PAUSES) - 1)])
            if self.closing or self.spec.deleting:
                return
            if self.generation not in (self._serving_generation(), self.failed_generation):
                return  # a new generation is asked for: roll it out instead
            self.failures_in_a_row += 1
            instance = await self.launch(self.serving)
            if await self.wait_ready(instance):
                self.restarts += 1
                self._adopt(instance)
                log.info("deployment %r is back (restart %d)", self.name, self.restarts)
                return
            problem = self.start_failure(instance)
            await self.retire(instance, grace=UNRESPONSIVE_STOP_GRACE_SECONDS)
            self.failure_log = self.own_output(instance)

    async def retire(self, instance: Instance, grace: float = STOP_GRACE_SECONDS, drain: float = 0.0) -> None:
        """Stop a server that serves no more. The state names it until it is gone (the status file is rewritten
        every few seconds meanwhile, and a drain lasts up to the request timeout), so no process runs unnamed."""
        self.retiring = instance
        self.write_status()
        await instance.stop(grace=grace, drain=drain)
        self.retiring = None
        self.write_status()

    async def stop(self, health: Health = Health.STOPPED) -> None:
        await self._stop_instances()
        self.health = health
        self.reason = "" if health == Health.STOPPED and self.state != State.FAILED else self.reason

    async def delete(self) -> None:
        """Runs in the supervision task itself, so there is no task to cancel."""
        self.state = State.DELETING
        self.write_status()
        await self._stop_instances()
        await asyncio.to_thread(self._remove_folder)
        log.info("deployment %r deleted", self.name)

    async def _stop_instances(self) -> None:
        self.closing, self.ready = True, False
        self.wake.set()
        instances = (self.current, self.starting, self.retiring)  # a cancelled loop forgets its starting server
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        for instance in instances:
            if instance is not None:
                await instance.stop(drain=1.0)
        self.current = self.starting = self.retiring = None

    def _remove_folder(self) -> None:
        with self.store.lock(self.endpoint):
            spec = DeploymentSpec.read(self.store.deployment_file(self.endpoint, self.name))
            if spec is None or spec.deleting:  # nothing readable asks for it any more
                shutil.rmtree(self.store.deployment_dir(self.endpoint, self.name), ignore_errors=True)

    def remove_stale_snapshots(self) -> None:
        """Code and model copies that neither the asked-for nor the serving generation uses."""
        keep = {path for spec in (self.spec, self.serving) if spec for path in spec.snapshots}
        folder = self.store.deployment_dir(self.endpoint, self.name)
        for path in [*folder.glob("code-*"), *folder.glob("model-*"), *folder.glob("mdc-*")]:
            try:
                young = time.time() - path.stat().st_ctime < SNAPSHOT_GRACE_SECONDS
            except OSError:
                continue
            if str(path) not in keep and not young:
                shutil.rmtree(path, ignore_errors=True)
