"""How long train_model.py takes, on a quiet machine and on a busy one, with the toolkit's one OpenMP thread and
with one per core (scikit-learn's default, what training used before).

Run: make bench-train   (or .venv/bin/python benchmarks/training.py)
"Busy" runs one spinning process per core beside the training, as the local deployments' servers or the test
suite do. Prints the median wall and CPU seconds of each case.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from multiprocessing.synchronize import Event
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def spin(stop: Event) -> None:
    while not stop.is_set():
        sum(range(10_000))


@contextlib.contextmanager
def busy(cores: int) -> Iterator[None]:
    """One spinning process per core until the block ends (bounded: the block is one training run)."""
    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=spin, args=(stop,), daemon=True) for _ in range(cores)]
    for process in spinners:
        process.start()
    try:
        yield
    finally:
        stop.set()
        for process in spinners:
            process.join(timeout=10)


def timed_training(rows: int, threads: str | None, output: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the training process) of one train_model.py run."""
    environment = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    if threads is not None:
        environment["OMP_NUM_THREADS"] = threads
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    argv = [sys.executable, "train_model.py", "--rows", str(rows), "--output_dir", str(output)]
    subprocess.run(argv, cwd=ROOT, env=environment, capture_output=True, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000, help="rows of synthetic data (train_model.py's default)")
    parser.add_argument("--runs", type=int, default=3, help="runs per case; the median is printed")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    cases = {
        "quiet, 1 thread (the toolkit)": (None, False),
        f"quiet, {cores} threads (one per core)": (str(cores), False),
        "busy, 1 thread (the toolkit)": (None, True),
        f"busy, {cores} threads (one per core)": (str(cores), True),
    }
    print(f"train_model.py on {args.rows:,} rows, {args.runs} runs per case, {cores} cores", flush=True)
    print(f"{'case':40} {'wall s':>8} {'CPU s':>7}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for label, (threads, loaded) in cases.items():
            samples = []
            for _ in range(args.runs):
                with busy(cores) if loaded else contextlib.nullcontext():
                    samples.append(timed_training(args.rows, threads, Path(folder) / "model"))
            wall = statistics.median(sample[0] for sample in samples)
            cpu = statistics.median(sample[1] for sample in samples)
            print(f"{label:40} {wall:8.2f} {cpu:7.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
