"""MLflow models deployed without code (Azure's no-code deployment) on the local target: the environment built from
the model's own conda file with what Azure's MLflow image adds, and the toolkit's copy of the scoring script.

how-to-deploy-mlflow-models-online-endpoints: for no-code deployment Azure "dynamically installs Python packages that
you list in a conda.yaml file" and "provides an MLflow base image ... that contains the azureml-inference-server-http
package, the mlflow-skinny package, a scoring script for inferencing".
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.local import environments
from common.references import MLMODEL_FILE

SCORING_CODE = Path(__file__).parent / "mlflow_scoring"
SCORING_SCRIPT = "score.py"
MODEL_FOLDER_VARIABLE = "MLFLOW_MODEL_FOLDER"  # where in AZUREML_MODEL_DIR the MLmodel is (Azure sets it)
# What Azure's MLflow image brings beside the model's own packages; pandas, which mlflow-skinny does not require, is
# what its scoring script parses a data frame request with
IMAGE_PACKAGES = (("mlflow", "mlflow-skinny"), ("pandas", "pandas"))


@dataclass(frozen=True)
class NoCode:
    """How a no-code deployment of one MLflow model runs."""

    label: str  # the environment, as messages name it
    conda: dict[str, Any]
    model_folder: str  # relative to AZUREML_MODEL_DIR


def served_folder(model: Path) -> tuple[Path, str] | None:
    """Where the MLmodel file is, and that folder's path in AZUREML_MODEL_DIR ('' at its top): a model folder is
    served under its own name; a registered version's folder holds the model folder it was registered from."""
    if (model / MLMODEL_FILE).is_file():
        return model, model.name
    children = sorted(path for path in model.iterdir() if path.is_dir()) if model.is_dir() else []
    for child in children:
        if (child / MLMODEL_FILE).is_file():
            return child, child.name
    return None


def no_code(model: Path, source: str) -> NoCode:
    """The environment and model folder of an MLflow model served without code; EnvironmentProblem naming what is
    missing (the MLmodel, its python_function flavor, its conda file)."""
    import yaml

    found = served_folder(model)
    if found is None:
        raise environments.EnvironmentProblem(
            f"{source} has no {MLMODEL_FILE} file: a model deployed without code must be an MLflow model (type "
            "mlflow_model); give --score_path and --environment for any other"
        )
    folder, relative = found
    mlmodel = yaml.safe_load((folder / MLMODEL_FILE).read_text()) or {}
    flavor = (mlmodel.get("flavors") or {}).get("python_function")
    if not isinstance(flavor, dict):
        raise environments.EnvironmentProblem(
            f"{source}'s {MLMODEL_FILE} has no python_function flavor, which no-code deployment loads the model with"
        )
    env = flavor.get("env") or "conda.yaml"
    conda_name = env.get("conda", "conda.yaml") if isinstance(env, dict) else str(env)  # MLflow 2.x: a dict
    conda_path = folder / conda_name
    if not conda_path.is_file():
        raise environments.EnvironmentProblem(f"{source}'s {MLMODEL_FILE} names {conda_name}, which is not there")
    conda = with_image_packages(yaml.safe_load(conda_path.read_text()) or {})
    return NoCode(f"the MLflow model's {conda_name} (no-code deployment)", conda, relative)


def with_image_packages(conda: dict[str, Any]) -> dict[str, Any]:
    """The model's conda document with what Azure's MLflow image adds under pip: (the server for the Python asked
    for, mlflow-skinny, pandas) where the model does not list them already."""
    document = copy.deepcopy(conda)
    dependencies = list(document.get("dependencies") or [])
    pip_entry = next((d for d in dependencies if isinstance(d, dict) and "pip" in d), None)
    if pip_entry is None:
        pip_entry = {"pip": []}
        dependencies.append(pip_entry)
    listed = {environments.requirement_name(str(item)) for item in dependencies if not isinstance(item, dict)}
    listed |= {environments.requirement_name(str(item)) for item in pip_entry["pip"] or []}
    python = next((str(d) for d in dependencies if str(d).replace(" ", "").startswith("python=")), None)
    added = []
    if not listed & environments.SERVER_PROVIDERS:
        added.append(environments.server_for_python(python.partition("=")[2] if python else None))
    added += [package for present, package in IMAGE_PACKAGES if present not in listed and package not in listed]
    pip_entry["pip"] = [*(pip_entry["pip"] or []), *added]
    document["dependencies"] = dependencies
    return document
