"""score.py under the real azureml-inference-server-http, started the way the local target starts it
(common/local/inference_server.py: the server's own app and settings, on a Unix socket): the canonical request, bad
ones, and what the server itself rejects before score.py sees the body.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from common.local import processes
from common.local.instance import LAUNCHER
from common.training import LABELS
from tests.conftest import CANONICAL_ROW, SCORE_DIR

STARTUP_SECONDS = 60


LOG = Path(tempfile.mkdtemp(prefix="srv-log-")) / "server.log"


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[httpx.Client]:
    folder = Path(tempfile.mkdtemp(prefix="srv-"))  # short: a socket path must fit in 107 bytes
    socket = folder / "server.sock"
    log_path = LOG
    argv = [sys.executable, str(LAUNCHER), "--socket", str(socket), "--parent_pid", str(os.getpid()), "--"]
    argv += ["--entry_script", "score.py", "--worker_count", "1"]
    pid = processes.spawn(argv, cwd=SCORE_DIR, log_path=log_path, env={"AZUREML_MODEL_DIR": str(model_dir)})
    client = httpx.Client(transport=httpx.HTTPTransport(uds=str(socket)), base_url="http://server", timeout=10)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline and processes.is_running(pid):
            try:
                if client.get("/").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail(f"the server did not become healthy:\n{log_path.read_text()[-3000:]}")
        yield client
    finally:
        client.close()
        processes.stop(pid, grace=15)
        socket.unlink(missing_ok=True)
        folder.rmdir()


def score(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post("/score", content=body, headers={"Content-Type": "application/json"})


def test_liveness_route_answers_healthy(server):
    response = server.get("/")
    assert (response.status_code, response.text) == (200, "Healthy")


def test_canonical_request_returns_a_label_list(server):
    sample = (SCORE_DIR / "sample-request.json").read_bytes()
    assert json.loads(sample) == {"data": [CANONICAL_ROW]}

    response = score(server, sample)

    assert response.status_code == 200
    labels = response.json()
    assert isinstance(labels, list) and len(labels) == 1 and labels[0] in LABELS


def test_bad_request_is_a_400_with_a_json_message(server):
    response = score(server, json.dumps({"data": [[1, 2, 3]]}).encode())

    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "BadRequest",
        "message": "row 0: has 3 values, expected 8 (Pregnancies, PlasmaGlucose, DiastolicBloodPressure, "
        "TricepsThickness, SerumInsulin, BMI, DiabetesPedigree, Age)",
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 50_000 + b"]" * 50_000, "the body is nested too deeply to be a request"),
        (b'{"data": [[' + str(2**1100).encode() + b", 1, 2, 3, 4, 5, 6, 7]]}", "is too large"),
        (b'{"data": [[1, 2, 3, 4, 5, 6, 7, 8]], "foo": 1}', "unrecognised request (keys ['data', 'foo'])"),
        (b"\x00\x01\x02 binary \x7f", "the body is not JSON"),
    ],
)
def test_hostile_bodies_are_400s_from_score_py_not_500s(server, body, message):
    response = score(server, body)

    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


def test_a_body_that_is_not_utf_8_is_rejected_by_the_server_itself(server):
    """The server decodes the body before calling run(): its own 400, with "message" rather than "error"."""
    response = score(server, b'{"data": [[\xff]]}')

    assert response.status_code == 400
    assert response.json()["message"].startswith("Input cannot be decoded as UTF-8")


def test_score_py_log_lines_reach_the_deployment_log(server):
    """What get_logs returns is the server's output: score.py's own INFO lines must be in it."""
    score(server, json.dumps({"data": [[1, 2, 3]]}).encode())

    deadline = time.monotonic() + 5
    while "Rejected request" not in LOG.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = LOG.read_text()
    assert "score - Loaded " in log and "trained with scikit-learn" in log
    assert "score - Rejected request: row 0: has 3 values, expected 8" in log


def test_the_documented_azmlinfsrv_recipe_prints_the_label_and_logs_no_error(tmp_path):
    """docs/commands.md's recipe, run as written from the repository's root (only its port is a free one, and the
    server's output is kept to read): the canonical label, and no traceback in the server's log."""
    import re
    import shutil
    import subprocess

    from tests.conftest import ROOT

    text = (ROOT / "docs" / "commands.md").read_text()
    recipe = next(block for block in re.findall(r"```bash\n(.*?)```", text, re.S) if "azmlinfsrv" in block)
    port = str(processes.free_port())
    log = tmp_path / "server.log"
    script = recipe.replace("--port 5001 &", f"--port 5001 > {log} 2>&1 &").replace("5001", port)
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    try:
        result = subprocess.run(
            ["bash", "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
        )
    finally:
        shutil.rmtree(ROOT / "outputs" / "azureml-models", ignore_errors=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == '["diabetic"]', result.stdout[-2000:]
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
