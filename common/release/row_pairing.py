"""Pairing two deployments' collected rows, whatever Azure's collector did to the records.

Azure's data collector batches requests sent close together into one record: its `data` holds several requests'
rows under one `correlationid` (how-to-collect-production-data, "Data collector batching"), and each deployment
batches on its own. So a record's id pairs nothing reliably; the guide's remedy is a per-row id column, which
09-deploy-model/score.py logs in both collections (REQUEST-INDEX, common.monitoring.capture.ROW_ID). Rows are paired:
1. on that column, where both deployments logged the same id (a live request and its mirrored copy, when the
   mirrored copy keeps the request's id: Azure documents nothing either way);
2. otherwise by the content of the input row (each side's model_inputs, found by the same row id): rows with the
   same inputs are paired in the order they were written. Two rows with the same inputs are interchangeable for a
   comparison, so this never pairs a row with another request's answer to different inputs;
3. a record without the column (older data) names its row only when it holds one row (its record id is then the
   row's); a batched one's rows are paired by content only, never by position.
What cannot be paired is counted, never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from common.monitoring import capture
from common.training import LABELS

POSITIVE = LABELS[1]  # the label whose probability a compared answer carries


@dataclass(frozen=True)
class Answer:
    """One side of a compared request: its labels (None: no usable answer) and probabilities of POSITIVE."""

    labels: tuple[str, ...] | None
    probabilities: tuple[float, ...] | None = None
    status: int | None = None  # None: not known (collected records carry no status)
    latency_ms: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.labels is not None and (self.status is None or 200 <= self.status < 300)


@dataclass(frozen=True)
class Pair:
    request_id: str
    live: Answer
    shadow: Answer


@dataclass(frozen=True)
class Row:
    """One collected output row: its id (None: it has none it can be paired by), its input row (None: not
    collected), its answer."""

    row_id: str | None
    inputs: tuple[tuple[str, Any], ...] | None
    answer: Answer


@dataclass(frozen=True)
class Paired:
    pairs: list[Pair]
    by_id: int
    by_content: int
    unpaired_live: int
    unpaired_shadow: int

    def line(self, live: str, shadow: str) -> str:
        return (
            f"rows paired on their {capture.ROW_ID} column: {self.by_id}; by the content of their input row: "
            f"{self.by_content}; not paired: {self.unpaired_live} of {live}, {self.unpaired_shadow} of {shadow}"
        )


def _row_ids(record: dict[str, Any], rows: Sequence[dict[str, Any]]) -> list[str | None]:
    """Each row's id: its column, else the record's id for a record of one row (an unbatched request)."""
    record_id = record.get("correlationid")
    alone = str(record_id) if record_id and len(rows) == 1 else None
    return [str(row[capture.ROW_ID]) if row.get(capture.ROW_ID) else alone for row in rows]


def input_rows(records: Iterable[dict[str, Any]]) -> dict[str, tuple[tuple[str, Any], ...]]:
    """The collected input rows by row id, each as its sorted (column, value) pairs without the id."""
    found: dict[str, tuple[tuple[str, Any], ...]] = {}
    for record in records:
        rows = capture.rows(record)
        for row_id, row in zip(_row_ids(record, rows), rows, strict=True):
            if row_id is not None:
                found[row_id] = tuple(sorted((k, v) for k, v in row.items() if k != capture.ROW_ID))
    return found


def output_rows(records: Iterable[dict[str, Any]], inputs: dict[str, tuple[tuple[str, Any], ...]]) -> list[Row]:
    """The collected output rows with a label, in the order written, each with its input row where collected."""
    found = []
    for record in records:
        rows = capture.rows(record)
        for row_id, row in zip(_row_ids(record, rows), rows, strict=True):
            label = row.get(capture.OUTPUT_LABEL)
            if not isinstance(label, str):
                continue
            probability = row.get(capture.OUTPUT_PROBABILITY)
            known = isinstance(probability, int | float) and math.isfinite(probability)
            answer = Answer((label,), (float(probability),) if known else None)  # type: ignore[arg-type]
            found.append(Row(row_id, inputs.get(row_id) if row_id else None, answer))
    return found


def collected_rows(source: Any, deployment: str, since: float, until: float) -> list[Row]:
    """A deployment's collected output rows of the window, each with its input row where model_inputs has it, from
    a common/monitoring/collected.py source."""
    inputs = input_rows(source.records(deployment, "model_inputs", since, until))
    return output_rows(source.records(deployment, "model_outputs", since, until), inputs)


def pair(live: Sequence[Row], shadow: Sequence[Row]) -> Paired:
    """Rows paired on their ids first, then by their input rows' content; the rest counted."""
    shadow_by_id = {row.row_id: row for row in shadow if row.row_id is not None}
    pairs, used_shadow, left_live = [], set(), []
    for row in live:
        match = shadow_by_id.get(row.row_id) if row.row_id is not None else None
        if match is not None and id(match) not in used_shadow:
            used_shadow.add(id(match))
            pairs.append(Pair(str(row.row_id), row.answer, match.answer))
        else:
            left_live.append(row)
    by_id = len(pairs)
    waiting: dict[tuple[tuple[str, Any], ...], list[Row]] = {}
    for row in shadow:
        if id(row) not in used_shadow and row.inputs is not None:
            waiting.setdefault(row.inputs, []).append(row)
    unpaired_live = 0
    for row in left_live:
        same = waiting.get(row.inputs) if row.inputs is not None else None
        if same:
            match = same.pop(0)
            used_shadow.add(id(match))
            pairs.append(Pair(f"{row.row_id or 'row'}~{match.row_id or 'row'}", row.answer, match.answer))
        else:
            unpaired_live += 1
    unpaired_shadow = sum(1 for row in shadow if id(row) not in used_shadow)
    return Paired(pairs, by_id, len(pairs) - by_id, unpaired_live, unpaired_shadow)
