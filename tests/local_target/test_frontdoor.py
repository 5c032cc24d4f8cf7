"""The front door in-process (Starlette's TestClient drives any ASGI app) against upstreams on Unix sockets that
answer, hang or are gone.

The supervisor is not run here (supervise=False): each test puts a deployment's serving instance in by hand, so
auth, limits and routing are tested without starting servers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from common.local import auth, upstream
from common.local.asgi import Incoming
from common.local.frontdoor import FrontDoor, read_body
from common.local.instance import Instance
from common.local.refusals import BodyTooLarge
from common.local.state import LocalStore, write_json
from common.local.supervisor import Supervisor

KEY = "k" * 43
KEYS = {"primary_key": KEY, "secondary_key": KEY + "2", "token_secret": "s" * 43}
AUTH = {"Authorization": f"Bearer {KEY}"}


class Answering(BaseHTTPRequestHandler):
    delay = 0.0

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        self.rfile.read(length)
        time.sleep(self.delay)
        body = json.dumps(["not-diabetic"]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def serve(path: Path, delay: float = 0.0) -> socketserver.ThreadingUnixStreamServer:
    handler = type("Handler", (Answering,), {"delay": delay})
    server = socketserver.ThreadingUnixStreamServer(str(path), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def sockets(tmp_path: Path) -> Iterator[Path]:
    """A short folder for Unix sockets (a socket path must fit in 107 bytes)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="fd-") as folder:
        yield Path(folder)


def endpoint_with(tmp_path: Path, traffic: dict[str, int], names: list[str], auth_mode: str = "key") -> LocalStore:
    store = LocalStore(tmp_path)
    spec = {"name": "ep1", "auth_mode": auth_mode, "traffic": traffic, "port": 1, "revision": 1}
    write_json(store.endpoint_file("ep1"), spec)
    write_json(store.keys_file("ep1"), KEYS)
    for name in names:
        deployment = {"name": name, "endpoint_name": "ep1", "generation": 1, "instance_count": 1}
        # what a server would be started from (these tests put their servers in by hand)
        deployment |= {"model_dir": str(tmp_path), "code_dir": str(tmp_path), "scoring_script": "score.py"}
        write_json(store.deployment_file("ep1", name), deployment)
    return store


def front_door(store: LocalStore, upstreams: dict[str, Path], **settings_: object) -> TestClient:
    """A front door whose deployments serve from the given sockets, with optional request settings."""
    supervisor = Supervisor(store, "ep1")
    supervisor.reload()
    for name, path in upstreams.items():
        deployment = supervisor.deployments[name]
        deployment.spec = dataclasses.replace(deployment.spec, request_settings=dict(settings_))
        deployment.current, deployment.ready, deployment.health = Instance(1, path, None), True, "running"
    return TestClient(FrontDoor(store, "ep1", supervisor, max_request_bytes=1000, supervise=False))


def post(client: TestClient, body: bytes = b"{}", headers: dict[str, str] | None = None) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = client.post("/score", content=body, headers={**AUTH, **(headers or {})})
    return response.status_code, response.json(), time.monotonic() - started


def test_an_answering_deployment_is_reached_and_named(tmp_path, sockets):
    store = endpoint_with(tmp_path, {"blue": 100}, ["blue"])
    serve(sockets / "blue.sock")

    with front_door(store, {"blue": sockets / "blue.sock"}) as client:
        response = client.post("/score", content=b"{}", headers=AUTH)

    assert response.status_code == 200
    assert response.json() == ["not-diabetic"]
    assert response.headers["azureml-model-deployment"] == "blue"


def test_a_hanging_deployment_times_out_with_408_after_its_request_timeout(tmp_path, sockets):
    store = endpoint_with(tmp_path, {"slow": 100}, ["slow"])
    with socket.socket(socket.AF_UNIX) as silent:  # accepts connections, never answers
        silent.bind(str(sockets / "slow.sock"))
        silent.listen(8)
        with front_door(store, {"slow": sockets / "slow.sock"}, request_timeout_ms=500) as client:
            status, body, seconds = post(client)

    assert status == 408
    assert body == {"error": {"code": "RequestTimeout", "message": "deployment 'slow' took longer than 0.5 s"}}
    assert seconds < 5


def test_a_gone_deployment_is_503_at_once(tmp_path, sockets):
    store = endpoint_with(tmp_path, {"gone": 100}, ["gone"])

    with front_door(store, {"gone": sockets / "nothing-here.sock"}) as client:
        status, body, seconds = post(client)
        metrics = client.get("/metrics", headers=AUTH).text

    assert status == 503
    assert body == {"error": {"code": "ServiceUnavailable", "message": "deployment 'gone' is not reachable"}}
    assert seconds < 5
    assert 'endpoint_errors_total{deployment="gone",status_code="503"} 1.0' in metrics


