"""What each script and verb prints on stdout, pinned byte for byte in text and --output json, against the fake
control plane (tests/golden/output/; UPDATE_GOLDEN=1 rewrites them after a change meant to show there). Progress
on stderr is left out: it carries elapsed times and the SDK's upload bars."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import create_online_deployment
import create_online_endpoint
import invoke_online_endpoint
import manage_online_endpoint
from common.release import history

GOLDEN = Path(__file__).parents[1] / "golden" / "output"
ENDPOINT = ["--endpoint_name", "diabetes-classify"]
GREEN = [
    *("--deployment_name", "green", *ENDPOINT),
    *("--model_path", "azureml:diabetes-predict:3", "--environment", "diabetes-classify:7"),
    *("--score_path", "09-deploy-model", "--score_script", "score.py"),
]
AUTOSCALE = ["--min", "1", "--max", "3", "--default", "1", "--cpu_out", "70", "--cpu_in", "30"]
HISTORY = {f"{history.TAG_PREFIX}1": "2026-11-24T10:00:00Z|traffic --set blue=90 green=10|blue=100|-"}
CASES = {
    "show": (manage_online_endpoint, ["show", *ENDPOINT]),
    "keys": (manage_online_endpoint, ["keys", *ENDPOINT]),
    "logs": (manage_online_endpoint, ["logs", *ENDPOINT, "--deployment_name", "blue", "--lines", "2"]),
    "traffic": (manage_online_endpoint, ["traffic", *ENDPOINT, "--set", "blue=80", "green=20"]),
    "mirror": (manage_online_endpoint, ["traffic", *ENDPOINT, "--set", "blue=100", "--mirror", "green=10"]),
    "promote": (manage_online_endpoint, ["promote", *ENDPOINT, "--deployment_name", "green"]),
    "rollback": (manage_online_endpoint, ["rollback", *ENDPOINT]),
    "delete": (manage_online_endpoint, ["delete", *ENDPOINT, "--deployment_name", "green", "--force"]),
    "autoscale-dry-run": (
        manage_online_endpoint,
        ["autoscale", *ENDPOINT, "--deployment_name", "blue", *AUTOSCALE, "--dry_run"],
    ),
    "endpoint": (create_online_endpoint, [*ENDPOINT, "--description", "kept"]),
    "deployment": (create_online_deployment, [*GREEN, "--traffic_allocation", "0"]),
    "deployment-dry-run": (create_online_deployment, [*GREEN, "--dry_run"]),
    "invoke": (invoke_online_endpoint, ENDPOINT),
}


@pytest.fixture
def workspace(fake_azure):
    fake_azure.add_model("diabetes-predict", "3")
    fake_azure.add_environment("diabetes-classify", "7")
    fake_azure.add_endpoint("diabetes-classify", {"blue": 90, "green": 10}, tags=dict(HISTORY))
    fake_azure.logs = "line one\nline two\n"
    return fake_azure


@pytest.mark.parametrize("output", ["text", "json"])
@pytest.mark.parametrize("case", list(CASES))
def test_output_is_unchanged(workspace, run_script, case, output):
    script, argv = CASES[case]
    if output == "json":
        argv = [*argv, "--output", "json"]
    result = run_script(script, argv)

    assert result.code == 0, result.err
    name = f"{case}.{output}"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        (GOLDEN / name).write_text(result.out)
    assert result.out == (GOLDEN / name).read_text()
