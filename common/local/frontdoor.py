"""The front door of a local endpoint: auth, Azure's request limits, traffic routing, mirroring (the live and shadow
answers kept in pairs: common/local/shadow_pairs.py), metrics, an access log, and the supervision of the endpoint's
deployments (common/local/supervisor.py).

A Starlette app served by uvicorn on 127.0.0.1, the only port of the local target: deployments listen on Unix
sockets in a folder only the owner can enter, so every request passes the credential check here. The state files
are re-read when they change (every 0.1 s), so traffic and key updates apply without a restart; a file that cannot
be read leaves the last good routing in force.

Run (the local client starts it): python -m common.local.frontdoor --home DIR --endpoint_name NAME --port PORT
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from common.local import auth, capture_files, logfiles
from common.local.accounting import AccessLog, Metrics, flush_every
from common.local.connections import GuardedHttpToolsProtocol, connection_cap, raise_descriptor_limit
from common.local.deployment import Deployment
from common.local.instance import Instance
from common.local.recent import RETENTION_SECONDS, RecentRequests
from common.local.refusals import (
    BadRequest,
    BodyTooLarge,
    ClientClosed,
    DeploymentNotFound,
    MethodNotAllowed,
    NotFound,
    Refusal,
    RequestTimeout,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)
from common.local.shadow_pairs import Pair, ShadowPairs
from common.local.state import LocalStore, make_private, write_json
from common.local.supervisor import LiveTraffic, Supervisor
from common.local.upstream import Unreachable
from common.operations import DEPLOYMENT_HEADER
from common.scoring import MODEL_REASON_HEADER, MODEL_STATUS_HEADER

NO_DEPLOYMENT = "-"  # the label of requests no deployment took: a deployment name starts with a letter
# The Azure ML docs give no request size limit for managed online endpoints (the quotas page lists a request
# timeout of at most 180 s and 5 MBPS of bandwidth, no size); 5 MB is the local target's choice.
DEFAULT_MAX_REQUEST_BYTES = 5_000_000
MAX_REQUEST_BYTES_VARIABLE = "AZUREML_LOCAL_MAX_REQUEST_BYTES"
KEEP_ALIVE_SECONDS = 5  # an idle connection between requests is closed after this (uvicorn's default)
REQUEST_ID_HEADER = "x-request-id"  # Azure's id of a request, on its answer

log = logging.getLogger("frontdoor")


def pick(live: LiveTraffic, rng: random.Random) -> str | None:
    """A deployment drawn by traffic weight; None when no deployment has any."""
    names, cumulative = live
    if len(names) < 2:
        return names[0] if names else None
    return rng.choices(names, cum_weights=cumulative)[0]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (BodyTooLarge) as soon as it is known to exceed `limit`: never read whole."""
    too_large = (
        f"the request body is larger than {limit:,} bytes, the most this endpoint accepts: send its rows in several "
        f"smaller requests (a batch endpoint scores large files offline), or raise the local limit with "
        f"{MAX_REQUEST_BYTES_VARIABLE} set before the endpoint starts"
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(too_large)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(too_large)
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientClosed("the client closed the connection before its request body was in") from None
    return b"".join(chunks)


def create_app(
    store: LocalStore,
    endpoint: str,
    supervisor: Supervisor | None = None,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    supervise: bool = True,
    on_stopped: Callable[[], None] | None = None,
) -> ASGIApp:
    """The front door; `supervise=False` routes to deployments a test put into the supervisor by hand.

    `on_stopped` runs once every deployment server is stopped: uvicorn re-raises the SIGTERM it caught after its
    graceful shutdown, so code after uvicorn.run() never runs on a stop.
    """
    supervisor = supervisor or Supervisor(store, endpoint)
    metrics = Metrics()
    recent = RecentRequests()
    rng = random.Random()
    access = AccessLog(store.endpoint_dir(endpoint) / "access.log")
    background: set[asyncio.Task[None]] = set()

    def capture_folder(name: str) -> Path | None:
        """Where a shadow's answer pairs go: its folder of collected data, under the owner's private home."""
        deployment = supervisor.deployments.get(name)
        spec = deployment.spec if deployment is not None else None
        return Path(spec["capture_dir"]) if spec and spec.get("capture_dir") else None

    pairs = ShadowPairs(capture_folder)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        tasks = [
            loop.create_task(access.run(), name="access log"),
            loop.create_task(keep_logs(), name="logs"),
            loop.create_task(flush_every(pairs.flush, AccessLog.FLUSH_SECONDS, in_thread=True), name="pairs"),
        ]
        if supervise:
            tasks.append(loop.create_task(supervisor.run(), name="supervisor"))
        else:
            supervisor.reload()
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if supervise:
                await supervisor.shutdown()
                if on_stopped is not None:
                    on_stopped()

    async def keep_logs() -> None:
        """Every log of the endpoint kept under its size (common/local/logfiles.py)."""
        folder, max_bytes = store.endpoint_dir(endpoint), logfiles.log_max_bytes()
        while True:
            await asyncio.sleep(logfiles.CHECK_SECONDS)
            logs = [
                folder / "frontdoor.log",
                access.path,
                *(store.server_log(endpoint, d) for d in store.deployments(endpoint)),
            ]
            for path in await asyncio.to_thread(logfiles.rotate, logs, max_bytes):
                log.info("rotated %s (over %d bytes; %d older files kept)", path.name, max_bytes, logfiles.LOG_KEEP)
            await asyncio.to_thread(keep_captures)

    def keep_captures() -> None:
        """Each deployment's collected data kept under its cap (common/local/capture_files.py)."""
        limit = capture_files.max_bytes()
        data = store.endpoint_dir(endpoint) / "data"
        for folder in data.iterdir() if data.is_dir() else ():
            removed = capture_files.prune(folder, limit)
            if removed:
                log.info("removed %d oldest collected file(s) of %s (over %d bytes)", len(removed), folder.name, limit)

    async def forward(
        deployment: Deployment, instance: Instance, body: bytes, content_type: str, request_id: str
    ) -> Response:
        settings = deployment.settings
        if instance.in_flight >= settings.admitted_requests:
            message = (
                f"deployment {deployment.name!r} has {instance.in_flight} requests in flight, the most it admits "
                f"(2 x max_concurrent_requests_per_instance {settings.max_concurrent_requests_per_instance} x "
                f"instance_count {settings.instance_count}); retry with backoff"
            )
            raise TooManyRequests(message, deployment.name)
        instance.in_flight += 1
        try:
            async with asyncio.timeout(settings.request_timeout):
                answer = await instance.score(body, content_type, request_id)
        except TimeoutError:
            seconds = settings.request_timeout
            raise RequestTimeout(
                f"deployment {deployment.name!r} took longer than {seconds:g} s", deployment.name
            ) from None
        except Unreachable:
            raise Unavailable(f"deployment {deployment.name!r} is not reachable", deployment.name) from None
        finally:
            instance.in_flight -= 1
        instance.answered = True
        headers = {DEPLOYMENT_HEADER: deployment.name, REQUEST_ID_HEADER: request_id}
        if 200 <= answer.status < 300:
            return Response(answer.body, answer.status, headers, media_type=answer.content_type)
        # As Azure: a model that answers an error gives 424, its own status in a header, its body as it is.
        headers |= {MODEL_STATUS_HEADER: str(answer.status), MODEL_REASON_HEADER: answer.reason}
        return Response(answer.body, 424, headers, media_type=answer.content_type)

    def serving(name: str) -> tuple[Deployment | None, Instance | None]:
        deployment = supervisor.deployments.get(name)
        if deployment is None or not deployment.ready or deployment.current is None:
            return deployment, None
        return deployment, deployment.current

    async def mirror(name: str, body: bytes, content_type: str, pair: Pair) -> None:
        started = time.perf_counter()
        deployment, instance = serving(name)
        answer: bytes | None = None
        if deployment is None or instance is None:
            status = Unavailable.status
        else:
            try:
                response = await forward(deployment, instance, body, content_type, pair.request_id)
                status, answer = response.status_code, bytes(response.body)
            except Refusal as refusal:
                status = refusal.status
        seconds = time.perf_counter() - started
        metrics.mirrored.labels(name, str(status)).inc()
        recent.record(name, status, seconds, mirrored=True)
        pairs.answered(pair, shadow=True, deployment=name, status=status, seconds=seconds, body=answer)

    async def score(request: Request) -> Response:
        started = time.perf_counter()
        try:
            response, deployment, mirrored = await route(request)
        except Refusal as refusal:
            response, deployment, mirrored = refusal.response(), refusal.deployment or NO_DEPLOYMENT, None
        seconds = time.perf_counter() - started
        metrics.observe(deployment, response.status_code, seconds)
        if deployment != NO_DEPLOYMENT:
            recent.record(deployment, response.status_code, seconds)
        client = request.client.host if request.client else "-"
        access.record(client, response.status_code, deployment, mirrored, seconds)
        return response

    async def route(request: Request) -> tuple[Response, str, str | None]:
        table = supervisor.routing
        problem = auth.check(request.headers.get("authorization"), table.auth_mode, endpoint, table.keys)
        if problem:
            raise Unauthorized(problem)
        body = await read_body(request, max_request_bytes)
        named = chosen = request.headers.get(DEPLOYMENT_HEADER, "").strip()  # spaces around it, as HTTP allows
        if chosen and chosen not in supervisor.deployments:
            raise DeploymentNotFound(f"deployment {chosen!r} not found on endpoint {endpoint!r}")
        if not chosen:
            chosen = pick(table.live_traffic, rng)
            if chosen is None:
                message = (
                    f"no deployment of endpoint {endpoint!r} takes traffic: give one a share, or name one in the "
                    f"{DEPLOYMENT_HEADER} header"
                )
                raise Unavailable(message)
        deployment, instance = serving(chosen)
        if deployment is None or instance is None:
            why = deployment.unavailable_reason() if deployment else "is not running"
            raise Unavailable(f"deployment {chosen!r} {why}", chosen)
        content_type = request.headers.get("content-type", "application/json")
        request_id = str(uuid.uuid4())
        mirrored, pair = None, None
        if not named:  # as in Azure: requests naming a deployment are not mirrored
            for target, share in table.mirror_traffic.items():  # Azure allows one mirror deployment
                if rng.random() * 100 < share:
                    pair = pairs.opened(request_id)
                    task = asyncio.create_task(mirror(target, body, content_type, pair))
                    background.add(task)
                    task.add_done_callback(background.discard)
                    mirrored = target
        started = time.perf_counter()
        try:
            response = await forward(deployment, instance, body, content_type, request_id)
        except Refusal as refusal:
            if pair is not None:
                seconds = time.perf_counter() - started
                pairs.answered(pair, shadow=False, deployment=chosen, status=refusal.status, seconds=seconds, body=None)
            raise
        if pair is not None:
            seconds, answer = time.perf_counter() - started, bytes(response.body)
            pairs.answered(
                pair, shadow=False, deployment=chosen, status=response.status_code, seconds=seconds, body=answer
            )
        return response, chosen, mirrored

    def refused(request: Request) -> Response | None:
        table = supervisor.routing
        problem = auth.check(request.headers.get("authorization"), table.auth_mode, endpoint, table.keys)
        return Unauthorized(problem).response() if problem else None

    async def prometheus(request: Request) -> Response:
        if (refusal := refused(request)) is not None:
            return refusal
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def window(request: Request) -> Response:
        """Per deployment, what it served since `since` (until `until`), epoch seconds: the local Azure Monitor."""
        if (refusal := refused(request)) is not None:
            return refusal
        try:
            since = float(request.query_params["since"])
            until = float(request.query_params["until"]) if "until" in request.query_params else None
        except (KeyError, ValueError):
            return BadRequest("give since (and optionally until) as epoch seconds").response()
        if since < time.time() - RETENTION_SECONDS - 60:
            message = f"the front door keeps the last {RETENTION_SECONDS // 60} minutes of requests"
            return BadRequest(message).response()
        seconds = list(recent.seconds)  # copied on the event loop; summarised in a thread, so serving goes on
        return JSONResponse(await asyncio.to_thread(recent.summarise, seconds, since, until))

    async def health(_request: Request) -> Response:
        return PlainTextResponse("Healthy")

    async def no_route(request: Request, error: Exception) -> Response:
        kind = MethodNotAllowed if getattr(error, "status_code", 404) == 405 else NotFound
        return kind(f"no {request.method} {request.url.path} here: scoring is POST /score").response()

    app = Starlette(
        routes=[
            Route("/score", score, methods=["POST"]),
            Route("/metrics", prometheus, methods=["GET"]),
            Route("/metrics/window", window, methods=["GET"]),
            Route("/", health, methods=["GET"]),
        ],
        lifespan=lifespan,
        exception_handlers={404: no_route, 405: no_route},
    )
    # Starlette answers /score/ with a 307 to a Location built from the client's Host header: no redirects here
    app.router.redirect_slashes = False

    async def front_door(scope: Scope, receive: Receive, send: Send) -> None:
        """POST /score straight to its handler: the one path every request takes skips Starlette's middleware and
        router (a profile at 1 connection put about 40% of the front door's time per request in them); anything
        else, the lifespan included, goes through the app."""
        if scope["type"] == "http" and scope["path"] == "/score" and scope["method"] == "POST":
            try:
                response = await score(Request(scope, receive))
            except Exception:  # as Starlette's error middleware would: a 500, the traceback in the log
                log.exception("front door failed on a request")
                response = PlainTextResponse("Internal Server Error", status_code=500)
            await response(scope, receive, send)
            return
        await app(scope, receive, send)

    return front_door


def _max_request_bytes() -> int:
    configured = os.environ.get(MAX_REQUEST_BYTES_VARIABLE, "")
    return int(configured) if configured.isdigit() and int(configured) > 0 else DEFAULT_MAX_REQUEST_BYTES


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn
    from filelock import FileLock, Timeout

    parser = argparse.ArgumentParser(description="Front door of a local endpoint")
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--endpoint_name", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    store = LocalStore(args.home)
    make_private(args.home)  # its logs and state files, and what its deployment servers write
    # One front door per endpoint: the lock is the operating system's, so it is released even on kill -9.
    running = FileLock(store.frontdoor_lock(args.endpoint_name), blocking=False)
    try:
        running.acquire()
    except Timeout:
        log.error("a front door of %r runs already", args.endpoint_name)
        return 1
    record = store.frontdoor_file(args.endpoint_name)

    def applied(revision: int, state_error: str | None) -> None:
        """What the commands wait on: the revision the front door routes by, or why it cannot read the state."""
        write_json(
            record, {"pid": os.getpid(), "port": args.port, "applied_revision": revision, "state_error": state_error}
        )

    def stopped() -> None:
        record.unlink(missing_ok=True)
        log.info("front door of %r stopped, and its deployment servers with it", args.endpoint_name)

    soft, hard = raise_descriptor_limit()
    log.info("open files: %s of %s allowed; at most %d connections", soft, hard, connection_cap())
    supervisor = Supervisor(store, args.endpoint_name, on_applied=applied)
    app = create_app(store, args.endpoint_name, supervisor, max_request_bytes=_max_request_bytes(), on_stopped=stopped)
    log.info("front door of %r on 127.0.0.1:%d (pid %d)", args.endpoint_name, args.port, os.getpid())
    try:
        # uvloop and httptools (C event loop and HTTP parser) rather than asyncio's and h11 (pure Python)
        uvicorn.run(
            app,
            host="127.0.0.1",
            port=args.port,
            log_level="warning",
            access_log=False,
            proxy_headers=False,  # nothing stands in front of it: X-Forwarded-For would only be a client's claim
            loop="uvloop",
            http=GuardedHttpToolsProtocol,  # httptools, with header deadlines and bounds and a connection cap
            ws="none",  # no upgrades (a POST with Upgrade: h2c is refused, its body never dropped)
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
    finally:  # reached when uvicorn could not start (the port is taken); a stop by signal ends in on_stopped
        record.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
