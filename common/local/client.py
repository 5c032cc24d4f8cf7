"""LocalMLClient: the part of MLClient the scripts use, run on this machine.

A deployment is an azureml-inference-server-http process (the server Azure runs score.py in) on a free port of
127.0.0.1; an endpoint is a front door process (common.local.frontdoor) that authenticates, routes by traffic and
mirrors. Entities in and out are azure-ai-ml's own, and failures raise the SDK's exception types, so the scripts
cannot tell the targets apart.
"""

from __future__ import annotations

import shutil
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

from common.cli import warn
from common.local import auth, processes
from common.local.state import LocalStore, default_home, read_json, write_json
from common.operations import DEPLOYMENT_HEADER, bearer_secret
from common.pins import pinned_versions

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 120.0
INVOKE_TIMEOUT_SECONDS = 30.0


def _not_found(message: str) -> Exception:
    from azure.core.exceptions import ResourceNotFoundError

    return ResourceNotFoundError(message=message)


def _refused(message: str, status: int = 400) -> Exception:
    from azure.core.exceptions import HttpResponseError

    error = HttpResponseError(message=message)
    error.status_code = status
    return error


class LocalPoller:
    """An LROPoller look-alike for work the local target has already finished (or failed)."""

    def __init__(self, result: Any = None, error: Exception | None = None) -> None:
        self._result, self._error = result, error

    def done(self) -> bool:
        return True

    def wait(self, timeout: float | None = None) -> None:
        return None

    def status(self) -> str:
        return "Failed" if self._error else "Succeeded"

    def result(self, timeout: float | None = None) -> Any:
        if self._error is not None:
            raise self._error
        return self._result


def _marker(port: int | None) -> str:
    """What a server's command line holds, so a pid reused by another program after a reboot is not ours."""
    return f"--port {port}"


