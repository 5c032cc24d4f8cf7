"""How long a local deployment takes to answer, and a preflight to pass (targets: first 200 under 3 s with the
environment cached; from Azure's blue-deployment.yml, whose conda file lists conda packages, under 60 s with its
environment built on the way and under 5 s cached; the preflight under 5 s).

Run: make bench-deploy   (or .venv/bin/python benchmarks/deploy.py)
On a throw-away local home: a model is registered and an endpoint created, then a deployment is created twice, in
a new environment folder (built on the way, uv's download cache as it is) and in the same one (cached). For each,
the time from the command's start to the first 200 through the front door (a client polling every 20 ms) and to
the command's exit. The same for Azure's managed/sample/blue-deployment.yml (tests/data/azureml-examples: Python
3.12, numpy, scikit-learn and scipy as conda packages) in an environment folder of its own, twice. Then the
preflight of an Azure deployment against the fake control plane the tests use
(tests/fake_azure/), in this process, with its imports already loaded (a command adds about 1.3 s of them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_FIRST_200_SECONDS = 3.0
TARGET_YAML_BUILT_SECONDS, TARGET_YAML_CACHED_SECONDS = 60.0, 5.0
EXAMPLES = ROOT / "tests" / "data" / "azureml-examples"
YAML_FILE = EXAMPLES / "managed" / "sample" / "blue-deployment.yml"
MODEL_1_REQUEST = EXAMPLES / "model-1" / "sample-request.json"
TARGET_PREFLIGHT_SECONDS = 5.0
ENDPOINT = "bench-deploy"
POLL_SECONDS = 0.02


def script(*argv: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *argv], cwd=ROOT, env=environment, capture_output=True, text=True)


def delete_local_endpoint(name: str, environment: dict[str, str]) -> None:
    script("manage_online_endpoint.py", "delete", "--local", "--endpoint_name", name, "--yes", environment=environment)


def first_200(scoring_uri: str, key: str, deployment: str, body: bytes, stop: threading.Event) -> float | None:
    """Poll the endpoint for `deployment` until it answers 200; the monotonic time it did."""
    headers = {"Authorization": f"Bearer {key}", "azureml-model-deployment": deployment}
    with httpx.Client(timeout=5.0) as http:
        while not stop.is_set():
            try:
                if http.post(scoring_uri, content=body, headers=headers).status_code == 200:
                    return time.monotonic()
            except httpx.TransportError:
                pass
            time.sleep(POLL_SECONDS)
    return None


def timed_deployment(
    name: str, scoring_uri: str, key: str, environment: dict[str, str], how: tuple[str, ...], body: bytes
) -> tuple[float, float]:
    answered: list[float | None] = []
    stop = threading.Event()
    poller = threading.Thread(target=lambda: answered.append(first_200(scoring_uri, key, name, body, stop)))
    started = time.monotonic()
    poller.start()
    result = script(
        *("create_online_deployment.py", "--local", "--endpoint_name", ENDPOINT, "--deployment_name", name),
        *(*how, "--traffic_allocation", "0"),
        environment=environment,
    )
    exited = time.monotonic()
    poller.join(timeout=30)
    stop.set()
    if result.returncode != 0 or not answered or answered[0] is None:
        raise SystemExit(f"deployment {name} failed: {result.stderr.strip()}")
    return answered[0] - started, exited - started


TOOLKIT = (
    *("--model_path", "azureml:diabetes-predict@latest", "--environment", "diabetes-classify"),
    *("--score_path", "09-deploy-model", "--score_script", "score.py"),
)
CASES = (  # name, what the row says, the environments folder (None: the given one), the flags, the request
    ("blue", "environment built on the way", None, TOOLKIT, ROOT / "09-deploy-model" / "sample-request.json"),
    ("green", "environment cached", None, TOOLKIT, ROOT / "09-deploy-model" / "sample-request.json"),
    (
        "yaml-built",
        "YAML file, conda packages, built",
        "yaml",
        ("--file", str(YAML_FILE)),
        EXAMPLES / "model-1" / "sample-request.json",
    ),
    (
        "yaml-cached",
        "YAML file, conda packages, cached",
        "yaml",
        ("--file", str(YAML_FILE)),
        EXAMPLES / "model-1" / "sample-request.json",
    ),
)


def local_deployments(home: Path, environments: Path) -> list[tuple[str, float, float]]:
    environment = {**os.environ, "AZUREML_LOCAL_HOME": str(home), "AZUREML_LOCAL_ENVIRONMENTS": str(environments)}
    for argv in (
        ("train_model.py", "--register", "--local", "--rows", "2000", "--output_dir", str(home / "model")),
        ("create_online_endpoint.py", "--local", "--endpoint_name", ENDPOINT, "--auth_mode", "key"),
    ):
        done = script(*argv, environment=environment)
        if done.returncode != 0:
            raise SystemExit(f"{argv[0]} failed: {done.stderr.strip()}")
    keys = json.loads(
        script(
            *("manage_online_endpoint.py", "keys", "--local", "--endpoint_name", ENDPOINT, "--output", "json"),
            environment=environment,
        ).stdout
    )
    port = json.loads((home / "endpoints" / ENDPOINT / "endpoint.json").read_text())["port"]
    uri = f"http://127.0.0.1:{port}/score"
    try:
        rows = []
        for name, what, folder, how, request in CASES:
            # the YAML file's environment in a folder of its own: built on the way even where the given one has it
            environments_folder = str(home / "venvs-yaml") if folder else str(environments)
            case_environment = {**environment, "AZUREML_LOCAL_ENVIRONMENTS": environments_folder}
            timed = timed_deployment(name, uri, keys["primary_key"], case_environment, how, request.read_bytes())
            rows.append((f"local deployment, {what}", *timed))
        return rows
    finally:
        delete_local_endpoint(ENDPOINT, environment)


def preflights(home: Path, environments: Path, runs: int) -> list[float]:
    """The preflight of create_online_deployment.py --dry_run --preflight against the fake control plane."""
    import responses

    import commands
    import create_online_deployment
    from tests.conftest import FakeCredential
    from tests.fake_azure import RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE, FakeAzureML

    os.environ.update(
        {
            "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
            "AZURE_RESOURCE_GROUP": RESOURCE_GROUP,
            "AZUREML_WORKSPACE_NAME": WORKSPACE,
            "AZUREML_LOCAL_ENVIRONMENTS": str(environments),
        }
    )
    import azure.identity
    from azure.ai.ml.operations import ModelOperations

    azure.identity.DefaultAzureCredential = FakeCredential  # type: ignore[misc]
    model = home / "model"

    def download(_self: object, name: str, version: str, download_path: str = ".") -> None:
        shutil.copytree(model, Path(download_path) / name)

    ModelOperations.download = download  # type: ignore[method-assign]
    argv = [
        *("--deployment_name", "bench-blue", "--endpoint_name", "diabetes-classify"),
        *("--model_path", "azureml:diabetes-predict:3", "--environment", "diabetes-classify"),
        *("--score_path", "09-deploy-model", "--score_script", "score.py", "--dry_run", "--preflight"),
    ]
    seconds = []
    for _ in range(runs):
        fake = FakeAzureML()
        fake.add_model("diabetes-predict", "3")
        fake.add_environment("diabetes-classify", "7", conda_file=(ROOT / "environment.yml").read_text())
        fake.add_endpoint("diabetes-classify")
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            fake.install(mock)
            started = time.monotonic()
            with open(os.devnull, "w") as quiet:
                stdout, stderr, sys.stdout, sys.stderr = sys.stdout, sys.stderr, quiet, quiet
                try:
                    code = commands.run(create_online_deployment.main, argv)
                finally:
                    sys.stdout, sys.stderr = stdout, stderr
            seconds.append(time.monotonic() - started)
        if code != 0:
            raise SystemExit(f"the preflight failed (exit {code})")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preflight_runs", type=int, default=3)
    parser.add_argument("--environments", type=Path, help="built environments to use (default: a new folder)")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as folder:
        home = Path(folder)
        environments = args.environments or home / "venvs"
        rows = local_deployments(home, environments)
        print(f"{'':54} {'first 200':>10} {'command':>8}")
        for what, answered, exited in rows:
            print(f"{what:54} {answered:9.2f}s {exited:7.2f}s")
        cached, yaml_built, yaml_cached = rows[1][1], rows[2][1], rows[3][1]
        verdict = "met" if cached < TARGET_FIRST_200_SECONDS else "MISSED"
        print(f"target: first 200 under {TARGET_FIRST_200_SECONDS:g} s with the environment cached: {verdict}")
        verdict = (
            "met" if yaml_built < TARGET_YAML_BUILT_SECONDS and yaml_cached < TARGET_YAML_CACHED_SECONDS else "MISSED"
        )
        print(
            f"target: from the YAML file, first 200 under {TARGET_YAML_BUILT_SECONDS:g} s built and under "
            f"{TARGET_YAML_CACHED_SECONDS:g} s cached: {verdict}"
        )
        seconds = preflights(home, environments, args.preflight_runs)
        print(
            "preflight (--dry_run --preflight, fake control plane, in-process): "
            + ", ".join(f"{s:.2f}s" for s in seconds)
        )
        verdict = "met" if max(seconds) < TARGET_PREFLIGHT_SECONDS else "MISSED"
        print(f"target: preflight under {TARGET_PREFLIGHT_SECONDS:g} s (imports loaded): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
