"""The front door's client to its deployment servers: one HTTP/1.1 exchange per connection on a Unix socket.

Built for this one job because the general clients cost more than the model. Measured on 2 cores against one
gunicorn worker, 8 requests at a time: httpx's per-request work (a failing sniffio import on every lock, cookie
extraction, URL models) held the front door to 290 requests/s where the server alone answers 405; aiohttp left the
server waiting for its next request once per request (394/s); an asyncio protocol that writes the request as the
connection opens and parses the answer with httptools (llhttp, the parser uvicorn uses) kept it busy (415/s).

gunicorn's sync workers, which azureml-inference-server-http runs, close every connection after one answer, so
there is no keep-alive to pool: each exchange connects, writes, reads one answer and closes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import cast

import httptools

DEFAULT_CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class Answer:
    """A deployment server's answer."""

    status: int
    reason: str
    content_type: str
    body: bytes


class Unreachable(Exception):
    """The socket refused the connection, or it closed before a whole answer came."""


def http_request(method: str, target: str, body: bytes = b"", content_type: str = "", request_id: str = "") -> bytes:
    """One request for a deployment's server: `method` and `target` (a path with its query) as the front door chose
    them, the caller's body and content type (anything that could break the header is replaced), and the front
    door's id of the request as x-request-id (the inference server's request id, which score.py's data collection
    uses as correlation id)."""
    if not target.startswith("/") or not target.isascii() or not target.isprintable() or " " in target:
        raise ValueError(f"not a request target: {target!r}")
    lines = [f"{method} {target} HTTP/1.1", "Host: deployment"]
    if body or method == "POST":
        if not content_type.isprintable() or not content_type.isascii() or not content_type:
            content_type = DEFAULT_CONTENT_TYPE
        lines += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    if request_id:
        lines.append(f"x-request-id: {request_id}")
    lines += ["Connection: close", "", ""]
    return "\r\n".join(lines).encode("ascii") + body


def scoring_request(body: bytes, content_type: str, request_id: str = "") -> bytes:
    """POST /score with the caller's body."""
    return http_request("POST", "/score", body, content_type, request_id)


class _Exchange(asyncio.Protocol):
    """Writes the request once connected; resolves `answer` when httptools has parsed a whole response."""

    def __init__(self, request: bytes, answer: asyncio.Future[Answer]) -> None:
        self.request, self.answer = request, answer
        self.parser = httptools.HttpResponseParser(self)
        self.reason = b""
        self.content_type = b""
        self.chunks: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.WriteTransport, transport).write(self.request)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(f"the server's answer is not HTTP ({error})")

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail("the server closed the connection before answering")

    # httptools callbacks
    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-type":
            self.content_type = value

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if not self.answer.done():
            content_type = self.content_type.decode("latin-1") or DEFAULT_CONTENT_TYPE
            status = self.parser.get_status_code()
            reason = self.reason.decode("latin-1")
            self.answer.set_result(Answer(status, reason, content_type, b"".join(self.chunks)))

    def _fail(self, why: str) -> None:
        if not self.answer.done():
            self.answer.set_exception(Unreachable(why))


async def exchange(socket: str, request: bytes) -> Answer:
    """Send `request` on the Unix socket and return the answer; Unreachable if there is none. The caller bounds
    the time (asyncio.timeout); a cancelled exchange closes its connection."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[Answer] = loop.create_future()
    try:
        transport, _ = await loop.create_unix_connection(lambda: _Exchange(request, answer), socket)
    except OSError as error:
        raise Unreachable(error.strerror or str(error)) from None
    try:
        return await answer
    finally:
        transport.close()
