"""The endpoint's contract: the OpenAPI documents the inference server serves at GET /swagger.json?version=2|3|3.1.

score.py's run() takes a raw JSON body, so the server cannot derive a schema from it (it would serve
{"type": "object", "example": {}}); it serves instead the files swagger2.json, swagger3.json and swagger3.1.json at
the code folder's root when they are there (azureml-inference-server-http, server/swagger.py), reading them once
init() has returned. init() writes them here from the model it loaded: the 8 features in order with their types and
the typical range of each in the training data (its 10th and 90th percentiles, from metadata.json), the three
request formats, the labels and Azure's error shape. The example request is made of the training data's per-feature
quantiles, not of any row of it.

A code folder that already holds swagger files of its own keeps them: they are served as they are. Files this module
wrote carry "x-generated-by" in their info, so a later init() (a new model) rewrites them.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

GENERATED_BY = "09-deploy-model/openapi_contract.py"
TITLE = "diabetes-classifier"
# What the server reads, by the version a client asks for: swagger.json (before swagger2.json) for 2.
FILES = {"2": "swagger2.json", "3": "swagger3.json", "3.1": "swagger3.1.json"}
USER_FILES = ("swagger.json", *FILES.values())
# When the model carries no training distribution: made-up values inside every feature's usual range.
FALLBACK_EXAMPLE = (1.0, 100.0, 70.0, 20.0, 80.0, 25.0, 0.5, 30.0)
REQUEST_FORMATS = (
    '{"data": [[8 numbers], ...]} (the features in order), {"input_data": {"columns": [the 8 names in any order], '
    '"data": [[...], ...]}}, or a list of records keyed by the 8 names'
)


def typical_ranges(metadata: dict[str, Any], features: Sequence[str]) -> dict[str, list[float] | None]:
    """Per feature, the 10th and 90th percentiles of the training rows (metadata.json's bin edges), or None."""
    recorded = (metadata.get("training_distribution") or {}).get("features") or {}
    ranges: dict[str, list[float] | None] = {}
    for name in features:
        edges = (recorded.get(name) or {}).get("edges") or []
        ranges[name] = [float(edges[0]), float(edges[-1])] if edges else None
    return ranges


def example_row(metadata: dict[str, Any], features: Sequence[str]) -> list[float]:
    """A row that scores: each feature's middle bin edge (a quantile of the training data, no row of it)."""
    recorded = (metadata.get("training_distribution") or {}).get("features") or {}
    row = []
    for index, name in enumerate(features):
        edges = (recorded.get(name) or {}).get("edges") or []
        row.append(float(edges[len(edges) // 2]) if edges else FALLBACK_EXAMPLE[index % len(FALLBACK_EXAMPLE)])
    return row


def _feature(name: str, typical: list[float] | None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "number", "title": name}
    if typical is not None:
        low, high = typical
        schema["description"] = f"{name}; in training, 80% of the values lay between {low:g} and {high:g}"
        schema["x-training-p10-p90"] = typical
    return schema


def request_formats(features: Sequence[str], ranges: dict[str, list[float] | None], version: str) -> dict[str, Any]:
    """The row and the three request formats score.py accepts, as schemas."""
    order = ", ".join(features)
    row: dict[str, Any] = {
        "type": "array",
        "description": f"one row: the {len(features)} features in this order: {order}",
        "items": {"type": "number"},
        "minItems": len(features),
        "maxItems": len(features),
    }
    if version == "3.1":  # JSON Schema 2020-12 names each position
        row["prefixItems"] = [_feature(name, ranges[name]) for name in features]
    data_format = {
        "type": "object",
        "required": ["data"],
        "additionalProperties": False,
        "properties": {"data": {"type": "array", "minItems": 1, "items": {"$ref": _ref("Row", version)}}},
    }
    input_data_format = {
        "type": "object",
        "required": ["input_data"],
        "additionalProperties": False,
        "properties": {
            "input_data": {
                "type": "object",
                "required": ["data"],
                "properties": {
                    "columns": {
                        "type": "array",
                        "description": "the 8 feature names, each once, in the order of each row's values",
                        "items": {"type": "string", "enum": list(features)},
                        "minItems": len(features),
                        "maxItems": len(features),
                        "uniqueItems": True,
                    },
                    "data": {"type": "array", "minItems": 1, "items": {"$ref": _ref("Row", version)}},
                },
            }
        },
    }
    records_format = {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "required": list(features),
            "additionalProperties": False,
            "properties": {name: _feature(name, ranges[name]) for name in features},
        },
    }
    return {
        "Row": row,
        "DataRequest": data_format,
        "InputDataRequest": input_data_format,
        "RecordsRequest": records_format,
    }


def schemas(features: Sequence[str], labels: Sequence[str], metadata: dict[str, Any], version: str) -> dict[str, Any]:
    """The documents' schemas (the same in each version but for what OpenAPI 2 cannot say: oneOf)."""
    example = example_row(metadata, features)
    formats = request_formats(features, typical_ranges(metadata, features), version)
    request = {"data": [example]}
    service_input: dict[str, Any]
    if version == "2":  # no oneOf in OpenAPI 2: the first format, the others said
        service_input = {**formats["DataRequest"], "description": f"accepted: {REQUEST_FORMATS}", "example": request}
    else:
        service_input = {
            "description": f"one of: {REQUEST_FORMATS}",
            "oneOf": [{"$ref": _ref(name, version)} for name in ("DataRequest", "InputDataRequest", "RecordsRequest")],
            "example": request,
        }
    found: dict[str, Any] = {
        "ServiceInput": service_input,
        "ServiceOutput": {
            "type": "array",
            "description": "one label per row, in the rows' order",
            "items": {"type": "string", "enum": list(labels)},
            "example": [labels[0]],
        },
        "ErrorResponse": {
            "type": "object",
            "description": "Azure's error shape (what azure-ai-ml's invoke and az ml online-endpoint invoke read)",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                }
            },
            "example": {"error": {"code": "BadRequest", "message": "row 0: has 7 values, expected 8 (...)"}},
        },
        **formats,
    }
    return found


def _ref(name: str, version: str) -> str:
    return f"#/definitions/{name}" if version == "2" else f"#/components/schemas/{name}"


def _operation(version: str) -> dict[str, Any]:
    if version == "2":
        body = {"in": "body", "name": "body", "required": True, "schema": {"$ref": _ref("ServiceInput", version)}}

        def answer(text: str, name: str) -> dict[str, Any]:
            return {"description": text, "schema": {"$ref": _ref(name, version)}}

        operation: dict[str, Any] = {"parameters": [body]}
    else:

        def answer(text: str, name: str) -> dict[str, Any]:
            return {"description": text, "content": {"application/json": {"schema": {"$ref": _ref(name, version)}}}}

        content = {"application/json": {"schema": {"$ref": _ref("ServiceInput", version)}}}
        operation = {"requestBody": {"required": True, "content": content}}
    return {
        "operationId": "RunMLService",
        "description": "The model's labels for the rows of the request",
        "security": [{"Bearer": []}],
        **operation,
        "responses": {
            "200": answer("one label per row", "ServiceOutput"),
            "400": answer("the request cannot be scored: the message names the problem", "ErrorResponse"),
            "default": answer("the service failed", "ErrorResponse"),
        },
    }


def document(features: Sequence[str], labels: Sequence[str], metadata: dict[str, Any], version: str) -> dict[str, Any]:
    """The OpenAPI document of one version ("2", "3" or "3.1")."""
    security = {
        "Bearer": {
            "type": "apiKey",
            "name": "Authorization",
            "in": "header",
            "description": "the endpoint's key or token: Bearer <key>",
        }
    }
    info = {
        "title": TITLE,
        "description": f"Diabetes classifier: {len(features)} features in, one label a row out: {' or '.join(labels)}",
        "version": "1",
        "x-generated-by": GENERATED_BY,
    }
    paths = {"/score": {"post": _operation(version)}}
    found = schemas(features, labels, metadata, version)
    if version == "2":
        return {
            "swagger": "2.0",
            "info": info,
            "consumes": ["application/json"],
            "produces": ["application/json"],
            "securityDefinitions": security,
            "security": [{"Bearer": []}],
            "paths": paths,
            "definitions": found,
        }
    return {
        "openapi": "3.1.0" if version == "3.1" else "3.0.3",
        "info": info,
        "security": [{"Bearer": []}],
        "paths": paths,
        "components": {"schemas": found, "securitySchemes": security},
    }


def ours(path: Path) -> bool:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(found, dict) and (found.get("info") or {}).get("x-generated-by") == GENERATED_BY


def write(folder: Path, features: Sequence[str], labels: Sequence[str], metadata: dict[str, Any]) -> str:
    """Write the three documents into the code folder, unless it holds swagger files of its own; what was done, in
    words (init() logs it). Never raises: without the files the server serves its default document."""
    own = [name for name in USER_FILES if (folder / name).exists() and not ours(folder / name)]
    if own:
        return f"the code folder's own {', '.join(own)} served as they are"
    for version, name in FILES.items():
        text = json.dumps(document(features, labels, metadata, version), indent=1)
        temporary = None
        try:
            handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text + "\n")
            os.replace(temporary, folder / name)
        except OSError as error:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
            return f"the contract could not be written ({error}); GET /swagger.json serves the server's default"
    return f"the contract (OpenAPI {', '.join(FILES)}) written to {', '.join(FILES.values())}"
