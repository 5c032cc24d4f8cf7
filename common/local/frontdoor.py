"""The front door of a local endpoint: auth, traffic routing, mirroring, metrics and an access log.

A Starlette app served by uvicorn on 127.0.0.1; upstream calls go to the deployments' azureml-inference-server-http
processes through httpx with timeouts, so a request never hangs. It re-reads the endpoint's state files when they
change, so traffic and key updates apply without a restart.

Run (the local client starts it): python -m common.local.frontdoor --home DIR --endpoint_name NAME --port PORT
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from common.local import auth
from common.local.state import LocalStore, read_json
from common.operations import DEPLOYMENT_HEADER

REQUEST_TIMEOUT_SECONDS = 5.0  # Azure's default request_timeout_ms for managed online deployments
CONNECT_TIMEOUT_SECONDS = 2.0
NO_DEPLOYMENT = "none"


@dataclass
class Routing:
    auth_mode: str = "key"
    keys: dict[str, str] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)
    mirror_traffic: dict[str, int] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)


class RoutingTable:
    """The endpoint's routing, reloaded whenever one of its state files changes."""

    def __init__(self, store: LocalStore, endpoint: str) -> None:
        self.store, self.endpoint = store, endpoint
        self._signature: tuple[Any, ...] = ()
        self._routing = Routing()

    def _files(self) -> list[Path]:
        deployments = self.store.endpoint_dir(self.endpoint) / "deployments"
        return [
            self.store.endpoint_file(self.endpoint),
            self.store.keys_file(self.endpoint),
            *sorted(deployments.glob("*/deployment.json")),
        ]

    def current(self) -> Routing:
        files = self._files()
        signature = tuple((str(p), p.stat().st_mtime_ns) for p in files if p.exists())
        if signature != self._signature:
            spec = read_json(files[0])
            ports = {}
            for path in files[2:]:
                deployment = read_json(path)
                if deployment.get("port"):
                    ports[deployment["name"]] = int(deployment["port"])
            self._routing = Routing(
                auth_mode=spec["auth_mode"],
                keys=read_json(files[1]),
                traffic={k: int(v) for k, v in spec.get("traffic", {}).items()},
                mirror_traffic={k: int(v) for k, v in spec.get("mirror_traffic", {}).items()},
                ports=ports,
            )
            self._signature = signature
        return self._routing


def pick(weights: Mapping[str, int], rng: random.Random) -> str | None:
    """A deployment drawn by traffic weight; None when no deployment has any."""
    live = [(name, share) for name, share in weights.items() if share > 0]
    if not live:
        return None
    names, shares = zip(*live, strict=True)
    return rng.choices(names, weights=shares)[0]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("deployment", "status_code")
        self.requests = Counter("endpoint_requests", "Scoring requests", labels, registry=self.registry)
        self.errors = Counter("endpoint_errors", "Scoring requests answered 4xx or 5xx", labels, registry=self.registry)
        self.latency = Histogram(
            "endpoint_request_duration_seconds", "Scoring request latency", labels, registry=self.registry
        )
        self.mirrored = Counter("endpoint_mirrored_requests", "Mirrored copies", labels, registry=self.registry)

    def observe(self, deployment: str, status: int, seconds: float) -> None:
        labels = (deployment, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)
        if status >= 400:
            self.errors.labels(*labels).inc()