class LocalEndpoints:
    def __init__(self, store: LocalStore, start_timeout: float) -> None:
        self.store, self.start_timeout = store, start_timeout

    def spec(self, name: str) -> dict[str, Any]:
        path = self.store.endpoint_file(name)
        if not path.is_file():
            raise _not_found(f"local endpoint {name!r} does not exist")
        return read_json(path)

    def _entity(self, spec: dict[str, Any]) -> Any:
        from azure.ai.ml.entities import ManagedOnlineEndpoint

        running = processes.is_running(spec.get("pid"), _marker(spec["port"]))
        return ManagedOnlineEndpoint(
            name=spec["name"],
            description=spec.get("description"),
            tags=spec.get("tags") or {},
            auth_mode=spec["auth_mode"],
            traffic=spec.get("traffic") or {},
            mirror_traffic=spec.get("mirror_traffic") or {},
            public_network_access=spec.get("public_network_access"),
            scoring_uri=f"http://127.0.0.1:{spec['port']}/score",
            provisioning_state="Succeeded" if running else "Stopped",
        )

    def get(self, name: str) -> Any:
        spec = self.spec(name)
        self._warn_if_stale(spec)
        return self._entity(spec)

    def list(self) -> list[Any]:
        return [self._entity(self.spec(name)) for name in self.store.endpoints()]

    def begin_create_or_update(self, endpoint: Any) -> LocalPoller:
        path = self.store.endpoint_file(endpoint.name)
        spec = read_json(path) if path.is_file() else {"name": endpoint.name, "port": processes.free_port()}
        if not self.store.keys_file(endpoint.name).is_file():
            write_json(self.store.keys_file(endpoint.name), auth.new_keys(), private=True)
        traffic = {k: int(v) for k, v in (endpoint.traffic or {}).items() if int(v) > 0}
        mirror = {k: int(v) for k, v in (endpoint.mirror_traffic or {}).items() if int(v) > 0}
        self._check_traffic(endpoint.name, traffic, mirror)
        spec.update(
            description=endpoint.description,
            tags=dict(endpoint.tags or {}),
            auth_mode=(endpoint.auth_mode or "key").lower(),
            public_network_access=getattr(endpoint, "public_network_access", None),
            traffic=traffic,
            mirror_traffic=mirror,
        )
        write_json(path, spec)
        self.ensure_frontdoor(endpoint.name)
        return LocalPoller(self._entity(self.spec(endpoint.name)))

    def _check_traffic(self, name: str, traffic: dict[str, int], mirror: dict[str, int]) -> None:
        deployments = set(self.store.deployments(name))
        for target in [*traffic, *mirror]:
            if target not in deployments:
                raise _refused(f"traffic names deployment {target!r}, which endpoint {name!r} does not have")
        if sum(traffic.values()) > 100:
            raise _refused(f"traffic of endpoint {name!r} sums to {sum(traffic.values())}%; at most 100%")
        if len(mirror) > 1 or any(share > 50 for share in mirror.values()):
            raise _refused("mirror traffic goes to one deployment, at most 50%")
        if set(mirror) & set(traffic):
            raise _refused(f"deployment {next(iter(set(mirror) & set(traffic)))!r} cannot take live and mirror traffic")

    def ensure_frontdoor(self, name: str) -> None:
        """Start the front door unless it runs; wait until it answers."""
        spec = self.spec(name)
        if processes.is_running(spec.get("pid"), _marker(spec["port"])):
            return
        if not processes.port_free(spec["port"]):
            spec["port"] = processes.free_port()
        argv = [
            sys.executable,
            "-m",
            "common.local.frontdoor",
            "--home",
            str(self.store.home),
            "--endpoint_name",
            name,
            "--port",
            str(spec["port"]),
        ]
        log = self.store.endpoint_dir(name) / "frontdoor.log"
        spec["pid"] = processes.spawn(argv, cwd=ROOT, log_path=log)
        write_json(self.store.endpoint_file(name), spec)
        url = f"http://127.0.0.1:{spec['port']}/"
        if not processes.wait_until_healthy(url, spec["pid"], _marker(spec["port"]), self.start_timeout):
            processes.stop(spec["pid"])
            raise _refused(f"the front door of {name!r} did not start:\n{processes.tail(log, 20)}", status=500)

    def _warn_if_stale(self, spec: dict[str, Any]) -> None:
        name = spec["name"]
        if not processes.is_running(spec.get("pid"), _marker(spec["port"])):
            warn(
                f"local endpoint {name!r} is not running (its process is gone, e.g. after a reboot); bring it back "
                f"with: python create_online_endpoint.py --local --endpoint_name {name} --auth_mode {spec['auth_mode']}"
            )
        for deployment in self.store.deployments(name):
            state = read_json(self.store.deployment_file(name, deployment))
            if state.get("state") == "Succeeded" and not processes.is_running(
                state.get("pid"), _marker(state.get("port"))
            ):
                share = spec.get("traffic", {}).get(deployment, 0)
                warn(
                    f"local deployment {deployment!r} of {name!r} is not running (its process is gone); bring it "
                    f"back with: {state['command']} --traffic_allocation {share}"
                )

    def get_keys(self, name: str) -> Any:
        from azure.ai.ml.entities import EndpointAuthKeys, EndpointAuthToken

        spec, keys = self.spec(name), read_json(self.store.keys_file(name))
        if spec["auth_mode"] == "key":
            return EndpointAuthKeys(primary_key=keys["primary_key"], secondary_key=keys["secondary_key"])
        token, expires = auth.issue_token(name, keys["token_secret"])
        return EndpointAuthToken(
            access_token=token,
            expiry_time_utc=expires,
            refresh_after_time_utc=expires - auth.TOKEN_LIFETIME_SECONDS / 2,
            token_type="Bearer",
        )

    def invoke(self, endpoint_name: str, *, request_file: str, deployment_name: str | None = None, **_: Any) -> str:
        spec = self.spec(endpoint_name)
        secret = bearer_secret(self.get_keys(endpoint_name))
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        if deployment_name:
            headers[DEPLOYMENT_HEADER] = deployment_name
        body = Path(request_file).read_bytes()
        url = f"http://127.0.0.1:{spec['port']}/score"
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=INVOKE_TIMEOUT_SECONDS)
        except httpx.TransportError as error:
            raise _refused(f"local endpoint {endpoint_name!r} is not reachable at {url}: {error}", 503) from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("error", response.text)
            except ValueError:
                detail = response.text
            raise _refused(f"local endpoint {endpoint_name!r} answered: {detail}", response.status_code)
        return response.text

    def begin_delete(self, name: str) -> LocalPoller:
        spec = self.spec(name)
        for deployment in self.store.deployments(name):
            state = read_json(self.store.deployment_file(name, deployment))
            processes.stop(state.get("pid"), _marker(state.get("port")))
        processes.stop(spec.get("pid"), _marker(spec["port"]))
        shutil.rmtree(self.store.endpoint_dir(name))
        return LocalPoller(None)


