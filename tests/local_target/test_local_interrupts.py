"""Commands of the local target interrupted (SIGINT, SIGTERM) at several moments, and twenty commands at once on one
endpoint: the scripts run as real subprocesses, as a user runs them.

What must hold afterwards: no process of the local target runs that its state does not name, no state names a
process that is gone, and every command that said it changed something did, with nothing lost.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from azure.core.exceptions import ResourceNotFoundError

from common.local import processes
from common.local.state import HOME_VARIABLE, read_json_or_none
from tests.conftest import start_command
from tests.localtarget import LocalSetup, local_target, wait_until

ENDPOINT = "diabetes-interrupted"


@pytest.fixture
def local(tmp_path: Path, model_dir: Path) -> Iterator[LocalSetup]:
    with local_target(tmp_path / "home", ENDPOINT, model_dir) as setup:
        setup.deploy("blue", 100)
        yield setup
    assert wait_until(lambda: not processes_of(tmp_path / "home"), 15), processes_of(tmp_path / "home")


def command(local: LocalSetup, script: str, *arguments: str) -> subprocess.Popen[str]:
    return start_command(script, *arguments, home=local.home)


def interrupted(local: LocalSetup, sig: signal.Signals, after: float, script: str, *arguments: str) -> int:
    """Send `sig` `after` seconds into the command; its exit code: 130 when interrupted, 0 when it had finished
    (a signal that lands while Python exits shows as -sig: there was nothing left to interrupt)."""
    return interrupted_with_error(local, sig, after, script, *arguments)[0]


def interrupted_with_error(
    local: LocalSetup, sig: signal.Signals, after: float, script: str, *arguments: str
) -> tuple[int, str]:
    """interrupted's exit code, and what the command wrote on stderr."""
    process = command(local, script, *arguments)
    time.sleep(after)
    process.send_signal(sig)
    _, err = process.communicate(timeout=120)
    assert "Traceback" not in err, err
    return (0 if process.returncode == -sig else process.returncode), err


