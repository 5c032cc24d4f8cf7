"""contract: the endpoint's OpenAPI document (or one deployment's), printed, saved, or a request checked against it."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from commands import Request, Result
from commands.shared import add_deployment_flag
from common import contract, validation
from common.azure.surface import Client
from common.cli import add_flag, output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_deployment_flag(parser, required=False)
    add_flag(
        parser,
        "--version",
        choices=contract.VERSIONS,
        default=contract.DEFAULT_VERSION,
        help="OpenAPI version, as the inference server's version parameter (default: %(default)s)",
    )
    add_flag(
        parser, "--save", metavar="FILE", help="write the document to FILE, byte for byte as the endpoint served it"
    )
    add_flag(
        parser,
        "--check",
        metavar="REQUEST_FILE",
        help="check a request body against the document's request schema (nothing is sent to /score)",
    )


@dataclass(frozen=True, kw_only=True)
class ContractRequest(Request):
    deployment_name: str | None  # None: the endpoint's, routed as /score is
    version: str
    save: Path | None
    check: Path | None


def validate(args: argparse.Namespace) -> ContractRequest:
    if args.deployment_name is not None:
        validation.resource_name("deployment", args.deployment_name)
    save = validation.output_file(args.save, "--save") if args.save else None
    check = validation.request_file(Path(args.check), "--check") if args.check else None
    return ContractRequest.of(args, deployment_name=args.deployment_name, version=args.version, save=save, check=check)


def run(client: Client, request: ContractRequest) -> Result | None:
    whose = {"endpoint": request.endpoint_name, "deployment": request.deployment_name, "version": request.version}
    if request.check is not None:
        line = contract.require_fits(
            client,
            request.endpoint_name,
            request.deployment_name,
            request.check,
            target=request.target,
            version=request.version,
        )
        return Result({**whose, "checked": str(request.check), "fits": True}, [line])
    raw = contract.fetch(client, request.endpoint_name, request.deployment_name, request.version, target=request.target)
    document = contract.parse(raw)
    if request.save is None:
        output(json.dumps(document, indent=2))  # JSON already: the same for --output json and text
        return None
    request.save.write_bytes(raw)
    name = request.endpoint_name + (f"/{request.deployment_name}" if request.deployment_name else "")
    line = f"Saved the OpenAPI {request.version} document of {name} ({len(raw):,} bytes) to {request.save}"
    return Result({**whose, "saved": str(request.save), "bytes": len(raw)}, [line])
