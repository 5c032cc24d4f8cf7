"""Safe rollout on the local target, for real: mirror traffic, metrics from the front door, promote, rollback and
staged rollouts (a good deployment promoted, a failing one rolled back, one interrupted), through the scripts.

One endpoint (key auth) is shared by the module: blue (100%), green (a good release at 0%) and red (a release
whose score.py fails every request, at 0%). Each test leaves blue at 100%.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

import create_online_endpoint
import manage_online_endpoint
from tests.conftest import start_command
from tests.localtarget import LocalSetup, local_target, write_score

ENDPOINT = "rollout-local"
BROKEN_SCORE = """
def init():
    pass


def run(raw_data):
    raise RuntimeError("this release fails every request")
"""
# 400 probes at a 10% first step give green about 40 requests, twice --min_requests (20)
QUICK_ROLLOUT = ["--steps", "10", "50", "100", "--bake_seconds", "1", "--probe_requests", "400"]


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[LocalSetup]:
    with local_target(tmp_path_factory.mktemp("rollout-home"), ENDPOINT, model_dir) as setup:
        setup.deploy("blue", 100)
        setup.deploy("green", 0)
        setup.deploy("red", 0, score_path=write_score(tmp_path_factory.mktemp("broken"), BROKEN_SCORE))
        yield setup


@pytest.fixture(autouse=True)
def blue_at_100(local):
    yield
    local.set_traffic(blue=100)
    assert local.run(manage_online_endpoint.main, ["traffic", "--local", *ENDPOINT_ARGS, "--mirror", "none"]) == 0


ENDPOINT_ARGS = ["--endpoint_name", ENDPOINT]


def manage(run_script, command: str, *argv: str):
    return run_script(manage_online_endpoint, [command, "--local", *ENDPOINT_ARGS, *argv])


def live(local: LocalSetup) -> dict[str, int]:
    return local.endpoint()["traffic"]


def test_mirror_traffic_reaches_the_mirror_deployment_and_shows_in_its_metrics(local, run_script):
    result = manage(run_script, "traffic", "--mirror", "green=20")

    assert result.code == 0, result.err
    assert local.endpoint()["mirror_traffic"] == {"green": 20}
    for _ in range(200):
        assert local.score().status_code == 200

    result = manage(run_script, "metrics", "--minutes", "1", "--output", "json")

    assert result.code == 0, result.err
    shown = json.loads(result.out)["deployments"]
    assert shown["blue"]["live"]["requests"] >= 200 and shown["blue"]["live"]["error_percent"] == 0
    assert shown["green"]["live"]["requests"] == 0
    assert 10 <= shown["green"]["mirrored"]["requests"] <= 80  # 20% of 200, mirrored copies counted apart
    assert shown["red"]["live"]["requests"] == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--mirror", "blue=10"], "it takes 100% of the live traffic"),
        (["--mirror", "green=60"], "at most 50%"),
        (["--mirror", "ghost=10"], "no such deployment"),
        (["--mirror", "green=10", "red=10"], "one deployment only"),
    ],
)
def test_mirror_rules_are_refused_before_anything_changes(local, run_script, argv, message):
    revision = local.endpoint()["revision"]

    result = manage(run_script, "traffic", *argv)

    assert result.code == 2 and message in result.err
    assert local.endpoint()["revision"] == revision


def test_metrics_text_for_one_deployment_and_the_local_limit(local, run_script):
    for _ in range(5):
        local.score()

    result = manage(run_script, "metrics", "--deployment_name", "blue")

    assert result.code == 0, result.err
    assert "blue" in result.out and "requests, 4xx 0.0%, 5xx 0.0%  p50" in result.out
    assert "local figures" in result.out and "green" not in result.out
    refused = manage(run_script, "metrics", "--minutes", "61")
    assert refused.code == 2 and "the local front door keeps the last hour" in refused.err


def test_promote_then_rollback(local, run_script):
    assert manage(run_script, "traffic", "--mirror", "green=10").code == 0

    result = manage(run_script, "promote", "--deployment_name", "green")

    assert result.code == 0, result.err
    assert (live(local), local.endpoint()["mirror_traffic"]) == ({"green": 100}, {})
    assert {local.score().headers["azureml-model-deployment"] for _ in range(20)} == {"green"}

    result = manage(run_script, "rollback")

    assert result.code == 0, result.err
    assert (live(local), local.endpoint()["mirror_traffic"]) == ({"blue": 100}, {"green": 10})
    assert "Rolled back 'promote green'" in result.out


def test_rollback_after_traffic(local, run_script):
    assert manage(run_script, "traffic", "--set", "blue=70", "green=30").code == 0

    result = manage(run_script, "rollback")

    assert result.code == 0, result.err
    assert live(local) == {"blue": 100}


def test_rollback_without_history_changes_nothing(local, run_script):
    assert (
        local.run(create_online_endpoint.main, ["--local", "--endpoint_name", "no-history", "--auth_mode", "key"]) == 0
    )

    result = run_script(manage_online_endpoint, ["rollback", "--local", "--endpoint_name", "no-history"])

    assert result.code == 3
    assert "has no rollback history" in result.err


def test_a_rollout_of_a_good_deployment_reaches_100_then_rolls_back(local, run_script):
    result = manage(run_script, "rollout", "--deployment_name", "green", *QUICK_ROLLOUT, "--output", "json")

    assert result.code == 0, result.err
    shown = json.loads(result.out)
    assert [step["traffic"] for step in shown["steps"]] == [
        {"blue": 90, "green": 10},
        {"blue": 50, "green": 50},
        {"green": 100},
    ]
    assert all(step["verdict"] == "ok" and step["requests"] >= 20 for step in shown["steps"])
    assert shown["steps"][2]["requests"] == 400  # each window holds its own step's requests only
    assert live(local) == {"green": 100}

    result = manage(run_script, "rollback")

    assert result.code == 0, result.err
    assert "Rolled back 'rollout green 10 50 100'" in result.out
    assert live(local) == {"blue": 100}


def test_a_rollout_of_a_failing_deployment_is_rolled_back_at_its_first_step(local, run_script):
    result = manage(run_script, "rollout", "--deployment_name", "red", *QUICK_ROLLOUT)

    assert result.code == 9
    assert "[" in result.out and "step 1/3: red 10%:" in result.out and "-> FAILED" in result.out
    assert "rolled back at step 1/3 (red=10%): error percentage 100.0%" in result.err
    assert "step 2/3" not in result.out
    assert live(local) == {"blue": 100}
    history = [key for key in local.endpoint()["tags"] if key.startswith("toolkit.rollback.")]
    assert not any("rollout red" in local.endpoint()["tags"][key] for key in history)


def test_ctrl_c_during_a_rollout_restores_the_split_from_before_it(local):
    argv = ["rollout", "--local", *ENDPOINT_ARGS, "--deployment_name", "green", "--steps", "10", "100"]
    process = start_command("manage_online_endpoint.py", *argv, "--bake_seconds", "60", home=local.home)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "step 1/2:" in line:
                break
        assert live(local) == {"blue": 90, "green": 10}
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130
    assert "the split from before it is restored" in err
    assert live(local) == {"blue": 100}
