"""Pure parts of the local target: credentials, weighted picking, process groups, the model registry."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from commands.target import LOCAL
from common.errors import UsageError
from common.local import auth, processes
from common.local.client import LocalMLClient
from common.local.deployment import Deployment
from common.local.instance import Instance
from common.local.state import LocalStore
from common.local.state_types import DeploymentSpec, DeploymentStatus
from common.local.supervisor import live_traffic, pick
from common.release.traffic import parse_assignments

KEYS = {"primary_key": "p" * 43, "secondary_key": "s" * 43, "token_secret": "t" * 43}


def test_key_mode_accepts_either_key_and_nothing_else():
    assert auth.check(f"Bearer {KEYS['primary_key']}", "key", "ep", KEYS) is None
    assert auth.check(f"bearer {KEYS['secondary_key']}", "key", "ep", KEYS) is None
    assert auth.check("Bearer wrong", "key", "ep", KEYS) == "invalid key"
    assert auth.check(None, "key", "ep", KEYS) == "missing credential: send Authorization: Bearer <key or token>"
    assert auth.check(f"Basic {KEYS['primary_key']}", "key", "ep", KEYS) is not None
    token, _ = auth.issue_token("ep", KEYS["token_secret"])
    assert auth.check(f"Bearer {token}", "key", "ep", KEYS) == "invalid key"


def test_tokens_expire_and_belong_to_one_endpoint():
    token, expires = auth.issue_token("ep", KEYS["token_secret"])
    assert expires == pytest.approx(time.time() + auth.TOKEN_LIFETIME_SECONDS, abs=5)
    assert auth.check(f"Bearer {token}", "aml_token", "ep", KEYS) is None
    assert auth.check(f"Bearer {token}", "aml_token", "other", KEYS) == "invalid or expired token"
    old, _ = auth.issue_token("ep", KEYS["token_secret"], now=time.time() - auth.TOKEN_LIFETIME_SECONDS - 1)
    assert auth.check(f"Bearer {old}", "aml_token", "ep", KEYS) == "invalid or expired token"
    forged = token.split(".")[0] + ".AAAA"
    assert auth.check(f"Bearer {forged}", "aml_token", "ep", KEYS) == "invalid or expired token"
    assert auth.check(f"Bearer {KEYS['primary_key']}", "aml_token", "ep", KEYS) == "invalid or expired token"


def test_pick_follows_weights_and_skips_zero():
    rng = random.Random(1)
    draws = [pick(live_traffic({"blue": 90, "green": 10, "dark": 0}), rng) for _ in range(5000)]
    assert "dark" not in draws
    assert 0.08 < draws.count("green") / len(draws) < 0.12
    assert pick(live_traffic({"dark": 0}), rng) is None
    assert pick(live_traffic({}), rng) is None
    assert pick(live_traffic({"dark": 0, "blue": 5}), rng) == "blue"


def test_traffic_assignments():
    assert parse_assignments(["blue=90", "green=10"]) == {"blue": 90, "green": 10}
    assert parse_assignments(["blue=0"]) == {"blue": 0}
    with pytest.raises(UsageError, match="sums to 90%"):
        parse_assignments(["blue=80", "green=10"])
    with pytest.raises(UsageError, match="invalid traffic 'blue'"):
        parse_assignments(["blue"])
    with pytest.raises(UsageError, match="given twice"):
        parse_assignments(["blue=50", "blue=50"])


def spawn_leader_with_worker(tmp_path: Path, port: str) -> int:
    """A process group like a gunicorn server's: a leader (carrying the marker) and one worker."""
    script = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    )
    pid = processes.spawn([sys.executable, "-c", script, "--port", port], cwd=tmp_path, log_path=tmp_path / "log")
    deadline = time.monotonic() + 10
    while len(processes.group_members(pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(processes.group_members(pid)) == 2
    return pid


def test_stop_ends_the_whole_process_group(tmp_path: Path):
    pid = spawn_leader_with_worker(tmp_path, "1")
    assert processes.is_running(pid, "--port 1")
    assert not processes.is_running(pid, "--port 2")  # another program with a reused pid

    processes.stop(pid, "--port 1", grace=5)

    assert processes.group_members(pid) == []
    assert not processes.is_running(pid)


def test_stop_escalates_to_sigkill(tmp_path: Path):
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    )
    log = tmp_path / "log"
    pid = processes.spawn([sys.executable, "-c", script], cwd=tmp_path, log_path=log)
    deadline = time.monotonic() + 10
    while "ready" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    processes.stop(pid, grace=0.5)
    assert processes.group_members(pid) == []
    assert time.monotonic() - started < 5


def draining_deployment(tmp_path: Path) -> tuple[Deployment, Instance, Path]:
    """A deployment whose old server (a real process group) still has a request in flight."""
    store = LocalStore(tmp_path / "home")
    store.deployment_dir("ep", "blue").mkdir(parents=True)
    deployment = Deployment("ep", "blue", store, DeploymentSpec(name="blue", endpoint_name="ep"))
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    old = Instance(1, tmp_path / "old.sock", process)  # type: ignore[arg-type]
    old.in_flight = 1
    return deployment, old, store.status_file("ep", "blue")


def test_a_server_being_stopped_stays_named_in_the_status_until_it_is_gone(tmp_path: Path):
    deployment, old, status_file = draining_deployment(tmp_path)

    async def retire_while_the_status_is_rewritten() -> list[int]:
        retiring = asyncio.create_task(deployment.retire(old, drain=30.0))
        await asyncio.sleep(0.3)
        deployment.write_status()  # the front door rewrites every status file every few seconds, drain or not
        named_while_draining = DeploymentStatus.read(status_file).server_pids
        old.in_flight = 0
        await retiring
        return named_while_draining

    assert asyncio.run(retire_while_the_status_is_rewritten()) == [old.pid]
    assert processes.group_members(old.pid) == []
    assert DeploymentStatus.read(status_file).server_pids == []  # and no gone one named


def test_a_supervision_stopped_while_it_drains_an_old_server_stops_that_server(tmp_path: Path):
    deployment, old, _ = draining_deployment(tmp_path)

    async def stop_while_draining() -> None:
        deployment.task = asyncio.create_task(deployment.retire(old, drain=30.0))
        await asyncio.sleep(0.3)
        await deployment.stop()  # cancels the drain: the old server must not outlive it

    asyncio.run(stop_while_draining())
    assert processes.group_members(old.pid) == []


def test_local_registry_counts_versions_up_from_one(tmp_path: Path, model_dir: Path):
    from azure.ai.ml.entities import Model

    client = LocalMLClient(home=tmp_path, target=LOCAL)
    first = client.models.create_or_update(Model(name="diabetes-predict", path=str(model_dir / "diabetes-model")))
    second = client.models.create_or_update(Model(name="diabetes-predict", path=str(model_dir / "diabetes-model")))
    assert (first.version, second.version) == ("1", "2")
    assert client.models.get("diabetes-predict", label="latest").version == "2"
    assert (Path(client.models.get("diabetes-predict", version="1").path) / "diabetes-model" / "model.pkl").is_file()
    from azure.core.exceptions import ResourceNotFoundError

    with pytest.raises(ResourceNotFoundError, match="version 3"):
        client.models.get("diabetes-predict", version="3")


def test_group_members_sees_a_live_process_and_not_a_reaped_one():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        assert processes.group_members(child.pid) == [child.pid]
    finally:
        child.kill()
        child.wait()
    assert processes.group_members(child.pid) == []


def test_stop_ends_orphaned_workers_of_a_dead_leader(tmp_path: Path):
    pid = spawn_leader_with_worker(tmp_path, "7")
    deadline = time.monotonic() + 10
    os.kill(pid, signal.SIGKILL)  # the leader dies; its worker lives on in the group
    while processes.is_running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(processes.group_members(pid)) == 1

    processes.stop(pid, "--port 7", grace=5)

    assert processes.group_members(pid) == []


def test_the_models_scikit_learn_is_checked_against_the_environments_pin(tmp_path: Path, capsys):
    from common.local import online_deployments as local_client
    from common.local.environments import CondaSpec

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "metadata.json").write_text('{"sklearn_version": "1.9.1"}')
    pinned = CondaSpec("3.11", ("scikit-learn==1.9.1", "azureml-inference-server-http==1.5.1"))
    unpinned = CondaSpec("3.11", ("scikit-learn>=1.5", "azureml-inference-server-http==1.5.1"))
    other = CondaSpec("3.11", ("scikit-learn==1.8.0", "azureml-inference-server-http==1.5.1"))

    local_client._warn_about_scikit_learn(tmp_path, pinned, "same")
    assert capsys.readouterr().err == ""
    local_client._warn_about_scikit_learn(tmp_path, unpinned, "loose")
    assert "trained with scikit-learn 1.9.1; environment loose does not pin scikit-learn" in capsys.readouterr().err
    local_client._warn_about_scikit_learn(tmp_path, other, "older")
    assert "trained with scikit-learn 1.9.1 and environment older pins scikit-learn 1.8.0" in capsys.readouterr().err


