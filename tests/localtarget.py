"""A local target for tests: its own home folder, a registered model, one endpoint, and helpers to call it.

Every front door started through it is stopped at the end (its deployment servers die with it), even when a test
fails.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

import commands
import create_online_deployment
import create_online_endpoint
import manage_online_endpoint
from commands.target import LOCAL
from common.local import processes
from common.local.client import LocalMLClient
from common.local.state import LocalStore, read_json
from tests.conftest import CANONICAL_ROW, ROOT

SAMPLE = json.dumps({"data": [CANONICAL_ROW]})
REQUEST_TIMEOUT = 10.0


@dataclass
class LocalSetup:
    home: Path
    endpoint_name: str
    spawned: list[int] = field(default_factory=list)
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=REQUEST_TIMEOUT))

    @property
    def store(self) -> LocalStore:
        return LocalStore(self.home)

    def client(self) -> LocalMLClient:
        return LocalMLClient(home=self.home, target=LOCAL)

    def endpoint(self) -> dict[str, Any]:
        return read_json(self.store.endpoint_file(self.endpoint_name))

    def deployment(self, name: str) -> dict[str, Any]:
        return read_json(self.store.deployment_file(self.endpoint_name, name))

    def status(self, name: str) -> dict[str, Any]:
        """What the front door reports about a deployment (pid, health, restarts)."""
        return read_json(self.store.status_file(self.endpoint_name, name))

    def frontdoor_pid(self) -> int:
        return int(read_json(self.store.frontdoor_file(self.endpoint_name))["pid"])

    def access_log(self, waiting_for: str, seconds: float = 5.0) -> str:
        """The endpoint's access log once it holds `waiting_for` (the front door writes it every 0.1 s)."""
        path = self.store.endpoint_dir(self.endpoint_name) / "access.log"
        wait_until(lambda: path.is_file() and waiting_for in path.read_text(), seconds)
        return path.read_text()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.endpoint()['port']}"

    @property
    def key(self) -> str:
        return read_json(self.store.keys_file(self.endpoint_name))["primary_key"]

    def headers(self, key: str | None = None, deployment: str | None = None) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key or self.key}"}
        if deployment:
            headers["azureml-model-deployment"] = deployment
        return headers

    def score(self, body: str = SAMPLE, key: str | None = None, deployment: str | None = None) -> httpx.Response:
        return self.http.post(f"{self.uri}/score", content=body, headers=self.headers(key, deployment))

    def run(self, main: Callable[[Sequence[str] | None], int], argv: list[str]) -> int:
        """A script's main through the command line's error boundary, its output discarded."""
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return commands.run(main, argv)

    def set_traffic(self, **shares: int) -> None:
        assignments = [f"{name}={share}" for name, share in shares.items()]
        argv = ["traffic", "--local", "--endpoint_name", self.endpoint_name, "--set", *assignments]
        assert self.run(manage_online_endpoint.main, argv) == 0

    def deployment_args(
        self, name: str, traffic: int, score_path: str | Path = "09-deploy-model", instances: int = 1
    ) -> list[str]:
        return [
            "--local",
            *("--deployment_name", name, "--endpoint_name", self.endpoint_name),
            *("--model_path", "azureml:diabetes-predict:1", "--environment", "diabetes-classify"),
            *("--score_path", str(score_path), "--score_script", "score.py", "--instance_type", "Standard_DS3_v2"),
            *("--instance_count", str(instances), "--traffic_allocation", str(traffic)),
        ]

    def deploy(self, name: str, traffic: int, score_path: str | Path = "09-deploy-model", instances: int = 1) -> None:
        assert self.run(create_online_deployment.main, self.deployment_args(name, traffic, score_path, instances)) == 0


def wait_until(condition: Callable[[], Any], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


@contextlib.contextmanager
def local_target(home: Path, endpoint: str, model_dir: Path) -> Iterator[LocalSetup]:
    """An endpoint (key auth) on a fresh local target whose registry holds the test model as version 1."""
    from azure.ai.ml.entities import Model

    setup = LocalSetup(home, endpoint)
    patch = pytest.MonkeyPatch()
    patch.setenv("AZUREML_LOCAL_HOME", str(home))
    patch.chdir(ROOT)
    real_spawn = processes.spawn

    def recording_spawn(*args: Any, **kwargs: Any) -> int:
        pid = real_spawn(*args, **kwargs)
        setup.spawned.append(pid)
        return pid

    patch.setattr(processes, "spawn", recording_spawn)
    try:
        if not setup.store.model_versions("diabetes-predict"):
            model = Model(name="diabetes-predict", path=str(model_dir / "diabetes-model"))
            setup.client().models.create_or_update(model)
        argv = ["--local", "--endpoint_name", endpoint, "--auth_mode", "key"]
        assert setup.run(create_online_endpoint.main, argv) == 0
        yield setup
    finally:
        setup.http.close()
        for name in setup.store.endpoints():  # front doors started by subprocesses of a test too
            with contextlib.suppress(Exception):
                setup.client().online_endpoints.begin_stop(name)
        for pid in setup.spawned:
            processes.stop(pid, grace=10)
        patch.undo()


def write_score(folder: Path, body: str) -> Path:
    """A scoring script folder (no model needed): `body` is the module's code."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "score.py").write_text(body)
    return folder
