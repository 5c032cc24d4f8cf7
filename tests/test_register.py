"""Your own model registered (manage_online_endpoint.py register): in the local registry for real, then deployed as
azureml:NAME:VERSION with your own score.py; on Azure through the SDK's models.create_or_update."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import yaml

import create_online_deployment
import manage_online_endpoint
from tests.localtarget import local_target, write_score

OWN_SCORE = """import json, os, pickle
from pathlib import Path

def init():
    global table
    table = pickle.loads((Path(os.environ["AZUREML_MODEL_DIR"]) / "lookup" / "table.pkl").read_bytes())

def run(raw):
    return [table.get(key, "unknown") for key in json.loads(raw)["keys"]]
"""


def own_model(folder: Path) -> Path:
    """A model folder that is not the toolkit's: a pickled lookup table (any pickle works the same way)."""
    model = folder / "lookup"
    model.mkdir(parents=True)
    (model / "table.pkl").write_bytes(pickle.dumps({"a": "apple", "b": "banana"}))
    return model


def test_your_own_model_is_registered_locally_and_deployed_by_its_reference(tmp_path, model_dir, run_script):
    model = own_model(tmp_path / "mine")
    code = write_score(tmp_path / "code", OWN_SCORE)
    with local_target(tmp_path / "home", "own-model", model_dir) as local:
        register = ["register", "--local", "--name", "lookup-model", "--path", str(model)]
        first = run_script(manage_online_endpoint, [*register, "--output", "json"])
        second = run_script(manage_online_endpoint, register)
        again = run_script(manage_online_endpoint, [*register, "--version", "2"])
        argv = [*local.deployment_args("mine", 0, score_path=code)]
        argv[argv.index("azureml:diabetes-predict:1")] = "azureml:lookup-model:2"
        deployed = run_script(create_online_deployment, argv)
        answer = local.score(json.dumps({"keys": ["a", "b", "c"]}), deployment="mine")
        show = ["show", "--local", "--endpoint_name", "own-model", "--output", "json"]
        shown = run_script(manage_online_endpoint, show)

    assert first.code == 0, first.err
    assert json.loads(first.out) == {
        "name": "lookup-model",
        "version": "1",
        "type": "custom_model",
        "model": "azureml:lookup-model:1",
    }
    assert second.code == 0 and second.out.startswith("Registered azureml:lookup-model:2 (custom_model) from ")
    assert again.code == 6
    assert "local model 'lookup-model' version 2 already exists, and a registered version does not change" in again.err
    assert deployed.code == 0, deployed.err
    assert answer.status_code == 200 and answer.json() == ["apple", "banana", "unknown"]
    (mine,) = [d for d in json.loads(shown.out)["deployments"] if d["name"] == "mine"]
    assert mine["code"] == {"folder": str(code), "scoring_script": "score.py"}  # show names the code each one runs
    assert deployed.out.splitlines()[-1].endswith(
        "--deployment_name mine --request_file YOUR_REQUEST.json --local"
    )  # never the toolkit's diabetes sample for code that is not the toolkit's


def test_the_next_line_suggests_the_request_beside_your_code(tmp_path):
    from commands.create_deployment import SAMPLE_REQUEST, request_for
    from common.references import LocalModel

    code = write_score(tmp_path / "model-1" / "onlinescoring", OWN_SCORE)
    assert request_for("09-deploy-model") == SAMPLE_REQUEST
    assert request_for(str(code)) == "YOUR_REQUEST.json"
    (tmp_path / "model-1" / "sample-request.json").write_text("{}")  # azureml-examples keep it above the code
    assert request_for(str(code)) == str(tmp_path / "model-1" / "sample-request.json")
    ncd = tmp_path / "ncd"  # an MLflow model without code: the request beside the file, the one named after it
    (ncd / "sklearn-diabetes" / "model").mkdir(parents=True)
    for name in ("sample-request-lightgbm.json", "sample-request-sklearn.json"):
        (ncd / name).write_text("{}")
    model = LocalModel(ncd / "sklearn-diabetes" / "model", "mlflow_model")
    assert request_for(None, model, ncd / "sklearn-deployment.yaml") == str(ncd / "sample-request-sklearn.json")
    assert request_for(None, model, None) == str(ncd / "sample-request-sklearn.json")  # named after the model's path


