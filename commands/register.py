"""register: your own model file or folder registered as NAME (the next version, or --version), in the workspace or
in the local registry: what `az ml model create --name NAME --path PATH` does."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from commands import Request, Result
from common import validation
from common.azure.surface import Client
from common.cli import add_flag
from common.errors import UsageError

MLFLOW_MODEL_FILE = "MLmodel"  # an MLflow model folder holds it (Azure registers such a folder as mlflow_model)
MODEL_TYPES = ("custom_model", "mlflow_model")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "--name", required=True, help="the model's name: letters, digits, '-', '_' or '.'")
    add_flag(parser, "--path", required=True, help="the model file or folder to register (copied as it is)")
    add_flag(parser, "--version", help="the version to register (default: the next one)")
    add_flag(
        parser,
        "--type",
        choices=MODEL_TYPES,
        help=f"the model's type (default: mlflow_model for a folder with an {MLFLOW_MODEL_FILE} file, else "
        "custom_model)",
    )
    add_flag(parser, "--description", help="free text shown with the model")


@dataclass(frozen=True, kw_only=True)
class RegisterRequest(Request):
    name: str
    path: Path
    version: str | None
    type: str
    description: str | None


def validate(args: argparse.Namespace) -> RegisterRequest:
    validation.asset_name("model", args.name)
    if args.version is not None:
        validation.asset_version("model", args.version)
    path = Path(args.path)
    if not path.exists():
        raise UsageError(f"--path {args.path!r} does not exist: give the model file or folder to register")
    kind = args.type or ("mlflow_model" if (path / MLFLOW_MODEL_FILE).is_file() else "custom_model")
    if kind == "mlflow_model" and not (path / MLFLOW_MODEL_FILE).is_file():
        raise UsageError(f"--type mlflow_model needs a folder with an {MLFLOW_MODEL_FILE} file; {args.path!r} has none")
    return RegisterRequest.of(
        args, name=args.name, path=path, version=args.version, type=kind, description=args.description
    )


def run(client: Client, request: RegisterRequest) -> Result:
    from azure.ai.ml.entities import Model

    model = Model(
        name=request.name,
        version=request.version,
        path=str(request.path),
        type=request.type,
        description=request.description,
    )
    registered = client.models.create_or_update(model)
    reference = f"azureml:{registered.name}:{registered.version}"
    where = "the local registry" if request.target.local else "the workspace"
    data = {"name": registered.name, "version": str(registered.version), "type": request.type, "model": reference}
    return Result(
        data,
        [
            f"Registered {reference} ({request.type}) from {request.path} in {where}",
            "Next: deploy it with your code and environment:",
            "  "
            + request.target.command(
                "create_online_deployment.py",
                *("--endpoint_name", "ENDPOINT", "--deployment_name", "DEPLOYMENT", "--model_path", reference),
                *("--environment", "ENVIRONMENT", "--score_path", "CODE_FOLDER", "--score_script", "score.py"),
            ),
        ],
    )
