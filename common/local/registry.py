"""The local model registry and registered environments (models and environments of the local target)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.local import environments
from common.local.operations import (
    ROOT,
    copy_into,
    not_found,
    refused,
)
from common.local.state import (
    LocalStore,
    read_json,
    read_json_or_none,
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
        record = read_json_or_none(self._record(name, chosen)) or {}
        return Model(
            name=name,
            version=chosen,
            path=str(self.store.model_dir(name, chosen)),
            type=record.get("type", "custom_model"),
            description=record.get("description"),
        )

    def create_or_update(self, model: Any) -> Any:
        """The model's file or folder copied as the next version (or the one given); a registered version never
        changes (as in Azure: 409)."""
        with self.store.lock(f"models.{model.name}"):  # '.' is not allowed in endpoint names: no clash
            versions = self.store.model_versions(model.name)
            version = str(model.version or (versions[-1] + 1 if versions else 1))
            target = self.store.model_dir(model.name, version)
            if target.exists():
                raise refused(
                    f"local model {model.name!r} version {version} already exists, and a registered version does not "
                    "change: leave the version out to register the next one",
                    409,
                )
            target.mkdir(parents=True)
            copy_into(Path(model.path), target)
            write_json(
                self._record(model.name, version),
                {"type": model.type or "custom_model", "description": model.description},
            )
        return self.get(model.name, version=version)

    def register_inline(self, model: Any) -> Any:
        """A model a deployment YAML file writes inline with a name and version, registered as azure-ai-ml registers
        it before the deployment: that version, or the one already registered when it holds the same files (a
        registered version never changes: other files are refused, 409)."""
        with self.store.lock(f"models.{model.name}"):
            existing = self.store.model_dir(model.name, str(model.version))
            if not existing.exists():
                return self.create_or_update(model)
            source = Path(model.path)
            if not same_files(source, existing / source.name):
                raise refused(
                    f"local model {model.name!r} version {model.version} is registered with other files than "
                    f"{source}: a registered version does not change; give the file's model another version:",
                    409,
                )
        return self.get(model.name, version=str(model.version))

    def _record(self, name: str, version: str) -> Path:
        """What else was registered with the version (its type, its description), beside its folder."""
        return self.store.model_dir(name, version).with_name(f"{version}.json")

    def download(self, name: str, version: str, download_path: str = ".") -> None:
        """Copy a registered model under download_path/NAME, as azure-ai-ml's download lays it out."""
        source = Path(self.get(name, version=version).path)
        target = Path(download_path) / name
        target.mkdir(parents=True, exist_ok=True)
        for item in source.iterdir():
            copy_into(item, target)


def same_files(one: Path, other: Path) -> bool:
    """Whether two files, or two folders' every file, have the same bytes."""
    import filecmp

    if one.is_file() or other.is_file():
        return one.is_file() and other.is_file() and filecmp.cmp(one, other, shallow=False)
    if not one.is_dir() or not other.is_dir():
        return False
    names = sorted(str(p.relative_to(one)) for p in one.rglob("*") if p.is_file())
    if names != sorted(str(p.relative_to(other)) for p in other.rglob("*") if p.is_file()):
        return False
    return all(filecmp.cmp(one / name, other / name, shallow=False) for name in names)


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
        """The label and conda definition a deployment's environment stands for: a registered one's reference, or
        an inline Environment (a YAML file's environment: {conda_file, image}), built from its conda file."""
        if reference is not None and not isinstance(reference, str):
            label = f"inline environment {environments.short_hash(reference.conda_file)}"
            if not isinstance(reference.conda_file, dict):
                raise refused(f"the {label} has no conda file: the local target builds environments from conda files")
            return label, environments.read_conda(reference.conda_file, f"the conda file of the {label}")
        text = str(reference or "").removeprefix("azureml:")
        name = text.split("@")[0].split(":")[0] or "environment.yml"
        recorded = self._recorded(name)
        if recorded.get("conda"):
            label = f"{name}:{recorded.get('version', '1')}"
            return label, environments.read_conda(recorded["conda"], f"the conda file of environment {label}")
        conda_file = ROOT / "environment.yml"
        return f"{name} ({conda_file.name})", environments.load_conda_file(conda_file)