class LocalDeployments:
    def __init__(self, store: LocalStore, endpoints: LocalEndpoints, models: LocalModels, start_timeout: float):
        self.store, self.endpoints, self.models, self.start_timeout = store, endpoints, models, start_timeout

    def _state(self, name: str, endpoint_name: str) -> dict[str, Any]:
        self.endpoints.spec(endpoint_name)
        path = self.store.deployment_file(endpoint_name, name)
        if not path.is_file():
            raise _not_found(f"local deployment {name!r} does not exist on endpoint {endpoint_name!r}")
        return read_json(path)

    def _entity(self, state: dict[str, Any]) -> Any:
        from azure.ai.ml.entities import CodeConfiguration, ManagedOnlineDeployment

        return ManagedOnlineDeployment(
            name=state["name"],
            endpoint_name=state["endpoint_name"],
            model=state["model"],
            environment=state["environment"],
            code_configuration=CodeConfiguration(code=state["code"], scoring_script=state["scoring_script"]),
            instance_type=state["instance_type"],
            instance_count=state["instance_count"],
            provisioning_state=state["state"],
        )

    def get(self, name: str, endpoint_name: str) -> Any:
        return self._entity(self._state(name, endpoint_name))

    def list(self, endpoint_name: str) -> list[Any]:
        return [self.get(name, endpoint_name) for name in self.store.deployments(endpoint_name)]

    def get_logs(self, name: str, endpoint_name: str, lines: int, **_: Any) -> str:
        self._state(name, endpoint_name)
        return processes.tail(self.store.deployment_dir(endpoint_name, name) / "server.log", lines)

    def begin_create_or_update(self, deployment: Any, **_: Any) -> LocalPoller:
        endpoint_name, name = deployment.endpoint_name, deployment.name
        self.endpoints.spec(endpoint_name)
        folder = self.store.deployment_dir(endpoint_name, name)
        path = self.store.deployment_file(endpoint_name, name)
        previous = read_json(path) if path.is_file() else None
        stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() % 1_000_000:06d}"
        code_dir, model_copy = folder / f"code-{stamp}", folder / f"model-{stamp}"
        snapshots = [str(code_dir), str(model_copy)]  # what this version owns; the registry is never deleted
        shutil.copytree(Path(deployment.code_configuration.code), code_dir)
        model_dir = self._model_snapshot(deployment.model, model_copy)
        _warn_about_pins(deployment.environment)
        port = processes.free_port()
        log = folder / "server.log"
        with log.open("a") as handle:
            handle.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name} on port {port} ---\n")
        argv = [
            str(Path(sys.executable).parent / "azmlinfsrv"),
            "--entry_script",
            deployment.code_configuration.scoring_script,
            "--port",
            str(port),
            "--worker_count",
            str(deployment.instance_count or 1),
        ]
        pid = processes.spawn(argv, cwd=code_dir, log_path=log, env=_server_environment(model_dir))
        healthy = processes.wait_until_healthy(f"http://127.0.0.1:{port}/", pid, _marker(port), self.start_timeout)
        model_ref = deployment.model if isinstance(deployment.model, str) else str(Path(deployment.model.path))
        state = {
            "name": name,
            "endpoint_name": endpoint_name,
            "model": model_ref,
            "environment": deployment.environment,
            "code": str(deployment.code_configuration.code),
            "scoring_script": deployment.code_configuration.scoring_script,
            "instance_type": deployment.instance_type,
            "instance_count": deployment.instance_count or 1,
            "command": _recreate_command(deployment, model_ref),
        }
        if not healthy:
            processes.stop(pid, _marker(port))
            _remove(snapshots)
            if previous is None:  # a new deployment that never served: recorded as failed, holding no port
                write_json(path, {**state, "state": "Failed", "port": None, "pid": None})
            else:  # a failed update: the previous version keeps serving, as in Azure
                write_json(path, {**previous, "state": "Failed"})
            reason = "its server did not become healthy (init() failed or it exited); see the log"
            return LocalPoller(error=_refused(f"deployment {name!r} failed: {reason}", status=500))
        write_json(path, {**state, "state": "Succeeded", "port": port, "pid": pid, "snapshots": snapshots})
        if previous is not None:  # rolling update: the new process serves before the old one stops
            processes.stop(previous.get("pid"), _marker(previous.get("port")))
            _remove(previous.get("snapshots", []))
        self.endpoints.ensure_frontdoor(endpoint_name)
        return LocalPoller(self.get(name, endpoint_name))

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
        state = self._state(name, endpoint_name)
        spec = self.endpoints.spec(endpoint_name)
        share = spec.get("traffic", {}).get(name, 0) or spec.get("mirror_traffic", {}).get(name, 0)
        if share:
            raise _refused(
                f"deployment {name!r} holds {share}% of the traffic of {endpoint_name!r}; move its traffic first"
            )
        processes.stop(state.get("pid"), _marker(state.get("port")))
        shutil.rmtree(self.store.deployment_dir(endpoint_name, name))
        return LocalPoller(None)


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
        versions = self.store.model_versions(model.name)
        version = str(model.version or (versions[-1] + 1 if versions else 1))
        target = self.store.model_dir(model.name, version)
        target.mkdir(parents=True, exist_ok=False)
        _copy_into(Path(model.path), target)
        return self.get(model.name, version=version)