def create_app(store: LocalStore, endpoint: str, request_timeout: float = REQUEST_TIMEOUT_SECONDS) -> Starlette:
    routing = RoutingTable(store, endpoint)
    metrics = Metrics()
    rng = random.Random()
    access = _access_logger(store.endpoint_dir(endpoint) / "access.log", endpoint)
    background: set[asyncio.Task[None]] = set()
    timeout = httpx.Timeout(request_timeout, connect=CONNECT_TIMEOUT_SECONDS)
    http: dict[str, httpx.AsyncClient] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=timeout) as client:
            http["client"] = client
            yield

    async def forward(deployment: str, port: int, body: bytes, content_type: str) -> Response:
        url = f"http://127.0.0.1:{port}/score"
        try:
            upstream = await http["client"].post(url, content=body, headers={"Content-Type": content_type})
        except httpx.TimeoutException as error:
            if isinstance(error, httpx.ConnectTimeout):
                return _error(503, f"deployment {deployment!r} is not reachable", deployment)
            return _error(408, f"deployment {deployment!r} took longer than {request_timeout:g} s", deployment)
        except httpx.TransportError:
            return _error(503, f"deployment {deployment!r} is not reachable", deployment)
        media_type = upstream.headers.get("content-type", "application/json")
        return Response(upstream.content, upstream.status_code, {DEPLOYMENT_HEADER: deployment}, media_type=media_type)

    async def mirror(deployment: str, port: int, body: bytes, content_type: str) -> None:
        response = await forward(deployment, port, body, content_type)
        metrics.mirrored.labels(deployment, str(response.status_code)).inc()

    async def score(request: Request) -> Response:
        started = time.perf_counter()
        table = routing.current()
        response, deployment, mirrored = await route(request, table)
        seconds = time.perf_counter() - started
        metrics.observe(deployment, response.status_code, seconds)
        client = request.client.host if request.client else "-"
        access.info(
            '%s "POST /score" %d deployment=%s mirror=%s %.1fms',
            client,
            response.status_code,
            deployment,
            mirrored or "-",
            seconds * 1000,
        )
        return response

    async def route(request: Request, table: Routing) -> tuple[Response, str, str | None]:
        problem = auth.check(request.headers.get("authorization"), table.auth_mode, endpoint, table.keys)
        if problem:
            return _error(401, problem, None), NO_DEPLOYMENT, None
        chosen = request.headers.get(DEPLOYMENT_HEADER)
        if chosen and chosen not in table.ports:
            return _error(404, f"deployment {chosen!r} not found on endpoint {endpoint!r}", None), NO_DEPLOYMENT, None
        if not chosen:
            chosen = pick(table.traffic, rng)
            if chosen is None:
                message = (
                    f"no deployment of endpoint {endpoint!r} takes traffic: give one a share, or name one in the "
                    f"{DEPLOYMENT_HEADER} header"
                )
                return _error(503, message, None), NO_DEPLOYMENT, None
        if chosen not in table.ports:
            return _error(503, f"deployment {chosen!r} is not running", chosen), chosen, None
        body = await request.body()
        content_type = request.headers.get("content-type", "application/json")
        mirrored = None
        mirror_allowed = DEPLOYMENT_HEADER not in request.headers  # as in Azure: named requests are not mirrored
        if mirror_allowed:
            for target, share in table.mirror_traffic.items():
                if target in table.ports and rng.random() * 100 < share:
                    task = asyncio.create_task(mirror(target, table.ports[target], body, content_type))
                    background.add(task)
                    task.add_done_callback(background.discard)
                    mirrored = target
        return await forward(chosen, table.ports[chosen], body, content_type), chosen, mirrored

    async def prometheus(_request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def health(_request: Request) -> Response:
        return PlainTextResponse("Healthy")

    return Starlette(
        routes=[
            Route("/score", score, methods=["POST"]),
            Route("/metrics", prometheus, methods=["GET"]),
            Route("/", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def _error(status: int, message: str, deployment: str | None) -> JSONResponse:
    headers = {DEPLOYMENT_HEADER: deployment} if deployment else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _access_logger(path: Path, endpoint: str) -> logging.Logger:
    logger = logging.getLogger(f"frontdoor.access.{endpoint}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not logger.handlers:
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
    return logger


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description="Front door of a local endpoint")
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--endpoint_name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--request_timeout", type=float, default=REQUEST_TIMEOUT_SECONDS)
    args = parser.parse_args(argv)
    app = create_app(LocalStore(args.home), args.endpoint_name, args.request_timeout)
    print(json.dumps({"endpoint": args.endpoint_name, "port": args.port}), flush=True)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
