"""Where the local target keeps its state: one directory, JSON specs, keys readable by the owner only.

Layout under the home directory ($AZUREML_LOCAL_HOME, default ~/.azureml-local):
  endpoints/NAME/endpoint.json      spec, traffic, front door port and pid
  endpoints/NAME/keys.json          keys and token secret (mode 0600)
  endpoints/NAME/access.log         the front door's access log (no credentials)
  endpoints/NAME/frontdoor.log      the front door's own output
  endpoints/NAME/deployments/D/     deployment.json, server.log, code/ and model/ snapshots
  models/NAME/VERSION/              registered model folders
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

HOME_VARIABLE = "AZUREML_LOCAL_HOME"


def default_home() -> Path:
    configured = os.environ.get(HOME_VARIABLE)
    return Path(configured).expanduser() if configured else Path.home() / ".azureml-local"


def write_json(path: Path, data: Any, *, private: bool = False) -> None:
    """Write atomically (readers such as the front door never see half a file); private files get mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
        os.chmod(temporary, 0o600 if private else 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


class LocalStore:
    def __init__(self, home: Path) -> None:
        self.home = home

    def endpoint_dir(self, endpoint: str) -> Path:
        return self.home / "endpoints" / endpoint

    def endpoint_file(self, endpoint: str) -> Path:
        return self.endpoint_dir(endpoint) / "endpoint.json"

    def keys_file(self, endpoint: str) -> Path:
        return self.endpoint_dir(endpoint) / "keys.json"

    def deployment_dir(self, endpoint: str, deployment: str) -> Path:
        return self.endpoint_dir(endpoint) / "deployments" / deployment

    def deployment_file(self, endpoint: str, deployment: str) -> Path:
        return self.deployment_dir(endpoint, deployment) / "deployment.json"

    def model_dir(self, name: str, version: str) -> Path:
        return self.home / "models" / name / version

    def endpoints(self) -> list[str]:
        return sorted(p.parent.name for p in (self.home / "endpoints").glob("*/endpoint.json"))

    def deployments(self, endpoint: str) -> list[str]:
        return sorted(p.parent.name for p in (self.endpoint_dir(endpoint) / "deployments").glob("*/deployment.json"))

    def model_versions(self, name: str) -> list[int]:
        folder = self.home / "models" / name
        return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []
