"""The endpoint's contract: its OpenAPI document, a request checked against it, and what differs between two.

The document is what the endpoint serves at its openapi_uri (Azure's swaggerUri; the local front door's
/swagger.json): the inference server's GET /swagger.json?version=2|3|3.1, behind the endpoint's key or token, routed
like /score (the azureml-model-deployment header names one deployment). score.py's documents come from
09-deploy-model/openapi_contract.py; a user's own deployment serves whatever its server makes of its code.

A request is checked against the document's request schema (POST /score's body) with jsonschema, one line per
problem: where in the request, what was sent, what is allowed. A contract summarises a document as its features
(names and types, in order where the document gives one) and its labels; two summaries give the breaking changes
between them (a feature removed, added, renamed or retyped; a label changed). A document with no such schema (the
server's default {"type": "object"} for a run() without inference-schema decorators) is an unknown contract.
"""

from __future__ import annotations

import json
import reprlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.azure.surface import Client
from common.errors import CliError, UsageError
from common.scoring import (
    SCORING_TIMEOUT_SECONDS,
    addressed_endpoint,
    refusal,
    request_headers,
    unreachable_reason,
)

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

    from common.target import Target

VERSIONS = ("2", "3", "3.1")  # what the inference server serves (server/swagger.py)
DEFAULT_VERSION = "3"
SCORE_PATH = "/score"
MAX_KEYS_SHOWN = 12  # of an object a request sent: the 8 features and a few more
_short = reprlib.Repr()
_short.maxstring, _short.maxother, _short.maxlist, _short.maxdict, _short.maxlevel = 40, 40, 4, 4, 2


class UnreadableDocument(CliError):
    """The endpoint's answer at its openapi_uri is not a JSON object."""


class RequestBreaksContract(UsageError):
    """The request does not fit the endpoint's request schema: nothing was sent."""


def fetch(client: Client, endpoint_name: str, deployment: str | None, version: str, *, target: Target) -> bytes:
    """The endpoint's (or one deployment's) OpenAPI document, as its server serves it, byte for byte."""
    import requests

    endpoint = addressed_endpoint(client, endpoint_name, deployment, target=target)
    uri = getattr(endpoint, "openapi_uri", None)
    if not uri:
        raise CliError(f"endpoint {endpoint_name!r} has no OpenAPI URI yet: Azure gives one once it is provisioned")
    headers = request_headers(client, endpoint_name, deployment)
    try:
        response = requests.get(uri, params={"version": version}, headers=headers, timeout=SCORING_TIMEOUT_SECONDS)
    except requests.RequestException as error:
        raise CliError(f"the OpenAPI URI {uri} is not reachable: {unreachable_reason(error)}") from None
    if response.status_code >= 300:
        raise refusal(response.status_code, response.headers, response.text, target)
    return response.content


def parse(document: bytes) -> dict[str, Any]:
    try:
        found = json.loads(document)
    except ValueError as error:
        raise UnreadableDocument(f"the endpoint's OpenAPI document is not JSON: {error}") from None
    if not isinstance(found, dict):
        raise UnreadableDocument(f"the endpoint's OpenAPI document is not a JSON object but {type(found).__name__}")
    return found


def _score_operation(document: dict[str, Any]) -> dict[str, Any]:
    """The document's POST /score operation ({} when it has none)."""
    return ((document.get("paths") or {}).get(SCORE_PATH) or {}).get("post") or {}


def body_pointer(document: dict[str, Any]) -> str | None:
    """Where POST /score's body schema is, as a JSON pointer into the document: OpenAPI 3's requestBody, OpenAPI 2's
    body parameter; None when the operation has neither."""
    operation = _score_operation(document)
    path = f"#/paths/{SCORE_PATH.replace('/', '~1')}/post"
    if "requestBody" in operation:
        return f"{path}/requestBody/content/application~1json/schema"
    for index, parameter in enumerate(operation.get("parameters") or []):
        if isinstance(parameter, dict) and parameter.get("in") == "body":
            return f"{path}/parameters/{index}/schema"
    return None


def request_schema(document: dict[str, Any]) -> dict[str, Any] | None:
    """POST /score's body schema ($ref resolved), or None when the document has none."""
    pointer = body_pointer(document)
    schema = resolve(document, {"$ref": pointer}) if pointer else None
    return schema if isinstance(schema, dict) else None


def resolve(document: dict[str, Any], schema: Any) -> Any:
    """A local {"$ref": "#/..."} followed (repeatedly); anything else as it is."""
    seen = 0
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#/"):
        seen += 1
        if seen > 20:
            return None
        node: Any = document
        for part in schema["$ref"][2:].split("/"):
            key = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, list):
                node = node[int(key)] if key.isdigit() and int(key) < len(node) else None
            else:
                node = node.get(key) if isinstance(node, dict) else None
        schema = node
    return schema


def is_unknown(schema: dict[str, Any] | None) -> bool:
    """The server's default for a run() it knows nothing of: {"type": "object", "example": {}} (or no schema)."""
    if schema is None:
        return True
    meaningful = {key: value for key, value in schema.items() if key not in ("example", "description", "title")}
    return meaningful in ({}, {"type": "object"})


