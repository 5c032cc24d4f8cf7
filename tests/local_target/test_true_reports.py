"""Every report of the local target is true: with a state file damaged, or the front door gone mid-command, a
command says what happened, or that it does not know and how to find out (real processes, 127.0.0.1 only)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

import manage_online_endpoint
from tests.conftest import ROOT
from tests.localtarget import LocalSetup, local_target, wait_until

ENDPOINT = "true-reports"


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, model_dir) -> Iterator[LocalSetup]:
    with local_target(tmp_path_factory.mktemp("true-reports"), ENDPOINT, model_dir) as setup:
        setup.deploy("blue", 100)
        setup.deploy("green", 0)
        yield setup


def traffic(local: LocalSetup, run_script, *shares: str):
    return run_script(manage_online_endpoint, ["traffic", "--local", "--endpoint_name", ENDPOINT, "--set", *shares])


def test_an_unreadable_keys_file_refuses_the_change_before_writing_it(local, run_script):
    keys = local.store.keys_file(ENDPOINT)
    saved, revision = keys.read_text(), local.endpoint()["revision"]
    keys.write_text("{not json")
    try:
        result = traffic(local, run_script, "blue=90", "green=10")
    finally:
        keys.write_text(saved)
    assert result.code == 1
    assert f"local state file {str(keys)!r} is unreadable" in result.err and "not applied" not in result.err
    assert local.endpoint()["revision"] == revision and local.endpoint()["traffic"] == {"blue": 100}
    assert traffic(local, run_script, "blue=90", "green=10").code == 0  # once readable again


def test_an_unreadable_front_door_record_is_not_another_programs_port(local, run_script):
    local.store.frontdoor_file(ENDPOINT).write_text("garbage")
    result = traffic(local, run_script, "blue=80", "green=20")
    assert result.code == 0, result.err
    assert "taken by another program" not in result.err
    assert local.endpoint()["traffic"] == {"blue": 80, "green": 20}


def test_an_unreadable_status_file_does_not_make_a_serving_deployment_creating(local, run_script):
    local.store.status_file(ENDPOINT, "blue").write_text("{")
    result = traffic(local, run_script, "blue=100")
    assert result.code == 0, result.err
    assert local.status("blue")["health"] == "running"  # rewritten by the front door


def test_a_deployment_file_that_is_no_deployment_is_unreadable_state_not_a_crash_loop(local, run_script):
    ghost = local.store.deployment_file(ENDPOINT, "ghost")
    ghost.parent.mkdir(parents=True)
    ghost.write_text(json.dumps({"generation": 99}))
    try:
        time.sleep(1.0)  # ten rounds of supervision with it in place
        assert local.score().status_code == 200
        result = traffic(local, run_script, "blue=90", "green=10")
        assert result.code == 1
        assert (
            f"local state file {str(ghost)!r} is unreadable (no valid name, endpoint_name, model_dir, code_dir"
            in result.err
        )
        log = (local.store.endpoint_dir(ENDPOINT) / "frontdoor.log").read_text()
        assert "Traceback" not in log and "KeyError" not in log
    finally:
        ghost.unlink()
        ghost.parent.rmdir()
    assert wait_until(lambda: traffic(local, run_script, "blue=90", "green=10").code == 0, 5)


def test_a_front_door_killed_during_a_deployment_is_an_unknown_outcome_not_a_failure(tmp_path, model_dir):
    with local_target(tmp_path / "home", "true-reports-kill", model_dir) as setup:
        setup.deploy("blue", 100)
        environment = {**os.environ, "AZUREML_LOCAL_HOME": str(setup.home)}
        argv = [sys.executable, "create_online_deployment.py", *setup.deployment_args("blue", 100)]
        command = subprocess.Popen(argv, cwd=ROOT, env=environment, stderr=subprocess.PIPE, text=True)
        assert wait_until(lambda: (setup.status("blue").get("starting_pid") or 0) > 0, 60)
        os.kill(setup.frontdoor_pid(), signal.SIGKILL)
        _, err = command.communicate(timeout=120)
        assert command.returncode == 1, err
        assert "lost track of deployment blue" in err and "its outcome is unknown" in err, err
        assert "Delete the failed deployment" not in err and "failed:" not in err, err
