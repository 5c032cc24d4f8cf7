"""common/release/row_pairing.py on its own: ids first, then inputs, the rest counted (never paired by position)."""

from __future__ import annotations

from common.release.row_pairing import Answer, Row, input_rows, output_rows, pair


def row(row_id: str | None, inputs: int | None, label: str) -> Row:
    return Row(row_id, None if inputs is None else (("x", inputs),), Answer((label,)))


def test_ids_pair_first_then_equal_inputs_in_order_and_the_rest_is_counted():
    live = [row("a-0", 1, "L1"), row(None, 2, "L2"), row(None, 2, "L3"), row(None, 9, "L4"), row(None, None, "L5")]
    shadow = [row("a-0", 7, "S1"), row("z-0", 2, "S2"), row("y-0", 3, "S3")]

    found = pair(live, shadow)

    assert [(p.live.labels, p.shadow.labels) for p in found.pairs] == [(("L1",), ("S1",)), (("L2",), ("S2",))]
    assert (found.by_id, found.by_content, found.unpaired_live, found.unpaired_shadow) == (1, 1, 3, 1)


def test_a_batched_record_without_the_column_names_no_row_and_a_one_row_record_names_its_row():
    batched = {"correlationid": "r-1", "data": [{"label": "diabetic"}, {"label": "not-diabetic"}]}
    single = {"correlationid": "r-3", "data": [{"label": "diabetic"}]}
    inputs = input_rows([{"correlationid": "r-3", "data": [{"x": 5}]}])

    rows = output_rows([batched, single], inputs)

    assert [(r.row_id, r.inputs) for r in rows] == [(None, None), (None, None), ("r-3", (("x", 5),))]
