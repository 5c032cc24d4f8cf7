"""drift: a deployment's collected inputs (and predicted labels) against the distribution its model was trained on."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commands import DeploymentRequest, Result
from commands.shared import add_deployment_flag, deployment_states, endpoint_or_fail, require_deployments
from common import references, validation
from common.azure.surface import Client
from common.cli import add_flag
from common.control.lookups import get_deployment
from common.errors import CliError, UsageError
from common.monitoring import capture, collected, drift
from common.training import LABELS, METADATA_FILE

MAX_MINUTES = 7 * 24 * 60
DEFAULT_PLOT_FOLDER = Path("outputs")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_deployment_flag(parser, required=True)
    add_flag(parser, "--minutes", type=int, default=60, help="the window: the last N minutes (default: %(default)s)")
    add_flag(
        parser,
        "--include_previous",
        action="store_true",
        help="also count rows a deployment of the same name collected before this one was created",
    )
    add_flag(
        parser,
        "--plot",
        nargs="?",
        const="",
        metavar="FILE.png",
        help="also draw a histogram per feature, training against recent (no FILE: outputs/drift-DEPLOYMENT.png)",
    )


@dataclass(frozen=True, kw_only=True)
class DriftRequest(DeploymentRequest):
    minutes: int
    plot: Path | None
    include_previous: bool


def validate(args: argparse.Namespace) -> DriftRequest:
    validation.resource_name("deployment", args.deployment_name)
    if not 1 <= args.minutes <= MAX_MINUTES:
        raise UsageError(f"invalid --minutes {args.minutes}: use 1 to {MAX_MINUTES} (a week)")
    plot = validation.png_file(args.plot) if args.plot else None
    if args.plot == "":  # --plot alone: beside the trained model, in the folder the checkout ignores
        plot = DEFAULT_PLOT_FOLDER / f"drift-{args.deployment_name}.png"
    return DriftRequest.of(
        args,
        deployment_name=args.deployment_name,
        minutes=args.minutes,
        plot=plot,
        include_previous=args.include_previous,
    )


def training_distribution(client: Client, deployment: Any, local: bool) -> dict[str, Any]:
    """metadata.json's training_distribution of the deployment's model (train_model.py writes it)."""
    if local:
        model_dir = Path(deployment.properties.get("model_dir") or "")
        return _from_metadata(model_dir, str(deployment.model))
    name, _, version = references.asset_key(deployment.model).partition(":")
    if not version:
        raise CliError(f"deployment {deployment.name!r} uses model {deployment.model}, not a registered version")
    with tempfile.TemporaryDirectory() as folder:
        client.models.download(name=name, version=version, download_path=folder)
        return _from_metadata(Path(folder), f"{name}:{version}")


def _from_metadata(folder: Path, model: str) -> dict[str, Any]:
    found = sorted(folder.rglob(METADATA_FILE)) if folder.is_dir() else []
    recorded = json.loads(found[0].read_text()).get("training_distribution") if found else None
    if not recorded:
        raise CliError(
            f"model {model} has no training distribution in its {METADATA_FILE}: train it again with "
            "train_model.py (which records it) and deploy that version"
        )
    return dict(recorded)


def run(client: Client, request: DriftRequest) -> Result:
    endpoint = endpoint_or_fail(client, request)
    require_deployments([request.deployment_name], deployment_states(client, request.endpoint_name), request)
    name, endpoint_name = request.deployment_name, request.endpoint_name
    # None: gone since it was listed; the SDK's own get then says so, as for every command
    deployment = get_deployment(client, name, endpoint_name) or client.online_deployments.get(name, endpoint_name)
    until = time.time()
    since, shortened = capture.window_since(deployment, until - request.minutes * 60, request.include_previous)
    source = collected.source(client, endpoint, target=request.target)
    inputs = [
        row
        for record in source.records(request.deployment_name, "model_inputs", since, until)
        for row in capture.rows(record)
    ]
    outputs = [
        row.get(capture.OUTPUT_LABEL)
        for record in source.records(request.deployment_name, "model_outputs", since, until)
        for row in capture.rows(record)
    ]
    labels = [label for label in outputs if isinstance(label, str)]
    where = source.where(request.deployment_name)
    base = {"endpoint": request.endpoint_name, "deployment": request.deployment_name, "minutes": request.minutes}
    if len(inputs) < drift.MIN_ROWS:
        message = (
            f"too few collected rows for a drift figure: {len(inputs)} in the last {request.minutes} min, "
            f"{drift.MIN_ROWS} needed (model_inputs of {request.deployment_name} in {where}"
        )
        if not capture.of_deployment(deployment).enabled:
            message += "; it collects nothing: create_online_deployment.py --data_collection model_inputs,model_outputs"
        if shortened:
            message += f"; {shortened}"
        message += ")"
        found_nothing = {**base, "rows": len(inputs), "needed": drift.MIN_ROWS, "features": {}}
        return Result({**found_nothing, **({"window": shortened} if shortened else {})}, [message])
    recorded = training_distribution(client, deployment, request.target.local)
    found = drift.report(recorded, inputs, labels, LABELS)
    lines = [
        f"Drift of {request.deployment_name} on {request.endpoint_name}: {found.rows} collected rows of the last "
        f"{request.minutes} min against the training distribution (PSI: under {drift.WATCH} ok, {drift.WATCH} to "
        f"{drift.DRIFT} watch, {drift.DRIFT} and over drift)",
        *(f"  {f.name:24} PSI {f.index:7.3f}  {f.verdict}" for f in found.features),
    ]
    if found.labels is not None:
        shares = ", ".join(
            f"{n} {s:.1%} (training {t:.1%})"
            for n, s, t in zip(LABELS, found.labels.recent, found.labels.training, strict=True)
        )
        lines.append(f"  {'predicted labels':24} PSI {found.labels.index:7.3f}  {found.labels.verdict}: {shares}")
    else:
        lines.append("  predicted labels: n/a (model_outputs not collected)")
    if shortened:
        lines.append(f"  {shortened}")
    if found.not_finite:
        lines.append(f"  left out of the figures: {found.not_finite} values that are not finite numbers (NaN, inf)")
    data = {**base, **found.as_dict(), **({"window": shortened} if shortened else {})}
    said = collected.skipped_line(source.skipped)
    if said:
        lines.append(said)
        data["skipped"] = dict(source.skipped)
    if request.plot is not None:
        data["plot"] = str(write_plot(found, request))
        lines.append(f"Plot: {request.plot}")
    return Result(data, lines)


def write_plot(found: drift.DriftReport, request: DriftRequest) -> Path:
    """The PNG, or one line saying why it could not be written (an unwritable folder, a full disk)."""
    from common.monitoring.drift_plot import plot

    assert request.plot is not None
    title = f"{request.endpoint_name}/{request.deployment_name}: last {request.minutes} min vs training"
    try:
        request.plot.parent.mkdir(parents=True, exist_ok=True)  # outputs/ for --plot alone; a given folder exists
        return plot(found, request.plot, list(LABELS), title)
    except OSError as error:
        raise CliError(f"cannot write the plot to {str(request.plot)!r}: {error.strerror or error}") from None
