"""Fixtures shared by the suite: a real trained model, score.py loaded as a module, and a mocked MLClient."""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest.mock import MagicMock, create_autospec

import pytest

import commands
from common.azure import surface
from common.training import synthetic_dataset, train

ROOT = Path(__file__).resolve().parents[1]
SCORE_DIR = ROOT / "09-deploy-model"
CANONICAL_ROW = [2, 180, 74, 24, 21, 23.9091702, 1.488172308, 22]
WORKSPACE_ENV = {
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
    "AZURE_RESOURCE_GROUP": "rg-test",
    "AZUREML_WORKSPACE_NAME": "ws-test",
}


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test opens a socket to anything but this machine: Azure is never reached, whatever a test gets wrong."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            try:
                allowed = ipaddress.ip_address(host).is_loopback
            except ValueError:
                allowed = host == "localhost"
            if not allowed:
                raise AssertionError(f"a test tried to connect to {address!r}; only loopback is allowed")

    def connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        """No name is looked up but this machine's: a lookup is the first step towards another host."""
        if host not in (None, "localhost") and not _is_loopback(host):
            raise AssertionError(f"a test tried to look up {host!r}; only loopback is allowed")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _is_loopback(host: Any) -> bool:
    try:
        return ipaddress.ip_address(host.decode() if isinstance(host, bytes) else host).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="session", autouse=True)
