"""score.py with a real trained model (not mocked): every input format and every bad input."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.training import FEATURES, LABELS
from tests.conftest import CANONICAL_ROW, load_score_module

RECORD = dict(zip(FEATURES, CANONICAL_ROW, strict=True))
OTHER_ROW = [0, 80, 60, 20, 30, 22.0, 0.1, 21]  # low risk on every feature


def test_score_and_training_agree_on_features_and_labels():
    module = load_score_module()
    assert module.FEATURES == FEATURES
    assert module.LABELS == LABELS


def test_canonical_request_returns_one_label(score):
    labels = score.run(json.dumps({"data": [CANONICAL_ROW]}))
    assert isinstance(labels, list) and len(labels) == 1
    assert labels[0] in LABELS


def test_labels_follow_the_model_row_by_row_in_order(score):
    rows = [CANONICAL_ROW, OTHER_ROW, CANONICAL_ROW]
    expected = [LABELS[int(p)] for p in score.model.predict(score.pd.DataFrame(rows, columns=list(FEATURES)))]
    assert score.run(json.dumps({"data": rows})) == expected
    assert set(expected) == set(LABELS), "the test rows should cover both labels"


def test_all_three_formats_give_the_same_answer(score):
    rows = [CANONICAL_ROW, OTHER_ROW]
    expected = score.run(json.dumps({"data": rows}))
    shuffled = list(reversed(FEATURES))
    input_data = {
        "columns": shuffled,
        "data": [[dict(zip(FEATURES, r, strict=True))[c] for c in shuffled] for r in rows],
    }
    records = [dict(zip(FEATURES, r, strict=True)) for r in rows]

    assert score.run(json.dumps({"input_data": input_data})) == expected
    assert score.run(json.dumps({"input_data": {"data": rows}})) == expected
    assert score.run(json.dumps(records)) == expected
    assert score.run(json.dumps(records).encode()) == expected


def bad(score, body) -> dict:
    response = score.run(body if isinstance(body, str) else json.dumps(body))
    assert response.status_code == 400, response
    assert response.mimetype == "application/json"
    return json.loads(response.get_data())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "the body is not JSON"),
        ("", "the body is empty"),
        ({"rows": [CANONICAL_ROW]}, "unrecognised request (keys ['rows'])"),
        ({"data": [CANONICAL_ROW], "foo": 1}, "unrecognised request (keys ['data', 'foo'])"),
        ({"data": [CANONICAL_ROW], "input_data": {"data": [CANONICAL_ROW]}}, "(both data and input_data)"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (
            {"data": [[2**1024, *CANONICAL_ROW[1:]]]},
            "row 0, Pregnancies: 179769313486231590...5356329624224137216 is too large",
        ),
        ({"data": [[[[[[[1]]]]], *CANONICAL_ROW[1:]]]}, "row 0, Pregnancies: [[[...]]] is not a number"),
        (42, "unrecognised request (int)"),
        ({"data": []}, "the request has no rows to score"),
        ([], "the request has no rows to score"),
        ({"data": CANONICAL_ROW}, "row 0: must be a list of 8 numbers, got int"),
        ({"data": "x"}, '"data" must be a list of rows, got str'),
        ({"data": [CANONICAL_ROW[:7]]}, "row 0: has 7 values, expected 8"),
        ({"data": [[*CANONICAL_ROW, 1]]}, "row 0: has 9 values, expected 8"),
        ({"data": [["2", *CANONICAL_ROW[1:]]]}, "row 0, Pregnancies: '2' is not a number"),
        ({"data": [[True, *CANONICAL_ROW[1:]]]}, "row 0, Pregnancies: True is not a number"),
        ({"data": [[None, *CANONICAL_ROW[1:]]]}, "row 0, Pregnancies: None is not a number"),
        ('{"data": [[2, 180, 74, 24, 21, NaN, 1.4, 22]]}', "row 0, BMI: nan is not a finite number"),
        ('{"data": [[2, 180, 74, 24, 21, 23.9, Infinity, 22]]}', "row 0, DiabetesPedigree: inf is not a finite"),
        ({"input_data": {"columns": ["a"], "data": [[1]]}}, '"input_data.columns" must name each of the 8 features'),
        ({"input_data": [CANONICAL_ROW]}, '"input_data" must be an object with "data"'),
        ([{k: v for k, v in RECORD.items() if k != "Age"}], "record 0: missing ['Age'], unknown nothing"),
        ([{**RECORD, "Height": 170}], "record 0: missing nothing, unknown ['Height']"),
    ],
)
def test_bad_input_is_a_400_naming_the_problem(score, body, message):
    assert message in bad(score, body)["error"]["message"]


def test_a_body_that_is_not_utf_8_is_a_400(score):
    response = score.run(b'{"data": [[\xff\xfe]]}')
    assert response.status_code == 400
    assert json.loads(response.get_data()) == {
        "error": {"code": "BadRequest", "message": "the body is not UTF-8 text (invalid start byte at byte 11)"}
    }


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=9) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=40,
)
FEATURE_VALUES = st.one_of(st.integers(), st.floats(), st.booleans(), st.none(), st.text(max_size=3))
ROWS = st.lists(st.lists(FEATURE_VALUES, min_size=7, max_size=9), max_size=5)
REQUESTS = st.one_of(
    JSON_VALUES,
    st.builds(lambda rows: {"data": rows}, ROWS),
    st.builds(lambda rows: {"input_data": {"data": rows}}, ROWS),
    st.builds(lambda rows: [dict(zip(FEATURES, row, strict=False)) for row in rows], ROWS),
)


def labels_or_400(score, body) -> None:
    answer = score.run(body)
    if isinstance(answer, list):
        assert all(label in ("diabetic", "not-diabetic") for label in answer)
    else:
        assert answer.status_code == 400
        assert set(json.loads(answer.get_data())["error"]) == {"code", "message"}


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=REQUESTS)
def test_any_json_request_gets_labels_or_a_400(score, request):
    labels_or_400(score, json.dumps(request, allow_nan=True))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200))
def test_any_bytes_get_labels_or_a_400(score, body):
    labels_or_400(score, body)
    labels_or_400(score, body.decode("latin-1"))


def test_ten_thousand_rows_are_scored_in_one_request(score):
    """No row limit by default: Azure limits requests by size and time, and batches cut per-request overhead."""
    rows = [CANONICAL_ROW, OTHER_ROW] * 5000
    labels = score.run(json.dumps({"data": rows}))
    assert labels[:2] == score.run(json.dumps({"data": rows[:2]}))
    assert len(labels) == 10_000 and labels[:2] * 5000 == labels


def test_max_rows_per_request_is_a_deployment_setting(model_dir, monkeypatch):
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("MAX_ROWS_PER_REQUEST", "3")
    module = load_score_module()
    module.init()

    assert len(module.run(json.dumps({"data": [CANONICAL_ROW] * 3}))) == 3
    huge = [2**64, *CANONICAL_ROW[1:]]  # beyond numpy's integers: only the value-by-value checks take it
    for body in ({"data": [CANONICAL_ROW] * 4}, [RECORD] * 4, {"data": [huge] * 4}):
        refused = module.run(json.dumps(body))
        message = "the request has 4 rows; at most 3 per request (MAX_ROWS_PER_REQUEST)"
        assert json.loads(refused.get_data()) == {"error": {"code": "BadRequest", "message": message}}


@pytest.mark.parametrize("value", ["0", "-1", "many", "1.5"])
def test_a_bad_max_rows_per_request_stops_init_naming_it(model_dir, monkeypatch, value):
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("MAX_ROWS_PER_REQUEST", value)
    message = rf"MAX_ROWS_PER_REQUEST='{value}' must be a whole number of rows, at least 1"
    with pytest.raises(RuntimeError, match=message):
        load_score_module().init()


def checked(score, body: str) -> object:
    """What the value-by-value checks alone make of a body: the rows, or the error message."""
    try:
        return score._checked_rows(body)
    except score.BadRequest as error:
        return str(error)
    except RecursionError:
        return "nested too deeply"


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=REQUESTS)
def test_the_vectorised_pass_accepts_only_what_the_checks_accept_with_the_same_numbers(score, request):
    body = json.dumps(request, allow_nan=True)
    fast = score._vectorised_rows(body)
    reference = checked(score, body)
    if fast is not None:
        assert isinstance(reference, list), reference
        assert fast.tolist() == reference
    elif isinstance(reference, list) and "true" not in body and "false" not in body:
        # the checks accept what the fast pass passed on only for values numpy cannot hold (huge integers)
        assert any(abs(v) >= 2**63 for row in reference for v in row), body


@pytest.mark.parametrize(
    "request_",
    [
        {"data": [CANONICAL_ROW, OTHER_ROW]},
        {"input_data": {"columns": list(reversed(FEATURES)), "data": [list(reversed(CANONICAL_ROW))]}},
        {"input_data": {"data": [CANONICAL_ROW]}},
        [RECORD, dict(reversed(list(RECORD.items())))],
    ],
)
def test_well_formed_requests_take_the_vectorised_pass(score, request_):
    """The fast pass is not silently skipped (it would still be correct, only slow)."""
    body = json.dumps(request_)
    fast = score._vectorised_rows(body)
    assert fast is not None
    assert fast.tolist() == score._checked_rows(body)


def test_model_file_is_found_at_any_depth(tmp_path: Path, model_dir: Path):
    module = load_score_module()
    assert module.find_model_file(model_dir) == model_dir / "diabetes-model" / "model.pkl"
    with pytest.raises(FileNotFoundError, match="no model file"):
        module.find_model_file(tmp_path)
    (tmp_path / "a.pkl").write_bytes(b"")
    (tmp_path / "b.joblib").write_bytes(b"")
    with pytest.raises(RuntimeError, match=r"more than one model file .*a\.pkl, b\.joblib"):
        module.find_model_file(tmp_path)


def test_init_needs_azureml_model_dir(monkeypatch):
    monkeypatch.delenv("AZUREML_MODEL_DIR", raising=False)
    with pytest.raises(RuntimeError, match="AZUREML_MODEL_DIR is not set"):
        load_score_module().init()


def test_init_logs_both_scikit_learn_versions(model_dir, monkeypatch, caplog):
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir))
    caplog.set_level("INFO", logger="score")
    logging.getLogger("score").addHandler(caplog.handler)  # the score logger does not propagate to the root
    try:
        load_score_module().init()
    finally:
        logging.getLogger("score").removeHandler(caplog.handler)
    import sklearn

    assert f"trained with scikit-learn {sklearn.__version__}; runtime {sklearn.__version__}" in caplog.text


def test_without_orjson_the_standard_library_decodes_the_same_requests(score):
    rows = [CANONICAL_ROW, OTHER_ROW]
    expected = score.run(json.dumps({"data": rows}))
    score.orjson = None
    body = json.dumps({"data": rows})
    assert score._vectorised_rows(body).tolist() == score._checked_rows(body)
    assert score.run(json.dumps({"data": rows})) == expected
    assert score.run(json.dumps([RECORD])) == expected[:1]
    assert "is not a finite number" in bad(score, '{"data": [[2, 180, 74, 24, 21, NaN, 1.4, 22]]}')["error"]["message"]


def collecting(monkeypatch, tmp_path, collections: dict) -> None:
    """azureml-ai-monitoring configured as the platform does (AZUREML_MDC_CONFIG_PATH), its worker never started."""
    import azureml.ai.monitoring.init as mdc_init

    config = tmp_path / "mdc.json"
    config.write_text(json.dumps({"collections": collections, "runMode": "cloud"}))
    monkeypatch.setenv("AZUREML_MDC_CONFIG_PATH", str(config))
    monkeypatch.setattr(mdc_init, "sdk_ready", False)
    monkeypatch.setattr("azureml.ai.monitoring.init.init_worker", lambda queue, config: None)


def test_without_data_collection_configured_nothing_is_collected(score):
    assert score.collection is None


def test_only_the_collections_the_platform_enabled_are_collected(model_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir))
    collecting(monkeypatch, tmp_path, {"model_inputs": {"enabled": True}, "model_outputs": {"enabled": False}})
    module = load_score_module()
    module.init()

    assert sorted(module.collection.collectors) == ["model_inputs"]


def test_a_failing_collection_is_logged_and_the_request_answered(model_dir, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir))
    collecting(monkeypatch, tmp_path, {"model_inputs": {"enabled": True}, "model_outputs": {"enabled": True}})
    module = load_score_module()
    module.init()
    logging.getLogger("score").addHandler(caplog.handler)

    class Broken:
        def collect(self, *_args):
            raise RuntimeError("queue full")

    try:
        module.collection.collectors["model_inputs"] = Broken()
        answer = module.run(json.dumps({"data": [CANONICAL_ROW]}))
    finally:
        logging.getLogger("score").removeHandler(caplog.handler)

    assert answer == ["diabetic"]
    assert "Data collection failed (1 so far; requests are answered all the same): queue full" in caplog.text


def test_collected_outputs_carry_the_labels_and_probability_under_the_request_id(model_dir, monkeypatch, tmp_path):
    """In a request, the collection happens once the answer is sent (the caller does not wait for it)."""
    from flask import Flask, g, jsonify

    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir))
    collecting(monkeypatch, tmp_path, {"model_inputs": {"enabled": True}, "model_outputs": {"enabled": True}})
    module = load_score_module()
    module.init()
    seen = []

    class Recording:
        def __init__(self, name):
            self.name = name

        def collect(self, frame, context):
            seen.append((self.name, frame.copy(), context.get_id()))
            return context

    module.collection.collectors.update({name: Recording(name) for name in module.collection.collectors})
    app = Flask("test")
    answers = []

    @app.post("/score")
    def score():
        g.request_id = "request-7"
        answers.append(module.run(json.dumps({"data": [CANONICAL_ROW, CANONICAL_ROW]})))
        assert seen == []  # not yet: the answer is not sent
        return jsonify(answers[-1])

    with app.test_client() as client:
        response = client.post("/score")
        response.close()

    (_, inputs, first), (_, outputs, second) = seen
    assert response.json == answers[0] == ["diabetic", "diabetic"]
    assert first == second == "request-7"
    # each row carries its own id, the request's and the row's index: Azure batches requests sent close together
    # into one record under one correlationid (how-to-collect-production-data, "Data collector batching")
    assert list(inputs.columns) == [*FEATURES, "correlationid"] and len(inputs) == 2
    assert list(inputs["correlationid"]) == list(outputs["correlationid"]) == ["request-7-0", "request-7-1"]
    assert list(outputs["label"]) == answers[0]
    assert ((outputs["diabetic_probability"] > 0.5) & (outputs["diabetic_probability"] <= 1)).all()
