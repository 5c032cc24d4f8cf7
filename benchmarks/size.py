"""How long `size` takes with its default settings (target: the whole run under 60 s).

Run: make bench-size   (or .venv/bin/python benchmarks/size.py)
On a throw-away local home: the toolkit's model is trained and registered, an endpoint and one deployment (the
toolkit's own, as the README creates it) are created; then `manage_online_endpoint.py size` runs as a user runs it,
timed from its start to its exit, its progress and table printed as they come.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.deploy import delete_local_endpoint, script  # noqa: E402  (the same set-up calls)

ENDPOINT = "bench-size"
TARGET_SECONDS = 60.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", help="size's own --seconds (default: its default)")
    parser.add_argument("--p95_ms", help="size's own --p95_ms (default: its default)")
    parser.add_argument("--environments", type=Path, help="built environments to use (default: a new folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="size-bench-") as folder:
        home = Path(folder)
        environment = {**os.environ, "AZUREML_LOCAL_HOME": str(home)}
        environment["AZUREML_LOCAL_ENVIRONMENTS"] = str(args.environments or home / "venvs")
        deploy = (
            *(
                "--deployment_name",
                "blue",
                "--endpoint_name",
                ENDPOINT,
                "--model_path",
                "azureml:diabetes-predict@latest",
            ),
            *("--environment", "diabetes-classify", "--score_path", "09-deploy-model", "--score_script", "score.py"),
            *("--instance_type", "Standard_DS3_v2", "--instance_count", "1", "--traffic_allocation", "100"),
        )
        for setup in (
            ("train_model.py", "--register", "--local", "--rows", "2000", "--output_dir", str(home / "model")),
            ("create_online_endpoint.py", "--local", "--endpoint_name", ENDPOINT, "--auth_mode", "key"),
            ("create_online_deployment.py", "--local", *deploy),
        ):
            done = script(*setup, environment=environment)
            if done.returncode != 0:
                raise SystemExit(f"{setup[0]} failed: {done.stderr.strip()[-2000:]}")
        size = ["size", "--local", "--endpoint_name", ENDPOINT, "--deployment_name", "blue", "--target_rps", "50"]
        size += ["--seconds", args.seconds] if args.seconds else []
        size += ["--p95_ms", args.p95_ms] if args.p95_ms else []  # a loaded machine's p95 (the suite's) is no target
        try:
            started = time.monotonic()
            done = subprocess.run(
                [sys.executable, "manage_online_endpoint.py", *size], cwd=ROOT, env=environment, text=True
            )
            seconds = time.monotonic() - started
        finally:
            delete_local_endpoint(ENDPOINT, environment)
    if done.returncode != 0:
        raise SystemExit(f"size failed with exit code {done.returncode}")
    given = [f"--{name} {value}" for name, value in (("seconds", args.seconds), ("p95_ms", args.p95_ms)) if value]
    settings = " ".join(given) or "default settings"
    print(f"\nsize, {settings}: {seconds:.1f} s")
    verdict = "met" if seconds < TARGET_SECONDS else "MISSED"
    if given:
        verdict = "not measured (run without --seconds and --p95_ms)"
    print(f"target: under {TARGET_SECONDS:g} s with the default settings: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