# --- checking a request -------------------------------------------------------------------------------------------


def require_fits(
    client: Client,
    endpoint_name: str,
    deployment: str | None,
    request_file: Path,
    *,
    target: Target,
    version: str = DEFAULT_VERSION,
) -> str:
    """Check a request file against the endpoint's (or deployment's) OpenAPI document: the line that says it fits,
    else RequestBreaksContract with a line per problem (nothing is sent to /score)."""
    document = parse(fetch(client, endpoint_name, deployment, version, target=target))
    whose = endpoint_name + (f"/{deployment}" if deployment else "")
    found = problems(document, json.loads(request_file.read_text()))
    if found:
        lines = "\n".join(f"  {problem}" for problem in found)
        raise RequestBreaksContract(
            f"{request_file} does not fit the contract of {whose} (OpenAPI {version}); nothing was sent:\n" + lines
        )
    return f"{request_file} fits the contract of {whose} (OpenAPI {version})"


def problems(document: dict[str, Any], request: Any) -> list[str]:
    """Each way `request` breaks the document's request schema, a line each (none: it fits). Refuses a document
    without a request schema (nothing to check against)."""
    from jsonschema import Draft202012Validator

    schema = request_schema(document)
    if is_unknown(schema):
        raise UsageError(
            "the endpoint's OpenAPI document has no request schema (its score.py has no inference-schema decorators "
            "and no swagger files): there is nothing to check the request against"
        )
    root = {**_schema_only(document), "$ref": body_pointer(document)}
    validator = Draft202012Validator(root)
    lines: list[str] = []
    for error in sorted(validator.iter_errors(request), key=lambda e: list(e.absolute_path)):
        lines.extend(_lines(document, error))
    return list(dict.fromkeys(lines))  # a problem found by two branches once


def _schema_only(document: dict[str, Any]) -> dict[str, Any]:
    """The document without what JSON Schema would read as keywords of its own root ($schema-less: 2020-12)."""
    return {key: value for key, value in document.items() if key in ("paths", "components", "definitions")}


def _lines(document: dict[str, Any], error: ValidationError) -> Iterator[str]:
    if error.validator in ("oneOf", "anyOf") and error.context:
        branch = _closest_branch(error)
        if branch and min(len(sub.absolute_path) for sub in branch) > len(error.absolute_path):
            for sub in branch:  # the request took one format's shape: that format's problems
                yield from _lines(document, sub)
            return
    yield f"{_where(error)}: sent {_sent(error.instance)}; allowed: {_allowed(document, error)}"


def _closest_branch(error: ValidationError) -> list[ValidationError]:
    """Of a oneOf's branches, the one the request came closest to: its errors lie deepest in the request (it got
    the outer shape right), then the fewest."""
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context or []:
        branches.setdefault(int(sub.schema_path[0]), []).append(sub)
    if not branches:
        return []
    return max(branches.values(), key=lambda errors: (min(len(e.absolute_path) for e in errors), -len(errors)))


def _where(error: ValidationError) -> str:
    """Where in the request: data[0][2], [0].Age, input_data.columns; (the request) for the whole of it."""
    where = ""
    for part in error.absolute_path:
        where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else str(part)
    return where or "(the request)"


def _sent(instance: Any) -> str:
    shown = _short.repr(instance)
    if isinstance(instance, list):
        return f"{shown} ({len(instance)} item{'' if len(instance) == 1 else 's'})"
    if isinstance(instance, dict):
        keys = sorted(map(str, instance))
        shown_keys = ", ".join(_short.repr(key) for key in keys[:MAX_KEYS_SHOWN])
        return f"an object with the keys {shown_keys}" + (", ..." if len(keys) > MAX_KEYS_SHOWN else "")
    return shown


