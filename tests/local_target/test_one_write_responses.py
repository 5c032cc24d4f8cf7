"""The front door sends a response's header block and body in one write (common/local/connections.py,
HeadersWithBody), driven through uvicorn's own RequestResponseCycle so that a uvicorn that writes differently
fails here rather than silently sending two writes again, or losing a header block."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from common.local.connections import HeadersWithBody


class RecordingTransport:
    """What a cycle writes, write by write; a real transport's other calls as uvicorn makes them."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def cycle(method: str = "POST", *, expect_100_continue: bool = False, keep_alive: bool = True) -> Any:
    transport = RecordingTransport()
    completed: list[bool] = []
    made = RequestResponseCycle(
        scope={"type": "http", "method": method, "path": "/score", "headers": []},
        transport=transport,  # type: ignore[arg-type]
        flow=FlowControl(transport),  # type: ignore[arg-type]
        logger=logging.getLogger("test"),
        access_logger=logging.getLogger("test.access"),
        access_log=False,
        default_headers=[],
        message_event=asyncio.Event(),
        expect_100_continue=expect_100_continue,
        keep_alive=keep_alive,
        on_response=lambda: completed.append(True),
    )
    proxy = HeadersWithBody(transport, made)  # type: ignore[arg-type]
    made.transport = proxy  # type: ignore[assignment]
    return made, transport, proxy, completed


async def respond(made: Any, body: bytes, status: int = 200) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await made.send({"type": "http.response.start", "status": status, "headers": headers})
    await made.send({"type": "http.response.body", "body": body})


def test_a_response_goes_out_in_one_write():
    made, transport, _, completed = cycle()

    asyncio.run(respond(made, b'["not-diabetic"]'))

    (written,) = transport.writes
    assert written.startswith(b"HTTP/1.1 200 OK\r\n") and written.endswith(b'\r\n\r\n["not-diabetic"]')
    assert completed == [True]


def test_a_big_body_follows_its_headers_in_its_own_write_without_a_copy():
    made, transport, _, _ = cycle()
    body = b"x" * (HeadersWithBody.COPY_LIMIT + 1)

    asyncio.run(respond(made, body))

    assert [w.startswith(b"HTTP/1.1 200") for w in transport.writes] == [True, False]
    assert transport.writes[1] == body


def test_an_answer_to_head_has_no_body_write_and_its_headers_still_go_out(monkeypatch):
    made, transport, proxy, completed = cycle("HEAD")

    async def head() -> None:
        await made.send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"7")]})
        await made.send({"type": "http.response.body", "body": b""})

    asyncio.run(head())
    if not transport.writes:  # uvicorn leaves the flush to the protocol's on_response_complete, as ours does
        proxy.flush()

    (written,) = transport.writes
    assert written.startswith(b"HTTP/1.1 200 OK\r\n") and written.endswith(b"\r\n\r\n")
    assert completed == [True]


def test_a_connection_closed_after_the_headers_sends_them_first():
    made, transport, proxy, _ = cycle()

    async def start_only() -> None:
        await made.send({"type": "http.response.start", "status": 500, "headers": [(b"content-length", b"5")]})

    asyncio.run(start_only())
    assert transport.writes == []  # held for the body
    proxy.close()

    assert transport.writes[0].startswith(b"HTTP/1.1 500") and transport.closed


def test_a_100_continue_before_the_response_is_not_held():
    made, transport, _, _ = cycle(expect_100_continue=True)

    async def read_then_answer() -> None:
        made.message_event.set()  # the body has arrived
        await made.receive()
        assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
        await respond(made, b"[]")

    asyncio.run(read_then_answer())

    assert len(transport.writes) == 2 and transport.writes[1].endswith(b"\r\n\r\n[]")


def test_the_front_doors_connections_answer_each_request_in_one_write(monkeypatch):
    """A real uvicorn server on 127.0.0.1 with the front door's protocol: each response on a kept connection, a
    HEAD answer among them, reaches the socket in one write (counted below the proxy), whole."""
    import socket
    import threading

    import httpx
    import uvicorn

    from common.local import connections

    writes_per_response: list[int] = []

    class CountedTransport:
        """The socket's transport, counting the writes that reach it for the current response."""

        def __init__(self, transport: Any) -> None:
            self.transport = transport

        def write(self, data: bytes) -> None:
            writes_per_response[-1] += 1
            self.transport.write(data)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.transport, name)

    class Counting(connections.HeadersWithBody):
        def __init__(self, transport: Any, made: Any) -> None:
            super().__init__(CountedTransport(transport), made)  # type: ignore[arg-type]
            writes_per_response.append(0)

    monkeypatch.setattr(connections, "HeadersWithBody", Counting)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b'["not-diabetic"]'
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=connections.GuardedHttpToolsProtocol,
        lifespan="off",
        log_level="warning",
        loop="uvloop",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            for _ in range(50):
                if server.started:
                    break
                threading.Event().wait(0.05)
            answers = [http.post("/score", content=b"{}"), http.head("/score"), http.post("/score", content=b"{}")]
    finally:
        server.should_exit = True
        thread.join(10)

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].text == answers[2].text == '["not-diabetic"]' and answers[1].content == b""
    assert writes_per_response == [1, 1, 1]
