"""`az ml` YAML files read with azure-ai-ml's own loaders, their failures as one line naming the file and the field."""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import deployment_settings, references
from common.errors import UsageError
from common.monitoring import capture

YAML_REFERENCE = "https://aka.ms/ml-cli-v2-endpoint-online-yaml-reference"


def load_endpoint(path: Path) -> Any:
    """The ManagedOnlineEndpoint the file describes (as `az ml online-endpoint create -f` reads it)."""
    from azure.ai.ml import load_online_endpoint

    return _loaded(load_online_endpoint, path)


@dataclass(frozen=True)
class DeploymentFile:
    """What a deployment YAML file sets, in the terms the deployment command takes (None: the file leaves it out);
    relative paths resolved from the file's folder, as az ml resolves them."""

    path: Path
    name: str | None
    endpoint_name: str | None
    model: references.ModelRef | None
    environment: references.EnvironmentRef | None
    code: str | None
    scoring_script: str | None
    instance_type: str | None
    instance_count: int | None
    settings: deployment_settings.Requested


def load_deployment(path: Path, overrides: dict[str, Any] | None = None) -> DeploymentFile:
    """The deployment the file describes, with the values given beside it (as `az ml online-deployment create -f
    --name ...` reads it: its flags are the loader's params_override, so a file may leave out what they give)."""
    from azure.ai.ml import load_online_deployment

    given = {field: value for field, value in (overrides or {}).items() if value is not None}
    deployment = _loaded(load_online_deployment, path, params_override=[given] if given else None)
    if type(deployment).__name__ != "ManagedOnlineDeployment":
        raise UsageError(
            f"--file {str(path)!r} describes a {type(deployment).__name__}: the toolkit deploys to managed online "
            "endpoints (no `type: kubernetes`)"
        )
    code = getattr(deployment.code_configuration, "code", None)
    written = _written(path)
    return DeploymentFile(
        path=path,
        name=deployment.name,
        endpoint_name=deployment.endpoint_name,
        model=_model(path, deployment.model),
        environment=_environment(path, deployment.environment, written),
        code=str(_from_folder(path, code)) if code else None,
        scoring_script=getattr(deployment.code_configuration, "scoring_script", None),
        instance_type=deployment.instance_type,
        instance_count=deployment.instance_count,
        settings=_settings(deployment, written),
    )


def _written(path: Path) -> dict[str, Any]:
    """The file as written: what it sets, before the loader fills in defaults and replaces a conda_file's path."""
    import yaml

    try:
        found = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return found if isinstance(found, dict) else {}


def _registered(reference: str) -> str:
    return reference if reference.startswith(references.AZUREML_PREFIX) else references.AZUREML_PREFIX + reference


def _from_folder(path: Path, relative: str | Path) -> Path:
    """A path the file names, from the file's folder (az ml's base path); URLs and absolute paths as they are."""
    return Path(relative) if Path(relative).is_absolute() else Path(os.path.normpath(path.parent / relative))


def _model(path: Path, model: Any) -> references.ModelRef | None:
    if model is None:
        return None
    if isinstance(model, str):  # azure-ai-ml drops the azureml: of a registered model's reference
        return references.parse_model(_registered(model), source=f"--file {str(path)!r} model:")
    if getattr(model, "path", None) is None:
        raise UsageError(f"--file {str(path)!r}: model: give azureml:NAME:VERSION or an inline model with a path:")
    where = _from_folder(path, str(model.path))
    if not where.exists():
        raise UsageError(f"--file {str(path)!r}: model: path {str(model.path)!r} not found (looked for {where})")
    anonymous = bool(getattr(model, "_is_anonymous", False))
    return references.LocalModel(
        where,
        str(model.type or "custom_model"),
        name=None if anonymous else model.name,
        version=None if anonymous or model.version is None else str(model.version),
    )


