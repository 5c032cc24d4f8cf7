"""The local model registry and registered environments (models and environments of the local target)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.local import environments
from common.local.operations import (
    ROOT,
    copy_into,
    not_found,
)
from common.local.state import (
    LocalStore,
    read_json,
    write_json,
)


class LocalModels:
    """A model registry: azureml:NAME:VERSION resolves to models/NAME/VERSION, versions counted up from 1."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Any:
        from azure.ai.ml.entities import Model

        versions = self.store.model_versions(name)
        chosen = str(versions[-1]) if (label == "latest" or version is None) and versions else version
        if not chosen or not self.store.model_dir(name, chosen).is_dir():
            wanted = f"version {version}" if version else "any version"
            raise not_found(f"local model {name!r} ({wanted}) is not registered")
        return Model(name=name, version=chosen, path=str(self.store.model_dir(name, chosen)), type="custom_model")

    def create_or_update(self, model: Any) -> Any:
        with self.store.lock(f"models.{model.name}"):  # '.' is not allowed in endpoint names: no clash
            versions = self.store.model_versions(model.name)
            version = str(model.version or (versions[-1] + 1 if versions else 1))
            target = self.store.model_dir(model.name, version)
            target.mkdir(parents=True, exist_ok=False)
            copy_into(Path(model.path), target)
        return self.get(model.name, version=version)

    def download(self, name: str, version: str, download_path: str = ".") -> None:
        """Copy a registered model under download_path/NAME, as azure-ai-ml's download lays it out."""
        source = Path(self.get(name, version=version).path)
        target = Path(download_path) / name
        target.mkdir(parents=True, exist_ok=True)
        for item in source.iterdir():
            copy_into(item, target)


class LocalEnvironments:
    """Registered environments: create_or_update records the conda file; a deployment runs in a virtual environment
    built from it (common/local/environments.py). An environment never registered locally is the repository's
    environment.yml, as the deployment script would register it."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store

    def _record(self, name: str) -> Path:
        return self.store.home / "environments" / f"{name}.json"

    def _recorded(self, name: str) -> dict[str, Any]:
        return read_json(self._record(name)) if self._record(name).is_file() else {}

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Any:
        from azure.ai.ml.entities import Environment

        recorded = self._recorded(name)
        return Environment(
            name=name,
            version=version or recorded.get("version", "1"),
            image=recorded.get("image", "local-python"),
            conda_file=recorded.get("conda"),
            description="a virtual environment built from its conda file",
        )

    def create_or_update(self, environment: Any) -> Any:
        conda = environment.conda_file if isinstance(environment.conda_file, dict) else None
        if conda is not None:
            environments.read_conda(conda, f"the conda file of environment {environment.name}")  # refused now
        previous = self._recorded(environment.name)
        version = str(environment.version or previous.get("version", "1"))
        if not environment.version and previous and previous.get("conda") != conda:
            version = str(int(previous.get("version", "1")) + 1)  # as Azure: a changed definition, a new version
        record = {"version": version, "image": environment.image, "conda": conda}
        write_json(self._record(environment.name), record)
        return self.get(environment.name, version=version)

    def definition(self, reference: Any) -> tuple[str, environments.CondaSpec]:
        """The label and conda definition a deployment's environment reference stands for."""
        text = str(reference or "").removeprefix("azureml:")
        name = text.split("@")[0].split(":")[0] or "environment.yml"
        recorded = self._recorded(name)
        if recorded.get("conda"):
            label = f"{name}:{recorded.get('version', '1')}"
            return label, environments.read_conda(recorded["conda"], f"the conda file of environment {label}")
        conda_file = ROOT / "environment.yml"
        return f"{name} ({conda_file.name})", environments.load_conda_file(conda_file)
