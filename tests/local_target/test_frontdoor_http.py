"""The front door on the wire (a real front door, raw sockets on 127.0.0.1): no redirects built from the client's
Host header, no upgrade that drops a body, the deployment header read as HTTP reads headers, and a label for
unrouted requests that no deployment can have."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

import create_online_deployment
from tests.localtarget import SAMPLE, LocalSetup, local_target

ENDPOINT = "frontdoor-http"


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, model_dir) -> Iterator[LocalSetup]:
    with local_target(tmp_path_factory.mktemp("frontdoor-http"), ENDPOINT, model_dir) as setup:
        setup.deploy("blue", 100)
        yield setup


def exchange(local: LocalSetup, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One raw request; (status, headers, body) of the answer, read until the server closes or the body is in."""
    with socket.create_connection(("127.0.0.1", local.endpoint()["port"]), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _length(answer):
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def _length(answer: bytes) -> int:
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    for line in head.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 1 << 30


def post(local: LocalSetup, path: str, *extra_headers: str, body: str = SAMPLE) -> bytes:
    headers = ["Host: evil.example", f"Authorization: Bearer {local.key}", "Content-Type: application/json"]
    lines = [f"POST {path} HTTP/1.1", *headers, *extra_headers, f"Content-Length: {len(body)}", "", body]
    return "\r\n".join(lines).encode()


def test_a_trailing_slash_is_not_redirected_to_the_clients_host(local):
    status, headers, body = exchange(local, post(local, "/score/"))
    assert status == 404 and "location" not in headers
    assert json.loads(body)["error"]["code"] == "NotFound"
    status, headers, body = exchange(local, b"GET /score HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 405 and json.loads(body)["error"]["code"] == "MethodNotAllowed"


def test_an_upgrade_is_refused_and_never_scores_an_empty_body(local):
    status, _, body = exchange(local, post(local, "/score", "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c"))
    assert status == 400 and "Upgrade" in json.loads(body)["error"]["message"]
    assert "Unsupported upgrade request" not in (local.store.endpoint_dir(ENDPOINT) / "frontdoor.log").read_text()


@pytest.mark.parametrize("value", ["blue ", " blue", "\tblue\t"])
def test_spaces_around_the_deployment_header_are_ignored(local, value):
    status, headers, body = exchange(local, post(local, "/score", f"azureml-model-deployment: {value}"))
    assert status == 200, body
    assert headers["azureml-model-deployment"] == "blue" and json.loads(body) == ["diabetic"]


def test_a_deployment_named_none_is_counted_as_itself(local):
    """Requests no deployment took are labelled '-', which no deployment can be named."""
    assert local.run(create_online_deployment.main, local.deployment_args("none", 0)) == 0
    for _ in range(3):
        assert local.score(deployment="none").status_code == 200
    assert local.score(key="wrong-key").status_code == 401
    metrics = local.http.get(f"{local.uri}/metrics", headers=local.headers()).text
    assert 'endpoint_requests_total{deployment="none",status_code="200"} 3.0' in metrics
    assert 'endpoint_requests_total{deployment="-",status_code="401"}' in metrics
