"""Shadow comparison: what a new deployment answered against what the live one answered to the same requests.

Pairs come from the local front door (every mirrored request: both answers, statuses and latencies) or from the
two deployments' collected model_outputs joined on the correlation id (Azure, or locally for the probabilities).
Agreement is counted per row (a request may score several): the share of rows whose labels match, the 2x2 table of
live label against shadow label, and, where both sides' probabilities are known, the mean absolute difference of
the probability of "diabetic".
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from common.local.recent import nearest_rank
from common.monitoring import capture
from common.release import row_pairing
from common.release.row_pairing import POSITIVE, Answer, Pair
from common.training import LABELS


@dataclass(frozen=True)
class SideFigures:
    requests: int
    errors: int | None
    p50_ms: float | None
    p95_ms: float | None
    error_statuses: tuple[tuple[int, int], ...] = ()  # (status, count) of the errors, so a failure says which

    def statuses_text(self) -> str:
        """The errors by status, as "429 x 1, 503 x 2" (empty when there are none or they are unknown)."""
        return ", ".join(f"{status} x {count}" for status, count in self.error_statuses)

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "errors": self.errors, "p50_ms": self.p50_ms, "p95_ms": self.p95_ms}

    def line(self) -> str:
        errors = "errors n/a" if self.errors is None else f"{self.errors} errors"
        latency = (
            "latency n/a"
            if self.p50_ms is None or self.p95_ms is None
            else f"p50 {self.p50_ms:.1f} ms, p95 {self.p95_ms:.1f} ms"
        )
        return f"{self.requests} requests, {errors}, {latency}"


@dataclass(frozen=True)
class Comparison:
    live: str
    shadow: str
    requests: int  # pairs seen: both sides answered (any status)
    compared_requests: int  # both succeeded with labels for the same rows
    rows: int
    agreeing_rows: int
    table: dict[str, dict[str, int]]  # live label -> shadow label -> rows
    mean_abs_probability_diff: float | None
    probability_rows: int
    live_figures: SideFigures
    shadow_figures: SideFigures
    notes: list[str] = field(default_factory=list)

    @property
    def agreement_percent(self) -> float | None:
        return 100.0 * self.agreeing_rows / self.rows if self.rows else None

    @property
    def disagreement_percent(self) -> float | None:
        agreement = self.agreement_percent
        return None if agreement is None else 100.0 - agreement

    def as_dict(self) -> dict[str, Any]:
        agreement = self.agreement_percent
        return {
            "live": self.live,
            "shadow": self.shadow,
            "requests": self.requests,
            "compared_requests": self.compared_requests,
            "compared_rows": self.rows,
            "agreeing_rows": self.agreeing_rows,
            "agreement_percent": None if agreement is None else round(agreement, 3),
            "table": self.table,
            "mean_abs_probability_diff": self.mean_abs_probability_diff,
            "probability_rows": self.probability_rows,
            "errors_and_latency": {self.live: self.live_figures.as_dict(), self.shadow: self.shadow_figures.as_dict()},
            "notes": self.notes,
        }

    def lines(self) -> list[str]:
        agreement = self.agreement_percent
        found = [
            f"Compared {self.shadow} (shadow) with {self.live} (live): {self.requests} requests answered by both, "
            f"{self.compared_requests} with labels from both ({self.rows} rows)",
        ]
        if agreement is None:
            found.append("  label agreement: n/a (no rows to compare)")
        else:
            found.append(f"  label agreement: {agreement:.1f}% ({self.agreeing_rows} of {self.rows} rows)")
            width = max(len(label) for label in LABELS) + 2
            corner = "live \\ shadow"
            found.append(f"  {corner:>{width + 6}}" + "".join(f"{label:>{width}}" for label in LABELS))
            for live_label in LABELS:
                counts = self.table.get(live_label, {})
                cells = "".join(f"{counts.get(label, 0):>{width}}" for label in LABELS)
                found.append(f"  {live_label:>{width + 6}}{cells}")
        if self.mean_abs_probability_diff is None:
            found.append("  mean |probability difference|: n/a (both need model_outputs collected)")
        else:
            found.append(
                f"  mean |probability difference| ({POSITIVE}): {self.mean_abs_probability_diff:.4f} "
                f"over {self.probability_rows} rows"
            )
        found.append(f"  {self.live:>12} (live):   {self.live_figures.line()}")
        found.append(f"  {self.shadow:>12} (shadow): {self.shadow_figures.line()}")
        found += [f"Note: {note}" for note in self.notes]
        return found


def labels_of(answer: Any) -> tuple[str, ...] | None:
    """score.py's answer (a list of labels), or None for anything else."""
    if isinstance(answer, list) and answer and all(isinstance(label, str) for label in answer):
        return tuple(answer)
    return None