def _environment(path: Path, environment: Any, written: dict[str, Any]) -> references.EnvironmentRef | None:
    if environment is None:
        return None
    if isinstance(environment, str):
        return references.parse_environment(_registered(environment))
    conda = environment.conda_file if isinstance(environment.conda_file, dict) else None
    if conda is None:
        raise UsageError(
            f"--file {str(path)!r}: environment: an inline environment needs a conda_file: (and an image:); an "
            "image-only or Docker build environment is registered with az ml environment create and named here"
        )
    source = (
        (written.get("environment") or {}).get("conda_file") if isinstance(written.get("environment"), dict) else None
    )
    return references.InlineEnvironment(conda, environment.image, source=str(source or "its conda file"))


def _settings(deployment: Any, written: dict[str, Any]) -> deployment_settings.Requested:
    """The settings the file writes (None for those it leaves out: an update keeps the deployment's own, not the
    loader's defaults); probes and request settings field by field, as the flags take them."""

    def fields(entity: Any, names: tuple[str, ...]) -> dict[str, int] | None:
        found = {name: int(getattr(entity, name)) for name in names if getattr(entity, name, None) is not None}
        return found or None

    requests = deployment.request_settings
    collection = capture.of_deployment(deployment)
    return deployment_settings.Requested(
        request_timeout_ms=getattr(requests, "request_timeout_ms", None),
        max_concurrent_requests_per_instance=getattr(requests, "max_concurrent_requests_per_instance", None),
        liveness_probe=fields(deployment.liveness_probe, tuple(deployment_settings.AZURE_PROBE_DEFAULTS)),
        readiness_probe=fields(deployment.readiness_probe, tuple(deployment_settings.AZURE_PROBE_DEFAULTS)),
        environment_variables=dict(deployment.environment_variables) if deployment.environment_variables else None,
        app_insights_enabled=deployment.app_insights_enabled if "app_insights_enabled" in written else None,
        egress_public_network_access=deployment.egress_public_network_access
        if "egress_public_network_access" in written
        else None,
        data_collection=collection if collection.enabled else None,
    )


def _loaded(loader: Any, path: Path, **options: Any) -> Any:
    from marshmallow.exceptions import ValidationError

    # azure-ai-ml notes that some of its own schema classes are experimental while it reads a file: nothing the user
    # wrote, so not theirs to read
    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)

    if not path.is_file():
        raise UsageError(f"--file {str(path)!r} is not a file: give an az ml YAML file")
    try:
        return loader(source=str(path), **options)
    except ValidationError as error:  # the schema's findings: one "field: what is wrong" each
        raise UsageError(f"--file {str(path)!r}: {schema_findings(error)} (see {YAML_REFERENCE})") from None
    except Exception as error:  # azure-ai-ml's ValidationException: YAML that does not parse
        if type(error).__name__ != "ValidationException":
            raise
        said = " ".join(str(error).split())
        raise UsageError(
            f"--file {str(path)!r} is not valid YAML: {said.removeprefix('Error while parsing yaml file: ')}"
        ) from None


def schema_findings(error: Any) -> str:
    """'auth_mode: Value 'banana' ...; foo: Unknown field.' from the JSON block azure-ai-ml puts in its message."""
    text = " ".join(str(message) for message in (getattr(error, "messages", None) or [str(error)]))
    block = re.search(r"\{.*\}", text, re.DOTALL)
    try:
        found = json.loads(block.group(0)) if block else {}
    except ValueError:
        found = {}
    if not isinstance(found, dict) or not found:
        return " ".join(text.split())[:300]
    return "; ".join(f"{field}: {_finding(' '.join(map(str, _flat(problems))))}" for field, problems in found.items())


def _finding(text: str) -> str:
    """One field's findings; a path that is not there said as such (the schema tries each form a field may take, and
    its 'please provide the correct registry path' notes only bury that)."""
    missing = re.search(r"No such file or directory: \\?'([^'\\]+)", text)
    if missing:
        return f"path not found: {missing.group(1)}"
    return text


def _flat(problems: Any) -> list[Any]:
    if isinstance(problems, dict):
        return [f"{key}: {' '.join(map(str, _flat(value)))}" for key, value in problems.items()]
    return list(problems) if isinstance(problems, list) else [problems]
