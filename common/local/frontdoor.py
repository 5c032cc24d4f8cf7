"""The front door of a local endpoint: auth, Azure's request limits, traffic routing, mirroring (the live and shadow
answers kept in pairs: common/local/shadow_pairs.py), metrics, an access log, and the supervision of the endpoint's
deployments (common/local/supervisor.py).

An ASGI app (FrontDoor: one handler per route, one credential check, one mapping from refusals to answers) served
by uvicorn on 127.0.0.1, the only port of the local target: deployments listen on Unix sockets in a folder only the
owner can enter, so every request passes the credential check here. The state files are re-read when they change
(every 0.1 s), so traffic and key updates apply without a restart; a file that cannot be read leaves the last good
routing in force. Its housekeeping (logs, the capture cap, batched writes) runs beside it
(common/local/housekeeping.py).

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
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from common.control.wire import DEPLOYMENT_HEADER
from common.local import auth, docs_page, housekeeping
from common.local.accounting import AccessLog, Metrics
from common.local.asgi import INTERNAL_ERROR, Incoming, Receive, Reply, Scope, Send, json_reply, media_type, text_reply
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
from common.local.state import LocalStore, make_private
from common.local.state_types import FrontDoorRecord
from common.local.supervisor import Supervisor, pick
from common.local.upstream import Answer, Unreachable
from common.scoring import MODEL_REASON_HEADER, MODEL_STATUS_HEADER

NO_DEPLOYMENT = "-"  # the label of requests no deployment took: a deployment name starts with a letter
# The Azure ML docs give no request size limit for managed online endpoints (the quotas page lists a request
# timeout of at most 180 s and 5 MBPS of bandwidth, no size); 5 MB is the local target's choice.
DEFAULT_MAX_REQUEST_BYTES = 5_000_000
MAX_REQUEST_BYTES_VARIABLE = "AZUREML_LOCAL_MAX_REQUEST_BYTES"
KEEP_ALIVE_SECONDS = 5  # an idle connection between requests is closed after this (uvicorn's default)
SWAGGER_PATH = "/swagger.json"  # the inference server's OpenAPI route: an endpoint's openapi_uri
REQUEST_ID_HEADER = "x-request-id"  # Azure's id of a request, on its answer
DEPLOYMENT_HEADER_BYTES = DEPLOYMENT_HEADER.encode()  # as ASGI gives header names: lower case bytes

log = logging.getLogger("frontdoor")


async def read_body(request: Incoming, limit: int) -> bytes:
    """The request body, refused (BodyTooLarge) as soon as it is known to exceed `limit`: never read whole."""
    too_large = (
        f"the request body is larger than {limit:,} bytes, the most this endpoint accepts: send its rows in several "
        f"smaller requests (a batch endpoint scores large files offline), or raise the local limit with "
        f"{MAX_REQUEST_BYTES_VARIABLE} set before the endpoint starts"
    )
    declared = request.header(b"content-length") or ""
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(too_large)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientClosed("the client closed the connection before its request body was in")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(too_large)
        if not message.get("more_body", False):
            return b"".join((*chunks, chunk)) if chunks else chunk
        chunks.append(chunk)


Handler = Callable[[Incoming], Awaitable[Reply]]


@dataclass(frozen=True)
class Route:
    """A path's one method and its handler; `public` routes answer without a credential, `scoring` ones are counted
    in the metrics, the access log and the recent requests."""

    method: str
    handler: Handler
    public: bool = False
    scoring: bool = False

    def allows(self, method: str) -> bool:
        return method == self.method or (method == "HEAD" and self.method == "GET")


class FrontDoor:
    """The front door as an ASGI app. `supervise=False` routes to deployments a test put into the supervisor by
    hand; `on_stopped` runs once every deployment server is stopped (uvicorn re-raises the SIGTERM it caught after
    its graceful shutdown, so code after uvicorn.run() never runs on a stop)."""

    def __init__(
        self,
        store: LocalStore,
        endpoint: str,
        supervisor: Supervisor | None = None,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        supervise: bool = True,
        on_stopped: Callable[[], None] | None = None,
    ) -> None:
        self.store, self.endpoint, self.max_request_bytes = store, endpoint, max_request_bytes
        self.supervisor = supervisor or Supervisor(store, endpoint)
        self.supervise, self.on_stopped = supervise, on_stopped
        self.metrics, self.recent, self.rng = Metrics(), RecentRequests(), random.Random()
        self.access = AccessLog(store.endpoint_dir(endpoint) / "access.log")
        self.pairs = ShadowPairs(self.capture_folder)
        self.background: set[asyncio.Task[None]] = set()
        self.tasks: list[asyncio.Task[None]] = []
        self.routes = {
            "/score": Route("POST", self.score, scoring=True),
            SWAGGER_PATH: Route("GET", self.swagger),
            # the page to try the endpoint and its assets: nothing secret, so they answer without a credential
            **{path: Route("GET", self.docs, public=True) for path in (docs_page.PAGE_PATH, *docs_page.ASSET_PATHS)},
            "/metrics": Route("GET", self.prometheus),
            "/metrics/window": Route("GET", self.window),
            "/": Route("GET", self.health, public=True),
        }

    # --- ASGI ----------------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        if scope["type"] != "http":  # uvicorn runs without websockets (ws="none")
            return
        started = time.perf_counter()
        request = Incoming(scope, receive)
        route = self.routes.get(request.path)
        try:
            reply = await self.answer(route, request)
        except Refusal as refusal:
            reply = refusal.reply()
        except Exception:
            log.exception("front door failed on a request")
            reply = INTERNAL_ERROR
        seconds, answered = time.perf_counter() - started, self.recent.clock()
        await reply.send(send)
        if route is not None and route.scoring and route.allows(request.method):
            # after the answer is sent, so no caller waits on it; dated when it was answered, so a caller that asks
            # for the window up to the moment it got its answer finds it there
            self.account(request, reply, seconds, answered)

    async def answer(self, route: Route | None, request: Incoming) -> Reply:
        """The route's answer, once the path, the method and (unless the route is public) the credential hold."""
        if route is None or not route.allows(request.method):
            kind = NotFound if route is None else MethodNotAllowed
            raise kind(
                f"no {request.method} {request.path} here: scoring is POST /score, the contract GET {SWAGGER_PATH}, "
                f"the page to try it GET {docs_page.PAGE_PATH}"
            )
        if not route.public:
            table = self.supervisor.routing
            problem = auth.check(request.header(b"authorization"), table.auth_mode, self.endpoint, table.keys)
            if problem:
                raise Unauthorized(problem)
        return await route.handler(request)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        try:
            self.start()
        except Exception as error:
            await send({"type": "lifespan.startup.failed", "message": str(error)})
            raise
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await self.stop()
        await send({"type": "lifespan.shutdown.complete"})

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        loops = housekeeping.loops(self.store, self.endpoint, self.access, self.pairs)
        if self.supervise:
            loops["supervisor"] = self.supervisor.run()
        else:
            self.supervisor.reload()
        self.tasks = [loop.create_task(work, name=name) for name, work in loops.items()]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.supervise:
            await self.supervisor.shutdown()
            if self.on_stopped is not None:
                self.on_stopped()

    # --- the routes ------------------------------------------------------------------------------------------------

    def route(self, request: Incoming) -> tuple[bool, Deployment, Instance]:
        """The deployment a request goes to, and whether the header named it: the one the azureml-model-deployment
        header names, else one drawn by the live traffic shares."""
        named = (request.header(DEPLOYMENT_HEADER_BYTES) or "").strip()  # spaces around it, as HTTP allows
        if named and named not in self.supervisor.deployments:
            raise DeploymentNotFound(f"deployment {named!r} not found on endpoint {self.endpoint!r}")
        chosen = named or pick(self.supervisor.routing.live_traffic, self.rng)
        if chosen is None:
            message = (
                f"no deployment of endpoint {self.endpoint!r} takes traffic: give one a share, or name one in "
                f"the {DEPLOYMENT_HEADER} header"
            )
            raise Unavailable(message)
        deployment, instance = self.serving(chosen)
        if deployment is None or instance is None:
            why = deployment.unavailable_reason() if deployment else "is not running"
            raise Unavailable(f"deployment {chosen!r} {why}", chosen)
        return bool(named), deployment, instance

    async def score(self, request: Incoming) -> Reply:
        body = await read_body(request, self.max_request_bytes)
        named, deployment, instance = self.route(request)
        chosen = deployment.name
        table = self.supervisor.routing
        content_type = request.header(b"content-type") or "application/json"
        request_id = str(uuid.uuid4())
        mirrored, pair = None, None
        if not named:  # as in Azure: requests naming a deployment are not mirrored
            for target, share in table.mirror_traffic.items():  # Azure allows one mirror deployment
                if self.rng.random() * 100 < share:
                    pair = self.pairs.opened(request_id)
                    task = asyncio.create_task(self.mirror(target, body, content_type, pair))
                    self.background.add(task)
                    task.add_done_callback(self.background.discard)
                    mirrored = target
        if pair is None:
            return await self.forward(deployment, instance, body, content_type, request_id)
        started = time.perf_counter()
        status, answer = INTERNAL_ERROR.status, None  # unless the deployment answers or is refused
        try:
            reply = await self.forward(deployment, instance, body, content_type, request_id)
            status, answer = reply.status, reply.body
        except Refusal as refusal:
            status = refusal.status
            raise
        finally:
            seconds = time.perf_counter() - started
            self.pairs.answered(pair, shadow=False, deployment=chosen, status=status, seconds=seconds, body=answer)
        return replace(reply, mirrored=mirrored)

    async def swagger(self, request: Incoming) -> Reply:
        """The routed deployment's OpenAPI document as its inference server serves it (GET /swagger.json and its
        version parameter, the endpoint's openapi_uri), passed through unchanged: status, body and content type."""
        _named, deployment, instance = self.route(request)
        version = request.query().get("version")
        target = SWAGGER_PATH if version is None else f"{SWAGGER_PATH}?{urlencode({'version': version})}"
        answer = await within_limits(deployment, instance.get(target))
        headers = ((DEPLOYMENT_HEADER, deployment.name),)
        return Reply(answer.status, answer.body, media_type(answer.content_type), headers, deployment.name)

    async def docs(self, request: Incoming) -> Reply:
        return docs_page.answer(request.path, self.endpoint)

    async def prometheus(self, _request: Incoming) -> Reply:
        return Reply(200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST)

    async def window(self, request: Incoming) -> Reply:
        """Per deployment, what it served since `since` (until `until`), epoch seconds: the local Azure Monitor."""
        query = request.query()
        try:
            since = float(query["since"])
            until = float(query["until"]) if "until" in query else None
        except (KeyError, ValueError):
            raise BadRequest("give since (and optionally until) as epoch seconds") from None
        if since < time.time() - RETENTION_SECONDS - 60:
            raise BadRequest(f"the front door keeps the last {RETENTION_SECONDS // 60} minutes of requests")
        seconds = list(self.recent.seconds)  # copied on the event loop; summarised in a thread, so serving goes on
        return json_reply(await asyncio.to_thread(self.recent.summarise, seconds, since, until))

    async def health(self, _request: Incoming) -> Reply:
        return text_reply("Healthy")

    # --- the deployments ---------------------------------------------------------------------------------------------

    def capture_folder(self, name: str) -> Path | None:
        """Where a shadow's answer pairs go: its folder of collected data, under the owner's private home."""
        deployment = self.supervisor.deployments.get(name)
        folder = deployment.spec.capture_dir if deployment is not None else None
        return Path(folder) if folder else None

    def serving(self, name: str) -> tuple[Deployment | None, Instance | None]:
        deployment = self.supervisor.deployments.get(name)
        if deployment is None or not deployment.ready or deployment.current is None:
            return deployment, None
        return deployment, deployment.current

    async def forward(
        self, deployment: Deployment, instance: Instance, body: bytes, content_type: str, request_id: str
    ) -> Reply:
        """The deployment's answer within its limits: 429 beyond what it admits, 408 past its request timeout, 503
        when its server does not answer, 424 (its own status in a header) when the model answers an error."""
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
            answer = await within_limits(deployment, instance.score(body, content_type, request_id))
        finally:
            instance.in_flight -= 1
        instance.answered = True
        headers: tuple[tuple[str, str], ...] = ((DEPLOYMENT_HEADER, deployment.name), (REQUEST_ID_HEADER, request_id))
        status = answer.status
        if not 200 <= status < 300:
            # As Azure: a model that answers an error gives 424, its own status in a header, its body as it is.
            headers += ((MODEL_STATUS_HEADER, str(status)), (MODEL_REASON_HEADER, answer.reason))
            status = 424
        return Reply(status, answer.body, media_type(answer.content_type), headers, deployment.name)

    async def mirror(self, name: str, body: bytes, content_type: str, pair: Pair) -> None:
        started = time.perf_counter()
        deployment, instance = self.serving(name)
        answer: bytes | None = None
        if deployment is None or instance is None:
            status = Unavailable.status
        else:
            try:
                reply = await self.forward(deployment, instance, body, content_type, pair.request_id)
                status, answer = reply.status, reply.body
            except Refusal as refusal:
                status = refusal.status
        seconds = time.perf_counter() - started
        self.metrics.mirrored.labels(name, str(status)).inc()
        self.recent.record(name, status, seconds, mirrored=True)
        self.pairs.answered(pair, shadow=True, deployment=name, status=status, seconds=seconds, body=answer)

    def account(self, request: Incoming, reply: Reply, seconds: float, answered: float) -> None:
        deployment = reply.deployment or NO_DEPLOYMENT
        self.metrics.observe(deployment, reply.status, seconds)
        if reply.deployment:
            self.recent.record(reply.deployment, reply.status, seconds, moment=answered)
        self.access.record(request.client, reply.status, deployment, reply.mirrored, seconds)


async def within_limits(deployment: Deployment, exchange: Coroutine[Any, Any, Answer]) -> Answer:
    """A deployment server's answer within the deployment's request timeout: 408 past it, 503 when it does not
    answer."""
    try:
        async with asyncio.timeout(deployment.settings.request_timeout):
            return await exchange
    except TimeoutError:
        seconds = deployment.settings.request_timeout
        raise RequestTimeout(
            f"deployment {deployment.name!r} took longer than {seconds:g} s", deployment.name
        ) from None
    except Unreachable:
        raise Unavailable(f"deployment {deployment.name!r} is not reachable", deployment.name) from None


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
        FrontDoorRecord(os.getpid(), args.port, revision, state_error).dump(record)

    def stopped() -> None:
        record.unlink(missing_ok=True)
        log.info("front door of %r stopped, and its deployment servers with it", args.endpoint_name)

    soft, hard = raise_descriptor_limit()
    log.info("open files: %s of %s allowed; at most %d connections", soft, hard, connection_cap())
    supervisor = Supervisor(store, args.endpoint_name, on_applied=applied)
    app = FrontDoor(store, args.endpoint_name, supervisor, max_request_bytes=_max_request_bytes(), on_stopped=stopped)
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
