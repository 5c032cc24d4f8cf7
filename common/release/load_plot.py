"""size --plot: one PNG, the measured p50 and p95 latency against concurrency, the p95 limit and the chosen knee."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from common.azure.sizing import Step


def plot(steps: Sequence[Step], knee: Step, p95_limit_ms: float, path: Path, title: str) -> Path:
    """Write the chart to `path` with matplotlib's file-only backend."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.0, 3.6))
    concurrency = [step.concurrency for step in steps]
    axis.plot(concurrency, [step.p50_ms for step in steps], marker="o", label="p50")
    axis.plot(concurrency, [step.p95_ms for step in steps], marker="o", label="p95")
    axis.axhline(p95_limit_ms, linestyle="--", color="grey", label=f"p95 limit {p95_limit_ms:g} ms")
    axis.scatter([knee.concurrency], [knee.p95_ms], s=140, facecolors="none", edgecolors="red", label="chosen")
    axis.set_xscale("log", base=2)
    axis.set_xticks(concurrency, [str(value) for value in concurrency])
    axis.set_xlabel("requests in flight (clients)")
    axis.set_ylabel("latency, ms")
    axis.legend(fontsize=8)
    axis.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=90)
    plt.close(figure)
    return path