def processes_of(home: Path) -> set[int]:
    """Live processes started for this local target: they carry its home in their environment."""
    marker = f"{HOME_VARIABLE}={home}"
    found = set()
    for process in psutil.process_iter(["pid", "status"]):
        try:
            if process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if process.environ().get(HOME_VARIABLE) == str(home) or marker in " ".join(process.cmdline()):
                found.add(process.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def named_by_state(local: LocalSetup) -> set[int]:
    """Every pid the state says runs: the front door, and each deployment's serving, starting and retiring servers."""
    record = read_json_or_none(local.store.frontdoor_file(ENDPOINT)) or {}
    named = {record["pid"]} if record.get("pid") else set()
    folder = local.store.endpoint_dir(ENDPOINT) / "deployments"
    for status_file in folder.glob("*/status.json"):
        status = read_json_or_none(status_file) or {}
        if status.get("front_door_pid") == record.get("pid"):
            named |= {pid for pid in (status.get("pid"), status.get("starting_pid"), status.get("retiring_pid")) if pid}
    return named


def consistent(local: LocalSetup) -> tuple[bool, Any]:
    named = named_by_state(local)
    running = processes_of(local.home)
    unknown = {pid for pid in running if pid not in named and os.getpgid(pid) not in named}
    gone = {pid for pid in named if not processes.is_running(pid)}
    return not unknown and not gone, {"unknown": unknown, "gone": gone, "named": named}


def in_progress(local: LocalSetup, name: str) -> bool:
    """Whether the deployment's last write is still being applied (Creating or Updating), as show reports it."""
    try:
        deployment = local.client().online_deployments.get(name=name, endpoint_name=ENDPOINT)
    except ResourceNotFoundError:  # interrupted before it was written: nothing in progress
        return False
    return deployment.provisioning_state in ("Creating", "Updating")


def assert_settles_consistent(local: LocalSetup) -> None:
    """The interrupted operation goes on in the background (as in Azure); once it settles, state and processes
    agree. Checked repeatedly, so a moment of disagreement while it settles is allowed, a lasting one is not."""
    assert wait_until(lambda: consistent(local)[0], 40), consistent(local)[1]
    time.sleep(1.0)
    assert consistent(local)[0], consistent(local)[1]


CREATE_GREEN = ("create_online_deployment.py",)


@pytest.mark.parametrize(
    ("sig", "after"),
    [(signal.SIGINT, 0.4), (signal.SIGINT, 2.5), (signal.SIGTERM, 3.5)],
    ids=["sigint-while-starting-python", "sigint-while-deploying", "sigterm-while-deploying"],
)
def test_an_interrupted_create_leaves_nothing_unnamed(local, sig, after):
    code, err = interrupted_with_error(
        local, sig, after, "create_online_deployment.py", *local.deployment_args("green", 0)
    )

    assert code in (0, 130)
    if "interrupted while waiting" in err:  # its --traffic_allocation is said not to be applied, with the command
        assert "--traffic_allocation 0 was not applied (traffic unchanged); once green has succeeded" in err, err
        assert "traffic --endpoint_name diabetes-interrupted --set blue=100 green=0 --local" in err, err
    assert_settles_consistent(local)
    # The interrupted create goes on in the background; until it ends, a new write is refused with 409 (as Azure
    # refuses a write to a deployment whose last one is in progress), so the user runs it again once it has ended.
    assert wait_until(lambda: not in_progress(local, "green"), 90), local.status("green")
    again = command(local, "create_online_deployment.py", *local.deployment_args("green", 10))
    assert again.wait(120) == 0, again.stderr.read() if again.stderr else ""
    assert local.score(deployment="green").status_code == 200
    assert_settles_consistent(local)


def test_an_interrupted_rolling_update_keeps_a_deployment_serving(local):
    code = interrupted(local, signal.SIGTERM, 2.8, "create_online_deployment.py", *local.deployment_args("blue", 100))

    assert code in (0, 130)
    assert_settles_consistent(local)
    assert local.score().status_code == 200
    assert local.status("blue")["health"] == "running"


@pytest.mark.parametrize("after", [0.5, 1.5])
def test_an_interrupted_start_leaves_nothing_unnamed(local, after):
    stop = command(local, "manage_online_endpoint.py", "stop", "--local", "--endpoint_name", ENDPOINT)
    assert stop.wait(60) == 0

    code = interrupted(
        local, signal.SIGINT, after, "manage_online_endpoint.py", "start", "--local", "--endpoint_name", ENDPOINT
    )

    assert code in (0, 130)
    assert_settles_consistent(local)


@pytest.mark.parametrize("after", [1.0, 2.4])
def test_an_interrupted_delete_leaves_nothing_unnamed_and_can_be_finished(local, after):
    delete = ("manage_online_endpoint.py", "delete", "--local", "--endpoint_name", ENDPOINT, "--yes")
    code = interrupted(local, signal.SIGTERM, after, *delete)

    assert code in (0, 130)
    assert_settles_consistent(local)
    finish = command(local, *delete)
    finish.wait(60)
    assert not local.store.endpoint_dir(ENDPOINT).exists()
    assert processes_of(local.home) == set()


def test_twenty_concurrent_changes_on_one_endpoint_lose_nothing(local):
    local.deploy("green", 0)
    traffic_sets = [(f"blue={100 - 5 * i}", f"green={5 * i}") for i in range(1, 9)]
    descriptions = [f"writer {i}" for i in range(8)]
    new_deployments = [f"extra{i}" for i in range(4)]
    running = [
        *(
            ("traffic", command(local, "manage_online_endpoint.py", "traffic", "--local", "--endpoint_name", ENDPOINT,
                                "--set", *split, "--output", "json"))
            for split in traffic_sets
        ),
        *(
            ("endpoint", command(local, "create_online_endpoint.py", "--local", "--endpoint_name", ENDPOINT,
                                 "--auth_mode", "key", "--description", text, "--output", "json"))
            for text in descriptions
        ),
        *(
            ("deployment", command(local, "create_online_deployment.py", *local.deployment_args(name, 5),
                                   "--output", "json"))
            for name in new_deployments
        ),
    ]  # fmt: skip
    results = []
    for kind, process in running:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        results.append((kind, json.loads(out)))

    log = [json.loads(line) for line in local.store.activity_file(ENDPOINT).read_text().splitlines()]
    revisions = [entry["revision"] for entry in log]
    assert revisions == list(range(revisions[0], revisions[0] + len(revisions)))  # one write per revision
    writes = {json.dumps(entry["traffic"], sort_keys=True) for entry in log}
    for kind, printed in results:
        if kind in ("traffic", "deployment"):  # what each command printed is what it wrote
            shown = {name: share for name, share in printed["traffic"].items() if share}
            assert json.dumps(shown, sort_keys=True) in writes, (kind, printed)
    for before, entry in itertools.pairwise(log):
        if entry["description"] != before["description"]:  # an endpoint update kept the traffic it found
            assert entry["traffic"] == before["traffic"], (before, entry)
    final = local.endpoint()
    assert (final["traffic"], final["description"]) == (log[-1]["traffic"], log[-1]["description"])
    assert sum(final["traffic"].values()) == 100
    assert {d for d in new_deployments if local.status(d)["health"] == "running"} == set(new_deployments)
    assert {entry["description"] for entry in log} >= set(descriptions)


@pytest.mark.parametrize("existing", [False, True], ids=["new-deployment", "existing-deployment"])
def test_two_creates_of_one_deployment_at_once_both_end_and_one_split_wins(local, existing):
    """Azure answers 409 to a write on a deployment whose last write is still in progress: the second create ends
    with that conflict (saying its --traffic_allocation was not applied) instead of waiting for a generation that
    is never applied, and leaves no snapshot behind."""
    name = "twin-n"
    if existing:
        local.deploy(name, 0)
    folder = local.store.deployment_dir(ENDPOINT, name)
    before = set(folder.glob("code-*"))
    shares = {"a": 20, "b": 30}
    running = {
        label: command(local, "create_online_deployment.py", *local.deployment_args(name, share), "--output", "json")
        for label, share in shares.items()
    }
    ended = {label: (*process.communicate(timeout=180), process.returncode) for label, process in running.items()}

    codes = {label: code for label, (_, _, code) in ended.items()}
    assert sorted(codes.values()) == [0, 6], ended
    winner = next(label for label, code in codes.items() if code == 0)
    loser = next(label for label, code in codes.items() if code == 6)
    loser_error = ended[loser][1].strip().splitlines()[-1]
    assert "another operation is in progress" in loser_error, loser_error
    assert f"--traffic_allocation {shares[loser]} was not applied (traffic unchanged)" in loser_error, loser_error
    assert json.loads(ended[winner][0])["traffic"][name] == shares[winner]
    assert local.endpoint()["traffic"][name] == shares[winner]
    assert_settles_consistent(local)
    made = set(folder.glob("code-*")) - before
    assert made == {Path(local.deployment(name)["code_dir"])}  # the winner's snapshot, and not the loser's


def test_a_create_whose_generation_another_command_replaced_is_told_so(local):
    """On a stopped endpoint nothing is applied, so a newer write replaces a pending one: the command waiting for
    the older generation ends with Azure's conflict instead of waiting for it forever."""
    from azure.core.exceptions import HttpResponseError

    from common.local.state import write_json

    spec = local.deployment("blue")
    waiting = local.client().online_deployments._outcome_poller(ENDPOINT, "blue", spec["generation"] + 1)
    write_json(local.store.deployment_file(ENDPOINT, "blue"), {**spec, "generation": spec["generation"] + 2})

    with pytest.raises(HttpResponseError) as refused:
        waiting.result(timeout=10)

    assert refused.value.status_code == 409
    assert f"generation {spec['generation'] + 1} was replaced by generation {spec['generation'] + 2}" in str(
        refused.value
    )
