"""create_online_deployment.py's request: its flags, the az ml deployment YAML file they override (--file), and
every check that needs no Azure, made into a CreateDeploymentRequest."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commands import DeploymentRequest
from commands.shared import SAMPLE_REQUEST
from common import deployment_settings, references, specs, validation
from common.assets import DEFAULT_BASE_IMAGE, MODEL_NAME, is_toolkit_model
from common.azure.skus import canonical, instance_type_warning
from common.cli import add_flag, add_name_flag, add_timeout_flag, warn
from common.errors import UsageError

DEFAULT_SCORING_SCRIPT = "score.py"
TOOLKIT_CODE = str(Path(SAMPLE_REQUEST).parent)  # the toolkit's own score.py, for its own model
CREATE_SIZE = ("Standard_DS3_v2", 1)  # a new deployment's size when the flags leave it out
CREATE_TYPE, CREATE_COUNT = CREATE_SIZE


@dataclass(frozen=True, kw_only=True)
class CreateDeploymentRequest(DeploymentRequest):
    """The flags, checked and parsed: references and settings as the library takes them."""

    file: Path | None  # the --file the request was read from
    model: references.ModelRef
    environment: references.EnvironmentRef | None  # None: an MLflow model deployed without code (no-code)
    create_environment: bool
    conda_file: Path
    base_image: str
    score_path: str | None  # None with the environment: Azure's MLflow scoring script
    score_script: str
    instance_type: str | None  # None: a new deployment's default, or the existing deployment's own
    instance_count: int | None
    traffic_allocation: int | None  # None: traffic unchanged
    settings: deployment_settings.Requested
    no_wait: bool
    timeout_minutes: int
    dry_run: bool
    preflight: bool
    preflight_request: Path
    verbose: bool
    skip_capacity_check: bool

    @property
    def needs_client(self) -> bool:
        """A dry run contacts nothing, unless it is to preflight (reads the model and environment) or to check the
        capacity (reads the quota)."""
        return not self.dry_run or self.preflight or self.dry_run_checks_capacity

    @property
    def dry_run_checks_capacity(self) -> bool:
        """A dry run of an Azure deployment whose workspace is named reads the quota (a read, nothing written)."""
        return any(self.workspace.values()) and not self.target.local and not self.skip_capacity_check


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_name_flag(parser, "--deployment_name", help="3-32 letters, digits or hyphens (or the file's name:)")
    add_name_flag(parser, "--endpoint_name", help="an existing endpoint (or the file's endpoint_name:)")
    add_flag(
        parser,
        "--file",
        type=Path,
        help="an az ml deployment YAML file (managedOnlineDeployment schema); a flag given beside it overrides its "
        "value",
    )
    _add_asset_flags(parser)
    _add_size_flags(parser)
    deployment_settings.add_flags(parser)
    _add_run_flags(parser)


def _add_asset_flags(parser: argparse.ArgumentParser) -> None:
    """What is deployed: the model, the environment and the scoring code."""
    add_flag(
        parser,
        "--model_path",
        help="azureml:NAME:VERSION, azureml:NAME@latest, or a local model file or folder (uploaded; a folder with an "
        "MLmodel file is an MLflow model)",
    )
    add_flag(
        parser,
        "--environment",
        help="registered environment: NAME (latest), NAME:VERSION, azureml:... (an MLflow model without "
        "--score_path needs none)",
    )
    add_flag(
        parser,
        "--create_environment",
        action="store_true",
        help="register (or update) --environment from --conda_file on --base_image before deploying",
    )
    add_flag(parser, "--conda_file", default="environment.yml", help="conda file for --create_environment")
    add_flag(parser, "--base_image", default=DEFAULT_BASE_IMAGE, help="base image for --create_environment")
    add_flag(
        parser,
        "--score_path",
        help=f"folder uploaded as the code (default for the toolkit's own model only: {TOOLKIT_CODE})",
    )
    add_flag(parser, "--score_script", help=f"scoring script inside --score_path (default: {DEFAULT_SCORING_SCRIPT})")


def _add_size_flags(parser: argparse.ArgumentParser) -> None:
    """How big it is, and how much of the endpoint's traffic it takes."""
    add_flag(
        parser,
        "--instance_type",
        help=f"VM SKU (on create: {CREATE_TYPE}; on update: the deployment's own, which Azure does not change)",
    )
    add_flag(
        parser,
        "--instance_count",
        type=int,
        help=f"number of instances, 1-50 (on create: {CREATE_COUNT}; on update: the count Azure reports now)",
    )
    add_flag(
        parser,
        "--traffic_allocation",
        type=int,
        help="percent of live traffic for this deployment once it succeeds, 0-100 (default: traffic unchanged)",
    )


