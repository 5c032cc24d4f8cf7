"""--preflight: an Azure deployment tried on the local target first, in seconds, before twenty minutes of image build.

The exact model (downloaded through the SDK when it is registered), code and environment (its conda file, from the
workspace when it is registered there) are deployed under a throw-away endpoint in a temporary local home; the
sample request (or --preflight_request) must get a 2xx. Whatever happens, the throw-away endpoint is stopped and
its folder removed. Only reads reach Azure before the preflight passes.

tried_here is that trial on its own, for what else runs an Azure deployment here (size measures one in it), and
azure_deployment reads what it needs from a deployment Azure already has (its model, environment and code asset).
"""

from __future__ import annotations

import contextlib
import copy
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import references
from common.azure.surface import AzureClient, Client
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
    from common import scoring

    started = time.monotonic()
    with tried_here(client, request.deployment_name, model, environment, planned, local_target) as trial:
        try:
            body = request.request_file.read_bytes()
            scoring.score(trial.client, trial.endpoint_name, body, request.deployment_name, target=local_target)
        except CliError as error:
            raise trial.failed(f"{request.request_file} was refused: {error}") from None
    seconds = time.monotonic() - started
    progress(
        f"Preflight passed in {seconds:.1f} s: {request.deployment_name} answered {request.request_file} on the "
        "local target"
    )
    return seconds


@dataclass(frozen=True)
class Trial:
    """A deployment running on the local target under a throw-away endpoint, while tried_here's block runs."""

    client: Any  # the local target's LocalMLClient, in the trial's own home
    endpoint_name: str
    deployment_name: str
    purpose: str = "preflight"  # what the trial is for, in its messages

    def failed(self, why: str) -> PreflightFailed:
        closing = ["Nothing was sent to Azure. Fix it and run the same command again."]
        where = "server log on the local target"
        details = failure_details(self.client, self.deployment_name, self.endpoint_name, where, closing)
        return PreflightFailed(f"{self.purpose} of {self.deployment_name} failed: {why}", details=details)


@contextlib.contextmanager
def tried_here(
    client: Client,
    deployment_name: str,
    model: references.ModelRef,
    environment: Environment,
    planned: Any,
    local_target: Target,
    purpose: str = "preflight",
) -> Iterator[Trial]:
    """The deployment Azure gets (or has: `planned`) started on the local target in a temporary home; PreflightFailed
    when it does not start. Whatever happens, its endpoint is stopped and the home removed when the block ends."""
    label = environment[0] if environment else "the MLflow model's own (no-code deployment)"
    if environment is not None:
        environments.read_conda(environment[1], f"the conda file of {label}")  # refused before anything is built
    from common.local.client import LocalMLClient

    progress(f"{purpose.capitalize()}: deploying {deployment_name} on the local target first (environment {label})")
    with tempfile.TemporaryDirectory(prefix=f"azureml-{purpose}-") as folder, _shared_environments():
        home = Path(folder)
        model_path = _local_model(client, model, home / "model")
        trial = Trial(
            LocalMLClient(home=home, target=local_target), f"{purpose}-{secrets.token_hex(4)}", deployment_name, purpose
        )
        with _deployed(trial, model_path, environment, planned):
            yield trial


def azure_deployment(
    client: AzureClient, deployment: Any, folder: Path
) -> tuple[references.ModelRef, Environment, Any]:
    """What tried_here needs to run an existing Azure deployment here: its registered model and environment, and a
    copy of it whose code is its code asset downloaded into `folder` (reads only)."""
    from azure.ai.ml.entities import CodeConfiguration

    name = deployment.name
    model = references.registered_asset("models", deployment.model)
    if model is None:
        raise CliError(f"deployment {name}'s model {deployment.model} is not a workspace asset: cannot try it here")
    environment = None
    if deployment.environment is not None:  # None: an MLflow model served without code
        registered = references.registered_asset("environments", deployment.environment)
        if registered is None:
            raise CliError(f"deployment {name}'s environment {deployment.environment} is not a workspace asset")
        environment = conda_definition(client, registered, None)
    planned = copy.copy(deployment)
    planned.model = client.models.get(name=model.name, version=model.version)  # its type: an MLflow model has no code
    configuration = deployment.code_configuration
    if configuration is not None:
        code = references.registered_asset("codes", configuration.code)
        if code is None or code.version is None:
            raise CliError(f"deployment {name}'s code {configuration.code} is not a workspace asset")
        progress(f"  downloading code {code.name}:{code.version}")
        client._code.download(name=code.name, version=code.version, download_path=str(folder / "code"))
        planned.code_configuration = CodeConfiguration(
            code=str(folder / "code"), scoring_script=configuration.scoring_script
        )
    return model, environment, planned


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


@contextlib.contextmanager
def _deployed(trial: Trial, model_path: Path, environment: Environment, planned: Any) -> Iterator[None]:
    from azure.ai.ml.entities import (
        Environment,
        ManagedOnlineDeployment,
        ManagedOnlineEndpoint,
        Model,
    )

    local = trial.client
    environment_reference = None
    if environment is not None:
        local.environments.create_or_update(Environment(name="preflight", version="1", conda_file=environment[1]))
        environment_reference = "azureml:preflight:1"
    endpoint = ManagedOnlineEndpoint(name=trial.endpoint_name, auth_mode="key")
    local.online_endpoints.begin_create_or_update(endpoint).result()
    try:
        deployment = ManagedOnlineDeployment(
            name=trial.deployment_name,
            endpoint_name=trial.endpoint_name,
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
            raise trial.failed(f"it did not start ({error})") from None
        yield
    finally:
        with contextlib.suppress(Exception):
            local.online_endpoints.begin_stop(trial.endpoint_name).result()