def shared_local_environments(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Deployment environments are built once per test run, whatever each test's local home, and shared by the
    parallel workers (their temporary folders share a parent; a build holds a lock, so a second worker waits for it
    and reuses it): the first build downloads from the package registry (uv keeps its own cache across runs), the
    others reuse it."""
    from common.local.environments import ENVIRONMENTS_VARIABLE

    base = tmp_path_factory.getbasetemp()
    run_folder = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = run_folder / "venvs"
    folder.mkdir(mode=0o700, exist_ok=True)
    previous = os.environ.get(ENVIRONMENTS_VARIABLE)
    os.environ[ENVIRONMENTS_VARIABLE] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop(ENVIRONMENTS_VARIABLE, None)
    else:
        os.environ[ENVIRONMENTS_VARIABLE] = previous


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every local target started under this session's temporary folder is stopped by the end (else: an error)."""
    yield
    import psutil

    base = str(tmp_path_factory.getbasetemp())
    left = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if "common.local.frontdoor" in command and base in command:
            left.append(command)
            process.kill()
    assert not left, f"front doors left running: {left}"


class FakeCredential:
    """Stands in for DefaultAzureCredential: a token without asking Entra ID."""

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def get_token(self, *_scopes: str, **_kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("fake-token", int(time.time()) + 3600)

    def get_token_info(self, *_scopes: str, **_kwargs: Any) -> Any:
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo("fake-token", int(time.time()) + 3600)


@pytest.fixture
def fake_azure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The real MLClient and SDK, talking HTTP to a fake Azure ML control plane (tests/fake_azure/)."""
    import responses

    from tests.fake_azure import RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE, FakeAzureML

    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION)
    monkeypatch.setenv("AZURE_RESOURCE_GROUP", RESOURCE_GROUP)
    monkeypatch.setenv("AZUREML_WORKSPACE_NAME", WORKSPACE)
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr("azure.identity.DefaultAzureCredential", FakeCredential)
    fake = FakeAzureML()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.install(mock)
        yield fake


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real model, trained on a small synthetic set, nested one folder deep as Azure mounts a model folder."""
    target = tmp_path_factory.mktemp("azureml-model") / "diabetes-model"
    train(synthetic_dataset(rows=1500), target, "synthetic test data")
    return target.parent


def load_code_module(file_name: str, module_name: str) -> ModuleType:
    """A module of the scoring code folder, loaded by its path as the inference server loads score.py."""
    spec = importlib.util.spec_from_file_location(module_name, SCORE_DIR / file_name)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_score_module() -> ModuleType:
    return load_code_module("score.py", "score_under_test")


@pytest.fixture
def score(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir))
    module = load_score_module()
    module.init()
    return module


@dataclass
class ScriptResult:
    code: int
    out: str
    err: str


@pytest.fixture
def run_script(capsys: pytest.CaptureFixture[str]) -> Callable[[ModuleType, Sequence[str]], ScriptResult]:
    """Run a script's main through the same error boundary as the command line."""

    def run(module: ModuleType, argv: Sequence[str]) -> ScriptResult:
        try:
            code = commands.run(module.main, list(argv))
        except SystemExit as exit_:  # argparse's own errors and --help
            code = int(exit_.code or 0)
        captured = capsys.readouterr()
        return ScriptResult(code, captured.out, captured.err)

    return run


def finished_poller(result: Any) -> MagicMock:
    poller = MagicMock(name="poller")
    poller.done.return_value = True
    poller.result.return_value = result
    return poller


@dataclass
class FakeAzure:
    """The mocked MLClient class, its instance, and the credential class it was built with."""

    client_class: MagicMock
    client: MagicMock
    credential_class: MagicMock

    def created_entities(self, operations: str) -> list[Any]:
        group = getattr(self.client, operations)
        return [c.args[0] for c in group.begin_create_or_update.call_args_list]

    def azure_write_calls(self) -> list[str]:
        writes = []
        for name, _args, _kwargs in self.client.mock_calls:
            if "begin_" in name or "create_or_update" in name:
                writes.append(name)
        return writes


@pytest.fixture
def azure(mocker: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAzure]:
    """A mocked azure.ai.ml.MLClient: every management call is recorded, none leaves the process."""
    from azure.core.exceptions import ResourceNotFoundError

    for key, value in WORKSPACE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(ROOT)
    client_class = mocker.patch("azure.ai.ml.MLClient")
    credential_class = mocker.patch("azure.identity.DefaultAzureCredential")
    client = client_class.return_value
    for name, protocol in surface.OPERATIONS.items():  # only the calls the toolkit makes, with their signatures
        setattr(client, name, create_autospec(protocol, instance=True))
    client.online_endpoints.get.side_effect = ResourceNotFoundError("endpoint not found")
    client.online_deployments.get.side_effect = ResourceNotFoundError("deployment not found")
    client.online_endpoints.begin_create_or_update.side_effect = lambda entity: finished_poller(
        _provisioned_endpoint(entity)
    )
    client.online_deployments.begin_create_or_update.side_effect = lambda entity: finished_poller(
        _provisioned(entity, "Succeeded")
    )
    yield FakeAzure(client_class, client, credential_class)


def _provisioned(entity: Any, state: str) -> Any:
    entity._provisioning_state = state
    return entity


def _provisioned_endpoint(entity: Any) -> Any:
    entity._scoring_uri = f"https://{entity.name}.eastus.inference.ml.azure.com/score"
    return _provisioned(entity, "Succeeded")


def existing_endpoint(name: str, traffic: dict[str, int] | None = None, auth_mode: str = "key") -> Any:
    from azure.ai.ml.entities import ManagedOnlineEndpoint

    endpoint = ManagedOnlineEndpoint(name=name, auth_mode=auth_mode, traffic=traffic or {})
    return _provisioned_endpoint(endpoint)


def asset(name: str, version: str) -> MagicMock:
    found = MagicMock(name=f"{name}:{version}")
    found.name, found.version = name, version
    return found


def start_command(script: str, *arguments: str, home: Path | None = None) -> subprocess.Popen[str]:
    """A toolkit command in a child process, as a user starts it (output piped, the local home given), able to take
    Ctrl-C whatever the suite was started with."""
    environment = {**os.environ, **({"AZUREML_LOCAL_HOME": str(home)} if home else {})}
    return subprocess.Popen(
        [sys.executable, script, *arguments],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_as_default,
    )


def ctrl_c_as_default() -> None:
    """preexec_fn of a child a test sends SIGINT to: a suite started with SIGINT ignored (nohup, a background job)
    passes that on to its children, and a Python started so never raises KeyboardInterrupt."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
