"""Model and environment references as the scripts accept them, parsed without contacting Azure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import validation
from common.errors import UsageError

AZUREML_PREFIX = "azureml:"
MODEL_FORMS = "azureml:NAME:VERSION, azureml:NAME@latest, or an existing local file or folder"
ENVIRONMENT_FORMS = "NAME (latest version), NAME:VERSION, NAME@latest, azureml:NAME:VERSION or azureml:NAME@latest"


@dataclass(frozen=True)
class AssetRef:
    """A registered asset; version None means 'latest', resolved by asking the workspace."""

    name: str
    version: str | None = None

    @property
    def arm_reference(self) -> str:
        if self.version is None:
            return f"{AZUREML_PREFIX}{self.name}@latest"
        return f"{AZUREML_PREFIX}{self.name}:{self.version}"

    def with_version(self, version: str) -> AssetRef:
        return AssetRef(self.name, version)


@dataclass(frozen=True)
class LocalModel:
    """A model file or folder on this machine, uploaded with the deployment (Azure registers it as an anonymous model
    version, or under `name`:`version` when an az ml YAML file names them)."""

    path: Path
    type: str = "custom_model"
    name: str | None = None
    version: str | None = None

    @property
    def is_mlflow(self) -> bool:
        return self.type == MLFLOW_MODEL


@dataclass(frozen=True)
class InlineEnvironment:
    """An environment written into a deployment YAML file (`environment: {conda_file, image}`): Azure registers it
    as an anonymous environment version; the local target builds it from the conda file."""

    conda: dict[str, Any]
    image: str | None
    source: str  # where the conda file came from, for messages

    @property
    def label(self) -> str:
        return f"inline environment ({self.source}" + (f" on {self.image})" if self.image else ")")


ModelRef = AssetRef | LocalModel
EnvironmentRef = AssetRef | InlineEnvironment
MLFLOW_MODEL = "mlflow_model"  # azure-ai-ml's AssetTypes.MLFLOW_MODEL: Azure serves it without code (no-code)
MLMODEL_FILE = "MLmodel"  # what makes a folder an MLflow model


def environment_label(environment: EnvironmentRef | None) -> str:
    """How a deployment's environment is named in summaries: azureml:NAME:VERSION, or what the inline one is."""
    if environment is None:
        return "none (MLflow no-code: Azure's MLflow image, the model's conda file)"
    return environment.label if isinstance(environment, InlineEnvironment) else environment.arm_reference


def _registered(kind: str, text: str, forms: str) -> AssetRef:
    if "@" in text:
        name, _, label = text.partition("@")
        if label != "latest":
            raise UsageError(f"invalid {kind} reference {text!r}: the only label supported is @latest; use {forms}")
        return AssetRef(validation.asset_name(kind, name))
    name, sep, version = text.partition(":")
    if not sep:
        return AssetRef(validation.asset_name(kind, name))
    if ":" in version or not version:
        raise UsageError(f"invalid {kind} reference {text!r}: use {forms}")
    return AssetRef(validation.asset_name(kind, name), validation.asset_version(kind, version))


def parse_model(value: str, source: str = "--model_path") -> ModelRef:
    try:
        return _model(value)
    except UsageError as error:
        if source == "--model_path":
            raise
        raise UsageError(error.message.replace("--model_path", source, 1)) from None


def _model(value: str) -> ModelRef:
    if value.startswith(AZUREML_PREFIX):
        rest = value[len(AZUREML_PREFIX) :]
        if rest.startswith("/"):
            raise UsageError(
                f"invalid --model_path {value!r}: registry and ARM ids are not supported; use {MODEL_FORMS}"
            )
        ref = _registered("model", rest, MODEL_FORMS)
        if ref.version is None and "@" not in rest:
            raise UsageError(f"invalid --model_path {value!r}: give a version or @latest; use {MODEL_FORMS}")
        return ref
    path = Path(value)
    if not path.exists():
        raise UsageError(f"invalid --model_path {value!r}: no such file or folder; use {MODEL_FORMS}")
    if path.is_dir() and not any(path.iterdir()):
        raise UsageError(f"invalid --model_path {value!r}: the folder is empty")
    return LocalModel(path, MLFLOW_MODEL if (path / MLMODEL_FILE).is_file() else "custom_model")


def parse_environment(value: str) -> AssetRef:
    rest = value[len(AZUREML_PREFIX) :] if value.startswith(AZUREML_PREFIX) else value
    if not rest or rest.startswith("/"):
        raise UsageError(f"invalid --environment {value!r}: use {ENVIRONMENT_FORMS}")
    return _registered("environment", rest, ENVIRONMENT_FORMS)


_VERSIONED_ID = re.compile(r"/(?:models|environments)/([^/]+)/versions/([^/]+)$", re.IGNORECASE)


def registered_asset(kind: str, arm_id: str | None) -> AssetRef | None:
    """NAME and VERSION of a workspace asset of `kind` (models, environments, codes) from the ARM id a deployment GET
    answers with (…/workspaces/W/KIND/NAME/versions/V, azureml: prefixed or not); None for anything else, a
    registry's asset (azureml://registries/R/...) included: the workspace cannot be asked for it."""
    found = re.search(rf"/workspaces/[^/]+/{kind}/([^/]+)/versions/([^/]+)$", str(arm_id or ""), re.IGNORECASE)
    return AssetRef(found.group(1), found.group(2)) if found else None


def asset_key(reference: Any) -> str:
    """NAME:VERSION for a registered asset however it is written (azureml:NAME:VERSION, or the ARM id Azure answers
    with); anything else (a local model entity, a label) as text, for comparing what a deployment uses."""
    text = str(getattr(reference, "id", None) or getattr(reference, "path", None) or reference or "")
    found = _VERSIONED_ID.search(text)
    if found:
        return f"{found.group(1)}:{found.group(2)}"
    return text.removeprefix(AZUREML_PREFIX)
