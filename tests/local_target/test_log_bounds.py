"""The local target's logs stay bounded (rotated at a size, a few older files kept), and a request its client
abandons mid-body is one access-log line, not a traceback (a real front door and server, 127.0.0.1 only)."""

from __future__ import annotations

import socket
import time

import manage_online_endpoint
from common.local import logfiles
from tests.localtarget import local_target, wait_until

ENDPOINT = "log-bounds"
MAX_BYTES = 20_000


def test_logs_are_rotated_at_their_size_keeping_three_older_files(tmp_path, model_dir, monkeypatch, capsys):
    monkeypatch.setenv(logfiles.LOG_MAX_BYTES_VARIABLE, str(MAX_BYTES))
    with local_target(tmp_path / "home", ENDPOINT, model_dir) as setup:
        setup.deploy("blue", 100)
        logs = [setup.store.endpoint_dir(ENDPOINT) / "access.log", setup.store.server_log(ENDPOINT, "blue")]

        def rotated_down() -> bool:
            return all(path.stat().st_size <= MAX_BYTES for path in logs)

        for _ in range(5):  # each burst writes more than MAX_BYTES to both logs; the front door rotates each
            for _ in range(250):
                assert setup.score().status_code == 200
            assert wait_until(rotated_down, 2 * logfiles.CHECK_SECONDS + 5), [p.stat().st_size for p in logs]
        for path in logs:
            kept = sorted(p.name for p in path.parent.glob(f"{path.name}.*"))
            assert kept == [f"{path.name}.1", f"{path.name}.2", f"{path.name}.3"], kept
            assert all(p.stat().st_size > MAX_BYTES / 2 for p in path.parent.glob(f"{path.name}.*"))
        assert "rotated access.log" in (setup.store.endpoint_dir(ENDPOINT) / "frontdoor.log").read_text()

        capsys.readouterr()
        argv = ["logs", "--local", "--endpoint_name", ENDPOINT, "--deployment_name", "blue", "--lines", "5"]
        assert manage_online_endpoint.main(argv) == 0
        assert len(capsys.readouterr().out.strip().splitlines()) == 5  # the tail, across a rotation if need be


def test_a_request_abandoned_mid_body_is_one_access_line_and_no_traceback(tmp_path, model_dir):
    with local_target(tmp_path / "home", ENDPOINT, model_dir) as setup:
        port = setup.endpoint()["port"]
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
                connection.sendall(
                    f"POST /score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {setup.key}\r\n"
                    'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"data": '.encode()
                )
                time.sleep(0.05)
        access = setup.access_log('"POST /score" 499')
        assert wait_until(lambda: setup.access_log("499").count('"POST /score" 499 deployment=-') == 5, 5), access
        metrics = setup.http.get(f"{setup.uri}/metrics", headers=setup.headers()).text
        assert 'endpoint_requests_total{deployment="-",status_code="499"} 5.0' in metrics
        frontdoor_log = (setup.store.endpoint_dir(ENDPOINT) / "frontdoor.log").read_text()
        assert "Traceback" not in frontdoor_log and "ClientDisconnect" not in frontdoor_log, frontdoor_log[-3000:]
