"""score.py under the real azureml-inference-server-http on 127.0.0.1: the canonical request and a bad one."""

from __future__ import annotations

import json
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.local import processes
from common.training import LABELS
from tests.conftest import CANONICAL_ROW, SCORE_DIR

STARTUP_SECONDS = 60


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
    port = processes.free_port()
    log_path = tmp_path_factory.mktemp("server") / "azmlinfsrv.log"
    argv = [executable, "--entry_script", "score.py", "--port", str(port), "--worker_count", "1"]
    pid = processes.spawn(argv, cwd=SCORE_DIR, log_path=log_path, env={"AZUREML_MODEL_DIR": str(model_dir)})
    base = f"http://127.0.0.1:{port}"
    try:
        if not processes.wait_until_healthy(base + "/", pid, f"--port {port}", STARTUP_SECONDS):
            pytest.fail(f"azmlinfsrv did not become healthy:\n{log_path.read_text()[-3000:]}")
        yield base
    finally:
        processes.stop(pid, grace=15)


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
