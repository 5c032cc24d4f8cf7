"""What goes over the wire to Azure and back, as both targets spell it: the schema of the documents `az ml` takes,
the header that names a deployment, enum values as text, and --dry_run's document."""

from __future__ import annotations

import json
from typing import Any

import yaml

ENDPOINT_SCHEMA_URL = "https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json"

DEPLOYMENT_SCHEMA_URL = "https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json"

DEPLOYMENT_HEADER = "azureml-model-deployment"  # names one deployment, in requests and in Azure's answers


def enum_value(value: Any) -> str | None:
    """A setting Azure returns as an enum member (e.g. 'DeploymentProvisioningState.SUCCEEDED' when printed) or as
    text, as its text value."""
    return None if value is None else str(getattr(value, "value", value))


def state_name(value: Any) -> str | None:
    """A provisioning state as text."""
    return enum_value(value)


def entity_document(entity: Any, schema_url: str) -> dict[str, Any]:
    """What `az ml ... create -f` accepts for an azure-ai-ml entity, as a dict (empty sections left out).

    Uses the entity's own schema (_to_dict): ManagedOnlineEndpoint.dump ignores its destination in azure-ai-ml 1.35.
    """
    plain = json.loads(json.dumps(entity._to_dict()))
    return {"$schema": schema_url, **{key: value for key, value in plain.items() if value not in ({}, [], None)}}


def entity_yaml(entity: Any, schema_url: str) -> str:
    return str(yaml.safe_dump(entity_document(entity, schema_url), sort_keys=False))


def dry_run_output(entity: Any, schema_url: str, output_format: str, note: str = "") -> str:
    """--dry_run's answer: the YAML (with `note` as a closing comment), or with --output json the same document
    as JSON (the note as "note")."""
    if output_format == "json":
        document = entity_document(entity, schema_url)
        return json.dumps({**document, **({"note": note} if note else {})}, indent=2)
    return entity_yaml(entity, schema_url) + (f"# {note}\n" if note else "")