def test_a_deployment_that_is_restarting_gets_503_with_the_reason(tmp_path):
    store = endpoint_with(tmp_path, {"blue": 100}, ["blue"])
    supervisor = Supervisor(store, "ep1")
    supervisor.reload()
    blue = supervisor.deployments["blue"]
    blue.health, blue.reason = "restarting", "its server was killed by signal 9"
    with TestClient(FrontDoor(store, "ep1", supervisor, supervise=False)) as client:
        status, body, _ = post(client)

    assert status == 503
    assert body == {
        "error": {
            "code": "ServiceUnavailable",
            "message": "deployment 'blue' is restarting (its server was killed by signal 9)",
        }
    }


def test_more_requests_in_flight_than_azure_admits_get_429(tmp_path, sockets):
    store = endpoint_with(tmp_path, {"busy": 100}, ["busy"])
    serve(sockets / "busy.sock", delay=1.0)
    statuses: list[int] = []

    # 1 instance x 1 concurrent request: Azure admits 2 in flight; the 3rd and 4th are refused at once.
    with front_door(store, {"busy": sockets / "busy.sock"}) as client:
        threads = [threading.Thread(target=lambda: statuses.append(post(client)[0])) for _ in range(4)]
        for thread in threads:
            thread.start()
            time.sleep(0.1)
        for thread in threads:
            thread.join(10)

    assert sorted(statuses) == [200, 200, 429, 429]


def test_a_body_over_the_limit_gets_413(tmp_path, sockets):
    store = endpoint_with(tmp_path, {"blue": 100}, ["blue"])
    serve(sockets / "blue.sock")

    with front_door(store, {"blue": sockets / "blue.sock"}) as client:
        declared = client.post("/score", content=b"x" * 1001, headers=AUTH)
        chunked = client.post("/score", content=iter([b"x" * 600, b"x" * 600]), headers=AUTH)
        at_limit = client.post("/score", content=b"x" * 1000, headers=AUTH)

    assert declared.status_code == 413
    assert declared.json() == {
        "error": {
            "code": "RequestEntityTooLarge",
            "message": "the request body is larger than 1,000 bytes, the most this endpoint accepts: send its rows "
            "in several smaller requests (a batch endpoint scores large files offline), or raise the local limit "
            "with AZUREML_LOCAL_MAX_REQUEST_BYTES set before the endpoint starts",
        }
    }
    assert chunked.status_code == 413
    assert at_limit.status_code == 200


def request_streaming(chunks: int, size: int, content_length: int | None) -> tuple[Incoming, list[int]]:
    """A request whose body arrives in chunks, counting how many the reader took."""
    taken: list[int] = []
    headers = [] if content_length is None else [(b"content-length", str(content_length).encode())]

    async def receive() -> dict[str, object]:
        taken.append(size)
        return {"type": "http.request", "body": b"x" * size, "more_body": len(taken) < chunks}

    scope = {"type": "http", "method": "POST", "path": "/score", "headers": headers}
    return Incoming(scope, receive), taken


def test_read_body_stops_at_the_limit_and_trusts_a_declared_length():
    chunked, taken = request_streaming(chunks=1000, size=100, content_length=None)
    with pytest.raises(BodyTooLarge):
        asyncio.run(read_body(chunked, limit=1000))
    assert sum(taken) == 1100  # stopped at the first chunk past the limit, not after 100,000 bytes

    declared, taken = request_streaming(chunks=1000, size=100, content_length=100_000)
    with pytest.raises(BodyTooLarge):
        asyncio.run(read_body(declared, limit=1000))
    assert taken == []  # refused on the Content-Length header alone

    small, _ = request_streaming(chunks=3, size=100, content_length=300)
    assert asyncio.run(read_body(small, limit=1000)) == b"x" * 300


def test_401_carries_www_authenticate_and_metrics_need_the_credential(tmp_path, sockets):
    store = endpoint_with(tmp_path, {"blue": 100}, ["blue"])

    with front_door(store, {"blue": sockets / "blue.sock"}) as client:
        score = client.post("/score", content=b"{}")
        metrics = client.get("/metrics")
        metrics_wrong = client.get("/metrics", headers={"Authorization": "Bearer wrong"})
        metrics_ok = client.get("/metrics", headers=AUTH)

    for response in (score, metrics, metrics_wrong):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
    assert metrics_ok.status_code == 200
    assert "endpoint_requests_total" in metrics_ok.text