def test_concurrent_registrations_get_distinct_versions(tmp_path: Path, model_dir: Path):
    from concurrent.futures import ThreadPoolExecutor

    from azure.ai.ml.entities import Model

    client = LocalMLClient(home=tmp_path, target=LOCAL)

    def register(_: int) -> str:
        return client.models.create_or_update(Model(name="m", path=str(model_dir / "diabetes-model"))).version

    with ThreadPoolExecutor(max_workers=6) as pool:
        versions = sorted(pool.map(register, range(6)), key=int)

    assert versions == ["1", "2", "3", "4", "5", "6"]


# --- the server launcher and how a failed start is named ------------------------------------------------------------


def test_the_launcher_rebinds_the_servers_own_gunicorn_command_line():
    from common.local.inference_server import rebound

    built = ["azmlinfsrv", "-b", "127.0.0.1:5001", "-b", "127.0.0.1:5002", "-w", "2", "--timeout", "300", "app:app"]

    assert rebound(built, "unix:/s.sock", (27, 0)) == [
        "azmlinfsrv", "-b", "unix:/s.sock", "--no-control-socket", "-w", "2", "--timeout", "300", "app:app",
    ]  # fmt: skip
    assert rebound(built, "unix:/s.sock", (23, 0)) == [
        "azmlinfsrv", "-b", "unix:/s.sock", "-w", "2", "--timeout", "300", "app:app",
    ]  # fmt: skip
    assert rebound(["azmlinfsrv", "--bind=0.0.0.0:1", "app:app"], "unix:/s", (20, 1)) == [
        "azmlinfsrv", "-b", "unix:/s", "app:app",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("output", "code", "expected"),
    [
        (
            "toolkit launcher: the inference server cannot be imported (ModuleNotFoundError: x)\n",
            78,
            "the toolkit's server launcher could not start the server (not score.py): the inference server cannot be "
            "imported (ModuleNotFoundError: x)",
        ),
        (
            "usage: azmlinfsrv ...\nazmlinfsrv: error: unrecognized arguments: --no-control-socket\n",
            2,
            "the inference server refused the arguments the toolkit's launcher gave it: azmlinfsrv: error: "
            "unrecognized arguments: --no-control-socket",
        ),
        (
            "I azmlinfsrv.user_script - Invoking user's init function\nTraceback (most recent call last):\n"
            "  File \"score.py\", line 2, in init\nModuleNotFoundError: No module named 'lightgbm'\n",
            3,
            "score.py's init() failed (ModuleNotFoundError: No module named 'lightgbm'); its server exited with code 3",
        ),
        (
            "I azmlinfsrv.user_script - Invoking user's init function\nI - Users's init has completed successfully\n",
            None,
            "score.py's init() succeeded, then its server did not answer in time; see the log",
        ),
        ("Starting gunicorn 27.0.1\n", 1, "its server exited with code 1 before it ran score.py's init(); see the log"),
    ],
    ids=["launcher", "server-arguments", "init", "after-init", "before-init"],
)
def test_a_failed_start_names_the_component_that_failed(output, code, expected):
    from common.local.instance import start_failure

    assert start_failure(output, code) == expected


