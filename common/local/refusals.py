"""The front door's refusals: one exception type each, naming its HTTP status and Azure's error code, and one
method that turns any of them into the answer (as KServe's errors.py and the inference server's routes do).

The body is Azure's error shape, {"error": {"code", "message"}}: what azure-ai-ml's invoke, and so
`az ml online-endpoint invoke`, reads (a plain string "error" makes it fail with AttributeError).
"""

from __future__ import annotations

import http
import json

from common.control.wire import DEPLOYMENT_HEADER
from common.local.asgi import Reply, json_reply


class Refusal(Exception):
    """A request the front door answers itself; `deployment` is the one it was for, when one was chosen."""

    status = 400
    code = "BadRequest"

    def __init__(self, message: str, deployment: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.deployment = deployment

    def reply(self) -> Reply:
        headers: tuple[tuple[str, str], ...] = ((DEPLOYMENT_HEADER, self.deployment),) if self.deployment else ()
        if self.status == 401:
            headers += (("WWW-Authenticate", "Bearer"),)
        return json_reply(self.body(), self.status, headers, self.deployment)

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}

    def raw_response(self) -> bytes:
        """The answer as bytes on the wire, closing the connection: for refusals made below the app (the
        connection guard), before any request object exists."""
        body = json.dumps(self.body()).encode()
        head = (
            f"HTTP/1.1 {self.status} {http.HTTPStatus(self.status).phrase}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        return head.encode() + body


class BadRequest(Refusal):
    pass


class Unauthorized(Refusal):
    status, code = 401, "Unauthorized"


class NotFound(Refusal):
    status, code = 404, "NotFound"


class MethodNotAllowed(Refusal):
    status, code = 405, "MethodNotAllowed"


class DeploymentNotFound(Refusal):
    status, code = 404, "DeploymentNotFound"


class RequestTimeout(Refusal):
    status, code = 408, "RequestTimeout"


class HeadersTooLarge(Refusal):
    status, code = 431, "RequestHeaderFieldsTooLarge"


class BodyTooLarge(Refusal):
    status, code = 413, "RequestEntityTooLarge"


class ClientClosed(Refusal):
    """Not an answer anyone reads: the status nginx logs for a request its client abandoned, for the access log and
    the metrics."""

    status, code = 499, "ClientClosedRequest"


class TooManyRequests(Refusal):
    status, code = 429, "TooManyRequests"


class Unavailable(Refusal):
    status, code = 503, "ServiceUnavailable"
