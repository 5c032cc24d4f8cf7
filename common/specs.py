"""`az ml` YAML files read with azure-ai-ml's own loaders, their failures as one line naming the file and the field."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from common.errors import UsageError

YAML_REFERENCE = "https://aka.ms/ml-cli-v2-endpoint-online-yaml-reference"


def load_endpoint(path: Path) -> Any:
    """The ManagedOnlineEndpoint the file describes (as `az ml online-endpoint create -f` reads it)."""
    from azure.ai.ml import load_online_endpoint

    return _loaded(load_online_endpoint, path)


def _loaded(loader: Any, path: Path) -> Any:
    from marshmallow.exceptions import ValidationError

    if not path.is_file():
        raise UsageError(f"--file {str(path)!r} is not a file: give an az ml YAML file")
    try:
        return loader(source=str(path))
    except ValidationError as error:  # the schema's findings: one "field: what is wrong" each
        raise UsageError(f"--file {str(path)!r}: {schema_findings(error)} (see {YAML_REFERENCE})") from None
    except Exception as error:  # azure-ai-ml's ValidationException: YAML that does not parse
        if type(error).__name__ != "ValidationException":
            raise
        said = " ".join(str(error).split())
        raise UsageError(
            f"--file {str(path)!r} is not valid YAML: {said.removeprefix('Error while parsing yaml file: ')}"
        ) from None


def schema_findings(error: Any) -> str:
    """'auth_mode: Value 'banana' ...; foo: Unknown field.' from the JSON block azure-ai-ml puts in its message."""
    text = " ".join(str(message) for message in (getattr(error, "messages", None) or [str(error)]))
    block = re.search(r"\{.*\}", text, re.DOTALL)
    try:
        found = json.loads(block.group(0)) if block else {}
    except ValueError:
        found = {}
    if not isinstance(found, dict) or not found:
        return " ".join(text.split())[:300]
    return "; ".join(f"{field}: {' '.join(map(str, _flat(problems)))}" for field, problems in found.items())


def _flat(problems: Any) -> list[Any]:
    if isinstance(problems, dict):
        return [f"{key}: {' '.join(map(str, _flat(value)))}" for key, value in problems.items()]
    return list(problems) if isinstance(problems, list) else [problems]
