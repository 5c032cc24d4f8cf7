"""How fast a local endpoint serves: the front door against the deployment server alone, score.py's run() against
the bare model, and the front door's memory. Every figure comes from one run, so they compare as ratios.

Run: make bench-serving   (or .venv/bin/python benchmarks/serving.py [--seconds 8])

It starts its own local target in a temporary folder (a model trained on synthetic data, an endpoint with key auth,
one deployment with one worker, 100% of the traffic), plus a second server of the same deployment listening on
127.0.0.1 (the "direct" rows: what a client would see without the front door). It stops both at the end.

The load generator is wrk (Debian package wrk: `sudo apt-get install -y wrk`) when it is installed: it runs in C on
one thread and leaves the CPU to what it measures. Without it a Python generator (threads, http.client) is used and
the table says so: it competes for the same two cores, so its ratios are less precise.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as the deployment servers run (common/local/supervisor.py)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from benchmarks.load import Cell, Target, python_cell, python_load, wrk_cell  # noqa: E402
from benchmarks.serving_tables import ROUND_PATHS, print_busy, print_cells, print_overhead, print_run  # noqa: E402
from common.local.instance import LAUNCHER, RUN_LAUNCHER  # noqa: E402

CANONICAL_ROW = [2, 180, 74, 24, 21, 23.9091702, 1.488172308, 22]
ENDPOINT = "serving-bench"
DEPLOYMENT = "blue"
COLLECTING = "collecting"  # the same deployment with --data_collection model_inputs,model_outputs at 100%
TWIN = "twin"  # the same deployment again, collecting nothing: the big requests' load without their capture
# Azure admits 2 x this x instances requests in flight before answering 429: room for the most connections measured,
# and for a warm-up's requests still queued when a cell starts.
MAX_CONCURRENT_REQUESTS = 32
OVERSIZED_BYTES = 6_000_000  # above the front door's 5,000,000-byte limit
BIG_REQUEST_ROWS = 60_000  # about 4.6 MB of JSON: under the front door's 5,000,000-byte limit
READER = (  # what compare and drift do: read a deployment's collected records back, in a process of their own
    "import pathlib, sys, time; sys.path.insert(0, sys.argv[1]); from common.local import capture_files\n"
    "folder, end = pathlib.Path(sys.argv[2]), time.time() + float(sys.argv[3])\n"
    "while time.time() < end:\n"
    "    for collection in ('model_inputs', 'model_outputs'):\n"
    "        list(capture_files.read(folder, collection, time.time() - 3600, time.time()))\n"
    "    list(capture_files.read_pairs(folder, time.time() - 3600, time.time()))\n"
)


def rows(count: int, seed: int = 7) -> list[list[float]]:
    """Patients around the canonical one: different values, the same shape."""
    rng = random.Random(seed)
    return [[round(value * rng.uniform(0.7, 1.3), 3) for value in CANONICAL_ROW] for _ in range(count)]


# --- the local target -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def local_endpoint(home: Path) -> Iterator[tuple[Target, dict[str, Any], Target, Target, Target]]:
    """An endpoint with one deployment taking all traffic, a twin that collects data and one that does not; yields
    its scoring target, the deployment's spec, and the deployment and its twins named in the header (the same
    routing)."""
    os.environ["AZUREML_LOCAL_HOME"] = str(home)
    from azure.ai.ml.entities import (
        CodeConfiguration,
        ManagedOnlineDeployment,
        ManagedOnlineEndpoint,
        Model,
        OnlineRequestSettings,
    )

    from commands.target import LOCAL
    from common.local.client import LocalMLClient
    from common.local.state import LocalStore, read_json
    from common.monitoring import capture
    from common.training import synthetic_dataset, train

    model_dir = home / "trained-model"
    train(synthetic_dataset(), model_dir, "synthetic data")
    client = LocalMLClient(home=home, target=LOCAL)
    client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name=ENDPOINT, auth_mode="key")).result()
    try:
        deployment = ManagedOnlineDeployment(
            name=DEPLOYMENT,
            endpoint_name=ENDPOINT,
            model=Model(path=str(model_dir)),
            environment="azureml:diabetes-classify@latest",
            code_configuration=CodeConfiguration(code=str(ROOT / "09-deploy-model"), scoring_script="score.py"),
            instance_type="Standard_DS3_v2",
            instance_count=1,
            request_settings=OnlineRequestSettings(max_concurrent_requests_per_instance=MAX_CONCURRENT_REQUESTS),
        )
        client.online_deployments.begin_create_or_update(deployment).result()
        deployment.name = TWIN
        client.online_deployments.begin_create_or_update(deployment).result()
        deployment.name = COLLECTING
        deployment.data_collector = capture.data_collector(capture.Collection(capture.COLLECTIONS, 1.0))
        client.online_deployments.begin_create_or_update(deployment).result()
        endpoint = client.online_endpoints.get(ENDPOINT)
        endpoint.traffic = {DEPLOYMENT: 100}
        client.online_endpoints.begin_create_or_update(endpoint).result()
        endpoint = client.online_endpoints.get(ENDPOINT)
        key = client.online_endpoints.get_keys(ENDPOINT).primary_key
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        spec = read_json(LocalStore(home).deployment_file(ENDPOINT, DEPLOYMENT))
        named = Target(endpoint.scoring_uri, {**headers, "azureml-model-deployment": DEPLOYMENT})
        collecting = Target(endpoint.scoring_uri, {**headers, "azureml-model-deployment": COLLECTING})
        twin = Target(endpoint.scoring_uri, {**headers, "azureml-model-deployment": TWIN})
        yield Target(endpoint.scoring_uri, headers), spec, named, collecting, twin
    finally:
        with contextlib.suppress(Exception):
            client.online_endpoints.begin_stop(ENDPOINT).result()


def frontdoor_process(home: Path) -> psutil.Process:
    from common.local.state import LocalStore, read_json

    return psutil.Process(int(read_json(LocalStore(home).frontdoor_file(ENDPOINT))["pid"]))


def deployment_socket(home: Path) -> Path:
    """The Unix socket the front door reaches the measured deployment on."""
    from common.local.state import LocalStore

    sockets = [path for path in LocalStore(home).sockets(ENDPOINT) if f"-{DEPLOYMENT}-" in path.name]
    if len(sockets) != 1:
        raise RuntimeError(f"expected one socket of {DEPLOYMENT!r}, found {sockets}")
    return sockets[0]


@contextlib.contextmanager
def bare_proxy(deployment: Path, log: Path) -> Iterator[Target]:
    """The control: the front door's hop with none of its work (benchmarks/bare_proxy.py) on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = ROOT / "benchmarks" / "bare_proxy.py"
    argv = [sys.executable, str(script), "--port", str(port), "--socket", str(deployment)]
    with log.open("w") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    target = Target(f"http://127.0.0.1:{port}/score", {"Content-Type": "application/json"})
    try:
        wait_until_listening(port, process, log)
        yield target
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_until_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the process for port {port} did not start; see {log}")
        time.sleep(0.2)


