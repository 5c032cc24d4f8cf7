"""keys: the endpoint's two keys or a token; --regenerate replaces one key (or, locally, the token secret)."""

from __future__ import annotations

import argparse
import datetime
from dataclasses import dataclass

from commands import Request, Result
from commands.shared import endpoint_or_fail
from commands.target import AZURE
from common.azure.surface import Client
from common.cli import add_flag
from common.control.waiting import wait_with_progress
from common.errors import CliError, UsageError

KEY_TYPES = ("primary", "secondary", "token")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(
        parser,
        "--regenerate",
        choices=KEY_TYPES,
        help="replace this key (auth_mode key); token: revoke every token issued (local target)",
    )


@dataclass(frozen=True, kw_only=True)
class KeysRequest(Request):
    regenerate: str | None


def validate(args: argparse.Namespace) -> KeysRequest:
    if args.regenerate == "token" and not args.local:
        show_keys = AZURE.command("manage_online_endpoint.py", "keys", "--endpoint_name", args.endpoint_name)
        raise UsageError(
            "Azure has no way to revoke aml_token tokens: each expires on its own (after 24 hours at most); a new one "
            f"comes from: {show_keys}"
        )
    return KeysRequest.of(args, regenerate=args.regenerate)


def run(client: Client, request: KeysRequest) -> Result:
    endpoint = endpoint_or_fail(client, request)
    if request.regenerate:
        return regenerate(client, request, str(endpoint.auth_mode).lower())
    credentials = client.online_endpoints.get_keys(request.endpoint_name)
    if getattr(credentials, "primary_key", None):
        return Result(
            {"primary_key": credentials.primary_key, "secondary_key": credentials.secondary_key},
            [f"Primary key:   {credentials.primary_key}", f"Secondary key: {credentials.secondary_key}"],
        )
    expires = datetime.datetime.fromtimestamp(float(credentials.expiry_time_utc), tz=datetime.UTC)
    return Result(
        {"access_token": credentials.access_token, "expiry_time_utc": expires.isoformat()},
        [f"Token:   {credentials.access_token}", f"Expires: {expires.isoformat()}"],
    )


def regenerate(client: Client, request: KeysRequest, auth_mode: str) -> Result:
    """Replace one key (or, locally, the token secret); the other key keeps working throughout."""
    name, key_type = request.endpoint_name, str(request.regenerate)
    show_keys = request.target.command("manage_online_endpoint.py", "keys", "--endpoint_name", name)
    if key_type == "token" and auth_mode == "key":
        raise UsageError(
            f"endpoint {name!r} uses auth_mode key, so it has keys, not tokens: use --regenerate primary or secondary"
        )
    if key_type != "token" and auth_mode != "key":
        revoke = ": --regenerate token revokes its tokens" if request.target.local else ""
        raise UsageError(f"endpoint {name!r} uses auth_mode {auth_mode}, which has no keys to regenerate{revoke}")
    before = client.online_endpoints.get_keys(name) if key_type != "token" else None
    poller = client.online_endpoints.begin_regenerate_keys(name, key_type=key_type)
    wait_with_progress(poller, f"regenerating the {key_type} key of {name}", request.target.show(name))
    if before is not None and getattr(client.online_endpoints.get_keys(name), f"{key_type}_key") == getattr(
        before, f"{key_type}_key"
    ):
        raise CliError(
            f"the {key_type} key of {name!r} is unchanged after the regenerate request: treat it as not rotated and "
            "try again"
        )
    if key_type == "token":
        line = f"Revoked every token issued for {name}; a new one comes from: {show_keys}"
    else:
        other = "secondary" if key_type == "primary" else "primary"
        line = f"Regenerated the {key_type} key of {name}: the old one is refused, the {other} key still works. "
        line += f"The new key: {show_keys}"
    return Result({"endpoint": name, "regenerated": key_type}, [line])