def test_a_missing_model_of_yours_is_hinted_with_register_not_with_training(tmp_path, model_dir, run_script):
    with local_target(tmp_path / "home", "own-model", model_dir) as local:
        argv = local.deployment_args("mine", 0)
        argv[argv.index("azureml:diabetes-predict:1")] = "azureml:my-model:1"
        result = run_script(create_online_deployment, argv)

    assert result.code == 3
    assert result.err.splitlines()[-1] == (
        "error: model 'my-model' (version 1) not found in the workspace; register one with: python "
        "manage_online_endpoint.py register --name my-model --path MODEL_FILE_OR_FOLDER --local"
    )


def test_an_mlflow_folder_is_registered_as_an_mlflow_model_on_azure(azure, run_script, tmp_path):
    from azure.ai.ml.entities import Model

    folder = tmp_path / "sklearn-model"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors:\n  sklearn: {}\n")
    azure.client.models.create_or_update.side_effect = lambda model: Model(
        name=model.name, version="4", path=model.path, type=model.type
    )

    result = run_script(manage_online_endpoint, ["register", "--name", "sk", "--path", str(folder)])

    assert result.code == 0, result.err
    (sent,), _ = azure.client.models.create_or_update.call_args
    assert (sent.name, sent.type, sent.version, Path(sent.path)) == ("sk", "mlflow_model", None, folder)
    assert result.out.splitlines()[0] == f"Registered azureml:sk:4 (mlflow_model) from {folder} in the workspace"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--name", "my model", "--path", "."], "invalid model name 'my model'"),
        (["--name", "m", "--path", "nowhere"], "--path 'nowhere' does not exist"),
        (["--name", "m", "--path", ".", "--type", "mlflow_model"], "--type mlflow_model needs a folder with"),
    ],
)
def test_bad_register_flags_are_one_line_before_any_call(azure, run_script, argv, message):
    result = run_script(manage_online_endpoint, ["register", *argv])

    assert result.code == 2
    assert message in result.err
    azure.client.models.create_or_update.assert_not_called()


def without_score_path(argv: list[str]) -> list[str]:
    at = argv.index("--score_path")
    return [*argv[:at], *argv[at + 2 :]]


def test_a_model_not_the_toolkits_is_never_paired_with_the_toolkits_score_py(azure, run_script, tmp_path):
    """Left out, --score_path was 09-deploy-model whatever the model: the diabetes score.py then loaded the user's
    model and the deployment 'succeeded'. Now only the toolkit's own model gets the toolkit's code by default."""
    from tests.seeds import DEPLOYMENT_SEED, with_flag

    mlflow_folder = tmp_path / "sklearn-model"
    mlflow_folder.mkdir()
    (mlflow_folder / "MLmodel").write_text("flavors:\n  sklearn: {}\n")
    theirs = run_script(
        create_online_deployment, without_score_path(with_flag(DEPLOYMENT_SEED, "--model_path", "azureml:sk:1"))
    )
    local_folder = run_script(
        create_online_deployment, without_score_path(with_flag(DEPLOYMENT_SEED, "--model_path", str(mlflow_folder)))
    )
    ours = run_script(create_online_deployment, [*without_score_path(DEPLOYMENT_SEED), "--dry_run"])

    assert theirs.code == local_folder.code == 2
    assert theirs.err.splitlines()[-1] == (
        "error: --score_path is needed: --model_path 'azureml:sk:1' is not the toolkit's diabetes-predict, and "
        "09-deploy-model's score.py serves only that model; give the folder of your scoring code (and --score_script); "
        "an MLflow model folder (with its MLmodel file) needs none"
    )
    assert local_folder.err.splitlines()[-1] == (
        "error: an MLflow model deployed with an environment needs its scoring code too (--score_path); leave both "
        "out for Azure's no-code deployment"
    )
    azure.client.online_deployments.begin_create_or_update.assert_not_called()
    assert ours.code == 0, ours.err
    assert yaml.safe_load(ours.out)["code_configuration"] == {"code": "09-deploy-model", "scoring_script": "score.py"}
