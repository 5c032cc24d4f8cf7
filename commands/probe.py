"""probe: send the request N times and count which deployment answered each (the traffic split at work)."""

from __future__ import annotations

import argparse
import collections
import time
from dataclasses import dataclass
from pathlib import Path

from commands import Request, Result
from commands.shared import MAX_PROBES, add_request_file_flag, endpoint_or_fail
from common import scoring, validation
from common.azure.surface import Client
from common.cli import add_flag, progress
from common.control.wire import DEPLOYMENT_HEADER
from common.errors import CliError, UsageError
from common.release import traffic

PROGRESS_SECONDS = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_request_file_flag(parser)
    add_flag(parser, "--requests", type=int, default=200, help=f"how many, 1-{MAX_PROBES} (default: %(default)s)")


@dataclass(frozen=True, kw_only=True)
class ProbeRequest(Request):
    requests: int
    request_file: Path


def validate(args: argparse.Namespace) -> ProbeRequest:
    if not 1 <= args.requests <= MAX_PROBES:
        raise UsageError(f"invalid --requests {args.requests}: use 1 to {MAX_PROBES}")
    validation.request_file(Path(args.request_file))
    return ProbeRequest.of(args, requests=args.requests, request_file=Path(args.request_file))


def run(client: Client, request: ProbeRequest) -> Result:
    """POST the request file N times to the scoring URI and count the azureml-model-deployment response header."""
    endpoint = endpoint_or_fail(client, request)
    answered = send(endpoint.scoring_uri, scoring.request_headers(client, request.endpoint_name), request)
    split, count_all = dict(answered.most_common()), request.requests
    lines = [f"{count_all} requests to {request.endpoint_name}:"]
    lines += [f"  {name:24} {count:5}  {100 * count / count_all:5.1f}%" for name, count in split.items()]
    lines.append(f"Configured traffic: {traffic.describe(dict(endpoint.traffic or {})) or 'none'}")
    return Result({"requests": count_all, "answered_by": split, "traffic": dict(endpoint.traffic or {})}, lines)


def send(uri: str, headers: dict[str, str], request: ProbeRequest) -> collections.Counter[str]:
    import httpx

    body = request.request_file.read_bytes()
    answered: collections.Counter[str] = collections.Counter()
    progress(f"Sending {request.requests} requests to {uri} ...")
    last_progress = time.monotonic()
    with httpx.Client(timeout=scoring.PROBE_TIMEOUT_SECONDS) as http:
        for sent in range(1, request.requests + 1):
            if time.monotonic() - last_progress >= PROGRESS_SECONDS:
                progress(f"  {sent - 1}/{request.requests} answered")
                last_progress = time.monotonic()
            try:
                response = http.post(uri, content=body, headers=headers)
            except httpx.TransportError as error:
                raise CliError(f"{uri} is not reachable: {error}") from None
            served_by = response.headers.get(DEPLOYMENT_HEADER, "unknown")
            answered[served_by if response.status_code < 400 else f"{served_by} (HTTP {response.status_code})"] += 1
    return answered
