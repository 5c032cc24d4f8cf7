"""Azure's own online endpoint examples (Azure/azureml-examples, cli/endpoints/online; copies in
tests/data/azureml-examples) deployed as published: their YAML files, conda files, models and scoring scripts,
unmodified. On Azure (a mocked MLClient) the deployment carries what az ml would send; on the local target they
build, serve and answer what their models predict."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import create_online_deployment
import create_online_endpoint
import manage_online_endpoint
from tests.conftest import ROOT, existing_endpoint
from tests.localtarget import LocalSetup, local_target

EXAMPLES = ROOT / "tests" / "data" / "azureml-examples"
SAMPLE = EXAMPLES / "managed" / "sample"
NCD = EXAMPLES / "ncd"
MODEL_1_REQUEST = (EXAMPLES / "model-1" / "sample-request.json").read_text()
# What model-1's pickle (a LinearRegression) predicts for its sample request; model-2's score.py answers [0.5, 0.5]
MODEL_1_ANSWER = [11055.977245525679, 4503.079536107787]
MODEL_2_ANSWER = [0.5, 0.5]
# What the ncd MLflow model's pickle predicts for ncd/sample-request-sklearn.json
NCD_ANSWER = [11633.100167144928, 8522.117402885002]
PYENV = Path.home() / ".pyenv" / "versions"


@pytest.fixture
def workspace(azure):
    azure.client.online_endpoints.get.side_effect = None
    azure.client.online_endpoints.get.return_value = existing_endpoint("my-endpoint", {})
    return azure


# --- Azure: what az ml online-deployment create -f would send ------------------------------------------------------


def test_blue_deployment_yml_sends_its_inline_model_code_and_environment(workspace, run_script):
    result = run_script(create_online_deployment, ["--file", str(SAMPLE / "blue-deployment.yml")])

    assert result.code == 0, result.err
    (deployment,) = workspace.created_entities("online_deployments")
    assert (deployment.name, deployment.endpoint_name) == ("blue", "my-endpoint")
    assert Path(deployment.model.path) == EXAMPLES / "model-1" / "model"  # uploaded, registered by the SDK
    assert deployment.model.type == "custom_model"
    assert Path(deployment.code_configuration.code) == EXAMPLES / "model-1" / "onlinescoring"  # from the file's folder
    assert deployment.code_configuration.scoring_script == "score.py"
    environment = deployment.environment  # inline: the SDK registers it as an anonymous environment version
    assert environment.image == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
    assert environment.conda_file["dependencies"][:2] == ["python=3.12", "numpy=2.3.1"]
    assert (deployment.instance_type, deployment.instance_count) == ("Standard_DS3_v2", 1)
    workspace.client.environments.create_or_update.assert_not_called()
    workspace.client.environments.get.assert_not_called()


def test_flags_beside_the_file_override_it_and_move_traffic(workspace, run_script):
    workspace.client.online_endpoints.get.return_value = existing_endpoint("my-endpoint", {"blue": 100})
    argv = [
        *("--file", str(SAMPLE / "green-deployment.yml"), "--endpoint_name", "my-endpoint"),
        *("--instance_count", "2", "--traffic_allocation", "50", "--request_timeout_ms", "9000"),
    ]

    result = run_script(create_online_deployment, argv)

    assert result.code == 0, result.err
    (deployment,) = workspace.created_entities("online_deployments")
    assert deployment.name == "green"
    assert deployment.instance_count == 2
    assert deployment.request_settings.request_timeout_ms == 9000
    (endpoint,) = workspace.created_entities("online_endpoints")
    assert endpoint.traffic == {"blue": 50, "green": 50}  # a YAML file cannot carry traffic: the flag can


def test_the_ncd_mlflow_model_is_sent_without_code_or_environment(workspace, run_script):
    result = run_script(create_online_deployment, ["--file", str(NCD / "sklearn-deployment.yaml")])

    assert result.code == 0, result.err
    (deployment,) = workspace.created_entities("online_deployments")
    assert (deployment.model.name, deployment.model.version) == ("mir-sample-sklearn-ncd-model", "2")
    assert deployment.model.type == "mlflow_model"
    assert deployment.code_configuration is None
    assert deployment.environment is None
    assert "Environment:        none (MLflow no-code" in result.out
    assert result.out.splitlines()[-1].endswith(f"--request_file {NCD / 'sample-request-sklearn.json'}")


def test_dry_run_of_the_ncd_file_prints_the_mlflow_model_alone(run_script, monkeypatch):
    import yaml

    monkeypatch.chdir(ROOT)
    result = run_script(create_online_deployment, ["--file", str(NCD / "sklearn-deployment.yaml"), "--dry_run"])

    assert result.code == 0, result.err
    printed = yaml.safe_load(result.out)
    assert printed["model"]["type"] == "mlflow_model"
    assert "code_configuration" not in printed and "environment" not in printed
    assert "experimental" not in result.err  # azure-ai-ml's notes about its own schema classes stay out


def bad_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deployment.yml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: blue\nendpoint_name: my-endpoint\ninstance_count: many\n",
            "instance_count: Not a valid integer.",
        ),
        (
            "name: blue\nendpoint_name: my-endpoint\nmodel:\n  path: nowhere/\ncode_configuration:\n  code: .\n"
            "  scoring_script: score.py\nenvironment: azureml:env:1\ninstance_type: Standard_DS3_v2\n",
            "model: path not found: ",
        ),
        (
            "name: blue\nendpoint_name: my-endpoint\nmodel: azureml:m:1\nenvironment:\n"
            "  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest\ncode_configuration:\n  code: .\n"
            "  scoring_script: score.py\ninstance_type: Standard_DS3_v2\n",
            "environment: an inline environment needs a conda_file:",
        ),
        ("endpoint_name: my-endpoint\nmodel: azureml:m:1\n", "name: Missing data for required field."),
    ],
)
def test_a_bad_deployment_file_is_one_line_and_nothing_is_sent(workspace, run_script, tmp_path, text, message):
    (tmp_path / "score.py").write_text("def init():\n    pass\n\ndef run(raw):\n    return raw\n")
    path = bad_file(tmp_path, text)

    result = run_script(create_online_deployment, ["--file", str(path)])

    assert result.code == 2
    [line] = result.err.splitlines()
    assert message in line
    assert workspace.azure_write_calls() == []


# --- the local target: the examples build, serve and answer as their models predict -------------------------------


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[tuple[LocalSetup, Path]]:
    """A copy of the examples (the YAML files name their paths relative to themselves) and the sample endpoint,
    created from its endpoint.yml, on a fresh local target."""
    copy = tmp_path_factory.mktemp("examples") / "online"
    shutil.copytree(EXAMPLES, copy)
    with local_target(tmp_path_factory.mktemp("examples-home"), "my-endpoint", model_dir) as local:
        argv = ["--local", "--file", str(copy / "managed" / "sample" / "endpoint.yml")]
        assert local.run(create_online_endpoint.main, argv) == 0
        yield local, copy


def test_blue_and_green_as_published_split_the_traffic_50_50(examples, run_script):
    local, copy = examples
    sample = copy / "managed" / "sample"

    blue = run_script(
        create_online_deployment,
        ["--local", "--file", str(sample / "blue-deployment.yml"), "--traffic_allocation", "100"],
    )
    green = run_script(
        create_online_deployment,
        ["--local", "--file", str(sample / "green-deployment.yml"), "--traffic_allocation", "50"],
    )
    shown = run_script(
        manage_online_endpoint, ["show", "--local", "--endpoint_name", "my-endpoint", "--output", "json"]
    )

    assert blue.code == 0, blue.err
    assert green.code == 0, green.err
    said = [line for line in blue.err.splitlines() if "conda packages come from PyPI" in line]
    assert len(said) == 1 and "(no conda channel can be reached: " in said[0]  # conda-forge, from here
    assert said[0].endswith("): numpy==2.3.1.*, scikit-learn==1.7.0.*, scipy==1.16.0.*")
    assert green.out.splitlines()[-1].endswith(f"--request_file {sample / 'sample-request.json'} --local")
    assert json.loads(shown.out)["traffic"] == {"blue": 50, "green": 50}
    assert local.score(MODEL_1_REQUEST, deployment="blue").json() == MODEL_1_ANSWER
    assert local.score(MODEL_1_REQUEST, deployment="green").json() == MODEL_2_ANSWER
    answers = [local.score(MODEL_1_REQUEST).json() for _ in range(40)]
    blue_share = answers.count(MODEL_1_ANSWER)
    assert blue_share + answers.count(MODEL_2_ANSWER) == 40
    assert 8 <= blue_share <= 32  # 50/50: both answer (a binomial 40 draws stays in this range but once in ~10^4)


def test_the_ncd_mlflow_model_answers_its_sample_request_without_code(examples, run_script):
    local, copy = examples
    ncd = copy / "ncd"

    result = run_script(create_online_deployment, ["--local", "--file", str(ncd / "sklearn-deployment.yaml")])
    answer = local.score((ncd / "sample-request-sklearn.json").read_text(), deployment="sklearn-deployment")
    missing = {"input_data": {"columns": ["age", "sex"], "index": [0], "data": [[1.0, 2.0]]}}
    refused = local.score(json.dumps(missing), deployment="sklearn-deployment")
    whole = {"input_data": {**json.loads((ncd / "sample-request-sklearn.json").read_text())["input_data"]}}
    whole["input_data"]["data"] = [[int(value) for value in row] for row in whole["input_data"]["data"]]
    cast = local.score(json.dumps({**whole, "params": {}}), deployment="sklearn-deployment")
    shown = run_script(manage_online_endpoint, ["show", "--local", "--endpoint_name", "my-endpoint"])

    assert result.code == 0, result.err
    assert answer.status_code == 200 and answer.json() == pytest.approx(NCD_ANSWER)
    assert cast.status_code == 200 and cast.json() == pytest.approx(NCD_ANSWER)  # whole numbers for double columns
    assert refused.status_code >= 400  # the signature is enforced: MLflow names the missing inputs in the log
    log = local.store.server_log("my-endpoint", "sklearn-deployment").read_text()
    assert "Model is missing inputs ['bmi', 'bp', 's1', 's2', 's3', 's4', 's5', 's6']" in log
    assert "code: none (a no-code deployment: Azure scores the MLflow" in shown.out
    assert result.out.splitlines()[-1].endswith(f"--request_file {ncd / 'sample-request-sklearn.json'} --local")
    registered = local.client().models.get("mir-sample-sklearn-ncd-model", version="2")  # the file's name: version:
    assert registered.type == "mlflow_model"
    assert local.deployment("sklearn-deployment")["model"] == "azureml:mir-sample-sklearn-ncd-model:2"


def test_a_named_inline_model_with_other_files_is_refused_as_a_registered_version(examples, run_script, tmp_path):
    """Deployed again from the same files, the registered version is used; other files under that name and version
    are refused (409: exit 6), as a registered version never changes."""
    local, copy = examples
    ncd = copy / "ncd"
    changed = tmp_path / "ncd"
    shutil.copytree(ncd, changed)
    (changed / "sklearn-diabetes" / "model" / "requirements.txt").write_text("mlflow\n")
    deployment_file = changed / "sklearn-deployment.yaml"
    deployment_file.write_text(deployment_file.read_text().replace("name: sklearn-deployment", "name: changed"))

    again = run_script(create_online_deployment, ["--local", "--file", str(ncd / "sklearn-deployment.yaml")])
    other = run_script(create_online_deployment, ["--local", "--file", str(deployment_file)])

    assert again.code == 0, again.err
    assert other.code == 6
    assert "local model 'mir-sample-sklearn-ncd-model' version 2 is registered with other files" in other.err
    assert not local.store.deployment_file("my-endpoint", "changed").exists()


def test_a_no_code_model_without_an_mlmodel_is_refused_before_anything_is_built(examples, run_script, tmp_path):
    local, copy = examples
    fake = tmp_path / "not-mlflow"
    fake.mkdir()
    (fake / "model.pkl").write_bytes(b"not a model")
    text = (copy / "ncd" / "sklearn-deployment.yaml").read_text().replace("sklearn-diabetes/model", str(fake))
    path = tmp_path / "deployment.yaml"
    path.write_text(text.replace("name: sklearn-deployment", "name: no-mlmodel"))

    result = run_script(create_online_deployment, ["--local", "--file", str(path)])

    assert result.code != 0
    assert "has no MLmodel file: a model deployed without code must be an MLflow model" in result.err
    assert "no-mlmodel" not in local.client().online_deployments.leftovers("my-endpoint")
    assert not local.store.deployment_file("my-endpoint", "no-mlmodel").exists()


@pytest.mark.parametrize(
    ("conda_file", "python", "server_log_mark"),
    [
        ("model-1-conda-py37-azureml-defaults.yaml", "3.7", "azmlinfsrv/0.7"),
        ("model-1-conda-py39-server-1.4.0.yaml", "3.9", "azmlinfsrv/1.4.0"),
    ],
)
def test_model_1_in_its_older_published_environments(examples, run_script, conda_file, python, server_log_mark):
    """model-1 with its model and score.py, in the environments azureml-examples published before Python 3.12:
    azureml-defaults 1.47.0 (server 0.7) on Python 3.7, and azureml-inference-server-http 1.4.0 on Python 3.9."""
    if not sorted(PYENV.glob(f"{python}*/bin/python{python}")):
        pytest.skip(f"no Python {python} installed with pyenv on this machine")
    local, copy = examples
    name = f"model-one-py{python.replace('.', '')}"
    argv = [
        *("--local", "--file", str(copy / "managed" / "sample" / "blue-deployment.yml"), "--deployment_name", name),
        *("--environment", f"model-1-py{python.replace('.', '')}", "--create_environment"),
        *("--conda_file", str(copy / "older" / conda_file)),
    ]

    result = run_script(create_online_deployment, argv)

    assert result.code == 0, result.err
    assert local.deployment(name)["local_environment"]["python"].startswith(f"{python}.")
    assert local.score(MODEL_1_REQUEST, deployment=name).json() == pytest.approx(MODEL_1_ANSWER)
    assert server_log_mark in local.store.server_log("my-endpoint", name).read_text()
