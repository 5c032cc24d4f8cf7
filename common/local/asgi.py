"""The front door's side of ASGI: a request as its handlers see it (Incoming), and what it answers (Reply, one type
for every route, a refusal's and a deployment's answer alike), as plain ASGI messages.

The front door speaks ASGI to uvicorn directly, with no web framework between: on the one path every request takes
(POST /score at one connection) a framework's request and response objects cost more than the front door's own
work (docs/performance.md).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"


class Incoming:
    """One request as the handlers see it: its headers read once (the first of a repeated header, as latin-1), its
    body read on demand through `receive`."""

    __slots__ = ("headers", "receive", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope, self.receive = scope, receive
        self.headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            self.headers.setdefault(name, value)

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")

    @property
    def method(self) -> str:
        return str(self.scope["method"])

    @property
    def path(self) -> str:
        return str(self.scope["path"])

    @property
    def client(self) -> str:
        client = self.scope.get("client")
        return str(client[0]) if client else "-"

    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer: its status, body and headers; `deployment` is the deployment that answered or that the request
    was for (the access log, the metrics), `mirrored` the deployment a copy of the request went to."""

    status: int
    body: bytes
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()
    deployment: str | None = None
    mirrored: str | None = None

    async def send(self, send: Send) -> None:
        head = [(b"content-type", self.content_type.encode("latin-1")), (b"content-length", b"%d" % len(self.body))]
        head += [(name.encode("latin-1"), value.encode("latin-1")) for name, value in self.headers]
        await send({"type": "http.response.start", "status": self.status, "headers": head})
        await send({"type": "http.response.body", "body": self.body})


def json_reply(
    content: Any, status: int = 200, headers: tuple[tuple[str, str], ...] = (), deployment: str | None = None
) -> Reply:
    """`content` as compact UTF-8 JSON (NaN refused: the answer must be JSON any client parses)."""
    body = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    return Reply(status, body, JSON, headers, deployment)


def text_reply(text: str, status: int = 200) -> Reply:
    return Reply(status, text.encode(), TEXT)


def media_type(content_type: str) -> str:
    """A text type without a charset is sent as UTF-8, said in the header (what the deployment's bytes are read as)."""
    if content_type.startswith("text/") and "charset=" not in content_type.lower():
        return f"{content_type}; charset=utf-8"
    return content_type


INTERNAL_ERROR = text_reply("Internal Server Error", 500)
