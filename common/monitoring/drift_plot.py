"""drift --plot: one PNG, a small histogram per feature (and the predicted labels), training against recent."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

from common.monitoring.drift import DriftReport, FeatureDrift

COLUMNS = 3


def _bin_names(feature: FeatureDrift) -> list[str]:
    if not feature.edges:
        return []
    edges = [f"{edge:.3g}" for edge in feature.edges]
    return [f"<={edges[0]}", *(f"{low}-{high}" for low, high in itertools.pairwise(edges)), f">{edges[-1]}"]


def plot(report: DriftReport, path: Path, label_names: list[str], title: str) -> Path:
    """Write the histograms to `path` (PNG) with matplotlib's file-only backend."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    import matplotlib.pyplot as plt

    panels = [*report.features, *([report.labels] if report.labels is not None else [])]
    rows = math.ceil(len(panels) / COLUMNS)
    figure, axes = plt.subplots(rows, COLUMNS, figsize=(4.2 * COLUMNS, 3.0 * rows), squeeze=False)
    for axis, feature in zip(axes.flat, panels, strict=False):
        names = label_names if feature.name == "label" else _bin_names(feature)
        positions = range(len(feature.training))
        axis.bar([p - 0.2 for p in positions], feature.training, width=0.4, label="training")
        axis.bar([p + 0.2 for p in positions], feature.recent, width=0.4, label="recent")
        axis.set_title(f"{feature.name}: PSI {feature.index:.3f} ({feature.verdict})", fontsize=9)
        axis.set_xticks(list(positions), names, rotation=45, ha="right", fontsize=6)
        axis.tick_params(axis="y", labelsize=7)
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=90)
    plt.close(figure)
    return path