class LocalEnvironments:
    """The current Python environment stands in for every environment; create_or_update records the conda file."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store

    def _record(self, name: str) -> Path:
        return self.store.home / "environments" / f"{name}.json"

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Any:
        from azure.ai.ml.entities import Environment

        recorded = read_json(self._record(name)) if self._record(name).is_file() else {}
        return Environment(
            name=name,
            version=version or recorded.get("version", "1"),
            image=recorded.get("image", "local-python"),
            description="served by the local Python environment",
        )

    def create_or_update(self, environment: Any) -> Any:
        conda_file = environment.conda_file if isinstance(environment.conda_file, str) else None
        record = {"version": str(environment.version or "1"), "image": environment.image, "conda_file": conda_file}
        write_json(self._record(environment.name), record)
        return self.get(environment.name, version=record["version"])


class LocalMLClient:
    def __init__(self, home: Path | None = None, start_timeout: float = START_TIMEOUT_SECONDS) -> None:
        self.store = LocalStore(home or default_home())
        self.models = LocalModels(self.store)
        self.environments = LocalEnvironments(self.store)
        self.online_endpoints = LocalEndpoints(self.store, start_timeout)
        self.online_deployments = LocalDeployments(self.store, self.online_endpoints, self.models, start_timeout)


def _server_environment(model_dir: Path) -> dict[str, str]:
    """AZUREML_MODEL_DIR as Azure sets it, and one OpenMP thread per worker: in Azure each deployment has its own
    VM, here several servers share the cores, and scikit-learn's OpenMP threads spinning against each other made a
    10 ms prediction take seconds."""
    return {"AZUREML_MODEL_DIR": str(model_dir), "OMP_NUM_THREADS": "1"}


def _copy_into(source: Path, folder: Path) -> None:
    """Copy a model file or folder into folder, keeping its name (as Azure mounts a model under its name)."""
    if source.is_dir():
        shutil.copytree(source, folder / source.name)
    else:
        shutil.copy2(source, folder / source.name)


def _remove(folders: list[str]) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def _recreate_command(deployment: Any, model_ref: str) -> str:
    code = deployment.code_configuration
    return (
        f"python create_online_deployment.py --local --deployment_name {deployment.name} "
        f"--endpoint_name {deployment.endpoint_name} --model_path {model_ref} "
        f"--environment {str(deployment.environment).removeprefix('azureml:')} --score_path {code.code} "
        f"--score_script {code.scoring_script} --instance_type {deployment.instance_type} "
        f"--instance_count {deployment.instance_count or 1}"
    )


def _warn_about_pins(environment: Any) -> None:
    """The local target serves with this Python; say where it differs from what Azure would serve with."""
    conda_file = ROOT / "environment.yml"
    if not conda_file.is_file():
        return
    for package, pinned in pinned_versions(conda_file).items():
        try:
            installed = metadata.version(package)
        except metadata.PackageNotFoundError:
            installed = "not installed"
        if installed != pinned:
            warn(
                f"the local environment differs from environment.yml for {environment}: {package} {installed} "
                f"installed, {pinned} pinned"
            )