def _allowed(document: dict[str, Any], error: ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    value: Any = error.validator_value  # jsonschema types it Any | Unset: set on every error iter_errors yields
    instance: Any = error.instance
    match error.validator:
        case "type":
            kinds = [value] if isinstance(value, str) else list(value)
            return " or ".join(f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}" for kind in kinds)
        case "minItems":
            return f"at least {value} items" + _described(schema)
        case "maxItems":
            return f"at most {value} items" + _described(schema)
        case "required":
            missing = [key for key in value if isinstance(instance, dict) and key not in instance]
            return f"the keys {', '.join(value)} (missing: {', '.join(missing)})"
        case "additionalProperties":
            known = list(schema.get("properties") or {})
            extra = sorted(str(key) for key in instance if key not in known) if isinstance(instance, dict) else []
            return f"only the keys {', '.join(known) or '(none)'} (unknown: {', '.join(extra)})"
        case "enum":
            return f"one of {', '.join(map(str, value))}"
        case "uniqueItems":
            return "each item once"
        case "oneOf" | "anyOf":
            return f"one of {len(value)} formats" + _described(schema)
    return str(error.message)


def _described(schema: dict[str, Any]) -> str:
    description = schema.get("description")
    return f" ({description})" if isinstance(description, str) and description else ""


# --- comparing two contracts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contract:
    """What a document promises its callers: the features (name and type, in order), the labels, or unknown."""

    known: bool
    features: tuple[tuple[str, str], ...] = ()
    labels: tuple[str, ...] = ()


def summary(document: dict[str, Any]) -> Contract:
    """The features and labels a document declares: the records format's properties (in their order), else an
    object request's properties; the answer's enum of labels."""
    schema = request_schema(document)
    if is_unknown(schema):
        return Contract(known=False)
    features = _features(document, schema)
    return Contract(known=True, features=features, labels=_labels(document))


def _features(document: dict[str, Any], schema: Any) -> tuple[tuple[str, str], ...]:
    candidates = [schema, *[resolve(document, option) for option in (schema.get("oneOf") or [])]]
    for candidate in candidates:  # a list of records keyed by the features (score.py's third format)
        if isinstance(candidate, dict) and candidate.get("type") == "array":
            items = resolve(document, candidate.get("items"))
            if isinstance(items, dict) and isinstance(items.get("properties"), dict):
                return _typed(document, items["properties"])
    for candidate in candidates:  # an object whose keys are the features (inference-schema's usual shape)
        if isinstance(candidate, dict) and isinstance(candidate.get("properties"), dict):
            return _typed(document, candidate["properties"])
    return ()


def _typed(document: dict[str, Any], properties: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    typed = []
    for name, value in properties.items():
        resolved = resolve(document, value)
        kind = resolved.get("type", "any") if isinstance(resolved, dict) else "any"
        typed.append((str(name), json.dumps(kind) if not isinstance(kind, str) else kind))
    return tuple(typed)


def _labels(document: dict[str, Any]) -> tuple[str, ...]:
    answer = (_score_operation(document).get("responses") or {}).get("200") or {}
    schema = answer.get("schema") or ((answer.get("content") or {}).get("application/json") or {}).get("schema")
    schema = resolve(document, schema)
    items = resolve(document, schema.get("items")) if isinstance(schema, dict) else None
    enum = items.get("enum") if isinstance(items, dict) else None
    return tuple(str(label) for label in enum) if isinstance(enum, list) else ()


def breaking_changes(live: Contract, candidate: Contract) -> list[str]:
    """What a caller of `live` would find broken in `candidate`, a line each (none: compatible, or unknown)."""
    if not live.known or not candidate.known:
        return []
    changes: list[str] = []
    live_types, new_types = dict(live.features), dict(candidate.features)
    removed = [name for name in live_types if name not in new_types]
    added = [name for name in new_types if name not in live_types]
    if len(removed) == len(added) == 1:
        changes.append(f"feature renamed: {removed[0]} -> {added[0]}")
    else:
        changes += [f"feature removed: {name}" for name in removed]
        changes += [f"feature added (callers do not send it): {name}" for name in added]
    for name, kind in live_types.items():
        if name in new_types and new_types[name] != kind:
            changes.append(f"feature retyped: {name} {kind} -> {new_types[name]}")
    kept_live = [name for name in live_types if name in new_types]
    kept_new = [name for name in new_types if name in live_types]
    if kept_live != kept_new:
        changes.append(f"feature order changed: {', '.join(kept_live)} -> {', '.join(kept_new)}")
    if live.labels != candidate.labels:
        changes.append(
            f"labels changed: {', '.join(live.labels) or '(none)'} -> {', '.join(candidate.labels) or '(none)'}"
        )
    return changes


# --- the gate before traffic moves -------------------------------------------------------------------------------


def gaining_traffic(before: dict[str, int], after: dict[str, int]) -> list[str]:
    """The deployments whose live share rises (mirror traffic reaches no caller, so it gains nothing)."""
    return [name for name, share in after.items() if share > before.get(name, 0)]


def contract_of(client: Client, endpoint_name: str, deployment: str, *, target: Target) -> Contract | str:
    """A deployment's contract (OpenAPI 3, as its server serves it), or why it is unknown."""
    try:
        return summary(parse(fetch(client, endpoint_name, deployment, DEFAULT_VERSION, target=target)))
    except CliError as error:
        return error.message


def compare_live(
    client: Client, endpoint_name: str, gaining: list[str], live: list[str], *, target: Target
) -> tuple[list[str], list[str]]:
    """(the breaking changes, a line each naming both deployments; why a contract could not be compared)."""
    contracts = {name: contract_of(client, endpoint_name, name, target=target) for name in [*live, *gaining]}
    changes: list[str] = []
    unknown: list[str] = []
    for name, found in contracts.items():
        if isinstance(found, str):
            unknown.append(f"the contract of {name!r} is unknown ({found})")
        elif not found.known:
            unknown.append(f"the contract of {name!r} is unknown (its OpenAPI document has no request schema)")
    for new in gaining:
        for old in live:
            candidate, current = contracts[new], contracts[old]
            if isinstance(candidate, Contract) and isinstance(current, Contract):
                changes += [f"{new} against {old}: {change}" for change in breaking_changes(current, candidate)]
    return changes, unknown
