"""size against a real local deployment: it measures, applies Azure's rule per instance type, and prints command lines
that run as printed."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import commands
import create_online_deployment
import manage_online_endpoint
from commands import dispatch
from commands import run as run_command
from common.azure import prices, sizing
from common.errors import EXIT_NOT_FOUND, EXIT_USAGE
from tests.conftest import ROOT, start_command
from tests.localtarget import LocalSetup, local_target, write_score

ENDPOINT = "size-local"


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[LocalSetup]:
    """blue as created by default (1 worker, 1 request per instance); wide with 2 workers admitting 8 in flight;
    broken, whose run() raises on every request."""
    with local_target(tmp_path_factory.mktemp("size-home"), ENDPOINT, model_dir) as setup:
        setup.deploy("blue", 100)
        wide = [*setup.deployment_args("wide", 0), "--max_concurrent_requests_per_instance", "4"]
        assert setup.run(create_online_deployment.main, [*wide, "--env", "WORKER_COUNT=2"]) == 0
        failing = "def init():\n    pass\n\n\ndef run(raw):\n    raise ValueError('broken')\n"
        setup.deploy("broken", 0, write_score(tmp_path_factory.mktemp("broken") / "code", failing))
        yield setup


def size(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """size on the test endpoint, with a p95 limit no loaded test machine misses unless a test gives its own."""
    capsys.readouterr()
    code = run_command(
        manage_online_endpoint.main,
        ["size", "--local", "--endpoint_name", ENDPOINT, "--seconds", "1", "--p95_ms", "60000", *argv],
    )
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_counts_grow_with_the_target_and_worker_count_is_the_per_instance_concurrency(target, capsys):
    argv = ["--deployment_name", "wide", "--instance_type", "Standard_DS3_v2", "--output", "json"]

    code, out, err = size(capsys, *argv, "--target_rps", "20")
    code_big, out_big, _ = size(capsys, *argv, "--target_rps", "20000")

    assert code == 0 and code_big == 0, err
    small, big = json.loads(out), json.loads(out_big)
    assert "concurrency 1:" in err and "concurrency 2:" in err  # a line per step, with the time so far
    (chosen,) = small["candidates"]
    (chosen_big,) = big["candidates"]
    assert chosen["instances"] == sizing.HA_MINIMUM and chosen_big["instances"] > chosen["instances"]
    knee = small["knee"]["concurrency"]
    assert chosen["per_instance"] == sizing.per_instance_concurrency(knee, 4, 2)  # 2 workers: 2 cores used here
    assert f"--env WORKER_COUNT={chosen['per_instance']}" in small["commands"][0]
    assert f"--max_concurrent_requests_per_instance {chosen['per_instance']}" in small["commands"][0]
    assert chosen["price"]["source"] == prices.TABLE_SOURCE and chosen["monthly"] > 0
    assert small["estimate_from"] == {
        "cores": small["estimate_from"]["cores"],
        "workers": 2,
        "cores_used": 2,
        "admitted": 8,
    }


def test_the_printed_command_lines_run_as_printed_and_the_plot_is_drawn(target, capsys, tmp_path):
    chart = tmp_path / "size.png"
    argv = ["--deployment_name", "blue", "--target_rps", "50", "--instance_type", "Standard_F4s_v2"]

    code, out, _ = size(capsys, *argv, "--plot", str(chart))

    assert code == 0
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000
    assert f"Plot: {chart}" in out
    assert "Estimate from this machine" in out and "Prices: the toolkit's table of " in out
    (row,) = [line for line in out.splitlines() if line.startswith("Standard_F4s_v2 ")]
    assert row.endswith("not checked")  # no quota on the local target
    create, autoscale = [line for line in out.splitlines() if line.startswith("python ")]
    dry = subprocess.run(
        [sys.executable, *shlex.split(create)[1:], "--dry_run"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert dry.returncode == 0, dry.stderr
    assert "instance_type: Standard_F4s_v2" in dry.stdout and "WORKER_COUNT" in dry.stdout
    assert autoscale.startswith("python manage_online_endpoint.py autoscale --endpoint_name size-local")
    _, _, scaling = dispatch.parse(None, commands.VERBS, shlex.split(autoscale)[2:])  # its flags parse and validate
    assert scaling.target.local is False  # an Azure command: the sizes are Azure's


def test_a_deployment_that_admits_little_is_measured_as_far_as_it_admits_and_said(target, capsys):
    code, _, err = size(capsys, "--deployment_name", "blue", "--target_rps", "5", "--instance_type", "Standard_DS2_v2")

    assert code == 0
    assert "note: blue admits 2 requests in flight" in err
    assert "concurrency 4:" not in err


@pytest.mark.parametrize(
    ("argv", "code", "said"),
    [
        (
            ["--deployment_name", "blue", "--target_rps", "5", "--instance_type", "Standard_DS3"],
            EXIT_USAGE,
            "Standard_DS3_v2",
        ),
        (["--deployment_name", "blue", "--target_rps", "0"], EXIT_USAGE, "invalid --target_rps 0"),
        (["--deployment_name", "blue", "--target_rps", "5", "--plot", "chart.svg"], EXIT_USAGE, "name a .png file"),
        (["--deployment_name", "nobody", "--target_rps", "5"], EXIT_NOT_FOUND, "has no deployment 'nobody'"),
        (["--deployment_name", "blue", "--target_rps", "5", "--p95_ms", "0.001"], 1, "even one request at a time"),
    ],
    ids=["unknown-type-closest-offered", "no-target", "not-a-png", "no-deployment", "unmeetable-latency"],
)
def test_bad_input_is_one_line_and_nothing_changes(target, capsys, argv, code, said):
    before = target.endpoint()["traffic"]

    got, _, err = size(capsys, *argv)

    assert got == code and said in err, err
    assert target.endpoint()["traffic"] == before


def test_a_deployment_that_fails_during_the_measurement_is_said_and_nothing_changes(target, capsys):
    before = target.endpoint()["traffic"]

    code, _, err = size(
        capsys, "--deployment_name", "broken", "--target_rps", "5", "--instance_type", "Standard_DS2_v2"
    )

    assert code == 1
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert "broken answered none of " in line and "requests at concurrency 1: it failed during the measurement" in line
    assert "nothing was changed" in line and "logs --endpoint_name size-local --deployment_name broken" in line
    assert target.endpoint()["traffic"] == before


def test_ctrl_c_stops_it_cleanly_with_what_was_measured(target):
    names = ("--endpoint_name", ENDPOINT, "--deployment_name", "wide", "--target_rps", "5", "--p95_ms", "60000")
    child = start_command("manage_online_endpoint.py", "size", "--local", *names, "--seconds", "4", home=target.home)
    assert child.stderr is not None
    said = []
    for line in child.stderr:  # the first step's line, then Ctrl-C during the second (4 s long)
        said.append(line)
        if "concurrency 1:" in line:
            break
    child.send_signal(signal.SIGINT)
    _, rest = child.communicate(timeout=60)

    assert child.returncode == 130, "".join(said) + rest
    assert "size stopped: measured 1: p95 " in rest and "nothing was changed" in rest
    assert "Traceback" not in rest
