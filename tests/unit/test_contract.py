"""The endpoint's contract without a server: score.py's OpenAPI documents (09-deploy-model/openapi_contract.py) per
version, a request checked against a document, and the changes between two documents that break a caller."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from common import contract
from common.errors import UsageError
from common.monitoring import drift
from common.training import FEATURES, LABELS
from tests.conftest import load_code_module

documents = load_code_module("openapi_contract.py", "openapi_contract_under_test")


def training_rows(count: int = 400) -> list[list[float]]:
    rng = random.Random(5)
    return [
        [
            *(rng.randint(0, 12), rng.uniform(60, 190), rng.uniform(40, 110), rng.uniform(7, 50)),
            *(
                rng.uniform(15, 600),
                round(rng.uniform(18, 55), 4),
                round(rng.uniform(0.08, 2.3), 6),
                rng.randint(21, 77),
            ),
        ]
        for _ in range(count)
    ]


ROWS = training_rows()
METADATA = {
    "training_distribution": drift.training_distribution(
        {name: [row[index] for row in ROWS] for index, name in enumerate(FEATURES)}, [0, 1] * 200, LABELS
    )
}


def document(version: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    found = documents.document(FEATURES, LABELS, METADATA if metadata is None else metadata, version)
    return json.loads(json.dumps(found))  # as a client reads it


def schemas(found: dict[str, Any]) -> dict[str, Any]:
    return found["definitions"] if "swagger" in found else found["components"]["schemas"]


@pytest.mark.parametrize(
    ("version", "key", "value"), [("2", "swagger", "2.0"), ("3", "openapi", "3.0.3"), ("3.1", "openapi", "3.1.0")]
)
def test_each_version_declares_itself_the_score_route_its_bearer_auth_and_the_labels(version, key, value):
    found = document(version)

    assert found[key] == value
    assert list(found["paths"]) == ["/score"]
    operation = found["paths"]["/score"]["post"]
    assert operation["security"] == [{"Bearer": []}]
    assert set(operation["responses"]) == {"200", "400", "default"}
    assert schemas(found)["ServiceOutput"]["items"]["enum"] == list(LABELS)
    error = schemas(found)["ErrorResponse"]
    assert error["required"] == ["error"] and error["properties"]["error"]["required"] == ["code", "message"]
    records = schemas(found)["RecordsRequest"]["items"]
    assert list(records["properties"]) == list(FEATURES)  # in the model's order
    assert all(records["properties"][name]["type"] == "number" for name in FEATURES)
    assert records["required"] == list(FEATURES) and records["additionalProperties"] is False


def test_the_three_request_formats_are_one_of_in_openapi_3_and_the_first_with_the_others_said_in_2():
    for version in ("3", "3.1"):
        service_input = schemas(document(version))["ServiceInput"]
        assert [option["$ref"].rsplit("/", 1)[1] for option in service_input["oneOf"]] == [
            "DataRequest",
            "InputDataRequest",
            "RecordsRequest",
        ]
    version_2 = schemas(document("2"))["ServiceInput"]
    assert "oneOf" not in version_2 and version_2["required"] == ["data"]
    assert "input_data" in version_2["description"] and "records" in version_2["description"]


def test_3_1_names_each_position_of_a_row():
    row = schemas(document("3.1"))["Row"]
    assert [item["title"] for item in row["prefixItems"]] == list(FEATURES)
    assert "prefixItems" not in schemas(document("3"))["Row"]


def test_ranges_are_the_training_datas_10th_and_90th_percentiles_and_the_example_is_no_row_of_it():
    found = document("3")
    features = schemas(found)["RecordsRequest"]["items"]["properties"]
    recorded = METADATA["training_distribution"]["features"]
    for name in FEATURES:
        edges = recorded[name]["edges"]
        assert features[name]["x-training-p10-p90"] == [edges[0], edges[-1]]
        assert f"between {edges[0]:g} and {edges[-1]:g}" in features[name]["description"]
    (example,) = schemas(found)["ServiceInput"]["example"]["data"]
    assert example == [recorded[name]["edges"][len(recorded[name]["edges"]) // 2] for name in FEATURES]
    assert example not in ROWS


def test_a_model_without_a_training_distribution_gets_no_ranges_and_a_made_up_example():
    found = document("3", metadata={})
    features = schemas(found)["RecordsRequest"]["items"]["properties"]
    assert all("x-training-p10-p90" not in features[name] for name in FEATURES)
    assert schemas(found)["ServiceInput"]["example"] == {"data": [list(documents.FALLBACK_EXAMPLE)]}


def test_write_puts_the_three_files_at_the_code_root_and_rewrites_its_own(tmp_path):
    said = documents.write(tmp_path, FEATURES, LABELS, METADATA)

    assert "written" in said
    for version, name in documents.FILES.items():
        assert json.loads((tmp_path / name).read_text()) == document(version)
    documents.write(tmp_path, FEATURES, LABELS, {})  # a new model: its own ranges
    assert "x-training-p10-p90" not in (tmp_path / "swagger3.json").read_text()
    assert not list(tmp_path.glob(".swagger*"))  # no temporary file left


@pytest.mark.parametrize("own", ["swagger.json", "swagger3.json"])
def test_a_code_folder_with_swagger_files_of_its_own_keeps_them(tmp_path, own):
    (tmp_path / own).write_text('{"swagger": "2.0", "info": {"title": "theirs"}}')

    said = documents.write(tmp_path, FEATURES, LABELS, METADATA)

    assert said == f"the code folder's own {own} served as they are"
    assert sorted(path.name for path in tmp_path.iterdir()) == [own]


def test_an_unwritable_code_folder_is_said_and_nothing_raises(tmp_path):
    missing = tmp_path / "gone"  # as unwritable as it gets, for root too
    said = documents.write(missing, FEATURES, LABELS, METADATA)
    assert said.startswith("the contract could not be written") and "server's default" in said


# --- checking a request ---------------------------------------------------------------------------------------

GOOD = [
    {"data": [[2, 180, 74, 24, 21, 23.9, 1.48, 22]]},
    {"input_data": {"columns": list(reversed(FEATURES)), "data": [[22, 1.48, 23.9, 21, 24, 74, 180, 2]]}},
    {"input_data": {"data": [[2, 180, 74, 24, 21, 23.9, 1.48, 22]]}},
    [dict(zip(FEATURES, [2, 180, 74, 24, 21, 23.9, 1.48, 22], strict=True))],
]


@pytest.mark.parametrize("version", ["3", "3.1"])
@pytest.mark.parametrize("request_body", GOOD, ids=["data", "input_data", "input_data-no-columns", "records"])
def test_every_format_score_py_accepts_fits(version, request_body):
    assert contract.problems(document(version), request_body) == []


def test_a_request_is_checked_against_openapi_2_too():
    assert contract.problems(document("2"), GOOD[0]) == []
    assert contract.problems(document("2"), {"data": [[1, 2]]}) == [
        "data[0]: sent [1, 2] (2 items); allowed: at least 8 items (one row: the 8 features in this order: "
        + ", ".join(FEATURES)
        + ")"
    ]


def test_each_problem_is_a_line_naming_where_what_was_sent_and_what_is_allowed():
    found = document("3")
    assert contract.problems(found, {"data": [[1, 2, 3, 4, 5, 6, 7, "x"]]}) == [
        "data[0][7]: sent 'x'; allowed: a number"
    ]
    record = dict(zip(FEATURES, range(8), strict=True))
    del record["BMI"]
    record["Weight"] = 80
    sent = ", ".join(repr(key) for key in sorted(record))
    assert contract.problems(found, [record]) == [
        f"[0]: sent an object with the keys {sent}; allowed: the keys {', '.join(FEATURES)} (missing: BMI)",
        f"[0]: sent an object with the keys {sent}; allowed: only the keys {', '.join(FEATURES)} (unknown: Weight)",
    ]
    assert contract.problems(found, {"data": [[True, 2, 3, 4, 5, 6, 7, 8]]}) == [
        "data[0][0]: sent True; allowed: a number"
    ]


def test_a_request_of_no_format_is_one_line_naming_the_formats():
    (line,) = contract.problems(document("3"), {"rows": [[1] * 8]})
    assert line.startswith("(the request): sent an object with the keys 'rows'; allowed: one of 3 formats (one of: ")


def test_a_document_without_a_request_schema_cannot_check_anything():
    default = {
        "openapi": "3.0.3",
        "paths": {
            "/score": {
                "post": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/c/ServiceInput"}}}}}
            }
        },
        "c": {"ServiceInput": {"type": "object", "example": {}}},
    }
    with pytest.raises(UsageError, match="no request schema"):
        contract.problems(default, GOOD[0])
    assert contract.summary(default) == contract.Contract(known=False)


# --- comparing two contracts -------------------------------------------------------------------------------------


def changed(features: list[str], labels: tuple[str, ...] = LABELS, retype: str | None = None) -> dict[str, Any]:
    found = document("3")
    records = schemas(found)["RecordsRequest"]["items"]
    records["properties"] = {name: {"type": "string" if name == retype else "number"} for name in features}
    schemas(found)["ServiceOutput"]["items"]["enum"] = list(labels)
    return found


def test_the_summary_of_score_pys_document_is_its_features_in_order_and_its_labels():
    summary = contract.summary(document("3"))
    assert summary.known
    assert summary.features == tuple((name, "number") for name in FEATURES)
    assert summary.labels == LABELS


def test_an_unchanged_contract_breaks_nothing_and_an_unknown_one_is_not_judged():
    live = contract.summary(document("3"))
    assert contract.breaking_changes(live, contract.summary(document("3.1"))) == []
    assert contract.breaking_changes(live, contract.Contract(known=False)) == []


def test_removed_added_renamed_retyped_reordered_features_and_changed_labels_are_breaking():
    live = contract.summary(document("3"))
    features = list(FEATURES)

    def changes(found: dict[str, Any]) -> list[str]:
        return contract.breaking_changes(live, contract.summary(found))

    assert changes(changed(features[:-1])) == ["feature removed: Age"]
    assert changes(changed([*features, "Weight"])) == ["feature added (callers do not send it): Weight"]
    assert changes(changed([*features[:-1], "AgeYears"])) == ["feature renamed: Age -> AgeYears"]
    assert changes(changed(features, retype="BMI")) == ["feature retyped: BMI number -> string"]
    assert changes(changed([features[1], features[0], *features[2:]])) == [
        f"feature order changed: {', '.join(features)} -> {', '.join([features[1], features[0], *features[2:]])}"
    ]
    assert changes(changed(features, labels=("negative", "positive"))) == [
        "labels changed: not-diabetic, diabetic -> negative, positive"
    ]
