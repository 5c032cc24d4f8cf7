"""--preflight: the Azure deployment tried on the local target first (real uv environment, real server, real HTTP on
127.0.0.1), with the real SDK against the fake control plane: a broken deployment never reaches Azure."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import create_online_deployment
from tests.conftest import ROOT
from tests.localtarget import write_score
from tests.seeds import DEPLOYMENT_SEED, with_flag

DEPLOYMENT = "/onlineEndpoints/diabetes-classify/deployments/diabetes-classify-blue-dp"


@pytest.fixture
def workspace(fake_azure, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A workspace with the model, an environment built from environment.yml and the endpoint. Model downloads
    (blob storage) are served from the test model, recording what was asked."""
    from azure.ai.ml.operations import ModelOperations

    fake_azure.add_model("diabetes-predict", "3")
    fake_azure.add_environment("diabetes-classify", "7", conda_file=(ROOT / "environment.yml").read_text())
    fake_azure.add_endpoint("diabetes-classify")
    fake_azure.downloads = []

    def download(_self: Any, name: str, version: str, download_path: str = ".") -> None:
        fake_azure.downloads.append((name, version))
        shutil.copytree(model_dir / "diabetes-model", Path(download_path) / name)

    monkeypatch.setattr(ModelOperations, "download", download)
    return fake_azure


def preflight_argv(score_path: Path | str = "09-deploy-model", *extra: str) -> list[str]:
    return [*with_flag(DEPLOYMENT_SEED, "--score_path", str(score_path)), "--preflight", *extra]


def test_a_good_deployment_passes_the_preflight_then_goes_to_azure(workspace, run_script):
    result = run_script(create_online_deployment, preflight_argv())

    assert result.code == 0, result.err
    assert workspace.downloads == [("diabetes-predict", "3")]
    assert "Preflight: deploying diabetes-classify-blue-dp on the local target first" in result.err
    assert "Preflight passed in " in result.err
    assert result.err.index("Preflight passed") < result.err.index("Deploying diabetes-classify-blue-dp")
    assert f"PUT {DEPLOYMENT}" in workspace.writes()


def test_a_score_py_that_cannot_start_is_stopped_before_any_write_to_azure(workspace, run_script, tmp_path):
    code = write_score(
        tmp_path / "code", "import azure.ai.ml\n\n\ndef init():\n    pass\n\n\ndef run(raw):\n    return []\n"
    )

    result = run_script(create_online_deployment, preflight_argv(code))

    assert result.code == 4, result.err
    assert "error: preflight of diabetes-classify-blue-dp failed: it did not start" in result.err
    assert "cause: ModuleNotFoundError: No module named 'azure" in result.err
    assert "Nothing was sent to Azure." in result.err
    assert workspace.writes() == []


def test_a_request_the_deployment_refuses_stops_the_preflight(workspace, run_script, tmp_path):
    code = write_score(tmp_path / "code", "def init():\n    pass\n\n\ndef run(raw):\n    raise ValueError('boom')\n")

    result = run_script(create_online_deployment, preflight_argv(code))

    assert result.code == 4, result.err
    assert "09-deploy-model/sample-request.json was refused: the endpoint answered 424" in result.err
    assert "ValueError: boom" in result.err  # the server log tail
    assert workspace.writes() == []


def test_the_preflight_request_can_be_another_file(workspace, run_script, tmp_path):
    request = tmp_path / "bad.json"
    request.write_text('{"data": [[1, 2]]}')

    result = run_script(
        create_online_deployment, preflight_argv("09-deploy-model", "--preflight_request", str(request))
    )

    assert result.code == 4, result.err
    assert f"{request} was refused" in result.err and "row 0: has 2 values, expected 8" in result.err
    assert workspace.writes() == []


def test_preflight_with_dry_run_runs_the_preflight_prints_the_yaml_and_writes_nothing(workspace, run_script):
    result = run_script(create_online_deployment, preflight_argv("09-deploy-model", "--dry_run"))

    assert result.code == 0, result.err
    assert "Preflight passed in " in result.err
    assert "name: diabetes-classify-blue-dp" in result.out
    assert workspace.writes() == []


def test_create_environment_is_registered_only_after_the_preflight(workspace, run_script, tmp_path):
    broken = tmp_path / "no-server.yml"
    broken.write_text("dependencies:\n  - python=3.11\n  - pip:\n      - scikit-learn==1.9.1\n")

    result = run_script(
        create_online_deployment, preflight_argv("09-deploy-model", "--create_environment", "--conda_file", str(broken))
    )

    assert result.code == 10, result.err  # an environment the local target cannot build
    assert (
        "lacks azureml-inference-server-http (or azureml-defaults, which brings it) under pip:, so in Azure the "
        "container could not start" in result.err
    )
    assert workspace.writes() == []


def test_an_image_only_environment_cannot_be_preflighted_and_says_so(workspace, run_script):
    workspace.add_environment("curated", "1")

    result = run_script(create_online_deployment, preflight_argv("09-deploy-model", "--environment", "curated:1"))

    assert result.code == 1, result.err
    assert "environment azureml:curated:1 has no conda file (an image-only environment)" in result.err
    assert workspace.writes() == []


def test_preflight_is_refused_with_local_before_anything_runs(run_script):
    result = run_script(create_online_deployment, [*DEPLOYMENT_SEED, "--preflight", "--local"])

    assert result.code == 2
    assert "--preflight tries an Azure deployment on the local target first" in result.err


EXAMPLES = ROOT / "tests" / "data" / "azureml-examples"


@pytest.mark.parametrize(
    ("deployment_file", "request_file"),
    [
        (EXAMPLES / "managed" / "sample" / "blue-deployment.yml", EXAMPLES / "model-1" / "sample-request.json"),
        (EXAMPLES / "ncd" / "sklearn-deployment.yaml", EXAMPLES / "ncd" / "sample-request-sklearn.json"),
    ],
    ids=["inline-environment", "mlflow-no-code"],
)
def test_a_deployment_file_is_preflighted_as_written(workspace, run_script, deployment_file, request_file):
    """Azure's examples as published: the inline environment's conda file, or the MLflow model's own (no code),
    tried on the local target with their own request before anything is written."""
    argv = [
        *("--file", str(deployment_file), "--endpoint_name", "diabetes-classify"),
        *("--preflight", "--preflight_request", str(request_file), "--dry_run"),
    ]

    result = run_script(create_online_deployment, argv)

    assert result.code == 0, result.err
    assert "Preflight passed in " in result.err
    assert f"answered {request_file} on the local target" in result.err
    assert workspace.writes() == []
