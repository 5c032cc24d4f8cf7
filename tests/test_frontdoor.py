"""The front door in-process (Starlette's TestClient) against upstreams that hang or are gone: it never hangs."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from common.local.frontdoor import create_app
from common.local.processes import free_port
from common.local.state import LocalStore, write_json

KEY = "k" * 43


@pytest.fixture
def silent_upstream() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def endpoint_with(tmp_path: Path, ports: dict[str, int], traffic: dict[str, int]) -> LocalStore:
    store = LocalStore(tmp_path)
    write_json(store.endpoint_file("ep1"), {"name": "ep1", "auth_mode": "key", "traffic": traffic, "port": 1})
    write_json(store.keys_file("ep1"), {"primary_key": KEY, "secondary_key": KEY + "2", "token_secret": "s"})
    for name, port in ports.items():
        write_json(store.deployment_file("ep1", name), {"name": name, "port": port})
    return store


def post(client: TestClient) -> tuple[int, dict[str, str], float]:
    started = time.monotonic()
    response = client.post("/score", content=b"{}", headers={"Authorization": f"Bearer {KEY}"})
    return response.status_code, response.json(), time.monotonic() - started


def test_a_hanging_deployment_times_out_with_408(tmp_path, silent_upstream):
    store = endpoint_with(tmp_path, {"slow": silent_upstream}, {"slow": 100})

    with TestClient(create_app(store, "ep1", request_timeout=0.5)) as client:
        status, body, seconds = post(client)

    assert status == 408
    assert body == {"error": "deployment 'slow' took longer than 0.5 s"}
    assert seconds < 5


def test_a_gone_deployment_is_503_at_once(tmp_path):
    store = endpoint_with(tmp_path, {"gone": free_port()}, {"gone": 100})

    with TestClient(create_app(store, "ep1", request_timeout=0.5)) as client:
        status, body, seconds = post(client)
        metrics = client.get("/metrics").text

    assert status == 503
    assert body == {"error": "deployment 'gone' is not reachable"}
    assert seconds < 5
    assert 'endpoint_errors_total{deployment="gone",status_code="503"} 1.0' in metrics


def test_traffic_changes_apply_without_a_restart(tmp_path):
    store = endpoint_with(tmp_path, {"a": free_port()}, {})

    with TestClient(create_app(store, "ep1")) as client:
        assert post(client)[0] == 503  # no deployment takes traffic
        write_json(store.endpoint_file("ep1"), {"name": "ep1", "auth_mode": "key", "traffic": {"a": 100}, "port": 1})
        status, body, _ = post(client)

    assert (status, body) == (503, {"error": "deployment 'a' is not reachable"})
