"""The audit trail holds under kill -9: the change and its activity record never exist one without the other (once
the next command or the front door has looked), and a create killed while copying leaves a folder that show
reports and delete removes (real processes, 127.0.0.1 only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import manage_online_endpoint
from tests.conftest import ROOT
from tests.localtarget import LocalSetup, local_target, wait_until

ENDPOINT = "audit-trail"
# Runs a script with `module.name` replaced by a kill -9 of the process after `then` (None: at once): a command
# killed at that exact point, as a power cut or the OOM killer would
KILLED_AT = """
import importlib, os, signal, sys
sys.path.insert(0, sys.argv[1])
module, name, then, script = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
target = importlib.import_module(module)
real = getattr(target, name)
def killed(*args, **kwargs):
    if then == "after":
        real(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
setattr(target, name, killed)
sys.argv = [script, *sys.argv[6:]]
import commands
main = importlib.import_module(script.removesuffix(".py")).main
sys.exit(commands.run(main))
"""


def killed_at(setup: LocalSetup, module: str, name: str, then: str, script: str, *argv: str) -> int:
    environment = {**os.environ, "AZUREML_LOCAL_HOME": str(setup.home)}
    command = [sys.executable, "-c", KILLED_AT, str(ROOT), module, name, then, script, *argv]
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120).returncode


def revisions(setup: LocalSetup) -> list[int]:
    lines = setup.store.activity_file(ENDPOINT).read_text().splitlines()
    return [json.loads(line)["revision"] for line in lines]


def traffic_killed_before_logging(setup: LocalSetup, *shares: str) -> int:
    """`traffic --set SHARES` killed right after it wrote endpoint.json, before it appended to activity.jsonl."""
    argv = ["traffic", "--local", "--endpoint_name", ENDPOINT, "--set", *shares]
    return killed_at(
        setup, "common.local.online_endpoints", "append_line", "before", "manage_online_endpoint.py", *argv
    )


def test_a_change_whose_command_is_killed_before_logging_it_is_logged(tmp_path, model_dir, run_script):
    with local_target(tmp_path / "home", ENDPOINT, model_dir) as setup:
        setup.deploy("blue", 100)
        setup.deploy("green", 0)
        traffic = ["traffic", "--local", "--endpoint_name", ENDPOINT, "--set"]
        code = traffic_killed_before_logging(setup, "blue=90", "green=10")
        assert code == -9
        revision = setup.endpoint()["revision"]
        assert setup.endpoint()["traffic"] == {"blue": 90, "green": 10}
        # the front door reads the change and records it (a command holding the lock would do it first)
        assert wait_until(lambda: revision in revisions(setup), 5), revisions(setup)
        recorded = json.loads(setup.store.activity_file(ENDPOINT).read_text().splitlines()[-1])
        assert recorded["traffic"] == {"blue": 90, "green": 10} and recorded["recorded_late"] is True

        setup.run(manage_online_endpoint.main, ["stop", "--local", "--endpoint_name", ENDPOINT])
        code = traffic_killed_before_logging(setup, "blue=80", "green=20")
        assert code == -9 and setup.endpoint()["revision"] not in revisions(setup)
        assert run_script(manage_online_endpoint, [*traffic, "blue=70", "green=30"]).code == 0  # the next command
        logged = revisions(setup)
        assert logged == sorted(set(logged)) and logged[-2:] == [revision + 1, revision + 2], logged


def test_a_create_killed_while_copying_leaves_a_folder_show_reports_and_delete_removes(tmp_path, model_dir, run_script):
    with local_target(tmp_path / "home", ENDPOINT, model_dir) as setup:
        setup.deploy("blue", 100)
        code = killed_at(
            setup,
            "common.local.online_deployments",
            "copy_private",
            "after",
            "create_online_deployment.py",
            *setup.deployment_args("green", 0),
        )
        assert code == -9
        folder = setup.store.deployment_dir(ENDPOINT, "green")
        assert list(folder.glob("code-*")) and not setup.store.deployment_file(ENDPOINT, "green").exists()
        past = time.time() - 120
        os.utime(folder, (past, past))  # as the folder is once the create is long dead

        shown = run_script(manage_online_endpoint, ["show", "--local", "--endpoint_name", ENDPOINT])
        assert shown.code == 0
        assert f"{str(folder)!r} holds the snapshots of a create that was killed" in shown.err, shown.err
        assert "--deployment_name green --yes --local" in shown.err
        argv = ["delete", "--local", "--endpoint_name", ENDPOINT, "--deployment_name", "green", "--yes"]
        assert run_script(manage_online_endpoint, argv).code == 0
        assert not folder.exists()
