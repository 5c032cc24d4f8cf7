"""How fast the scripts answer --help and argument errors (target: under 0.5 s; azure-ai-ml is imported lazily).

Run: make bench   (or .venv/bin/python benchmarks/startup.py)
Prints the median and worst of several runs per command, and what importing azure-ai-ml alone costs.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 0.5
RUNS = 7
COMMANDS = {
    "create_online_endpoint.py --help": ["create_online_endpoint.py", "--help"],
    "create_online_endpoint.py bad name": ["create_online_endpoint.py", "--endpoint_name", "1bad"],
    "create_online_deployment.py --help": ["create_online_deployment.py", "--help"],
    "create_online_deployment.py bad count": [
        "create_online_deployment.py",
        "--deployment_name",
        "blue",
        "--endpoint_name",
        "diabetes-classify",
        "--model_path",
        "azureml:diabetes-predict:3",
        "--environment",
        "diabetes-classify",
        "--instance_count",
        "0",
    ],
    "train_model.py --help": ["train_model.py", "--help"],
    "invoke_online_endpoint.py --help": ["invoke_online_endpoint.py", "--help"],
    "manage_online_endpoint.py --help": ["manage_online_endpoint.py", "--help"],
    "manage_online_endpoint.py show --help": ["manage_online_endpoint.py", "show", "--help"],
    "python -c 'import azure.ai.ml' (reference)": ["-c", "import azure.ai.ml"],
}


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, check=False)
    return time.perf_counter() - started


def main() -> int:
    worst_script = 0.0
    print(f"Timing {len(COMMANDS)} commands, {RUNS} runs each (a row as each finishes)", flush=True)
    print(f"{'command':45} {'median s':>9} {'max s':>7}", flush=True)
    for label, argv in COMMANDS.items():
        samples = [timed(argv) for _ in range(RUNS)]
        print(f"{label:45} {statistics.median(samples):9.3f} {max(samples):7.3f}", flush=True)
        if "reference" not in label:
            worst_script = max(worst_script, statistics.median(samples))
    verdict = "meets" if worst_script < TARGET_SECONDS else "MISSES"
    print(f"slowest script median {worst_script:.3f} s: {verdict} the {TARGET_SECONDS} s target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
