"""LocalDeployments: online_deployments of the local target (a deployment written for the front door to run, its
logs, its deletion)."""

from __future__ import annotations

import builtins
import dataclasses
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common.cli import warn
from common.local import capture_files, environments, logfiles, mlflow_models, processes
from common.local.online_endpoints import RECORD_REPAIR_SECONDS, LocalEndpoints
from common.local.operations import (
    POLL_SECONDS,
    LocalPoller,
    StateErrorWatch,
    copy_into,
    copy_private,
    not_found,
    observed,
    plain_settings,
    refused,
)
from common.local.registry import LocalEnvironments, LocalModels
from common.local.state import (
    LocalStateError,
    LocalStore,
    runtime_dir,
)
from common.local.state_types import DeploymentSpec, DeploymentStatus
from common.monitoring import capture

NO_CODE = "none: the model's MLflow scoring (no-code deployment)"  # what `show` says a no-code deployment runs
LEFTOVER_SECONDS = 60.0  # a create writes deployment.json seconds after it copied the code and model


class LocalDeployments:
    def __init__(
        self, store: LocalStore, endpoints: LocalEndpoints, models: LocalModels, environments: LocalEnvironments
    ) -> None:
        self.store, self.endpoints, self.models, self.environments = store, endpoints, models, environments
        self._reported: set[tuple[str, str]] = set()

    def _spec(self, name: str, endpoint_name: str) -> DeploymentSpec:
        self.endpoints.spec(endpoint_name)
        path = self.store.deployment_file(endpoint_name, name)
        if not path.is_file():
            raise not_found(f"local deployment {name!r} does not exist on endpoint {endpoint_name!r}")
        return DeploymentSpec.load(path, self.endpoints.remedy(endpoint_name))

    def _entity(self, spec: DeploymentSpec) -> Any:
        from azure.ai.ml.entities import (
            CodeConfiguration,
            ManagedOnlineDeployment,
            OnlineRequestSettings,
            ProbeSettings,
        )

        endpoint, name = spec.endpoint_name, spec.name
        running = self.endpoints.frontdoor(endpoint) is not None
        status = self._status(endpoint, name, running)
        if status is None:
            path = self.store.status_file(endpoint, name)
            state, health = "Unknown", "unknown"
            reason = (
                f"its status file {str(path)!r} stays unreadable although the front door rewrites it every few seconds"
            )
        else:
            state, health, reason = observed(spec, status, running)
            pid = status.pid
            if running and health == "running" and pid and not processes.is_running(pid):
                age = time.time() - status.updated
                health = "unknown"
                reason = (
                    f"its server (pid {pid}) is gone, and the front door has not written its status for {age:.0f} s "
                    "(a full disk?): it may be restarting"
                )
        return ManagedOnlineDeployment(
            name=name,
            endpoint_name=endpoint,
            model=spec.model,
            environment=spec.environment,
            code_configuration=None
            if spec.code == NO_CODE
            else CodeConfiguration(code=spec.code, scoring_script=spec.scoring_script),
            instance_type=spec.instance_type,
            instance_count=spec.instance_count,
            request_settings=OnlineRequestSettings(**spec.request_settings) if spec.request_settings else None,
            liveness_probe=ProbeSettings(**spec.liveness_probe) if spec.liveness_probe else None,
            readiness_probe=ProbeSettings(**spec.readiness_probe) if spec.readiness_probe else None,
            environment_variables=dict(spec.environment_variables),
            app_insights_enabled=spec.app_insights_enabled,
            egress_public_network_access=spec.egress_public_network_access,
            data_collector=capture.data_collector(capture_files.collection_of(spec.data_collection)),
            provisioning_state=state,
            properties={
                "health": health,
                "health_reason": reason,
                "restarts": str(status.restarts if status else 0),
                "pid": str(status.pid or "") if status and running else "",
                "local_environment": _describe_environment(spec.local_environment),
                "model_dir": spec.model_dir,
                **({"created_at": str(spec.created_at)} if spec.created_at else {}),
                **({"collected_to": spec.capture_dir} if spec.data_collection and spec.capture_dir else {}),
                **capture_files.dropped_records(spec.capture_dir),
            },
        )

    def _status(self, endpoint: str, name: str, running: bool) -> DeploymentStatus | None:
        """What the front door last wrote of the deployment (an empty status before it wrote anything); None when
        the file is there but unreadable and stays so past the front door's next rewrite."""
        path = self.store.status_file(endpoint, name)
        deadline = time.monotonic() + RECORD_REPAIR_SECONDS
        while True:
            try:
                return DeploymentStatus.load(path)
            except FileNotFoundError:
                return DeploymentStatus()
            except LocalStateError:
                if not running or time.monotonic() > deadline:
                    return None
                time.sleep(POLL_SECONDS)

    def get(self, name: str, endpoint_name: str) -> Any:
        return self._entity(self._spec(name, endpoint_name))

    def list(self, endpoint_name: str) -> list[Any]:
        for name in self.leftovers(endpoint_name):
            if (endpoint_name, name) not in self._reported:
                self._reported.add((endpoint_name, name))
                delete = self.endpoints.target.delete_deployment(endpoint_name, name)
                warn(
                    f"{str(self.store.deployment_dir(endpoint_name, name))!r} holds the snapshots of a create that was "
                    f"killed before it wrote the deployment (no deployment.json); remove it with: {delete}"
                )
        return [self.get(name, endpoint_name) for name in self.store.deployments(endpoint_name)]

    def leftovers(self, endpoint_name: str) -> builtins.list[str]:
        """Deployment folders with snapshots and no deployment.json, older than a create takes to write one: what
        a create killed while copying leaves."""
        folder = self.store.endpoint_dir(endpoint_name) / "deployments"
        if not folder.is_dir():
            return []
        cutoff = time.time() - LEFTOVER_SECONDS
        return sorted(
            path.name
            for path in folder.iterdir()
            if path.is_dir() and not (path / "deployment.json").exists() and path.stat().st_mtime < cutoff
        )

    def get_logs(self, name: str, endpoint_name: str, lines: int, *, container_type: str | None = None) -> str:
        """The server's log (Azure's inference-server container); the local target has no storage initializer."""
        spec = self._spec(name, endpoint_name)
        if container_type == "storage-initializer":
            return (
                "The local target has no storage-initializer container: on Azure it downloads the model and code "
                "before the server starts; here they were copied when the deployment was created, to "
                f"{self.store.deployment_dir(endpoint_name, name)} (model {spec.model}). The server's own log: "
                "--container inference-server"
            )
        status = DeploymentStatus.read(self.store.status_file(endpoint_name, name))
        failed = status.failed_generation
        if status.failure_log and failed == spec.generation and failed != status.serving_generation:
            own = "\n".join(status.failure_log.splitlines()[-lines:])
            return f"(generation {failed} of {name} failed to start; what its server wrote:)\n{own}"
        return logfiles.tail(self.store.server_log(endpoint_name, name), lines)

    def follow_logs(self, name: str, endpoint_name: str, lines: int, *, poll_seconds: float = 0.2) -> Iterator[str]:
        """The last `lines` lines, then each line as the server writes it, until the deployment is deleted."""
        self._spec(name, endpoint_name)
        path = self.store.server_log(endpoint_name, name)
        # where the tail ends, read before it is handed out: a line written while the caller prints the tail (or
        # before this generator is resumed) comes next, never skipped
        written = path.read_bytes() if path.is_file() else b""
        position = len(written)
        text = "\n".join(written.decode(errors="replace").splitlines()[-lines:])
        if text:
            yield text + "\n"
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
        if self.endpoints.spec(endpoint_name).deleting:
            raise refused(f"local endpoint {endpoint_name!r} is being deleted", 409)
        self.endpoints.keys(endpoint_name)  # the front door needs every state file of the endpoint to apply this
        runtime_dir(self.store.home)  # where its server's socket goes: refused now, not after the wait
        no_code = self._no_code(deployment)  # refused before anything is written
        if no_code is None:
            label, conda = self.environments.definition(deployment.environment)
        else:
            label, conda = no_code.label, environments.read_conda(no_code.conda, no_code.label)
        self._refuse_while_in_progress(endpoint_name, name)  # before minutes of building and copying
        built = environments.ensure(conda, label, self.store.home)
        folder = self.store.deployment_dir(endpoint_name, name)
        stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() % 1_000_000:06d}"
        code_dir, model_copy, mdc_dir = folder / f"code-{stamp}", folder / f"model-{stamp}", folder / f"mdc-{stamp}"
        try:
            spec = self._write_spec(deployment, built, conda, label, no_code, (code_dir, model_copy, mdc_dir))
        except BaseException:  # refused or interrupted before deployment.json named them: no snapshot is left behind
            written = self._written(endpoint_name, name)
            if written is None or written.code_dir != str(code_dir):  # one written is the front door's to clean up
                for snapshot in (code_dir, model_copy, mdc_dir):
                    shutil.rmtree(snapshot, ignore_errors=True)
            raise
        self.endpoints.ensure_frontdoor(endpoint_name)
        return self._outcome_poller(endpoint_name, name, spec.generation)

    def _write_spec(
        self,
        deployment: Any,
        built: environments.BuiltEnvironment,
        conda: environments.CondaSpec,
        label: str,
        no_code: mlflow_models.NoCode | None,
        snapshots: tuple[Path, Path, Path],
    ) -> DeploymentSpec:
        """Snapshot the code and model, then write deployment.json with the next generation: what the front door
        rolls out."""
        endpoint_name, name = deployment.endpoint_name, deployment.name
        code_dir, model_copy, mdc_dir = snapshots
        code = mlflow_models.SCORING_CODE if no_code else Path(deployment.code_configuration.code)
        copy_private(code, code_dir)
        model_dir = self._model_snapshot(deployment.model, model_copy)
        collection = capture.of_deployment(deployment)
        collector_config = capture_files.write_collector_config(mdc_dir, collection)
        _warn_about_scikit_learn(model_dir, conda, label)
        model = deployment.model
        model_ref = model if isinstance(model, str) else str(Path(model.path))
        if _named(model):
            model_ref = f"azureml:{model.name}:{model.version}"
        spec = DeploymentSpec(
            name=name,
            endpoint_name=endpoint_name,
            model=model_ref,
            model_dir=str(model_dir),
            environment=deployment.environment if isinstance(deployment.environment, str) else label,
            python=str(built.python),
            local_environment=built.describe(),
            code=NO_CODE if no_code else str(deployment.code_configuration.code),
            code_dir=str(code_dir),
            scoring_script=mlflow_models.SCORING_SCRIPT if no_code else deployment.code_configuration.scoring_script,
            # what Azure sets for the scoring script beside the deployment's own variables
            platform_variables={mlflow_models.MODEL_FOLDER_VARIABLE: no_code.model_folder} if no_code else {},
            instance_type=deployment.instance_type,
            instance_count=deployment.instance_count or 1,
            request_settings=plain_settings(deployment.request_settings),
            liveness_probe=plain_settings(deployment.liveness_probe),
            readiness_probe=plain_settings(deployment.readiness_probe),
            environment_variables=dict(deployment.environment_variables or {}),
            # Azure-only switches: recorded (and shown) so a local deployment says what its Azure twin would do
            app_insights_enabled=bool(deployment.app_insights_enabled),
            egress_public_network_access=getattr(deployment, "egress_public_network_access", None),
            data_collection=collection.as_dict() if collection.enabled else None,
            collector_config=str(collector_config) if collector_config else None,
            capture_dir=str(self.store.capture_dir(endpoint_name, name)),
            snapshots=[
                str(code_dir),
                *([str(model_copy)] if model_copy.exists() else []),
                *([str(collector_config.parent)] if collector_config else []),
            ],
        )
        with self.store.lock(endpoint_name):
            self.endpoints.spec(endpoint_name)  # still there
            self._refuse_while_in_progress(endpoint_name, name)  # another create may have written while this copied
            spec.generation = self._last_generation(endpoint_name, name) + 1
            previous = self._written(endpoint_name, name)
            spec.created_at = (previous and previous.created_at) or time.time()  # an update keeps it; a new create not
            spec.dump(self.store.deployment_file(endpoint_name, name))
        return spec

    def _written(self, endpoint: str, name: str) -> DeploymentSpec | None:
        """The deployment.json there is, if it is readable (one being replaced may not be)."""
        return DeploymentSpec.read(self.store.deployment_file(endpoint, name))

    def _refuse_while_in_progress(self, endpoint_name: str, name: str) -> None:
        """Azure answers 409 Conflict to a write on a deployment whose last write is still being applied; so does
        the local target, instead of replacing a generation that another command is waiting for. A stopped
        endpoint applies nothing, so its pending generation is simply replaced (start rolls out the newest)."""
        spec = self._written(endpoint_name, name)
        if spec is None or self.endpoints.frontdoor(endpoint_name) is None:
            return
        status = DeploymentStatus.read(self.store.status_file(endpoint_name, name))
        state, _, _ = observed(spec, status, running=True)
        if state in ("Creating", "Updating"):
            raise refused(
                f"deployment {name!r} of endpoint {endpoint_name!r} is in {state} provisioning state: another "
                f"operation (its generation {spec.generation}) is not finished",
                409,
            )

    def _last_generation(self, endpoint: str, name: str) -> int:
        """The highest generation asked for or seen (deployment.json may be unreadable: it is being replaced)."""
        spec = self._written(endpoint, name)
        status = DeploymentStatus.read(self.store.status_file(endpoint, name))
        seen = [spec and spec.generation, status.generation, status.serving_generation, status.failed_generation]
        return max([0, *(g for g in seen if isinstance(g, int))])

    def _outcome_poller(self, endpoint: str, name: str, generation: int) -> LocalPoller:
        watch = StateErrorWatch()

        def check() -> tuple[bool, Any, Exception | None]:
            record = self.endpoints.frontdoor(endpoint)
            if record is not None and watch.persistent(record):
                saved = f"deployment {name!r} generation {generation} is saved"
                return True, None, self.endpoints.state_error(endpoint, record, saved)
            written = self._written(endpoint, name)
            latest = written.generation if written is not None else None
            if latest is not None and latest > generation:  # a stopped endpoint's pending write was replaced
                replaced = (
                    f"deployment {name!r} generation {generation} was replaced by generation {latest} before it was "
                    "ready: another operation wrote it, and that one is applied instead"
                )
                return True, None, refused(replaced, 409)
            status = DeploymentStatus.read(self.store.status_file(endpoint, name))
            if status.serving_generation == generation and status.state == "Succeeded":
                return True, self.get(name, endpoint), None
            if status.failed_generation == generation:
                reason = status.reason or "it failed"
                return True, None, refused(reason)  # the script says which deployment failed
            if record is None:  # not a failed deployment: nobody knows yet how this generation would have done
                problem = (
                    f"the front door of {endpoint!r} stopped before deployment {name!r} generation {generation} was "
                    f"ready, so its outcome is unknown; starting the endpoint rolls it out: "
                    f"{self.endpoints.target.start(endpoint)}"
                )
                return True, None, refused(problem, 503)
            return False, None, None

        return LocalPoller(check=check)

    def _no_code(self, deployment: Any) -> mlflow_models.NoCode | None:
        """An MLflow model deployed without code and environment: how it runs (None: the deployment's own code)."""
        if deployment.code_configuration is not None or deployment.environment is not None:
            return None
        model = deployment.model
        source = Path(model.path) if not isinstance(model, str) else Path(self._registered(model).path)
        return mlflow_models.no_code(source, f"model {model if isinstance(model, str) else source}")

    def _registered(self, reference: str) -> Any:
        model_name, _, version = reference.removeprefix("azureml:").partition(":")
        return self.models.get(model_name, version=version)

    def _model_snapshot(self, model: Any, target: Path) -> Path:
        """The folder to serve as AZUREML_MODEL_DIR: the registered version, or a copy of a local model."""
        if isinstance(model, str):
            return Path(self._registered(model).path)
        if _named(model):
            return Path(self.models.register_inline(model).path)
        target.mkdir(parents=True)
        copy_into(Path(model.path), target)
        return target

    def begin_delete(self, name: str, endpoint_name: str) -> LocalPoller:
        with self.store.lock(endpoint_name):
            if name in self.leftovers(endpoint_name):
                shutil.rmtree(self.store.deployment_dir(endpoint_name, name), ignore_errors=True)
                return LocalPoller(None)
            spec = self._spec(name, endpoint_name)
            share = self.endpoints.spec(endpoint_name).share(name)
            if share:
                raise refused(
                    f"deployment {name!r} holds {share}% of the traffic of {endpoint_name!r}; move its traffic first",
                    400,
                )
            if self.endpoints.frontdoor(endpoint_name) is None:
                shutil.rmtree(self.store.deployment_dir(endpoint_name, name))
                return LocalPoller(None)
            dataclasses.replace(spec, deleting=True).dump(self.store.deployment_file(endpoint_name, name))
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


def _named(model: Any) -> bool:
    """An inline model with the name and version a YAML file gave it: registered, as azure-ai-ml registers it."""
    return not isinstance(model, str) and not getattr(model, "_is_anonymous", True) and bool(model.version)


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
    built_with = f", {built['built_with']}" if built.get("built_with") else ""
    return f"{built['name']}, Python {built['python']}, hash {built['hash']}{built_with}"