def _side(answers: Sequence[Answer]) -> SideFigures:
    statuses = [a.status for a in answers if a.status is not None]
    latencies = sorted(a.latency_ms for a in answers if a.latency_ms is not None)
    return SideFigures(
        requests=len(answers),
        errors=sum(1 for status in statuses if not 200 <= status < 300) if statuses else None,
        p50_ms=round(nearest_rank(latencies, 50), 3) if latencies else None,
        p95_ms=round(nearest_rank(latencies, 95), 3) if latencies else None,
        error_statuses=tuple(sorted(collections.Counter(s for s in statuses if not 200 <= s < 300).items())),
    )


def compare(live: str, shadow: str, pairs: Iterable[Pair], notes: Sequence[str] = ()) -> Comparison:
    pairs = list(pairs)
    table: dict[str, dict[str, int]] = {label: dict.fromkeys(LABELS, 0) for label in LABELS}
    rows = agreeing = compared = probability_rows = 0
    difference = 0.0
    for pair in pairs:
        a, b = pair.live, pair.shadow
        if not (a.succeeded and b.succeeded) or len(a.labels or ()) != len(b.labels or ()):
            continue
        compared += 1
        for left, right in zip(a.labels or (), b.labels or (), strict=True):
            rows += 1
            agreeing += left == right
            table.setdefault(left, {}).setdefault(right, 0)
            table[left][right] += 1
        if a.probabilities is not None and b.probabilities is not None and len(a.probabilities) == len(b.probabilities):
            probability_rows += len(a.probabilities)
            difference += sum(abs(x - y) for x, y in zip(a.probabilities, b.probabilities, strict=True))
    return Comparison(
        live=live,
        shadow=shadow,
        requests=len(pairs),
        compared_requests=compared,
        rows=rows,
        agreeing_rows=agreeing,
        table=table,
        mean_abs_probability_diff=round(difference / probability_rows, 6) if probability_rows else None,
        probability_rows=probability_rows,
        live_figures=_side([p.live for p in pairs]),
        shadow_figures=_side([p.shadow for p in pairs]),
        notes=list(notes),
    )


def outputs_by_correlation(records: Iterable[dict[str, Any]]) -> dict[str, Answer]:
    """Collected model_outputs records as answers by correlation id (the last record of an id wins)."""
    found: dict[str, Answer] = {}
    for record in records:
        correlation = record.get("correlationid")
        rows = capture.rows(record)
        labels = [row.get(capture.OUTPUT_LABEL) for row in rows]
        if not correlation or not rows or not all(isinstance(label, str) for label in labels):
            continue
        probabilities = [row.get(capture.OUTPUT_PROBABILITY) for row in rows]
        # a NaN or an infinity is no probability: left out of the mean difference, not turned into one
        known = all(isinstance(value, int | float) and math.isfinite(value) for value in probabilities)
        found[str(correlation)] = Answer(
            tuple(labels),  # type: ignore[arg-type]
            tuple(float(value) for value in probabilities) if known else None,  # type: ignore[arg-type]
        )
    return found


def joined(live: Mapping[str, Answer], shadow: Mapping[str, Answer]) -> list[Pair]:
    return [Pair(request_id, live[request_id], shadow[request_id]) for request_id in sorted(live.keys() & shadow)]