def test_a_token_signed_right_with_a_malformed_payload_is_401(tmp_path, sockets):
    store = endpoint_with(tmp_path, {"blue": 100}, ["blue"], auth_mode="aml_token")
    payloads = [b"[]", b'"x"', b'{"endpoint": "ep1", "exp": "soon"}', b'{"endpoint": "ep1", "exp": 1e999}', b"\xff"]
    tokens = []
    for payload in payloads:
        encoded = auth._b64(payload)
        tokens.append(f"{encoded}.{auth._sign(KEYS['token_secret'], encoded)}")

    with front_door(store, {"blue": sockets / "blue.sock"}) as client:
        statuses = {
            client.post("/score", content=b"{}", headers={"Authorization": f"Bearer {t}"}).status_code for t in tokens
        }

    assert statuses == {401}


def test_an_unreadable_state_file_keeps_the_last_good_routing(tmp_path, sockets, caplog):
    store = endpoint_with(tmp_path, {"blue": 100}, ["blue"])
    serve(sockets / "blue.sock")

    with front_door(store, {"blue": sockets / "blue.sock"}) as client:
        store.endpoint_file("ep1").write_text('{"name": "ep1", "auth')  # truncated mid-write by hand
        supervisor = Supervisor(store, "ep1")
        assert supervisor.reload() is False
        status, _, _ = post(client)

    assert status == 200
    assert "keeping the last good routing" in caplog.text
    assert "endpoint.json" in caplog.text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.one_of(st.none(), st.text(), st.binary().map(lambda b: b.decode("latin-1"))))
def test_no_authorization_header_yields_a_prediction_or_a_500(header):
    """auth.check on any header value: never an exception, never accepted unless it is a key."""
    for mode in ("key", "aml_token"):
        problem = auth.check(header, mode, "ep1", KEYS)
        assert problem is not None or header.strip().split(" ", 1)[-1].strip() in (KEY, KEY + "2")


@pytest.fixture(scope="module")
def token_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    store = endpoint_with(tmp_path_factory.mktemp("auth"), {"blue": 100}, ["blue"], auth_mode="aml_token")
    with TestClient(FrontDoor(store, "ep1", supervise=False)) as client:
        yield client


VISIBLE_LATIN_1 = st.characters(min_codepoint=32, max_codepoint=255, blacklist_characters="\x7f")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.one_of(st.text(alphabet=VISIBLE_LATIN_1, max_size=200), st.just("Bearer ").map(lambda b: b + "a.b")))
def test_any_authorization_header_over_http_is_401_never_a_prediction_or_500(header, token_endpoint):
    response = token_endpoint.post("/score", content=b"{}", headers={"Authorization": header.encode("latin-1")})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def serve_raw(path: Path, answer: bytes) -> threading.Thread:
    """A socket that reads a request and answers `answer` as raw bytes (then closes)."""
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(8)

    def loop() -> None:
        while True:
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(answer)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def test_a_deployment_that_drops_the_connection_mid_answer_is_503(tmp_path, sockets):
    store = endpoint_with(tmp_path, {"blue": 100}, ["blue"])
    serve_raw(sockets / "blue.sock", b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n["diab')

    with front_door(store, {"blue": sockets / "blue.sock"}) as client:
        status, body, _ = post(client)

    assert status == 503
    assert body == {"error": {"code": "ServiceUnavailable", "message": "deployment 'blue' is not reachable"}}


def test_a_model_error_keeps_its_body_and_reason_behind_a_424(tmp_path, sockets):
    store = endpoint_with(tmp_path, {"blue": 100}, ["blue"])
    answer = b'HTTP/1.1 400 BAD REQUEST\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{"error": "x"}'
    serve_raw(sockets / "blue.sock", answer)

    with front_door(store, {"blue": sockets / "blue.sock"}) as client:
        response = client.post("/score", content=b"{}", headers=AUTH)

    assert response.status_code == 424
    assert response.json() == {"error": "x"}
    assert response.headers["ms-azureml-model-error-statuscode"] == "400"
    assert response.headers["ms-azureml-model-error-reason"] == "BAD REQUEST"


def test_the_deployment_gets_the_body_and_a_content_type_that_cannot_break_its_headers(tmp_path, sockets):
    store = endpoint_with(tmp_path, {"blue": 100}, ["blue"])
    received: list[bytes] = []
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(sockets / "blue.sock"))
    listener.listen(8)

    def answer_once() -> None:
        for _ in range(2):
            connection, _ = listener.accept()
            with connection:
                received.append(connection.recv(65536))
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]")

    threading.Thread(target=answer_once, daemon=True).start()
    with front_door(store, {"blue": sockets / "blue.sock"}) as client:
        plain = client.post("/score", content=b'{"data": 1}', headers={**AUTH, "Content-Type": "text/csv"})
        odd = client.post("/score", content=b"{}", headers={**AUTH, "Content-Type": "a\u00e9b".encode("latin-1")})

    assert plain.status_code == odd.status_code == 200
    head, _, body = received[0].partition(b"\r\n\r\n")
    assert body == b'{"data": 1}'
    assert b"\r\nContent-Type: text/csv\r\n" in head and b"\r\nContent-Length: 11\r\n" in head
    assert b"\r\nContent-Type: application/json\r\n" in received[1]


