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
from common.errors import UsageError


class RequestBreaksContract(UsageError):
    """The request file does not fit the endpoint's request schema: nothing was sent."""


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
    save = Path(args.save) if args.save else None
    if save is not None and not save.parent.is_dir():
        raise UsageError(f"--save {args.save!r}: its folder {str(save.parent)!r} does not exist")
    if save is not None and save.is_dir():
        raise UsageError(f"--save {args.save!r} is a folder: give a file name")
    check = validation.request_file(Path(args.check), "--check") if args.check else None
    return ContractRequest.of(args, deployment_name=args.deployment_name, version=args.version, save=save, check=check)


def run(client: Client, request: ContractRequest) -> Result | None:
    raw = contract.fetch(client, request.endpoint_name, request.deployment_name, request.version, target=request.target)
    document = contract.parse(raw)
    whose = request.endpoint_name + (f"/{request.deployment_name}" if request.deployment_name else "")
    if request.check is not None:
        return checked(document, request, whose)
    if request.save is not None:
        request.save.write_bytes(raw)
        data = {"endpoint": request.endpoint_name, "deployment": request.deployment_name, "saved": str(request.save)}
        line = f"Saved the OpenAPI {request.version} document of {whose} ({len(raw):,} bytes) to {request.save}"
        return Result({**data, "version": request.version, "bytes": len(raw)}, [line])
    output(json.dumps(document, indent=2))  # JSON already: the same for --output json and text
    return None


def checked(document: dict[str, object], request: ContractRequest, whose: str) -> Result:
    assert request.check is not None
    body = json.loads(request.check.read_text())
    found = contract.problems(document, body)
    if found:
        lines = "\n".join(f"  {problem}" for problem in found)
        raise RequestBreaksContract(
            f"{request.check} does not fit the contract of {whose} (OpenAPI {request.version}); nothing was sent:\n"
            + lines
        )
    return Result(
        {"endpoint": request.endpoint_name, "deployment": request.deployment_name, "checked": str(request.check)},
        [f"{request.check} fits the contract of {whose} (OpenAPI {request.version})"],
    )
