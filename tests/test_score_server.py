"""score.py under the real azureml-inference-server-http on 127.0.0.1: the canonical request and a bad one."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.training import LABELS
from tests.conftest import CANONICAL_ROW, SCORE_DIR

STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(url: str, body: bytes | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    executable = shutil.which("azmlinfsrv", path=str(Path(sys.executable).parent))
    assert executable, "azmlinfsrv is installed with requirements.txt"
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "azmlinfsrv.log"
    env = {**os.environ, "AZUREML_MODEL_DIR": str(model_dir)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [executable, "--entry_script", "score.py", "--port", str(port), "--worker_count", "1"],
            cwd=SCORE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                if request(base + "/")[0] == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"azmlinfsrv did not become healthy:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.25)
        yield base
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=5)


def test_liveness_route_answers_healthy(server):
    assert request(server + "/") == (200, b"Healthy")


def test_canonical_request_returns_a_label_list(server):
    sample = (SCORE_DIR / "sample-request.json").read_bytes()
    assert json.loads(sample) == {"data": [CANONICAL_ROW]}

    status, body = request(server + "/score", sample)

    assert status == 200
    labels = json.loads(body)
    assert isinstance(labels, list) and len(labels) == 1 and labels[0] in LABELS


def test_bad_request_is_a_400_with_a_json_message(server):
    status, body = request(server + "/score", json.dumps({"data": [[1, 2, 3]]}).encode())

    assert status == 400
    assert json.loads(body) == {
        "error": "row 0: has 3 values, expected 8 (Pregnancies, PlasmaGlucose, DiastolicBloodPressure, "
        "TricepsThickness, SerumInsulin, BMI, DiabetesPedigree, Age)"
    }
