"""--preflight: an Azure deployment tried on the local target first, in seconds, before twenty minutes of image build.

The exact model (downloaded through the SDK when it is registered), code and environment (its conda file, from the
workspace when it is registered there) are deployed under a throw-away endpoint in a temporary local home; the
sample request (or --preflight_request) must get a 2xx. Whatever happens, the throw-away endpoint is stopped and
its folder removed. Only reads reach Azure before the preflight passes.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import references
from common.azure.surface import Client
from common.cli import progress
from common.control.failures import failure_details
from common.errors import CliError, DeploymentFailedError
from common.local import environments
from common.target import Target


class PreflightFailed(DeploymentFailedError):
    """The deployment failed on the local target: it would have failed in Azure, after the image build."""


@dataclass(frozen=True)
class PreflightRequest:
    """What to try: the deployment's name, and the request that must get a 2xx."""

    deployment_name: str
    request_file: Path


Environment = tuple[str, dict[str, Any]] | None  # (label, conda document); None: an MLflow model's own (no-code)


def conda_definition(
    client: Client, environment: references.EnvironmentRef | None, conda_file: Path | None
) -> Environment:
    """The label and conda document of the environment the Azure deployment will use (reads only): `conda_file`
    when the deployment registers the environment from it, an inline environment's own, else the workspace's."""
    if environment is None:
        return None
    if isinstance(environment, references.InlineEnvironment):
        return environment.label, environment.conda
    if conda_file is not None:
        import yaml

        return f"{environment.name} (from {conda_file})", yaml.safe_load(conda_file.read_text())
    registered = client.environments.get(environment.name, version=environment.version)
    conda = registered.conda_file
    if not isinstance(conda, dict):
        raise CliError(
            f"environment {environment.arm_reference} has no conda file (an image-only environment): the preflight "
            "cannot rebuild it on this machine; deploy without --preflight, or use an environment built from a "
            "conda file (--create_environment)"
        )
    return environment.arm_reference, conda


def run(
    client: Client,
    request: PreflightRequest,
    model: references.ModelRef,
    environment: Environment,
    planned: Any,
    local_target: Target,
) -> float:
    """Deploy and call on the local target; PreflightFailed (nothing sent to Azure) unless it answers a 2xx.
    `planned` is the deployment Azure will get: its settings (request settings, probes, environment variables) and
    size are the ones tried. Returns the seconds it took."""
    started = time.monotonic()
    label = environment[0] if environment else "the MLflow model's own (no-code deployment)"
    if environment is not None:
        environments.read_conda(environment[1], f"the conda file of {label}")  # refused before anything is built
    request_file = request.request_file
    progress(f"Preflight: deploying {request.deployment_name} on the local target first (environment {label})")
    with tempfile.TemporaryDirectory(prefix="azureml-preflight-") as folder, _shared_environments():
        home = Path(folder)
        model_path = _local_model(client, model, home / "model")
        _deploy_and_call(home, request, model_path, environment, planned, local_target)
    seconds = time.monotonic() - started
    progress(
        f"Preflight passed in {seconds:.1f} s: {request.deployment_name} answered {request_file} on the local target"
    )
    return seconds


@contextlib.contextmanager
def _shared_environments() -> Iterator[None]:
    """Build into the user's environment cache, not the temporary home: the next preflight starts in seconds."""
    from common.local.state import default_home

    previous = os.environ.get(environments.ENVIRONMENTS_VARIABLE)
    os.environ[environments.ENVIRONMENTS_VARIABLE] = str(environments.root(default_home()))
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(environments.ENVIRONMENTS_VARIABLE, None)
        else:
            os.environ[environments.ENVIRONMENTS_VARIABLE] = previous


def _local_model(client: Client, model: references.ModelRef, folder: Path) -> Path:
    if isinstance(model, references.LocalModel):
        return Path(model.path)
    if model.version is None:  # resolve_model gave it one: a reference still without one is the toolkit's error
        raise CliError(f"model {model.arm_reference} has no version to download for the preflight")
    progress(f"  downloading model {model.arm_reference}")
    folder.mkdir(parents=True)
    client.models.download(name=model.name, version=model.version, download_path=str(folder))
    return folder


def _deploy_and_call(
    home: Path,
    request: PreflightRequest,
    model_path: Path,
    environment: Environment,
    planned: Any,
    local_target: Target,
) -> None:
    from azure.ai.ml.entities import (
        Environment,
        ManagedOnlineDeployment,
        ManagedOnlineEndpoint,
        Model,
    )

    from common import scoring
    from common.local.client import LocalMLClient

    local = LocalMLClient(home=home, target=local_target)
    endpoint = f"preflight-{secrets.token_hex(4)}"
    environment_reference = None
    if environment is not None:
        local.environments.create_or_update(Environment(name="preflight", version="1", conda_file=environment[1]))
        environment_reference = "azureml:preflight:1"
    local.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name=endpoint, auth_mode="key")).result()
    try:
        deployment = ManagedOnlineDeployment(
            name=request.deployment_name,
            endpoint_name=endpoint,
            model=Model(path=str(model_path), type=getattr(planned.model, "type", None) or "custom_model"),
            environment=environment_reference,
            code_configuration=planned.code_configuration,  # None: an MLflow model without code
            instance_type=planned.instance_type,
            instance_count=planned.instance_count,
            request_settings=planned.request_settings,
            liveness_probe=planned.liveness_probe,
            readiness_probe=planned.readiness_probe,
            environment_variables=dict(planned.environment_variables or {}),
        )
        try:
            local.online_deployments.begin_create_or_update(deployment).result()
        except Exception as error:
            raise _failed(local, endpoint, request.deployment_name, f"it did not start ({error})") from None
        try:
            scoring.score(
                local, endpoint, request.request_file.read_bytes(), request.deployment_name, target=local_target
            )
        except CliError as error:
            raise _failed(
                local, endpoint, request.deployment_name, f"{request.request_file} was refused: {error}"
            ) from None
    finally:
        with contextlib.suppress(Exception):
            local.online_endpoints.begin_stop(endpoint).result()


def _failed(local: Any, endpoint: str, deployment: str, why: str) -> PreflightFailed:
    closing = ["Nothing was sent to Azure. Fix it and run the same command again."]
    details = failure_details(local, deployment, endpoint, "server log on the local target", closing)
    return PreflightFailed(f"preflight of {deployment} failed: {why}", details=details)