def test_the_access_log_is_written_by_the_time_the_front_door_stops(tmp_path, sockets):
    store = endpoint_with(tmp_path, {"blue": 100}, ["blue"])
    serve(sockets / "blue.sock")

    with front_door(store, {"blue": sockets / "blue.sock"}) as client:
        post(client)
        client.post("/score", content=b"{}")

    lines = (store.endpoint_dir("ep1") / "access.log").read_text().splitlines()
    assert len(lines) == 2
    assert re.fullmatch(
        r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} testclient "POST /score" 200 deployment=blue '
        r"mirror=- [\d.]+ms",
        lines[0],
    ), lines[0]
    assert '"POST /score" 401 deployment=-' in lines[1]


def test_every_route_but_health_asks_for_the_credential_and_an_unknown_one_is_refused_as_azure_shapes_it(tmp_path):
    store = endpoint_with(tmp_path, {"blue": 100}, ["blue"])

    with TestClient(FrontDoor(store, "ep1", supervise=False)) as client:
        health, head = client.get("/"), client.head("/")
        guarded = {
            path: client.get(path).status_code for path in ("/metrics", "/metrics/window?since=1", "/swagger.json")
        }
        unknown, wrong_method = client.get("/openapi.json", headers=AUTH), client.put("/metrics", headers=AUTH)
        window = client.get("/metrics/window", headers=AUTH)

    assert (health.status_code, health.text) == (200, "Healthy")
    assert health.headers["content-type"] == "text/plain; charset=utf-8"
    assert (head.status_code, head.text, head.headers["content-length"]) == (200, "", "7")
    assert guarded == {"/metrics": 401, "/metrics/window?since=1": 401, "/swagger.json": 401}
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "NotFound")
    assert "no GET /openapi.json here" in unknown.json()["error"]["message"]
    assert (wrong_method.status_code, wrong_method.json()["error"]["code"]) == (405, "MethodNotAllowed")
    assert window.status_code == 400 and "since" in window.json()["error"]["message"]


def test_a_failure_of_the_front_door_itself_is_a_500_logged_and_counted(tmp_path, sockets, caplog):
    store = endpoint_with(tmp_path, {"blue": 100}, ["blue"])
    client = front_door(store, {"blue": sockets / "blue.sock"})
    app = client.app
    assert isinstance(app, FrontDoor)

    def broken(*_args: object) -> None:
        raise KeyError("a bug")

    app.serving = broken  # type: ignore[method-assign]
    with client:
        response = client.post("/score", content=b"{}", headers=AUTH)
        metrics = client.get("/metrics", headers=AUTH).text

    assert (response.status_code, response.text) == (500, "Internal Server Error")
    assert "front door failed on a request" in caplog.text and "KeyError: 'a bug'" in caplog.text
    assert 'endpoint_requests_total{deployment="-",status_code="500"} 1.0' in metrics


class AnsweringGet(Answering):
    def do_GET(self) -> None:
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_the_upstream_client_gets_as_well_as_posts(sockets):
    server = socketserver.ThreadingUnixStreamServer(str(sockets / "s.sock"), AnsweringGet)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    instance = Instance(1, sockets / "s.sock", None)

    got = asyncio.run(instance.get("/swagger.json?version=3"))
    posted = asyncio.run(instance.score(b"{}", "application/json"))

    assert (got.status, json.loads(got.body)) == (200, {"path": "/swagger.json?version=3"})
    assert (posted.status, json.loads(posted.body)) == (200, ["not-diabetic"])
    with pytest.raises(ValueError, match="not a request target"):
        upstream.http_request("GET", "/x HTTP/1.1\r\nHost: evil")