def _add_run_flags(parser: argparse.ArgumentParser) -> None:
    """How the command runs: waiting, --dry_run, the capacity check and the preflight."""
    add_flag(parser, "--no_wait", action="store_true", help="return once Azure accepted the deployment")
    add_timeout_flag(parser, default_minutes=90)
    add_flag(
        parser,
        "--dry_run",
        action="store_true",
        help="print the deployment YAML; contact nothing (with workspace flags: also the capacity check's result)",
    )
    add_flag(
        parser,
        "--skip_capacity_check",
        action="store_true",
        help="Azure: do not read the region's VM sizes and the subscription's quota before deploying",
    )
    add_flag(
        parser,
        "--preflight",
        action="store_true",
        help="try the deployment on the local target first; create it in Azure only if it answers",
    )
    add_flag(
        parser,
        "--preflight_request",
        default=SAMPLE_REQUEST,
        help="request the preflight sends (default: %(default)s)",
    )


def validate(args: argparse.Namespace) -> CreateDeploymentRequest:
    """Every check that needs no Azure, and the request they make of the flags and the --file they override."""
    written = None
    if args.file is not None:
        overrides = {"name": args.deployment_name, "endpoint_name": args.endpoint_name}
        written = specs.load_deployment(args.file, {**overrides, "instance_type": args.instance_type})
    deployment_name = validation.resource_name("deployment", _given(args, written, "deployment_name", "name"))
    endpoint_name = validation.resource_name("endpoint", _given(args, written, "endpoint_name", "endpoint_name"))
    model = (
        references.parse_model(args.model_path)
        if args.model_path is not None
        else _given(args, written, "model_path", "model")
    )
    environment, score_path, score_script = _code_and_environment(args, written, model)
    instance_count = args.instance_count
    if instance_count is None:
        instance_count = getattr(written, "instance_count", None)
    if instance_count is not None:
        validation.instance_count(instance_count)
    if args.traffic_allocation is not None:
        validation.percentage("--traffic_allocation", args.traffic_allocation)
    settings = _settings(args, written)
    _check_run_flags(args, environment)
    instance_type = args.instance_type or getattr(written, "instance_type", None)
    if instance_type is not None:
        sku_warning = instance_type_warning(instance_type)
        if sku_warning:
            warn(sku_warning)
        instance_type = canonical(instance_type)
    request = CreateDeploymentRequest.of(
        args,
        deployment_name=deployment_name,
        file=args.file,
        model=model,
        environment=environment,
        create_environment=args.create_environment,
        conda_file=Path(args.conda_file),
        base_image=args.base_image,
        score_path=score_path,
        score_script=score_script,
        instance_type=instance_type,
        instance_count=instance_count,
        traffic_allocation=args.traffic_allocation,
        settings=settings,
        no_wait=args.no_wait,
        timeout_minutes=args.timeout_minutes,
        dry_run=args.dry_run,
        preflight=args.preflight,
        preflight_request=Path(args.preflight_request),
        verbose=args.verbose,
        skip_capacity_check=args.skip_capacity_check,
    )
    return dataclasses.replace(request, endpoint_name=endpoint_name)


