"""The distribution a model was trained on, as production data is compared against it, and the population
stability index (PSI) that compares them.

Each feature is cut into up to BINS bins at the training rows' quantiles (deciles), the outer bins open-ended so
that any value falls in one; a feature with few distinct values (Pregnancies) gets fewer bins, as repeated
quantiles merge. A value v falls in bin i when edges[i-1] < v <= edges[i]. The label share is each label's share
of the training rows.

PSI = sum over bins of (recent - training) * ln(recent / training), each share floored at EPSILON so that an
empty bin costs a finite amount (the usual convention); under WATCH is ok, from DRIFT on is drift.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

BINS = 10
EPSILON = 1e-4
WATCH, DRIFT = 0.1, 0.25


def quantile_edges(values: Sequence[float], bins: int = BINS) -> list[float]:
    """The inner bin edges: the values' quantiles at 1/bins, 2/bins, ... (values the data holds), repeated ones
    merged."""
    ordered = sorted(float(value) for value in values)
    if not ordered:
        raise ValueError("no values to cut into bins")
    edges: list[float] = []
    for step in range(1, bins):
        edge = ordered[math.floor(step * (len(ordered) - 1) / bins)]  # a value the data has (numpy's "lower")
        if not edges or edge > edges[-1]:
            edges.append(edge)
    if edges and edges[-1] >= ordered[-1]:
        edges.pop()  # a last bin that could hold nothing of the training data
    return edges


def bin_shares(values: Iterable[float], edges: Sequence[float]) -> list[float]:
    """The share of `values` in each of the len(edges) + 1 bins."""
    counts = [0] * (len(edges) + 1)
    total = 0
    for value in values:
        counts[bisect.bisect_left(edges, float(value))] += 1
        total += 1
    if not total:
        raise ValueError("no values to share out")
    return [count / total for count in counts]


def training_distribution(
    features: Mapping[str, Sequence[float]], labels: Sequence[int], label_names: Sequence[str]
) -> dict[str, Any]:
    """What metadata.json records of the training rows: per feature its edges and shares, and the label shares."""
    recorded: dict[str, Any] = {"bins": BINS, "features": {}, "labels": {}}
    for name, values in features.items():
        edges = quantile_edges(values)
        shares = bin_shares(values, edges)
        recorded["features"][name] = {"edges": [round(edge, 6) for edge in edges], "shares": _rounded(shares)}
    total = len(labels)
    recorded["labels"] = {
        name: round(sum(1 for label in labels if label == index) / total, 6) for index, name in enumerate(label_names)
    }
    return recorded


def psi(training: Sequence[float], recent: Sequence[float]) -> float:
    """The population stability index of `recent` shares against `training` shares (the same bins)."""
    if len(training) != len(recent):
        raise ValueError(f"{len(training)} training bins against {len(recent)} recent ones")
    total = 0.0
    for expected, actual in zip(training, recent, strict=True):
        expected, actual = max(expected, EPSILON), max(actual, EPSILON)
        total += (actual - expected) * math.log(actual / expected)
    return total


def verdict(index: float) -> str:
    return "drift" if index >= DRIFT else "watch" if index >= WATCH else "ok"


def _rounded(shares: Sequence[float]) -> list[float]:
    return [round(share, 6) for share in shares]


MIN_ROWS = 100  # about ten rows a bin: fewer and the index measures sampling noise more than drift


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    edges: list[float]
    training: list[float]
    recent: list[float]
    index: float

    @property
    def verdict(self) -> str:
        return verdict(self.index)

    def as_dict(self) -> dict[str, Any]:
        return {
            "psi": round(self.index, 4),
            "verdict": self.verdict,
            "edges": self.edges,
            "training_shares": self.training,
            "recent_shares": _rounded(self.recent),
        }


@dataclass(frozen=True)
class DriftReport:
    rows: int
    features: list[FeatureDrift]
    labels: FeatureDrift | None  # the predicted labels' shares against the training labels' (None: no outputs)
    label_rows: int
    not_finite: int = 0  # NaN and infinite values left out of the figures

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "thresholds": {"watch": WATCH, "drift": DRIFT},
            "features": {feature.name: feature.as_dict() for feature in self.features},
            "predicted_labels": None if self.labels is None else {"rows": self.label_rows, **self.labels.as_dict()},
            "not_finite_values": self.not_finite,
        }


def report(
    recorded: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], labels: Sequence[str], label_names: Sequence[str]
) -> DriftReport:
    """Each feature's PSI of `rows` (the collected inputs) against `recorded` (metadata.json's
    training_distribution), and the predicted `labels`' shares against the training label shares."""
    found, not_finite = [], 0
    for name, training in recorded["features"].items():
        numbers = [float(row[name]) for row in rows if isinstance(row.get(name), int | float)]
        values = [value for value in numbers if math.isfinite(value)]
        not_finite += len(numbers) - len(values)
        if not values:
            continue
        recent = bin_shares(values, training["edges"])
        found.append(FeatureDrift(name, training["edges"], training["shares"], recent, psi(training["shares"], recent)))
    label_drift = None
    if labels:
        expected = [float(recorded["labels"].get(name, 0.0)) for name in label_names]
        recent = [sum(1 for label in labels if label == name) / len(labels) for name in label_names]
        label_drift = FeatureDrift("label", [], expected, recent, psi(expected, recent))
    return DriftReport(len(rows), found, label_drift, len(labels), not_finite)
