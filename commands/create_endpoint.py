"""create_online_endpoint.py: create or update an Azure ML managed online endpoint.

The script is a dispatcher; its docstring is the --help text this module prints.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commands import Request
from commands.target import Target
from common import specs, validation
from common.azure.surface import Client
from common.cli import (
    add_flag,
    add_name_flag,
    add_timeout_flag,
    emit,
    output,
    progress,
)
from common.control.endpoint_update import public_network_access, update_endpoint
from common.control.lookups import get_or_none
from common.control.waiting import wait_with_progress
from common.control.wire import ENDPOINT_SCHEMA_URL, dry_run_output, enum_value, state_name
from common.errors import UsageError
from common.release import history, traffic

AUTH_MODES = ("key", "aml_token", "aad_token")
CREATE_DEFAULTS = {"auth_mode": "key", "public_network": "enabled"}  # Azure's, for a new endpoint only


@dataclass(frozen=True, kw_only=True)
class CreateEndpointRequest(Request):
    """The flags, checked; None: not given (Azure's default on create, unchanged on update)."""

    file: Path | None  # the --file the request was read from
    description: str | None
    auth_mode: str | None
    public_network: str | None
    tags: dict[str, str] | None
    yes: bool
    dry_run: bool
    timeout_minutes: int
    verbose: bool

    @property
    def needs_client(self) -> bool:
        return not self.dry_run  # a dry run contacts nothing


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_name_flag(
        parser, "--endpoint_name", help="3-32 letters, digits or hyphens; unique in the region (or the file's name:)"
    )
    add_flag(
        parser,
        "--file",
        type=Path,
        help="an az ml endpoint YAML file (managedOnlineEndpoint schema); a flag given beside it overrides its value",
    )
    add_flag(parser, "--description", default=None, help="free text shown in the studio")
    add_flag(
        parser,
        "--auth_mode",
        choices=AUTH_MODES,
        help=f"how callers authenticate (on create: {CREATE_DEFAULTS['auth_mode']}; on update: unchanged)",
    )
    add_flag(
        parser,
        "--public_network",
        choices=("enabled", "disabled"),
        help=f"public network access to the scoring URI (on create: {CREATE_DEFAULTS['public_network']}; "
        "on update: unchanged)",
    )
    add_flag(parser, "--tags", nargs="*", metavar="KEY=VALUE", help="tags on the endpoint (replace the current ones)")
    add_flag(
        parser,
        "--yes",
        action="store_true",
        help="confirm --public_network enabled on an endpoint that is private now (opens its scoring URI)",
    )
    add_flag(parser, "--dry_run", action="store_true", help="print the endpoint YAML; contact nothing")
    add_timeout_flag(parser, default_minutes=30)


def validate(args: argparse.Namespace) -> CreateEndpointRequest:
    from_file = specs.load_endpoint(args.file) if args.file is not None else None
    name = args.endpoint_name or (from_file.name if from_file is not None else None)
    if not name:
        raise UsageError("give --endpoint_name, or --file with a name: (an az ml endpoint YAML file)")
    request = CreateEndpointRequest.of(
        args,
        file=args.file,
        description=args.description if args.description is not None else _from(from_file, "description"),
        auth_mode=args.auth_mode or _from(from_file, "auth_mode"),
        public_network=args.public_network or _from(from_file, "public_network_access"),
        tags=validation.tags(args.tags) if args.tags is not None else _from(from_file, "tags"),
        yes=args.yes,
        dry_run=args.dry_run,
        timeout_minutes=args.timeout_minutes,
        verbose=args.verbose,
    )
    return dataclasses.replace(request, endpoint_name=validation.resource_name("endpoint", name))


def _from(endpoint: Any, field: str) -> Any:
    """A field the YAML file set (None where it did not, or without --file); settings as the flags spell them."""
    value = getattr(endpoint, field, None) if endpoint is not None else None
    if field in ("auth_mode", "public_network_access") and value is not None:
        return str(enum_value(value)).lower()
    return value or None


def build_endpoint(request: CreateEndpointRequest) -> Any:
    """The endpoint to create: the flags, and Azure's defaults for those not given."""
    from azure.ai.ml.entities import ManagedOnlineEndpoint

    return ManagedOnlineEndpoint(
        name=request.endpoint_name,
        description=request.description,
        auth_mode=request.auth_mode or CREATE_DEFAULTS["auth_mode"],
        public_network_access=request.public_network or CREATE_DEFAULTS["public_network"],
        tags=request.tags or {},
    )


def given_settings(request: CreateEndpointRequest) -> dict[str, Any]:
    """The endpoint attributes the user passed flags for: all an update changes."""
    settings = {
        "description": request.description,
        "auth_mode": request.auth_mode,
        "public_network_access": request.public_network,
        "tags": request.tags,
    }
    return {name: value for name, value in settings.items() if value is not None}


def apply(client: Client, endpoint: Any, request: CreateEndpointRequest) -> Any:
    """Create the endpoint, or update the existing one in place: only what the flags give changes."""
    check = request.target.show(endpoint.name)
    if get_or_none(client.online_endpoints.get, endpoint.name) is None:
        progress(f"Creating endpoint {endpoint.name}")
        poller = client.online_endpoints.begin_create_or_update(endpoint)
        return wait_with_progress(poller, f"endpoint {endpoint.name}", check, timeout=request.timeout_minutes * 60)
    changes = given_settings(request)

    def change(existing: Any) -> None:
        refuse_opening_unconfirmed(existing, request)  # on the endpoint as read for this write: nothing is written
        differs = [name for name, value in changes.items() if not same_setting(existing, name, value)]
        for name, value in changes.items():
            setattr(existing, name, history.kept_in(value, existing.tags) if name == "tags" else value)
        kept = traffic.describe(dict(existing.traffic or {})) or "none"
        changed = ", ".join(differs) or "nothing"
        progress(f"Updating endpoint {endpoint.name} in place (changing {changed}; traffic kept: {kept})")

    result, _ = update_endpoint(
        client,
        endpoint.name,
        change,
        target=request.target,
        what=f"endpoint {endpoint.name}",
        timeout=request.timeout_minutes * 60,
    )
    return result


def same_setting(existing: Any, name: str, value: Any) -> bool:
    """Whether the endpoint already has `value` for the setting `name` (Azure answers enums in its own case; tags
    are compared without the rollback history, which --tags keeps)."""
    current = getattr(existing, name, None)
    if name == "tags":
        return history.without_history(current) == history.without_history(value)
    if name in ("auth_mode", "public_network_access"):
        return (enum_value(current) or "").lower() == str(value).lower()
    return (current or None) == (value or None)


def refuse_opening_unconfirmed(existing: Any, request: CreateEndpointRequest) -> None:
    """A private endpoint (public network access disabled) opened to the public network needs --yes."""
    private = public_network_access(existing) == "disabled"
    if private and request.public_network == "enabled" and not request.yes:
        raise UsageError(
            f"endpoint {existing.name!r} is private (public network access disabled): --public_network enabled "
            "opens its scoring URI to the internet; add --yes to confirm"
        )


def report(endpoint: Any, output_format: str, target: Target, file: Path | None = None) -> None:
    next_command = next_step(endpoint, target, file)
    result = {
        "name": endpoint.name,
        "scoring_uri": endpoint.scoring_uri,
        "auth_mode": endpoint.auth_mode,
        "provisioning_state": state_name(endpoint.provisioning_state),
        "public_network_access": getattr(endpoint, "public_network_access", None),
        "traffic": dict(endpoint.traffic or {}),
        "next_command": next_command,
    }
    emit(
        result,
        output_format,
        [
            f"Endpoint:           {result['name']}",
            f"Scoring URI:        {result['scoring_uri']}",
            f"Auth mode:          {result['auth_mode']}",
            f"Provisioning state: {result['provisioning_state']}",
            f"Traffic:            {traffic.describe(result['traffic']) or 'none yet'}",
            "Next:",
            f"  {next_command}",
        ],
    )


def next_step(endpoint: Any, target: Target, file: Path | None = None) -> str:
    """Invoke an endpoint that serves traffic; deploy to one that does not yet (from a deployment YAML file when the
    endpoint came from one: Azure's examples keep it beside the endpoint's)."""
    if any(int(share) for share in (endpoint.traffic or {}).values()):
        return target.command("invoke_online_endpoint.py", "--endpoint_name", endpoint.name)
    if file is not None:
        found = (path for path in file.parent.glob("*deployment*.y*ml") if path != file)
        beside = sorted(found, key=lambda path: (len(path.name), path.name))  # blue-deployment.yml before its variants
        deployment_file = str(beside[0]) if beside else "YOUR_DEPLOYMENT.yml"
        return target.command(
            "create_online_deployment.py",
            *("--file", deployment_file, "--endpoint_name", endpoint.name, "--traffic_allocation", "100"),
        )
    return target.command(
        "create_online_deployment.py",
        *("--endpoint_name", endpoint.name, "--deployment_name", "blue"),
        *("--model_path", "azureml:diabetes-predict@latest", "--environment", "diabetes-classify"),
        *("--score_path", "09-deploy-model", "--score_script", "score.py", "--instance_type", "Standard_DS3_v2"),
        *("--instance_count", "1", "--traffic_allocation", "100"),
    )


def run(client: Client, request: CreateEndpointRequest) -> None:
    endpoint = build_endpoint(request)
    if request.dry_run:
        output(dry_run_output(endpoint, ENDPOINT_SCHEMA_URL, request.output).rstrip("\n"))
        return
    report(apply(client, endpoint, request), request.output, request.target, request.file)
