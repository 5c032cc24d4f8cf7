"""The rough edges a new user hit on a fresh clone: each one a line that says what is wrong, and output that tells
the truth (what changes, in a stable order, in good English)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import create_online_endpoint
import invoke_online_endpoint
import manage_online_endpoint
from common.cli import run_main
from common.local.state import runtime_path
from common.release import traffic
from common.release.metrics import Figures
from tests.conftest import ROOT, ctrl_c_as_default
from tests.localtarget import local_target
from tests.seeds import ENDPOINT_SEED


def test_an_endpoint_rerun_names_only_what_differs(fake_azure, run_script):
    fake_azure.add_endpoint(
        "diabetes-classify",
        {},
        auth_mode="AMLToken",
        description="Diabetes classification endpoint",
        publicNetworkAccess="Enabled",
    )

    same = run_script(create_online_endpoint, ENDPOINT_SEED)
    other = run_script(create_online_endpoint, [*ENDPOINT_SEED, "--tags", "team=ml", "--auth_mode", "key"])

    assert same.code == other.code == 0, same.err + other.err
    assert "Updating endpoint diabetes-classify in place (changing nothing; traffic kept: none)" in same.err
    assert "(changing auth_mode, tags; traffic kept: none)" in other.err


def test_show_keeps_its_columns_apart_for_long_deployment_names(fake_azure, run_script):
    long_name = "diabetes-classify-blue-dp-v2-canary"[:32]
    fake_azure.add_endpoint("diabetes-classify", {long_name: 100, "blue": 0})
    fake_azure.add_deployment("diabetes-classify", long_name)
    fake_azure.add_deployment("diabetes-classify", "blue")

    result = run_script(manage_online_endpoint, ["show", "--endpoint_name", "diabetes-classify"])

    assert result.code == 0, result.err
    rows = [line for line in result.out.splitlines() if line.startswith(("  blue ", f"  {long_name} "))]
    assert len(rows) == 2, result.out
    assert rows[0].index("Succeeded") == rows[1].index("Succeeded") == len(long_name) + 3, rows


def test_a_forgotten_local_says_the_endpoint_exists_locally(run_script, tmp_path, monkeypatch):
    for variable in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AZUREML_LOCAL_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # no config.json here
    from common.local.state import LocalStore

    marker = LocalStore(tmp_path / "home").endpoint_file("diabetes-classify")
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")

    request = ["--request_file", str(ROOT / "09-deploy-model" / "sample-request.json")]
    result = run_script(invoke_online_endpoint, ["--endpoint_name", "diabetes-classify", *request])
    elsewhere = run_script(invoke_online_endpoint, ["--endpoint_name", "somewhere-else", *request])

    assert result.code == 2
    assert result.err.startswith("error: missing workspace settings")
    assert result.err.rstrip().endswith(
        "Endpoint 'diabetes-classify' exists on the local target: add --local to use it"
    )
    assert "--local" not in elsewhere.err


def test_invoking_a_stopped_local_endpoint_is_a_warning_and_one_error_line(tmp_path, model_dir, run_script):
    with local_target(tmp_path / "home", "stopped-one", model_dir) as local:
        local.deploy("blue", 100)
        local.client().online_endpoints.begin_stop("stopped-one").result()

        result = run_script(invoke_online_endpoint, ["--local", "--endpoint_name", "stopped-one"])

    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert [line for line in lines if line.startswith("warning: local endpoint")] == [
        "warning: local endpoint 'stopped-one' is not running (stopped, or its processes are gone, e.g. after a "
        "reboot); start it with: python manage_online_endpoint.py start --endpoint_name stopped-one --local"
    ]
    assert [line for line in lines if line.startswith("error:")] == [
        f"error: the scoring URI {local.uri}/score is not reachable: Connection refused"
    ]
    assert "NewConnectionError" not in result.err


def test_deleting_a_stopped_local_endpoint_does_not_suggest_starting_it(tmp_path, model_dir, run_script):
    with local_target(tmp_path / "home", "stopped-two", model_dir) as local:
        local.client().online_endpoints.begin_stop("stopped-two").result()
        shown = run_script(manage_online_endpoint, ["show", "--local", "--endpoint_name", "stopped-two"])
        deleted = run_script(manage_online_endpoint, ["delete", "--local", "--endpoint_name", "stopped-two", "--yes"])

    assert "start it with" in shown.err  # the warning stays where the endpoint is to be used
    assert deleted.code == 0, deleted.err
    assert "start it with" not in deleted.err, deleted.err


def test_a_name_created_with_capitals_is_found_with_the_same_capitals(tmp_path, model_dir, run_script):
    """One rule on both targets and in every command: names are case-insensitive, kept in lowercase (Azure's)."""
    with local_target(tmp_path / "home", "DiabetesClassify", model_dir) as local:
        local.deploy("Blue", 100)
        invoked = run_script(
            invoke_online_endpoint, ["--local", "--endpoint_name", "DiabetesClassify", "--deployment_name", "BLUE"]
        )
        shown = run_script(
            manage_online_endpoint, ["show", "--local", "--endpoint_name", "DiabetesClassify", "--output", "json"]
        )
        deleted = run_script(
            manage_online_endpoint, ["delete", "--local", "--endpoint_name", "diabetesCLASSIFY", "--yes"]
        )

    assert invoked.code == 0, invoked.err
    assert invoked.out.strip() == '["diabetic"]'
    assert shown.code == 0, shown.err
    shown_data = json.loads(shown.out)
    assert (shown_data["name"], shown_data["traffic"]) == ("diabetesclassify", {"blue": 100})
    assert deleted.code == 0, deleted.err
    assert not (tmp_path / "home" / "endpoints" / "diabetesclassify").exists()
    assert not runtime_path(tmp_path / "home").exists()  # the home's socket folder goes with its last endpoint


def test_a_mistyped_flag_is_named_not_the_required_one_it_hides(run_script):
    result = run_script(create_online_endpoint, ["--endpoint-nme", "diabetes-classify", "--local"])

    assert result.code == 2
    assert result.err.startswith("error: unrecognized arguments: --endpoint-nme (did you mean --endpoint-name?)"), (
        result.err
    )


def test_an_abbreviated_flag_is_refused_with_the_flag_meant(run_script):
    """argparse called --deployment "ambiguous" (--deployment_name and --deployment-name); every abbreviation is
    refused alike, so a command that works today does not break when a flag with the same start is added."""
    result = run_script(
        manage_online_endpoint, ["logs", "--endpoint_name", "diabetes-classify", "--deployment", "blue", "--local"]
    )

    assert result.code == 2
    assert result.err.startswith("error: unrecognized arguments: --deployment (did you mean --deployment_name?)")


def test_counts_are_in_good_english_and_splits_in_a_stable_order():
    assert Figures(requests=1, p50_ms=1.0, p95_ms=2.0, p99_ms=3.0).line().startswith("1 request, 4xx 0.0%")
    assert Figures(requests=2, p50_ms=1.0, p95_ms=2.0, p99_ms=3.0).line().startswith("2 requests, 4xx")
    assert traffic.describe({"green": 0, "blue": 100}) == traffic.describe({"blue": 100, "green": 0})
    assert traffic.describe({"green": 0, "blue": 100}) == "blue=100%, green=0%"


def test_a_missing_library_is_one_line_saying_to_use_the_virtual_environment(capsys):
    def needs_pandas(_argv: object) -> int:
        raise ModuleNotFoundError("No module named 'pandas'", name="pandas")

    assert run_main(needs_pandas, []) == 1
    assert capsys.readouterr().err == (
        "error: pandas is not installed here: the toolkit runs in its virtual environment; run `make setup` and "
        "`source .venv/bin/activate`, then the command again\n"
    )

    def own_bug(_argv: object) -> int:
        raise ModuleNotFoundError("No module named 'common.nothing'", name="common.nothing")

    with pytest.raises(ModuleNotFoundError):  # not a missing install: a traceback, as any bug
        run_main(own_bug, [])


def test_a_script_run_outside_the_virtual_environment_says_so_in_one_line():
    """python -S: the standard library only, as a Python without the toolkit's libraries."""
    script = str(ROOT / "create_online_endpoint.py")
    result = subprocess.run(
        [sys.executable, "-S", script, "--endpoint_name", "diabetes-classify", "--local"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "is not installed here: the toolkit runs in its virtual environment; run `make setup`" in result.stderr


def test_children_that_get_ctrl_c_take_it_even_when_the_suite_ignores_it(tmp_path: Path):
    probe = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as under nohup or in a background job
    try:
        inherited = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
        reset = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, preexec_fn=ctrl_c_as_default
        )
    finally:
        signal.signal(signal.SIGINT, previous)

    assert inherited.stdout.strip() == "False"  # what broke the two Ctrl-C tests
    assert reset.stdout.strip() == "True"