def label_shares(answers: Iterable[Answer]) -> tuple[int, dict[str, float]]:
    """(rows, share of each label): the fallback when two deployments' records cannot be joined."""
    counts: collections.Counter[str] = collections.Counter()
    for answer in answers:
        counts.update(answer.labels or ())
    total = sum(counts.values())
    return total, {label: (counts[label] / total if total else 0.0) for label in LABELS}


def front_door_pairs(records: Sequence[Mapping[str, Any]], live: str) -> list[Pair]:
    """The front door's pairs whose live side was `live`; a record that is not a whole pair is skipped."""
    found = []
    for record in records:
        try:
            if record["live"]["deployment"] == live:
                found.append(from_front_door(record))
        except (KeyError, TypeError, ValueError):
            continue
    return found


def from_front_door(pair: Mapping[str, Any]) -> Pair:
    """A pair as the local front door records it (common/local/shadow_pairs.py)."""

    def side(part: Mapping[str, Any]) -> Answer:
        return Answer(labels_of(part.get("answer")), None, int(part["status"]), float(part["latency_ms"]))

    return Pair(str(pair["request_id"]), side(pair["live"]), side(pair["shadow"]))


def with_probabilities(pairs: Sequence[Pair], live: Mapping[str, Answer], shadow: Mapping[str, Answer]) -> list[Pair]:
    """The front door's pairs with the probabilities both deployments collected for the same request ids."""
    found = []
    for pair in pairs:
        a, b = live.get(pair.request_id), shadow.get(pair.request_id)
        if a is not None and b is not None and a.probabilities is not None and b.probabilities is not None:
            pair = Pair(
                pair.request_id,
                Answer(pair.live.labels, a.probabilities, pair.live.status, pair.live.latency_ms),
                Answer(pair.shadow.labels, b.probabilities, pair.shadow.status, pair.shadow.latency_ms),
            )
        found.append(pair)
    return found


def gather(source: Any, live: str, shadow: str, since: float, until: float, *, local: bool) -> Comparison:
    """The comparison of `shadow` against `live` over the window, from a common/monitoring/collected.py source:
    locally the front door's pairs (with the collected probabilities where both collect model_outputs) and any
    collected requests of both it no longer holds; on Azure the collected rows paired row by row
    (common/release/row_pairing.py)."""
    notes: list[str] = []
    if local:
        live_outputs = outputs_by_correlation(source.records(live, "model_outputs", since, until))
        shadow_outputs = outputs_by_correlation(source.records(shadow, "model_outputs", since, until))
        recorded = front_door_pairs(source.pairs(shadow, since, until), live)
        pairs = with_probabilities(recorded, live_outputs, shadow_outputs)
        seen = {pair.request_id for pair in pairs}
        pairs += [pair for pair in joined(live_outputs, shadow_outputs) if pair.request_id not in seen]
        notes.append(
            "local: every mirrored request the front door paired (the last hour), and requests both deployments "
            "collected under one correlation id"
        )
        return compare(live, shadow, pairs, notes)
    live_rows = row_pairing.collected_rows(source, live, since, until)
    shadow_rows = row_pairing.collected_rows(source, shadow, since, until)
    paired = row_pairing.pair(live_rows, shadow_rows)
    pairs = paired.pairs
    notes.append(
        "Azure: the two deployments' collected rows, paired row by row (the collector batches requests into shared "
        "records); errors and latency are not in the collected data (see metrics)"
    )
    notes.append(paired.line(live, shadow))
    if not pairs and (live_rows or shadow_rows):
        live_rows_count, live_shares = label_shares(row.answer for row in live_rows)
        shadow_rows_count, shadow_shares = label_shares(row.answer for row in shadow_rows)
        shares = ", ".join(f"{label} {live_shares[label]:.1%} vs {shadow_shares[label]:.1%}" for label in LABELS)
        notes.append(
            f"no row of {live} could be paired with one of {shadow}: the requests cannot be joined, so label "
            f"distributions are compared instead (live {live_rows_count} rows vs shadow {shadow_rows_count} rows): "
            f"{shares}"
        )
    return compare(live, shadow, pairs, notes)