def test_a_failed_servers_own_output_is_read_back_from_the_end_of_a_big_log(tmp_path):
    """The log is read back a block at a time to the server's banner, not whole (a log may be megabytes)."""
    from common.local import logfiles

    log = tmp_path / "server.log"
    banner = f"{logfiles.BANNER_PREFIX}2026-12-07 00:00:00 generation 2 ---"
    older = "2026-12-07 00:00:00,000 I [7] azmlinfsrv - old line\n" * 60_000  # about 3 MB before the banner
    log.write_text(older + banner + "\n2026-12-07 00:00:01,000 E [42] azmlinfsrv - boom\n")

    text = logfiles._back_to(log, banner, block=64 * 1024)

    assert banner in text
    assert len(text) < 200_000  # only the blocks back to the banner
    assert logfiles.process_output(log, banner, 42, 5) == "2026-12-07 00:00:01,000 E [42] azmlinfsrv - boom"


def test_show_adds_up_the_records_each_server_could_not_write(tmp_path):
    from common.local.capture_files import dropped_records as _dropped
    from common.local.collector_sink import DROPPED_FOLDER

    tallies = tmp_path / DROPPED_FOLDER
    tallies.mkdir()
    (tallies / "101.json").write_text('{"dropped": 3, "time": 1}')
    (tallies / "102.json").write_text('{"dropped": 4, "time": 2}')

    assert _dropped(str(tmp_path)) == {"dropped_records": "7"}
    assert _dropped(str(tmp_path / "none")) == {}
