"""The front door's connections, guarded against another user of this machine, who can connect to 127.0.0.1 like
any client.

uvicorn's httptools protocol times a connection out only after a response (its keep-alive timeout, which any byte
received resets), and bounds neither a request's header block nor the number of connections: idle connections
could take every descriptor, and an endless header block the memory. GuardedHttpToolsProtocol adds, below the app
and so before any authentication:
- a deadline for each request's header block: HEADER_TIMEOUT_SECONDS from the connection's start or the previous
  response, which bytes trickling in do not extend (a connection that sent part of a request is answered 408);
- a bound on the header block, MAX_HEADER_BYTES, answered 431 and closed;
- a cap on open connections below the open-file limit, keeping RESERVED_DESCRIPTORS for supervision, the state
  files, the logs and the deployments' sockets. At the cap, the connection idle the longest (between requests, or
  still sending its headers) is closed to admit the new one; when none is idle, the new one is answered 503.
It also sends each response's header block with its body, in one write (HeadersWithBody).
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from common.local.refusals import BadRequest, HeadersTooLarge, Refusal, RequestTimeout, Unavailable

HEADER_TIMEOUT_VARIABLE = "AZUREML_LOCAL_HEADER_TIMEOUT_SECONDS"  # read when the front door starts
MAX_HEADER_BYTES = 64 * 1024  # Azure's front end refuses large header blocks too; nginx's default is 4 x 8 KB
RESERVED_DESCRIPTORS = 256
MIN_CONNECTIONS = 16

log = logging.getLogger("frontdoor")


def _header_timeout() -> float:
    try:
        configured = float(os.environ.get(HEADER_TIMEOUT_VARIABLE, ""))
    except ValueError:
        return 10.0
    return configured if configured > 0 else 10.0


HEADER_TIMEOUT_SECONDS = _header_timeout()


def raise_descriptor_limit() -> tuple[int, int]:
    """The open-file limit raised from the soft one a command passed on (often 1,024) to the hard one; (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft, hard


def connection_cap() -> int:
    """How many connections may be open: read at each new one, so a limit lowered while running counts too."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    return max(MIN_CONNECTIONS, soft - RESERVED_DESCRIPTORS)


class HeadersWithBody:
    """The transport as a response cycle sees it: the header block uvicorn writes on `http.response.start` is held
    and sent with the body's first write, one send instead of two. On loopback each send wakes the client, which
    finds half a response and sleeps again: a profile at one connection put a third of the front door's time per
    request in the header block's send. Anything else (a 100 Continue before the response) passes straight on; the
    held block goes out at the latest when the response completes or the connection closes."""

    COPY_LIMIT = 64 * 1024  # a body up to this is joined to the headers; a bigger one follows them in its own send

    def __init__(self, transport: asyncio.Transport, cycle: Any) -> None:
        self.transport, self.cycle = transport, cycle
        self.held: bytes | None = None
        self.headers_written = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self.headers_written and self.cycle.response_started:
            self.headers_written, self.held = True, bytes(data)  # the header block: the first write once started
            return
        held, self.held = self.held, None
        if held is None:
            self.transport.write(data)
        elif len(data) <= self.COPY_LIMIT:
            self.transport.write(held + bytes(data))
        else:
            self.transport.write(held)
            self.transport.write(data)

    def flush(self) -> None:
        held, self.held = self.held, None
        if held is not None and not self.transport.is_closing():
            self.transport.write(held)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, ...: the transport's own
        return getattr(self.transport, name)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reading_headers = True
        self.header_bytes = 0
        self.idle_since = time.monotonic()
        self.header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > connection_cap() and not self._close_idlest():
            self.refuse(Unavailable("the endpoint holds as many connections as it can; try again shortly"))
            return
        self.await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.reading_headers:
            self.header_bytes += len(data)  # an upper bound: the chunk may end with the body's first bytes
        super().data_received(data)
        if self.reading_headers and self.header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
            self.refuse(HeadersTooLarge(f"the request's header block is over {MAX_HEADER_BYTES} bytes"))

    def on_headers_complete(self) -> None:
        self.reading_headers = False
        self._cancel_deadline()
        if self.parser.should_upgrade():  # uvicorn would drop the body that follows and pass the app an empty one
            self.refuse(BadRequest("the front door speaks HTTP/1.1 only: send the request without Upgrade"))
            return
        super().on_headers_complete()
        if self.cycle is not None:
            # a stand-in for the transport (duck-typed: the cycle only writes to it and asks is_closing)
            self.cycle.transport = HeadersWithBody(self.transport, self.cycle)  # type: ignore[assignment]

    def _unsupported_upgrade_warning(self) -> None:
        """Refused above; not logged again for each such request."""

    def on_response_complete(self) -> None:
        if self.cycle is not None and isinstance(self.cycle.transport, HeadersWithBody):
            self.cycle.transport.flush()  # a HEAD answer has no body write to carry its header block
        pipelined = bool(self.pipeline)  # a request already read starts now: its headers are in
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self.await_headers()

    def await_headers(self) -> None:
        self.reading_headers, self.header_bytes, self.idle_since = True, 0, time.monotonic()
        self._cancel_deadline()
        self.header_deadline = self.loop.call_later(HEADER_TIMEOUT_SECONDS, self._headers_late)

    def refuse(self, refusal: Refusal) -> None:
        self._cancel_deadline()
        self.transport.write(refusal.raw_response())
        self.transport.close()

    def idle(self) -> bool:
        return self.reading_headers and not self.transport.is_closing()

    def _headers_late(self) -> None:
        if not self.idle():
            return
        if self.header_bytes:
            self.refuse(RequestTimeout(f"the request's headers did not arrive within {HEADER_TIMEOUT_SECONDS:g} s"))
        else:
            self.transport.close()

    def _close_idlest(self) -> bool:
        """Close the connection idle the longest, other than this one; False when every other one is busy."""
        idle = [c for c in self.connections if c is not self and isinstance(c, GuardedHttpToolsProtocol) and c.idle()]
        if not idle:
            return False
        min(idle, key=lambda connection: connection.idle_since).transport.abort()  # its descriptor, now
        return True

    def _cancel_deadline(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None