def _code_and_environment(
    args: argparse.Namespace, written: Any, model: references.ModelRef
) -> tuple[references.EnvironmentRef | None, str | None, str]:
    """The environment, the code folder and the scoring script: from the flags over the file; the toolkit's own
    code for its own model; none of them for an MLflow model deployed without code."""
    environment = getattr(written, "environment", None)
    if args.environment is not None:
        environment = references.parse_environment(args.environment)
    score_path = args.score_path or getattr(written, "code", None)
    score_script = args.score_script or getattr(written, "scoring_script", None) or DEFAULT_SCORING_SCRIPT
    if score_path is not None:
        validation.scoring_code(score_path, score_script)
    elif not _mlflow(model):
        score_path = code_for(model, args.model_path or str(getattr(model, "path", model)))
    elif environment is not None:
        raise UsageError(
            "an MLflow model deployed with an environment needs its scoring code too (--score_path); leave both out "
            "for Azure's no-code deployment"
        )
    if environment is None and score_path is not None:
        raise UsageError(
            "give --environment (or --file with an environment:): only an MLflow model deployed without code needs none"
        )
    return environment, score_path, score_script


def _settings(args: argparse.Namespace, written: Any) -> deployment_settings.Requested:
    """The request settings, probes, variables and data collection: the flags over the file's."""
    settings = deployment_settings.parse(
        request_timeout_ms=args.request_timeout_ms,
        max_concurrent_requests_per_instance=args.max_concurrent_requests_per_instance,
        liveness_probe=args.liveness_probe,
        readiness_probe=args.readiness_probe,
        env=args.env,
        app_insights=args.app_insights,
        egress_public_network=args.egress_public_network,
        data_collection=args.data_collection,
        sampling_rate=args.sampling_rate,
    )
    if written is not None:
        settings = deployment_settings.overriding(settings, written.settings)
    return settings


def _check_run_flags(args: argparse.Namespace, environment: references.EnvironmentRef | None) -> None:
    """--create_environment and --preflight, with what they need."""
    if args.create_environment and not isinstance(environment, references.AssetRef):
        raise UsageError("--create_environment registers --environment NAME from --conda_file: give --environment")
    if args.create_environment and not Path(args.conda_file).is_file():
        raise UsageError(f"--conda_file {args.conda_file!r} not found: --create_environment needs a conda file")
    if args.preflight and args.local:
        raise UsageError(
            "--preflight tries an Azure deployment on the local target first; with --local there is no need"
        )
    if args.preflight:
        validation.request_file(Path(args.preflight_request), "--preflight_request")


FILE_FIELDS = {"deployment_name": "name:", "endpoint_name": "endpoint_name:", "model_path": "model:"}


def _given(args: argparse.Namespace, written: specs.DeploymentFile | None, flag: str, field: str) -> Any:
    """The flag's value, else the file's; one line saying both are missing."""
    value = getattr(args, flag, None)
    if value is None and written is not None:
        value = getattr(written, field)
    if value is None:
        raise UsageError(f"give --{flag}, or --file with {FILE_FIELDS[flag]} (an az ml deployment YAML file)")
    return value


def _mlflow(model: references.ModelRef) -> bool:
    """An MLflow model with no code is deployed as Azure's no-code deployment (its own scoring and environment)."""
    return isinstance(model, references.LocalModel) and model.is_mlflow


def code_for(model: references.ModelRef, given: str) -> str:
    """--score_path left out: the toolkit's own code, for the toolkit's own model only. Its score.py would load any
    other model and answer for the diabetes features, so anything else must name its code."""
    if is_toolkit_model(model):
        return TOOLKIT_CODE
    raise UsageError(
        f"--score_path is needed: --model_path {given!r} is not the toolkit's {MODEL_NAME}, and {TOOLKIT_CODE}'s "
        "score.py serves only that model; give the folder of your scoring code (and --score_script); an MLflow "
        "model folder (with its MLmodel file) needs none"
    )
