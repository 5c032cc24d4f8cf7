"""LocalMLClient: the part of MLClient the scripts use, run on this machine.

An endpoint is a front door process (common.local.frontdoor) on 127.0.0.1 that authenticates, routes by traffic,
mirrors and supervises the endpoint's deployments: azureml-inference-server-http processes (the server Azure runs
score.py in) on Unix sockets. This client never starts a deployment server itself: it writes what the user asked
for under the endpoint's lock and waits for the front door to report the outcome, as the SDK waits for Azure. So
an interrupted command leaves no process behind that the state does not name, and the operation goes on, as in
Azure.

Entities in and out are azure-ai-ml's own, and failures raise the SDK's exception types, so the scripts cannot
tell the targets apart. start and stop exist only here (Azure endpoints run until deleted).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from common.cli import toolkit_command, warn
from common.local import auth, environments, processes
from common.local.state import (
    LocalStore,
    append_line,
    default_home,
    read_json,
    read_json_or_none,
    write_json,
)

ROOT = Path(__file__).resolve().parents[2]
FRONTDOOR_START_SECONDS = 60.0
FRONTDOOR_STOP_SECONDS = 30.0
APPLY_TIMEOUT_SECONDS = 30.0
POLL_SECONDS = 0.1
SETTLED_HEALTH = ("running", "unhealthy", "stopped")


def _not_found(message: str) -> Exception:
    from azure.core.exceptions import ResourceNotFoundError

    return ResourceNotFoundError(message=message)


def _refused(message: str, status: int | None = None) -> Exception:
    """The SDK's error type for what the local target refuses (status: the HTTP status Azure would answer), or,
    without a status, for an operation that failed (as azure-core's failed long-running operations)."""
    from azure.core.exceptions import HttpResponseError

    error = HttpResponseError(message=message)
    error.status_code = status
    return error


Check = Callable[[], "tuple[bool, Any, Exception | None]"]
STATE_ERROR_GRACE_SECONDS = 1.0  # the front door may not have re-read the file a command has just rewritten


class StateErrorWatch:
    """Whether the front door has reported an unreadable state for longer than a re-read takes."""

    def __init__(self) -> None:
        self.since: float | None = None

    def persistent(self, record: dict[str, Any] | None) -> bool:
        if not record or not record.get("state_error"):
            self.since = None
            return False
        self.since = self.since or time.monotonic()
        return time.monotonic() - self.since >= STATE_ERROR_GRACE_SECONDS


class LocalPoller:
    """An LROPoller look-alike: done() asks the local target whether the work is finished."""

    where = "on the local target"

    def __init__(self, result: Any = None, error: Exception | None = None, check: Check | None = None) -> None:
        self._result, self._error, self._check = result, error, check
        self._done = check is None

    def done(self) -> bool:
        if not self._done and self._check is not None:
            self._done, self._result, self._error = self._check()
        return self._done

    def wait(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done() and (deadline is None or time.monotonic() < deadline):
            time.sleep(POLL_SECONDS)

    def status(self) -> str:
        if not self.done():
            return "InProgress"
        return "Failed" if self._error else "Succeeded"

    def result(self, timeout: float | None = None) -> Any:
        self.wait(timeout)
        if self._error is not None:
            raise self._error
        return self._result


def start_command(endpoint: str) -> str:
    return toolkit_command("manage_online_endpoint.py", "start", "--endpoint_name", endpoint, local=True)


class LocalEndpoints:
    def __init__(self, store: LocalStore) -> None:
        self.store = store
        self._warned: set[str] = set()

    def remedy(self, name: str) -> str:
        """What to do about an unreadable state file of this endpoint."""
        stop = toolkit_command("manage_online_endpoint.py", "stop", "--endpoint_name", name, local=True)
        return f": restore it, or stop the endpoint ({stop}) and delete {str(self.store.endpoint_dir(name))!r}"

    def spec(self, name: str) -> dict[str, Any]:
        path = self.store.endpoint_file(name)
        if not path.is_file():
            raise _not_found(f"local endpoint {name!r} does not exist")
        return read_json(path, self.remedy(name))

    def keys(self, name: str) -> dict[str, str]:
        return read_json(self.store.keys_file(name), self.remedy(name))

    def frontdoor(self, name: str) -> dict[str, Any] | None:
        """The running front door's record (pid, port, applied revision), or None when none runs."""
        record = read_json_or_none(self.store.frontdoor_file(name))
        if record and processes.is_running(record.get("pid"), _marker(name, record.get("port"))):
            return record
        return None

    def _entity(self, spec: dict[str, Any]) -> Any:
        from azure.ai.ml.entities import ManagedOnlineEndpoint

        running = self.frontdoor(spec["name"]) is not None
        state = "Deleting" if spec.get("deleting") else "Succeeded" if running else "Stopped"
        entity = ManagedOnlineEndpoint(
            name=spec["name"],
            description=spec.get("description"),
            tags=spec.get("tags") or {},
            auth_mode=spec["auth_mode"],
            traffic=spec.get("traffic") or {},
            mirror_traffic=spec.get("mirror_traffic") or {},
            public_network_access=spec.get("public_network_access"),
            scoring_uri=f"http://127.0.0.1:{spec['port']}/score",
            provisioning_state=state,
        )
        entity._local_revision = int(spec.get("revision", 0))  # a write based on an older revision is refused
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
            spec = self.spec(name) if path.is_file() else {"name": name, "port": processes.free_port(), "revision": 0}
            if spec.get("deleting"):
                raise _refused(f"local endpoint {name!r} is being deleted", 409)
            read_revision = getattr(endpoint, "_local_revision", None)
            if read_revision is not None and read_revision != spec.get("revision", 0):
                raise _refused(
                    f"local endpoint {name!r} changed since it was read (revision {read_revision}, now "
                    f"{spec.get('revision', 0)}); read it again",
                    412,
                )
            self._check_traffic(name, traffic, mirror)
            auth_mode = (endpoint.auth_mode or "key").lower()
            if not self.store.keys_file(name).is_file():
                write_json(self.store.keys_file(name), auth.new_keys(), private=True)
            elif spec.get("auth_mode") != auth_mode:
                # tokens issued under the old auth mode must not outlive it
                self._replace_key(name, "token")
            spec.update(
                description=endpoint.description,
                tags=dict(endpoint.tags or {}),
                auth_mode=auth_mode,
                public_network_access=getattr(endpoint, "public_network_access", None),
                traffic=traffic,
                mirror_traffic=mirror,
                revision=int(spec.get("revision", 0)) + 1,
            )
            write_json(path, spec)
            endpoint._local_revision = spec["revision"]  # the caller may change and write this entity again
            append_line(
                self.store.activity_file(name),
                {
                    "revision": spec["revision"],
                    "time": time.time(),
                    "pid": os.getpid(),
                    "traffic": traffic,
                    "mirror_traffic": mirror,
                    "auth_mode": spec["auth_mode"],
                    "description": spec["description"],
                },
            )
        self.ensure_frontdoor(name)
        return self._applied_poller(name, spec["revision"])

    def _applied_poller(self, name: str, revision: int) -> LocalPoller:
        """Done once the front door routes by `revision` (a traffic change applies before the command returns)."""
        deadline = time.monotonic() + APPLY_TIMEOUT_SECONDS
        watch = StateErrorWatch()

        def check() -> tuple[bool, Any, Exception | None]:
            record = self.frontdoor(name)
            if record is not None and watch.persistent(record):
                return True, None, self.state_error(name, record)
            if record is not None and int(record.get("applied_revision", -1)) >= revision:
                return True, self._entity(self.spec(name)), None
            if record is None or time.monotonic() > deadline:
                log_tail = processes.tail(self.store.endpoint_dir(name) / "frontdoor.log", 20)
                return True, None, _refused(f"the front door of {name!r} did not apply the change:\n{log_tail}")
            return False, None, None

        return LocalPoller(check=check)

    def state_error(self, name: str, record: dict[str, Any]) -> Exception:
        """The front door cannot read the endpoint's state: the change waits until the file is fixed."""
        return _refused(
            f"the front door of {name!r} cannot read the endpoint's state, so the change is not applied: "
            f"{record['state_error']}{self.remedy(name)}"
        )

    def _check_traffic(self, name: str, traffic: dict[str, int], mirror: dict[str, int]) -> None:
        deployments = set(self.store.deployments(name))
        for target in [*traffic, *mirror]:
            if target not in deployments:
                raise _refused(f"traffic names deployment {target!r}, which endpoint {name!r} does not have", 400)
        if sum(traffic.values()) > 100:
            raise _refused(f"traffic of endpoint {name!r} sums to {sum(traffic.values())}%; at most 100%", 400)
        if len(mirror) > 1 or any(share > 50 for share in mirror.values()):
            raise _refused("mirror traffic goes to one deployment, at most 50%", 400)
        if set(mirror) & set(traffic):
            raise _refused(
                f"deployment {next(iter(set(mirror) & set(traffic)))!r} cannot take live and mirror traffic", 400
            )

    def ensure_frontdoor(self, name: str) -> None:
        """Start the front door unless it runs, on the endpoint's own port; wait until it answers.

        It then starts the endpoint's deployments itself. Serialised per endpoint, so two commands never start two.
        """
        with self.store.lock(f"{name}.start"):
            if self.frontdoor(name) is not None:
                return
            spec = self.spec(name)
            port = int(spec["port"])
            if not processes.port_free(port):
                raise _refused(
                    f"port {port} of local endpoint {name!r} (its scoring URI) is taken by another program; free "
                    f"it, then run: {start_command(name)}",
                    409,
                )
            argv = [sys.executable, "-m", "common.local.frontdoor", "--home", str(self.store.home)]
            argv += ["--endpoint_name", name, "--port", str(port)]
            log = self.store.endpoint_dir(name) / "frontdoor.log"
            pid = processes.spawn(argv, cwd=ROOT, log_path=log)
            deadline = time.monotonic() + FRONTDOOR_START_SECONDS
            while time.monotonic() < deadline:
                record = read_json_or_none(self.store.frontdoor_file(name))
                if record and record.get("pid") == pid and processes.http_ok(f"http://127.0.0.1:{port}/"):
                    return
                if not processes.is_running(pid):
                    break
                time.sleep(POLL_SECONDS)
            processes.stop(pid, grace=5)
            raise _refused(f"the front door of {name!r} did not start:\n{processes.tail(log, 20)}")

    def _warn_if_stopped(self, spec: dict[str, Any]) -> None:
        name = spec["name"]
        if name in self._warned or spec.get("deleting"):
            return
        self._warned.add(name)
        if self.frontdoor(name) is None:
            warn(
                f"local endpoint {name!r} is not running (stopped, or its processes are gone, e.g. after a reboot); "
                f"start it with: {start_command(name)}"
            )
            return
        for deployment in self.store.deployments(name):
            status = read_json_or_none(self.store.status_file(name, deployment)) or {}
            if status.get("health") == "unhealthy":
                first_line = str(status.get("reason", "")).splitlines()[:1]
                warn(f"local deployment {deployment!r} of {name!r} is unhealthy: {''.join(first_line)}")

    def get_keys(self, name: str) -> Any:
        from azure.ai.ml.entities import EndpointAuthKeys, EndpointAuthToken

        spec, keys = self.spec(name), self.keys(name)
        if spec["auth_mode"] == "key":
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
            if spec.get("deleting"):
                raise _refused(f"local endpoint {name!r} is being deleted", 409)
            self._replace_key(name, key_type)
            spec["revision"] = int(spec.get("revision", 0)) + 1
            write_json(self.store.endpoint_file(name), spec)
            append_line(
                self.store.activity_file(name),
                {"revision": spec["revision"], "time": time.time(), "pid": os.getpid(), "regenerated": key_type},
            )
        if self.frontdoor(name) is None:
            return LocalPoller(None)  # nothing serves: the next start reads the new keys
        return self._applied_poller(name, spec["revision"])

    def _replace_key(self, name: str, key_type: str) -> None:
        keys = self.keys(name)
        keys[auth.KEY_FIELDS[key_type]] = auth.new_secret()
        write_json(self.store.keys_file(name), keys, private=True)

    def begin_start(self, name: str) -> LocalPoller:
        """Bring a stopped endpoint back: the same port, keys, traffic and deployments (each at its last good
        generation). Done once every deployment is running, unhealthy or failed."""
        spec = self.spec(name)
        if spec.get("deleting"):
            raise _refused(f"local endpoint {name!r} is being deleted", 409)
        self.ensure_frontdoor(name)
        deadline = time.monotonic() + 180.0

        def check() -> tuple[bool, Any, Exception | None]:
            pending = [d for d in self.store.deployments(name) if self._health(name, d) not in SETTLED_HEALTH]
            if not pending or time.monotonic() > deadline:
                return True, self._entity(self.spec(name)), None
            if self.frontdoor(name) is None:
                return True, None, _refused(f"the front door of {name!r} stopped while starting")
            return False, None, None

        return LocalPoller(check=check)

    def _health(self, endpoint: str, deployment: str) -> str | None:
        status = read_json_or_none(self.store.status_file(endpoint, deployment)) or {}
        spec = read_json_or_none(self.store.deployment_file(endpoint, deployment)) or {}
        if status.get("front_door_pid") != (self.frontdoor(endpoint) or {}).get("pid"):
            return None  # written by an earlier front door: not yet looked at by this one
        return _observed(spec, status, running=True)[1]

    def begin_stop(self, name: str) -> LocalPoller:
        """Stop the front door (which stops every deployment server); the state stays."""
        if not self.store.endpoint_dir(name).is_dir():
            raise _not_found(f"local endpoint {name!r} does not exist")
        self._stop_processes(name)
        return LocalPoller(None)

    def _stop_processes(self, name: str) -> None:
        record = read_json_or_none(self.store.frontdoor_file(name))
        if record and processes.is_running(record.get("pid"), _marker(name, record.get("port"))):
            processes.stop(record["pid"], _marker(name, record.get("port")), grace=FRONTDOOR_STOP_SECONDS)
        # The servers die with their front door; this only catches one a kill -9 left between two steps.
        for deployment in self.store.deployments(name):
            status = read_json_or_none(self.store.status_file(name, deployment)) or {}
            if status.get("pid"):
                processes.stop(status["pid"], "inference_server.py", grace=5)
        self.store.frontdoor_file(name).unlink(missing_ok=True)

    def begin_delete(self, name: str) -> LocalPoller:
        with self.store.lock(name):
            spec = self.spec(name)
            spec["deleting"] = True
            write_json(self.store.endpoint_file(name), spec)
        self._stop_processes(name)
        with self.store.lock(name):
            shutil.rmtree(self.store.endpoint_dir(name), ignore_errors=True)
        for socket in self.store.sockets(name):
            socket.unlink(missing_ok=True)
        return LocalPoller(None)


def _marker(endpoint: str, port: Any) -> str:
    """What a front door's command line holds, so a pid reused by another program after a reboot is not ours."""
    return f"--endpoint_name {endpoint} --port {port}"


class LocalDeployments:
    def __init__(
        self, store: LocalStore, endpoints: LocalEndpoints, models: LocalModels, environments: LocalEnvironments
    ) -> None:
        self.store, self.endpoints, self.models, self.environments = store, endpoints, models, environments

    def _spec(self, name: str, endpoint_name: str) -> dict[str, Any]:
        self.endpoints.spec(endpoint_name)
        path = self.store.deployment_file(endpoint_name, name)
        if not path.is_file():
            raise _not_found(f"local deployment {name!r} does not exist on endpoint {endpoint_name!r}")
        return read_json(path, self.endpoints.remedy(endpoint_name))

    def _entity(self, spec: dict[str, Any]) -> Any:
        from azure.ai.ml.entities import (
            CodeConfiguration,
            ManagedOnlineDeployment,
            OnlineRequestSettings,
            ProbeSettings,
        )

        endpoint, name = spec["endpoint_name"], spec["name"]
        status = read_json_or_none(self.store.status_file(endpoint, name)) or {}
        running = self.endpoints.frontdoor(endpoint) is not None
        state, health, reason = _observed(spec, status, running)
        return ManagedOnlineDeployment(
            name=name,
            endpoint_name=endpoint,
            model=spec["model"],
            environment=spec["environment"],
            code_configuration=CodeConfiguration(code=spec["code"], scoring_script=spec["scoring_script"]),
            instance_type=spec["instance_type"],
            instance_count=spec["instance_count"],
            request_settings=OnlineRequestSettings(**spec["request_settings"])
            if spec.get("request_settings")
            else None,
            liveness_probe=ProbeSettings(**spec["liveness_probe"]) if spec.get("liveness_probe") else None,
            readiness_probe=ProbeSettings(**spec["readiness_probe"]) if spec.get("readiness_probe") else None,
            environment_variables=dict(spec.get("environment_variables") or {}),
            app_insights_enabled=bool(spec.get("app_insights_enabled")),
            egress_public_network_access=spec.get("egress_public_network_access"),
            provisioning_state=state,
            properties={
                "health": health,
                "health_reason": reason,
                "restarts": str(status.get("restarts", 0)),
                "pid": str(status.get("pid") or "") if running else "",
                "local_environment": _describe_environment(spec.get("local_environment")),
            },
        )

    def get(self, name: str, endpoint_name: str) -> Any:
        return self._entity(self._spec(name, endpoint_name))

    def list(self, endpoint_name: str) -> list[Any]:
        return [self.get(name, endpoint_name) for name in self.store.deployments(endpoint_name)]

    def get_logs(self, name: str, endpoint_name: str, lines: int, *, container_type: str | None = None) -> str:
        """The server's log (Azure's inference-server container); the local target has no storage initializer."""
        spec = self._spec(name, endpoint_name)
        if container_type == "storage-initializer":
            return (
                "The local target has no storage-initializer container: on Azure it downloads the model and code "
                "before the server starts; here they were copied when the deployment was created, to "
                f"{self.store.deployment_dir(endpoint_name, name)} (model {spec.get('model')}). The server's own log: "
                "--container inference-server"
            )
        return processes.tail(self.store.server_log(endpoint_name, name), lines)

    def follow_logs(self, name: str, endpoint_name: str, lines: int, *, poll_seconds: float = 0.2) -> Iterator[str]:
        """The last `lines` lines, then each line as the server writes it, until the deployment is deleted."""
        self._spec(name, endpoint_name)
        path = self.store.server_log(endpoint_name, name)
        text = processes.tail(path, lines)
        if text:
            yield text + "\n"
        position = path.stat().st_size if path.is_file() else 0
        while self.store.deployment_file(endpoint_name, name).is_file():
            size = path.stat().st_size if path.is_file() else 0
            if size < position:  # the log was replaced (the deployment created again): read the new one whole
                position = 0
            if size > position:
                with path.open("rb") as log:
                    log.seek(position)
                    chunk = log.read(size - position)
                position += len(chunk)
                yield chunk.decode(errors="replace")
            else:
                time.sleep(poll_seconds)

    def begin_create_or_update(self, deployment: Any, **_: Any) -> LocalPoller:
        endpoint_name, name = deployment.endpoint_name, deployment.name
        if self.endpoints.spec(endpoint_name).get("deleting"):
            raise _refused(f"local endpoint {endpoint_name!r} is being deleted", 409)
        self.endpoints.keys(endpoint_name)  # the front door needs every state file of the endpoint to apply this
        label, conda = self.environments.definition(deployment.environment)  # refused before anything is written
        built = environments.ensure(conda, label, self.store.home)
        folder = self.store.deployment_dir(endpoint_name, name)
        stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() % 1_000_000:06d}"
        code_dir, model_copy = folder / f"code-{stamp}", folder / f"model-{stamp}"
        shutil.copytree(Path(deployment.code_configuration.code), code_dir)
        model_dir = self._model_snapshot(deployment.model, model_copy)
        _warn_about_scikit_learn(model_dir, conda, label)
        model_ref = deployment.model if isinstance(deployment.model, str) else str(Path(deployment.model.path))
        spec = {
            "name": name,
            "endpoint_name": endpoint_name,
            "model": model_ref,
            "model_dir": str(model_dir),
            "environment": deployment.environment,
            "python": str(built.python),
            "local_environment": built.describe(),
            "code": str(deployment.code_configuration.code),
            "code_dir": str(code_dir),
            "scoring_script": deployment.code_configuration.scoring_script,
            "instance_type": deployment.instance_type,
            "instance_count": deployment.instance_count or 1,
            "request_settings": _settings(deployment.request_settings),
            "liveness_probe": _settings(deployment.liveness_probe),
            "readiness_probe": _settings(deployment.readiness_probe),
            "environment_variables": dict(deployment.environment_variables or {}),
            # Azure-only switches: recorded (and shown) so a local deployment says what its Azure twin would do
            "app_insights_enabled": bool(deployment.app_insights_enabled),
            "egress_public_network_access": getattr(deployment, "egress_public_network_access", None),
            "snapshots": [str(code_dir), *([str(model_copy)] if model_copy.exists() else [])],
        }
        with self.store.lock(endpoint_name):
            self.endpoints.spec(endpoint_name)  # still there
            spec["generation"] = self._last_generation(endpoint_name, name) + 1
            write_json(self.store.deployment_file(endpoint_name, name), spec)
        self.endpoints.ensure_frontdoor(endpoint_name)
        return self._outcome_poller(endpoint_name, name, spec["generation"])

    def _last_generation(self, endpoint: str, name: str) -> int:
        """The highest generation asked for or seen (deployment.json may be unreadable: it is being replaced)."""
        spec = read_json_or_none(self.store.deployment_file(endpoint, name)) or {}
        status = read_json_or_none(self.store.status_file(endpoint, name)) or {}
        seen = [spec.get("generation"), status.get("generation"), status.get("serving_generation")]
        return max([0, *(int(g) for g in [*seen, status.get("failed_generation")] if isinstance(g, int))])

    def _outcome_poller(self, endpoint: str, name: str, generation: int) -> LocalPoller:
        watch = StateErrorWatch()

        def check() -> tuple[bool, Any, Exception | None]:
            record = self.endpoints.frontdoor(endpoint)
            if record is not None and watch.persistent(record):
                return True, None, self.endpoints.state_error(endpoint, record)
            status = read_json_or_none(self.store.status_file(endpoint, name)) or {}
            if status.get("serving_generation") == generation and status.get("state") == "Succeeded":
                return True, self.get(name, endpoint), None
            if status.get("failed_generation") == generation:
                reason = status.get("reason") or "it failed"
                return True, None, _refused(reason)  # the script says which deployment failed
            if record is None:
                problem = f"the front door of {endpoint!r} stopped before deployment {name!r} was ready"
                return True, None, _refused(f"{problem}; start it with: {start_command(endpoint)}")
            return False, None, None

        return LocalPoller(check=check)

    def _model_snapshot(self, model: Any, target: Path) -> Path:
        """The folder to serve as AZUREML_MODEL_DIR: the registered version, or a copy of a local model."""
        if isinstance(model, str):
            reference = model.removeprefix("azureml:")
            model_name, _, version = reference.partition(":")
            return Path(self.models.get(model_name, version=version).path)
        target.mkdir(parents=True)
        _copy_into(Path(model.path), target)
        return target

    def begin_delete(self, name: str, endpoint_name: str) -> LocalPoller:
        with self.store.lock(endpoint_name):
            spec = self._spec(name, endpoint_name)
            endpoint = self.endpoints.spec(endpoint_name)
            share = endpoint.get("traffic", {}).get(name, 0) or endpoint.get("mirror_traffic", {}).get(name, 0)
            if share:
                raise _refused(
                    f"deployment {name!r} holds {share}% of the traffic of {endpoint_name!r}; move its traffic first",
                    400,
                )
            if self.endpoints.frontdoor(endpoint_name) is None:
                shutil.rmtree(self.store.deployment_dir(endpoint_name, name))
                return LocalPoller(None)
            write_json(self.store.deployment_file(endpoint_name, name), {**spec, "deleting": True})
        folder = self.store.deployment_dir(endpoint_name, name)

        def check() -> tuple[bool, Any, Exception | None]:
            if not folder.exists():
                return True, None, None
            if self.endpoints.frontdoor(endpoint_name) is None:
                with self.store.lock(endpoint_name):
                    shutil.rmtree(folder, ignore_errors=True)
                return True, None, None
            return False, None, None

        return LocalPoller(check=check)


def _observed(spec: dict[str, Any], status: dict[str, Any], running: bool) -> tuple[str, str, str]:
    """(provisioning state, health, reason) of a deployment, from what was asked for and what the front door saw."""
    generation = spec.get("generation")
    if spec.get("deleting"):
        return "Deleting", "stopped", ""
    if status.get("failed_generation") == generation:
        state = "Failed"
    elif status.get("serving_generation") == generation:
        state = "Succeeded"
    else:
        state = "Updating" if status.get("serving") else "Creating"
    if not running:
        return state, "stopped", "the endpoint is stopped"
    return state, str(status.get("health") or "starting"), str(status.get("reason") or "")


def _settings(settings: Any) -> dict[str, Any]:
    """The set fields of an SDK settings object (OnlineRequestSettings, ProbeSettings) as plain values."""
    if settings is None:
        return {}
    return {key: value for key, value in vars(settings).items() if not key.startswith("_") and value is not None}


class LocalModels:
    """A model registry: azureml:NAME:VERSION resolves to models/NAME/VERSION, versions counted up from 1."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Any:
        from azure.ai.ml.entities import Model

        versions = self.store.model_versions(name)
        chosen = str(versions[-1]) if (label == "latest" or version is None) and versions else version
        if not chosen or not self.store.model_dir(name, chosen).is_dir():
            wanted = f"version {version}" if version else "any version"
            raise _not_found(f"local model {name!r} ({wanted}) is not registered")
        return Model(name=name, version=chosen, path=str(self.store.model_dir(name, chosen)), type="custom_model")

    def create_or_update(self, model: Any) -> Any:
        with self.store.lock(f"models.{model.name}"):  # '.' is not allowed in endpoint names: no clash
            versions = self.store.model_versions(model.name)
            version = str(model.version or (versions[-1] + 1 if versions else 1))
            target = self.store.model_dir(model.name, version)
            target.mkdir(parents=True, exist_ok=False)
            _copy_into(Path(model.path), target)
        return self.get(model.name, version=version)


class LocalEnvironments:
    """Registered environments: create_or_update records the conda file; a deployment runs in a virtual environment
    built from it (common/local/environments.py). An environment never registered locally is the repository's
    environment.yml, as the deployment script would register it."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store

    def _record(self, name: str) -> Path:
        return self.store.home / "environments" / f"{name}.json"

    def _recorded(self, name: str) -> dict[str, Any]:
        return read_json(self._record(name)) if self._record(name).is_file() else {}

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Any:
        from azure.ai.ml.entities import Environment

        recorded = self._recorded(name)
        return Environment(
            name=name,
            version=version or recorded.get("version", "1"),
            image=recorded.get("image", "local-python"),
            conda_file=recorded.get("conda"),
            description="a virtual environment built from its conda file",
        )

    def create_or_update(self, environment: Any) -> Any:
        conda = environment.conda_file if isinstance(environment.conda_file, dict) else None
        if conda is not None:
            environments.read_conda(conda, f"the conda file of environment {environment.name}")  # refused now
        previous = self._recorded(environment.name)
        version = str(environment.version or previous.get("version", "1"))
        if not environment.version and previous and previous.get("conda") != conda:
            version = str(int(previous.get("version", "1")) + 1)  # as Azure: a changed definition, a new version
        record = {"version": version, "image": environment.image, "conda": conda}
        write_json(self._record(environment.name), record)
        return self.get(environment.name, version=version)

    def definition(self, reference: Any) -> tuple[str, environments.CondaSpec]:
        """The label and conda definition a deployment's environment reference stands for."""
        text = str(reference or "").removeprefix("azureml:")
        name = text.split("@")[0].split(":")[0] or "environment.yml"
        recorded = self._recorded(name)
        if recorded.get("conda"):
            label = f"{name}:{recorded.get('version', '1')}"
            return label, environments.read_conda(recorded["conda"], f"the conda file of environment {label}")
        conda_file = ROOT / "environment.yml"
        return f"{name} ({conda_file.name})", environments.load_conda_file(conda_file)


class LocalMLClient:
    def __init__(self, home: Path | None = None) -> None:
        self.store = LocalStore(home or default_home())
        self.models = LocalModels(self.store)
        self.environments = LocalEnvironments(self.store)
        self.online_endpoints = LocalEndpoints(self.store)
        self.online_deployments = LocalDeployments(self.store, self.online_endpoints, self.models, self.environments)


def _copy_into(source: Path, folder: Path) -> None:
    """Copy a model file or folder into folder, keeping its name (as Azure mounts a model under its name)."""
    if source.is_dir():
        shutil.copytree(source, folder / source.name)
    else:
        shutil.copy2(source, folder / source.name)


def _warn_about_scikit_learn(model_dir: Path, conda: environments.CondaSpec, label: str) -> None:
    """Before any request fails: a model pickled by one scikit-learn and loaded by another is a classic failure."""
    trained_with = None
    for path in sorted(model_dir.rglob("metadata.json")):
        try:
            trained_with = json.loads(path.read_text()).get("sklearn_version")
        except (OSError, ValueError, AttributeError):
            continue
        break
    pinned = conda.pin("scikit-learn")
    if trained_with and pinned and trained_with != pinned:
        warn(
            f"the model was trained with scikit-learn {trained_with} and environment {label} pins scikit-learn "
            f"{pinned}: loading it may fail or predict differently; retrain with {pinned}, or pin {trained_with}"
        )
    elif trained_with and not pinned:
        warn(f"the model was trained with scikit-learn {trained_with}; environment {label} does not pin scikit-learn")


def _describe_environment(built: dict[str, Any] | None) -> str:
    if not built:
        return "the toolkit's own Python (deployed before environments were built)"
    return f"{built['name']}, Python {built['python']}, hash {built['hash']}"
