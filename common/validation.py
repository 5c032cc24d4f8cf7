"""Checks on flag values, run before any call to Azure. Each failure is one UsageError line."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable
from pathlib import Path

from common.errors import UsageError

# Azure ML's rule for endpoint and deployment names (azure.ai.ml EndpointConfigurations).
RESOURCE_NAME_PATTERN = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
RESOURCE_NAME_MIN, RESOURCE_NAME_MAX = 3, 32
RESOURCE_NAME_RULE = (
    f"{RESOURCE_NAME_MIN}-{RESOURCE_NAME_MAX} characters, starting with a letter, "
    "then letters, digits or hyphens, ending with a letter or digit"
)

# Asset (model, environment) names: letters, digits, '-', '_' and '.', starting with a letter or digit.
ASSET_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,254}$")
ASSET_VERSION_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,29}$")
# Azure Resource Manager's tag limits (azure-resource-manager/management/tag-resources, "Limitations"): at most 50
# tags on a resource, names of at most 512 characters without < > % & \ ? /, values of at most 256 characters.
TAG_KEY_PATTERN = re.compile(r"^[^<>%&\\?/]{1,512}$")
MAX_TAGS = 50
MAX_TAG_VALUE = 256


def canonical_name(value: str) -> str:
    """An endpoint or deployment name as Azure ML keeps it: in lowercase, so `DiabetesClassify` given to any command
    is the endpoint `diabetesclassify`, on both targets.

    Azure ML names are case-insensitive: azure-ai-ml lowercases an endpoint's and a deployment's name when it builds
    the entity ("MFE is case-insensitive for Name. So convert the name into lower case here.",
    azure/ai/ml/entities/_endpoint/endpoint.py and _deployment/deployment.py), Azure Resource Manager matches
    resource names case-insensitively, and the scoring URI's host is lowercase. A name that breaks the rule is
    left as typed, so that resource_name's error names it as given.
    """
    if RESOURCE_NAME_MIN <= len(value) <= RESOURCE_NAME_MAX and RESOURCE_NAME_PATTERN.match(value):
        return value.lower()
    return value


def resource_name(kind: str, value: str) -> str:
    """Validate an endpoint or deployment name (`kind`: 'endpoint' or 'deployment'); its canonical (lowercase)
    form. Capitals are allowed and mean the same name (see canonical_name)."""
    if not (RESOURCE_NAME_MIN <= len(value) <= RESOURCE_NAME_MAX) or not RESOURCE_NAME_PATTERN.match(value):
        raise UsageError(f"invalid {kind} name {value!r}: use {RESOURCE_NAME_RULE}")
    return canonical_name(value)


def asset_name(kind: str, value: str) -> str:
    if not ASSET_NAME_PATTERN.match(value):
        raise UsageError(
            f"invalid {kind} name {value!r}: use letters, digits, '-', '_' or '.', starting with a letter or digit"
        )
    return value


def asset_version(kind: str, value: str) -> str:
    if not ASSET_VERSION_PATTERN.match(value):
        raise UsageError(f"invalid {kind} version {value!r}: use letters, digits, '-', '_' or '.'")
    return value


def tags(pairs: Iterable[str] | None) -> dict[str, str]:
    """Turn ['team=ml', 'stage=dev'] into a dict; a pair without '=' or with an empty key is refused."""
    result: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"invalid tag {pair!r}: use KEY=VALUE, for example team=ml")
        if not TAG_KEY_PATTERN.match(key):
            shown = key if len(key) <= 40 else key[:40] + "..."
            raise UsageError(f"invalid tag key {shown!r}: 1-512 characters, none of < > % & \\ ? / (Azure's rule)")
        value = value.strip()
        if len(value) > MAX_TAG_VALUE:
            raise UsageError(
                f"invalid tag {key}: its value has {len(value)} characters; Azure allows at most {MAX_TAG_VALUE}"
            )
        result[key] = value
    if len(result) > MAX_TAGS:
        raise UsageError(f"invalid --tags: {len(result)} tags; Azure allows at most {MAX_TAGS} on a resource")
    return result


def percentage(flag: str, value: int) -> int:
    if not 0 <= value <= 100:
        raise UsageError(f"invalid {flag} {value}: use a whole number from 0 to 100")
    return value


def positive_count(flag: str, value: int) -> int:
    if value < 1:
        raise UsageError(f"invalid {flag} {value}: use a whole number of 1 or more")
    return value


MAX_INSTANCES = 50  # Azure's limit per managed online deployment (quotas page; raised only by a support request)


def instance_count(value: int) -> int:
    positive_count("--instance_count", value)
    if value > MAX_INSTANCES:
        raise UsageError(
            f"invalid --instance_count {value}: a managed online deployment has at most {MAX_INSTANCES} instances "
            "(Azure's limit; a support request can raise it)"
        )
    return value


def minutes(text: str) -> int:
    """argparse type for --timeout_minutes: a whole number of 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of minutes") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative: use 0 or more minutes")
    return value


def output_file(value: str, flag: str) -> Path:
    """A file to write: not a folder, in a folder that exists; else one line naming it and why."""
    path = Path(value)
    if path.is_dir():
        raise UsageError(f"invalid {flag} {value!r}: it is a folder; name a file")
    if not path.resolve().parent.is_dir():
        raise UsageError(f"invalid {flag} {value!r}: its folder {str(path.resolve().parent)!r} does not exist")
    return path


def png_file(value: str, flag: str = "--plot") -> Path:
    """A .png file to write, in a folder that exists, else one line naming it and why."""
    if Path(value).suffix.lower() != ".png":
        raise UsageError(f"invalid {flag} {value!r}: name a .png file")
    return output_file(value, flag)


def request_file(path: Path, flag: str = "--request_file") -> Path:
    """A readable JSON file (a request body), else one line naming it and why."""
    try:
        json.loads(path.read_text())
    except IsADirectoryError:
        raise UsageError(f"{flag} {str(path)!r} is a folder: give a JSON file") from None
    except OSError as error:
        raise UsageError(f"{flag} {str(path)!r} cannot be read: {error.strerror}") from None
    except ValueError as error:
        raise UsageError(f"{flag} {str(path)!r} is not JSON: {error}") from None
    return path


def scoring_code(score_path: str, score_script: str) -> Path:
    """The code folder must exist and hold the scoring script (relative to that folder)."""
    folder = Path(score_path)
    if not folder.is_dir():
        raise UsageError(f"--score_path {score_path!r} is not a folder: give the folder that holds the scoring script")
    script = folder / score_script
    if Path(score_script).is_absolute() or ".." in Path(score_script).parts:
        raise UsageError(f"--score_script {score_script!r} must be a path inside --score_path {score_path!r}")
    if not script.is_file():
        raise UsageError(
            f"--score_script {score_script!r} not found in --score_path {score_path!r} (looked for {script})"
        )
    try:
        compile(script.read_bytes(), str(script), "exec")
    except SyntaxError as error:
        raise UsageError(
            f"--score_script {str(script)!r} has a syntax error on line {error.lineno}: {error.msg} "
            f"({(error.text or '').strip()}); fix it before deploying"
        ) from None
    except ValueError as error:  # a NUL byte, or text that is not source at all
        raise UsageError(f"--score_script {str(script)!r} is not Python source: {error}") from None
    return script
