"""LocalEndpoints: online_endpoints of the local target (a front door per endpoint, its keys, start and stop)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sys
import time
from typing import Any

from common.cli import warn
from common.local import auth, logfiles, processes
from common.local.operations import (
    APPLY_TIMEOUT_SECONDS,
    FRONTDOOR_START_SECONDS,
    FRONTDOOR_STOP_SECONDS,
    POLL_SECONDS,
    ROOT,
    SETTLED_HEALTH,
    LocalPoller,
    StateErrorWatch,
    not_found,
    observed,
    refused,
)
from common.local.state import (
    LocalStateError,
    LocalStore,
    append_line,
    read_json,
    require_space,
    runtime_dir,
    write_json,
)
from common.local.state_types import (
    DeploymentSpec,
    DeploymentStatus,
    EndpointSpec,
    FrontDoorRecord,
    repair_activity,
)
from common.release.traffic import MAX_MIRROR_PERCENT
from common.target import Target

# the revision of the endpoint file an entity was read from, kept on the SDK entity the caller holds
REVISION_ATTRIBUTE = "_local_revision"

RECORD_REPAIR_SECONDS = 3.0  # a running front door rewrites its record every 2 s (supervisor.RECORDS_REFRESH_SECONDS)


class LocalEndpoints:
    def __init__(self, store: LocalStore, target: Target) -> None:
        self.target = target  # writes the start and stop commands its messages suggest
        self.store = store
        self._warned: set[str] = set()

    def remedy(self, name: str) -> str:
        """What to do about an unreadable state file of this endpoint."""
        stop = self.target.stop(name)
        return f": restore it, or stop the endpoint ({stop}) and delete {str(self.store.endpoint_dir(name))!r}"

    def spec(self, name: str) -> EndpointSpec:
        path = self.store.endpoint_file(name)
        if not path.is_file():
            raise not_found(f"local endpoint {name!r} does not exist")
        return EndpointSpec.load(path, self.remedy(name))

    def keys(self, name: str) -> dict[str, str]:
        return {kind: str(value) for kind, value in read_json(self.store.keys_file(name), self.remedy(name)).items()}

    def frontdoor(self, name: str) -> FrontDoorRecord | None:
        """The running front door's record (pid, port, applied revision), or None when none runs. A front door
        that runs (it holds its lock) with its record unreadable rewrites it within seconds: that is waited for."""
        deadline = time.monotonic() + RECORD_REPAIR_SECONDS
        while True:
            record = FrontDoorRecord.read(self.store.frontdoor_file(name))
            if record and processes.is_running(record.pid, _marker(name, record.port)):
                return record
            if not self.store.frontdoor_holds_lock(name):
                return None
            if time.monotonic() > deadline:
                raise refused(
                    f"the front door of local endpoint {name!r} runs, but its record "
                    f"{str(self.store.frontdoor_file(name))!r} stays unreadable although it rewrites it every few "
                    f"seconds: stop the endpoint ({self.target.stop(name)}) and start it again "
                    f"({self.target.start(name)})",
                    503,
                )
            time.sleep(POLL_SECONDS)

    def _entity(self, spec: EndpointSpec) -> Any:
        from azure.ai.ml.entities import ManagedOnlineEndpoint

        running = self.frontdoor(spec.name) is not None
        state = "Deleting" if spec.deleting else "Succeeded" if running else "Stopped"
        entity = ManagedOnlineEndpoint(
            name=spec.name,
            description=spec.description,
            tags=dict(spec.tags),
            auth_mode=spec.auth_mode,
            traffic=dict(spec.traffic),
            mirror_traffic=dict(spec.mirror_traffic),
            public_network_access=spec.public_network_access,
            scoring_uri=f"http://127.0.0.1:{spec.port}/score",
            openapi_uri=f"http://127.0.0.1:{spec.port}/swagger.json",  # as Azure's swaggerUri: beside /score
            provisioning_state=state,
        )
        setattr(entity, REVISION_ATTRIBUTE, spec.revision)  # a write based on an older one is refused
        return entity

    def get(self, name: str) -> Any:
        spec = self.spec(name)
        self._warn_if_stopped(spec)
        return self._entity(spec)

    def list(self) -> list[Any]:
        return [self._entity(self.spec(name)) for name in self.store.endpoints()]

    def begin_create_or_update(self, endpoint: Any) -> LocalPoller:
        name = endpoint.name
        traffic = {k: int(v) for k, v in (endpoint.traffic or {}).items() if int(v) > 0}
        mirror = {k: int(v) for k, v in (endpoint.mirror_traffic or {}).items() if int(v) > 0}
        with self.store.lock(name):
            path = self.store.endpoint_file(name)
            auth_mode = (endpoint.auth_mode or "key").lower()
            spec = self.spec(name) if path.is_file() else EndpointSpec(name, processes.free_port(), auth_mode)
            if spec.deleting:
                raise refused(f"local endpoint {name!r} is being deleted", 409)
            read_revision = getattr(endpoint, REVISION_ATTRIBUTE, None)
            if read_revision is not None and read_revision != spec.revision:
                raise refused(
                    f"local endpoint {name!r} changed since it was read (revision {read_revision}, now "
                    f"{spec.revision}); read it again",
                    412,
                )
            self._check_traffic(name, traffic, mirror)
            self._require_readable_state(name)  # else the front door could not apply the change: nothing written
            self._require_space(name)
            if not self.store.keys_file(name).is_file():
                write_json(self.store.keys_file(name), auth.new_keys())
            elif spec.auth_mode != auth_mode:
                # tokens issued under the old auth mode must not outlive it
                self._replace_key(name, "token")
            spec = dataclasses.replace(
                spec,
                description=endpoint.description,
                tags=dict(endpoint.tags or {}),
                auth_mode=auth_mode,
                public_network_access=getattr(endpoint, "public_network_access", None),
                traffic=traffic,
                mirror_traffic=mirror,
                revision=spec.revision + 1,
            )
            setattr(endpoint, REVISION_ATTRIBUTE, spec.revision)  # the caller may change and write it again
            change = {"traffic": traffic, "mirror_traffic": mirror}
            self._record_change(spec, {**change, "auth_mode": spec.auth_mode, "description": spec.description})
        self.ensure_frontdoor(name)
        return self._applied_poller(name, spec.revision)

    def _require_space(self, name: str) -> None:
        """Room for every file a change of the endpoint rewrites (each through a temporary copy), checked first."""
        rewritten = (self.store.endpoint_file(name), self.store.keys_file(name))
        needed = sum(2 * path.stat().st_size if path.exists() else 4096 for path in rewritten) + 4096  # + a record
        require_space(self.store.endpoint_dir(name), needed, f"a change of local endpoint {name!r}")

    def _require_readable_state(self, name: str) -> None:
        """Every file the front door applies a change from is readable (those that exist yet)."""
        if self.store.keys_file(name).exists():
            self.keys(name)
        for deployment in self.store.deployments(name):
            DeploymentSpec.load(self.store.deployment_file(name, deployment), self.remedy(name))

    def _applied_poller(self, name: str, revision: int) -> LocalPoller:
        """Done once the front door routes by `revision` (a traffic change applies before the command returns)."""
        deadline = time.monotonic() + APPLY_TIMEOUT_SECONDS
        watch = StateErrorWatch()

        def check() -> tuple[bool, Any, Exception | None]:
            record = self.frontdoor(name)
            if record is not None and watch.persistent(record):
                return True, None, self.state_error(name, record, f"the change (revision {revision}) is saved")
            if record is not None and record.applied_revision >= revision:
                return True, self._entity(self.spec(name)), None
            if record is None or time.monotonic() > deadline:
                log_tail = logfiles.tail(self.store.endpoint_dir(name) / "frontdoor.log", 20)
                return True, None, refused(f"the front door of {name!r} did not apply the change:\n{log_tail}")
            return False, None, None

        return LocalPoller(check=check)

    def state_error(self, name: str, record: FrontDoorRecord, saved: str) -> Exception:
        """The front door cannot read the endpoint's state: what was saved waits until the file is readable."""
        return refused(
            f"{saved} but not applied yet: the front door of {name!r} cannot read the endpoint's state "
            f"({record.state_error}); it applies it as soon as the file is readable again{self.remedy(name)}"
        )

    def _check_traffic(self, name: str, traffic: dict[str, int], mirror: dict[str, int]) -> None:
        deployments = set(self.store.deployments(name))
        for target in [*traffic, *mirror]:
            if target not in deployments:
                raise refused(f"traffic names deployment {target!r}, which endpoint {name!r} does not have", 400)
        if sum(traffic.values()) > 100:
            raise refused(f"traffic of endpoint {name!r} sums to {sum(traffic.values())}%; at most 100%", 400)
        if len(mirror) > 1 or any(share > MAX_MIRROR_PERCENT for share in mirror.values()):
            raise refused(f"mirror traffic goes to one deployment, at most {MAX_MIRROR_PERCENT}%", 400)
        if set(mirror) & set(traffic):
            raise refused(
                f"deployment {next(iter(set(mirror) & set(traffic)))!r} cannot take live and mirror traffic", 400
            )

    def ensure_frontdoor(self, name: str) -> None:
        """Start the front door unless it runs, on the endpoint's own port; wait until it answers.

        It then starts the endpoint's deployments itself. Serialised per endpoint, so two commands never start two.
        """
        with self.store.lock(f"{name}.start"):
            if self.frontdoor(name) is not None:
                return
            runtime_dir(self.store.home)  # the deployments' socket folder: a bad one is refused here, in seconds
            spec = self.spec(name)
            port = spec.port
            if not processes.port_free(port):
                raise refused(
                    f"port {port} of local endpoint {name!r} (its scoring URI) is taken by another program; free "
                    f"it, then run: {self.target.start(name)}",
                    409,
                )
            argv = [sys.executable, "-m", "common.local.frontdoor", "--home", str(self.store.home)]
            argv += ["--endpoint_name", name, "--port", str(port)]
            log = self.store.endpoint_dir(name) / "frontdoor.log"
            pid = processes.spawn(argv, cwd=ROOT, log_path=log)
            deadline = time.monotonic() + FRONTDOOR_START_SECONDS
            while time.monotonic() < deadline:
                record = FrontDoorRecord.read(self.store.frontdoor_file(name))
                if record and record.pid == pid and processes.http_ok(f"http://127.0.0.1:{port}/"):
                    return
                if not processes.is_running(pid):
                    break
                time.sleep(POLL_SECONDS)
            processes.stop(pid, grace=5)
            raise refused(f"the front door of {name!r} did not start:\n{logfiles.tail(log, 20)}")

    def without_state_warnings(self, name: str) -> None:
        """No "not running; start it with ..." (or "unhealthy") warning about this endpoint from this client: the
        command is about to delete it, and advice on starting it would only mislead."""
        self._warned.add(name)

    def _warn_if_stopped(self, spec: EndpointSpec) -> None:
        name = spec.name
        if name in self._warned or spec.deleting:
            return
        self._warned.add(name)
        if self.frontdoor(name) is None:
            warn(
                f"local endpoint {name!r} is not running (stopped, or its processes are gone, e.g. after a reboot); "
                f"start it with: {self.target.start(name)}"
            )
            return
        for deployment in self.store.deployments(name):
            status = DeploymentStatus.read(self.store.status_file(name, deployment))
            if status.health == "unhealthy":
                first_line = status.reason.splitlines()[:1]
                warn(f"local deployment {deployment!r} of {name!r} is unhealthy: {''.join(first_line)}")

    def get_keys(self, name: str) -> Any:
        from azure.ai.ml.entities import EndpointAuthKeys, EndpointAuthToken

        spec, keys = self.spec(name), self.keys(name)
        if spec.auth_mode == "key":
            return EndpointAuthKeys(primary_key=keys["primary_key"], secondary_key=keys["secondary_key"])
        token, expires = auth.issue_token(name, keys["token_secret"])
        return EndpointAuthToken(
            access_token=token,
            expiry_time_utc=expires,
            refresh_after_time_utc=expires - auth.TOKEN_LIFETIME_SECONDS / 2,
            token_type="Bearer",
        )

    def begin_regenerate_keys(self, name: str, *, key_type: str = "primary") -> LocalPoller:
        """Replace one key ("primary", "secondary") or the token secret ("token": every token issued is revoked).

        Done once the front door checks credentials against the new value: the old one is refused from the very next
        request. The endpoint's revision moves on, so the front door's applied revision says when.
        """
        with self.store.lock(name):
            spec = self.spec(name)
            if spec.deleting:
                raise refused(f"local endpoint {name!r} is being deleted", 409)
            self._require_space(name)  # keys.json and endpoint.json change together, or neither
            self._replace_key(name, key_type)
            spec.revision += 1
            self._record_change(spec, {"regenerated": key_type})
        if self.frontdoor(name) is None:
            return LocalPoller(None)  # nothing serves: the next start reads the new keys
        return self._applied_poller(name, spec.revision)

    def _record_change(self, spec: EndpointSpec, change: dict[str, Any]) -> None:
        """Write endpoint.json with the record of this change inside it (one atomic write), then append the record
        to activity.jsonl. A command killed between the two leaves the record in endpoint.json: the next one to
        take the lock (a command, or the front door reading the change) appends it first, so the change and its
        record never exist one without the other for longer than that."""
        repair_activity(self.store, spec.name)
        spec.last_change = {"revision": spec.revision, "time": time.time(), "pid": os.getpid(), **change}
        spec.dump(self.store.endpoint_file(spec.name))
        append_line(self.store.activity_file(spec.name), spec.last_change)

    def _replace_key(self, name: str, key_type: str) -> None:
        keys = self.keys(name)
        keys[auth.KEY_FIELDS[key_type]] = auth.new_secret()
        write_json(self.store.keys_file(name), keys)

    def begin_start(self, name: str) -> LocalPoller:
        """Bring a stopped endpoint back: the same port, keys, traffic and deployments (each at its last good
        generation). Done once every deployment is running, unhealthy or failed."""
        if self.spec(name).deleting:
            raise refused(f"local endpoint {name!r} is being deleted", 409)
        self.ensure_frontdoor(name)
        deadline = time.monotonic() + 180.0

        def check() -> tuple[bool, Any, Exception | None]:
            pending = [d for d in self.store.deployments(name) if self._health(name, d) not in SETTLED_HEALTH]
            if not pending or time.monotonic() > deadline:
                return True, self._entity(self.spec(name)), None
            if self.frontdoor(name) is None:
                return True, None, refused(f"the front door of {name!r} stopped while starting")
            return False, None, None

        return LocalPoller(check=check)

    def _health(self, endpoint: str, deployment: str) -> str | None:
        status = DeploymentStatus.read(self.store.status_file(endpoint, deployment))
        record = self.frontdoor(endpoint)
        if record is None or status.front_door_pid != record.pid:
            return None  # written by an earlier front door: not yet looked at by this one
        spec = DeploymentSpec.read(self.store.deployment_file(endpoint, deployment))
        if spec is None:  # being rewritten: its health is what the front door last said, as before the types
            return status.health or "starting"
        return observed(spec, status, running=True)[1]

    def begin_stop(self, name: str) -> LocalPoller:
        """Stop the front door (which stops every deployment server); the state stays."""
        if not self.store.endpoint_dir(name).is_dir():
            raise not_found(f"local endpoint {name!r} does not exist")
        self._stop_processes(name)
        return LocalPoller(None)

    def _stop_processes(self, name: str) -> None:
        record = FrontDoorRecord.read(self.store.frontdoor_file(name))
        if record and processes.is_running(record.pid, _marker(name, record.port)):
            processes.stop(record.pid, _marker(name, record.port), grace=FRONTDOOR_STOP_SECONDS)
        # The servers die with their front door; this only catches one a kill -9 left between two steps.
        for deployment in self.store.deployments(name):
            status = DeploymentStatus.read(self.store.status_file(name, deployment))
            for pid in status.server_pids:
                processes.stop(pid, "inference_server.py", grace=5)
        self.store.frontdoor_file(name).unlink(missing_ok=True)

    def begin_delete(self, name: str) -> LocalPoller:
        with self.store.lock(name):
            spec = self.spec(name)
            spec.deleting = True
            spec.dump(self.store.endpoint_file(name))
        self._stop_processes(name)
        with self.store.lock(name):
            shutil.rmtree(self.store.endpoint_dir(name), ignore_errors=True)
        with contextlib.suppress(LocalStateError):  # a socket folder that is not ours holds none of its sockets
            for socket in self.store.sockets(name):
                socket.unlink(missing_ok=True)
        self.store.release_runtime_dir()
        return LocalPoller(None)


def _marker(endpoint: str, port: Any) -> str:
    """What a front door's command line holds, so a pid reused by another program after a reboot is not ours."""
    return f"--endpoint_name {endpoint} --port {port}"
