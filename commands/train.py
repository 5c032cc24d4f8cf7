"""train_model.py: train the diabetes classifier, save it as a model folder, optionally register it.

The script is a dispatcher; its docstring is the --help text this module prints.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from commands import Request, Result
from common import validation
from common.assets import MODEL_NAME
from common.azure.surface import Client
from common.cli import add_flag
from common.control.lookups import get_or_none
from common.errors import UsageError
from common.training import MIN_ROWS, TrainingResult, load_dataset, synthetic_dataset, train

DEFAULT_OUTPUT = Path("outputs") / "diabetes-model"


@dataclass(frozen=True, kw_only=True)
class TrainRequest(Request):
    data: Path | None  # None: synthetic data
    rows: int
    output_dir: Path
    register: bool
    model_name: str

    @property
    def needs_client(self) -> bool:
        return self.register  # training alone contacts nothing


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "--data", type=Path, help="CSV with the 8 feature columns and Diabetic (default: synthetic data)")
    add_flag(parser, "--rows", type=int, default=5000, help="rows of synthetic data (default: %(default)s)")
    add_flag(parser, "--output_dir", type=Path, default=DEFAULT_OUTPUT, help="model folder (default: %(default)s)")
    add_flag(parser, "--register", action="store_true", help="register the model folder in the workspace")
    add_flag(parser, "--model_name", default=MODEL_NAME, help="registered model name (default: %(default)s)")


def validate(args: argparse.Namespace) -> TrainRequest:
    if args.rows < MIN_ROWS:
        raise UsageError(f"invalid --rows {args.rows}: training needs at least {MIN_ROWS}")
    validation.asset_name("model", args.model_name)
    return TrainRequest.of(
        args,
        data=args.data,
        rows=args.rows,
        output_dir=args.output_dir,
        register=args.register,
        model_name=args.model_name,
    )


def prepare_output(folder: Path) -> None:
    """Create the model folder before minutes of training; one line when it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UsageError(f"--output_dir {str(folder)!r} cannot be written: {error.strerror}") from None


def register(client: Client, result: TrainingResult, name: str) -> str:
    """Register the folder as the next version of `name`; returns that version."""
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.entities import Model

    model = Model(
        path=str(result.model_dir),
        name=name,
        type=AssetTypes.CUSTOM_MODEL,
        description=f"Diabetes classifier trained on {result.source}",
        tags={"holdout_accuracy": f"{result.holdout_accuracy:.4f}"},
    )
    return str(client.models.create_or_update(model).version)


def run(client: Client, request: TrainRequest) -> Result:
    if client is not None:  # the credential and workspace are tried before any training (a read, nothing written)
        get_or_none(client.models.get, request.model_name, label="latest")
    prepare_output(request.output_dir)
    if request.data:
        frame, source = load_dataset(request.data), request.data.name
    else:
        frame, source = synthetic_dataset(request.rows), f"synthetic data ({request.rows} rows)"
    result = train(frame, request.output_dir, source)
    summary = {
        "model_dir": str(result.model_dir),
        "trained_on": result.source,
        "rows": result.rows,
        "holdout_accuracy": round(result.holdout_accuracy, 4),
    }
    lines = [f"Trained on {result.source}: holdout accuracy {result.holdout_accuracy:.3f}", f"Saved {result.model_dir}"]
    if client is not None:
        version = register(client, result, request.model_name)
        summary["registered"] = f"azureml:{request.model_name}:{version}"
        lines.append(f"Registered azureml:{request.model_name}:{version}")
    return Result(summary, lines)