@contextlib.contextmanager
def direct_server(spec: dict[str, Any], log: Path) -> Iterator[Target]:
    """The deployment's server once more, with the same code, model and worker count, on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [
        *(spec["python"], "-c", RUN_LAUNCHER, str(LAUNCHER)),
        *("--loopback_port", str(port), "--parent_pid", str(os.getpid()), "--"),
        *("--entry_script", spec["scoring_script"], "--worker_count", str(spec["instance_count"])),
    ]
    environment = {**os.environ, "AZUREML_MODEL_DIR": spec["model_dir"], "OMP_NUM_THREADS": "1"}
    with log.open("w") as output:
        process = subprocess.Popen(
            argv, cwd=spec["code_dir"], env=environment, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/")
                if connection.getresponse().status == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the direct server did not start; see {log}")
            time.sleep(0.2)
        yield Target(f"http://127.0.0.1:{port}/score", {"Content-Type": "application/json"})
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


# --- the measurements -------------------------------------------------------------------------------------------


def memory_phase(home: Path, target: Target, requests: int, oversized: int) -> list[tuple[str, float, str]]:
    """The front door's resident memory before, after `requests` scoring requests and after `oversized` refused
    ones (half declaring their size, half streamed without one)."""
    process = frontdoor_process(home)
    mib = 1024 * 1024
    lines = [("before", process.memory_info().rss / mib, "")]
    body = json.dumps({"data": [CANONICAL_ROW]}).encode()
    started = time.perf_counter()
    latencies, non_2xx = python_load(target, body, 8, lambda n: n >= requests)
    elapsed = time.perf_counter() - started
    lines.append(
        (f"after {len(latencies):,} requests", process.memory_info().rss / mib, f"{non_2xx} non-2xx, {elapsed:.1f} s")
    )
    statuses = [send_oversized(target, streamed=index % 2 == 1) for index in range(oversized)]
    refused = sum(status == 413 for status in statuses)
    lines.append((f"after {oversized} oversized requests", process.memory_info().rss / mib, f"{refused} got 413"))
    return lines


def send_oversized(target: Target, streamed: bool) -> int:
    connection = target.connection()
    chunk = b" " * 65536
    try:
        if streamed:
            chunks = iter([chunk] * (OVERSIZED_BYTES // len(chunk) + 1))
            connection.request("POST", "/score", body=chunks, headers=target.headers, encode_chunked=True)
        else:
            connection.request("POST", "/score", body=b" " * OVERSIZED_BYTES, headers=target.headers)
        return connection.getresponse().status
    except (BrokenPipeError, ConnectionResetError):  # refused before the whole body was sent: answered, then closed
        return 413
    finally:
        connection.close()


def batch_request(target: Target, count: int) -> tuple[int, float, int]:
    """Status, seconds and labels of one request with `count` rows."""
    body = json.dumps({"data": rows(count)}).encode()
    connection = target.connection(timeout=60)
    try:
        started = time.perf_counter()
        connection.request("POST", "/score", body=body, headers=target.headers)
        response = connection.getresponse()
        answer = response.read()
        elapsed = time.perf_counter() - started
    finally:
        connection.close()
    labels = len(json.loads(answer)) if response.status == 200 else 0
    return response.status, elapsed, labels


def load_score(model_dir: str) -> ModuleType:
    import importlib.util

    os.environ["AZUREML_MODEL_DIR"] = model_dir
    spec = importlib.util.spec_from_file_location("score_benchmarked", ROOT / "09-deploy-model" / "score.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.logger.setLevel(logging.WARNING)  # its "Loaded ..." line is not part of the table
    module.init()
    return module


def run_vs_predict(model_dir: str, counts: list[int]) -> list[tuple[int, float, float]]:
    """Best-of timings (s) of run() on a JSON body and of model.predict on a ready DataFrame of the same rows."""
    import pandas as pd

    score = load_score(model_dir)
    results = []
    for count in counts:
        data = rows(count)
        body = json.dumps({"data": data})
        frame = pd.DataFrame(data, columns=list(score.FEATURES))
        assert score.run(body) == [score.LABELS[int(p)] for p in score.model.predict(frame)]
        number = max(3, 200 // count)
        bare = min(timeit.repeat(lambda: score.model.predict(frame), number=number, repeat=7)) / number  # noqa: B023
        run = min(timeit.repeat(lambda: score.run(body), number=number, repeat=7)) / number  # noqa: B023
        results.append((count, run, bare))
    return results


# --- the report ---------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def busy(kind: str, target: Target, capture_folder: Path, seconds: float) -> Iterator[None]:
    """While the block runs: 5 MB requests to `target`, one after the other (`big`), or a process reading the
    collected data back over and over (`read`)."""
    import threading

    stop = threading.Event()
    if kind == "big":
        body = json.dumps({"data": rows(BIG_REQUEST_ROWS)}).encode()

        def send() -> None:
            while not stop.is_set():
                connection = target.connection(timeout=60)
                with contextlib.suppress(OSError, http.client.HTTPException):
                    connection.request("POST", "/score", body=body, headers=target.headers)
                    connection.getresponse().read()
                connection.close()

        worker = threading.Thread(target=send, daemon=True)
        worker.start()
        try:
            yield
        finally:
            stop.set()
            worker.join(timeout=60)
        return
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(ROOT), str(capture_folder), str(seconds + 5)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        reader.kill()
        reader.wait()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per HTTP cell (default: %(default)s)")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8, 32], help="default: 1 8 32")
    parser.add_argument("--requests", type=int, default=10_000, help="for the memory reading (default: 10000)")
    parser.add_argument("--oversized", type=int, default=20, help="refused requests (default: %(default)s)")
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 100, 1000, 10_000], help="run() sizes")
    parser.add_argument(
        "--overhead_rounds", type=int, default=5, help="alternated rounds at 1 connection (default: %(default)s)"
    )
    parser.add_argument("--batch", type=int, default=10_000, help="rows of the one large request (default: 10000)")
    parser.add_argument(
        "--load_generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="wrk when installed (default), or the less precise Python threads",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    use_wrk = args.load_generator == "wrk" or (args.load_generator == "auto" and shutil.which("wrk") is not None)
    if use_wrk and shutil.which("wrk") is None:
        sys.exit("wrk is not installed: sudo apt-get install -y wrk (or --load_generator python)")
    measure = wrk_cell if use_wrk else python_cell
    generator = "wrk, 1 thread" if use_wrk else "Python threads: LESS PRECISE, the generator shares the CPU"
    print(f"Serving benchmark: {psutil.cpu_count()} cores, {generator}, {args.seconds:g} s per cell", flush=True)
    body = json.dumps({"data": [CANONICAL_ROW]})
    drain = min(0.5, args.seconds)  # a warm-up's last requests drain before a cell starts
    with tempfile.TemporaryDirectory(prefix="serving-bench-") as folder:
        home = Path(folder)
        print("Starting a local endpoint (training a model on synthetic data)...", flush=True)
        with (
            local_endpoint(home) as (front, spec, named, collecting, twin),
            direct_server(spec, home / "direct.log") as direct,
            bare_proxy(deployment_socket(home), home / "bare-proxy.log") as bare,
        ):
            memory = memory_phase(home, front, args.requests, args.oversized)
            cells: list[Cell] = []
            for connections in args.connections:
                for path, target in (("direct", direct), ("front door", front)):
                    measure(path, target, body, connections, min(1.0, args.seconds), home)  # warm-up
                    time.sleep(drain)
                    cells.append(measure(path, target, body, connections, args.seconds, home))
                    print(f"  measured {path} with {connections} connections", flush=True)
            memory.append(("after the HTTP cells", frontdoor_process(home).memory_info().rss / 1024 / 1024, ""))
            round_cells = []
            round_targets = dict(zip(ROUND_PATHS, (direct, bare, front, named, collecting), strict=True))
            for _round in range(args.overhead_rounds):  # alternated: a busy machine's drift falls on all alike
                for path, target in round_targets.items():
                    measure(path, target, body, 1, min(1.0, args.seconds), home)
                    time.sleep(drain)
                    round_cells.append(measure(path, target, body, 1, args.seconds, home))
            print("  measured the overhead rounds at 1 connection", flush=True)
            busy_cells = [measure("alone", front, body, 1, args.seconds, home)]
            capture_folder = home / "endpoints" / ENDPOINT / "data" / COLLECTING
            for kind, busy_target, label in (
                ("big", twin, "while 5 MB requests are served"),
                ("big", collecting, "while 5 MB requests are captured"),
                ("read", collecting, "while captured data is read"),
            ):
                with busy(kind, busy_target, capture_folder, args.seconds):
                    time.sleep(drain)
                    busy_cells.append(measure(label, front, body, 1, args.seconds, home))
            print("  measured live requests beside capture", flush=True)
            batches = []
            for path, target in (("direct", direct), ("front door", front)):
                batch_request(target, args.batch)  # the first large request pays for memory the next ones reuse
                batches.append((path, *batch_request(target, args.batch)))
            timings = run_vs_predict(spec["model_dir"], args.rows)
    print_cells(cells, generator)
    print(f"\nOne request of {args.batch:,} rows (the default request timeout is 5 s)")
    for path, status, seconds, labels in batches:
        print(f"  {path:12} HTTP {status}, {seconds * 1000:.0f} ms, {labels:,} labels")
    print_run(timings)
    print_overhead(round_cells)
    print_busy(busy_cells)
    print("\nFront door resident memory")
    for label, mib, note in memory:
        print(f"  {label:32} {mib:7.1f} MiB  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
