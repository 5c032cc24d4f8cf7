"""Resolving model and environment references against the workspace (or the local registry)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.azure.surface import Client
from common.control.lookups import get_or_none
from common.errors import NotFoundError
from common.references import AssetRef, ModelRef, asset_key

if TYPE_CHECKING:
    from common.target import Target

# Azure's image for conda-file environments, as in the Azure ML examples: it has conda, so Azure can build
# environment.yml on top of it, and nothing of ours; the inference server comes from environment.yml's own pins.
# A dated tag (the README says how to pick a newer one): ":latest" would build a different image next month.
DEFAULT_BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:20250601.v1"
MODEL_NAME = "diabetes-predict"


def _resolve(operations: Any, kind: str, ref: AssetRef, how_to_register: str) -> AssetRef:
    """The reference with a concrete version; NotFoundError says how to register the asset."""
    found = (
        get_or_none(operations.get, ref.name, label="latest")
        if ref.version is None
        else get_or_none(operations.get, ref.name, version=ref.version)
    )
    if found is None:
        wanted = "any version" if ref.version is None else f"version {ref.version}"
        raise NotFoundError(f"{kind} {ref.name!r} ({wanted}) not found in the workspace; {how_to_register}")
    return ref.with_version(str(found.version))


def resolve_model(client: Client, ref: AssetRef, *, target: Target) -> AssetRef:
    register = target.register_model(ref.name)
    return _resolve(client.models, "model", ref, f"register one with: {register}")


def resolve_environment(client: Client, ref: AssetRef) -> AssetRef:
    return _resolve(
        client.environments, "environment", ref, "add --create_environment to register it from environment.yml"
    )


def build_environment(ref: AssetRef, conda_file: Path, base_image: str) -> Any:
    from azure.ai.ml.entities import Environment

    return Environment(
        name=ref.name,
        version=ref.version,
        conda_file=str(conda_file),
        image=base_image,
        description="Diabetes classifier serving environment (environment.yml on the Azure ML base image)",
    )


def register_environment(client: Client, environment: Any) -> AssetRef:
    """Create the environment, or a new version of it when environment.yml or the image changed."""
    registered = client.environments.create_or_update(environment)
    return AssetRef(registered.name, str(registered.version))


def is_toolkit_model(model: ModelRef) -> bool:
    """The registered diabetes-predict, or a folder train_model.py wrote (its metadata.json lists the 8 features)."""
    if isinstance(model, AssetRef):
        return model.name == MODEL_NAME
    from common.training import FEATURES, METADATA_FILE

    metadata = model.path / METADATA_FILE if model.path.is_dir() else model.path.with_name(METADATA_FILE)
    try:
        return bool(json.loads(metadata.read_text()).get("features") == list(FEATURES))
    except (OSError, ValueError, AttributeError):
        return False


def latest_note(asked: AssetRef, resolved: AssetRef, existing: Any) -> str | None:
    """What @latest (or a name without a version) turned out to be, said before it replaces another version."""
    if asked.version is not None:
        return None
    note = f"Model {asked.name}@latest is version {resolved.version}"
    if existing is None:
        return note
    name, _, running = asset_key(existing.model).partition(":")
    if name == resolved.name and running and running != resolved.version:
        return (
            f"{note}; {existing.name} runs version {running} now and moves to {resolved.version} (to keep it, "
            f"give --model_path azureml:{name}:{running})"
        )
    return note
