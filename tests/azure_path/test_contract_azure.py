"""The contract on the Azure path at the HTTP boundary: the contract verb reads the endpoint's swaggerUri with its key
(the deployment header routes it), and traffic, promote and rollout compare the contracts before they write."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

import create_online_deployment
import invoke_online_endpoint
import manage_online_endpoint
from common.errors import EXIT_CONTRACT, EXIT_USAGE
from tests.conftest import SCORE_DIR, load_code_module
from tests.seeds import with_seed_assets

ENDPOINT = "diabetes-classify"
documents = load_code_module("openapi_contract.py", "openapi_contract_azure_test")
score = load_code_module("score.py", "score_azure_contract_test")


@pytest.fixture
def workspace(fake_azure):
    found = with_seed_assets(fake_azure)
    found.add_endpoint(ENDPOINT, {"blue": 100})
    found.add_deployment(ENDPOINT, "green")
    return found


def swagger_gets(workspace) -> list[Any]:
    return [r for r in workspace.requests if r.method == "GET" and r.url.split("?")[0].endswith("/swagger.json")]


def without_age(version: str = "3") -> dict[str, Any]:
    """score.py's document with the feature Age removed (a retrained model on 7 features)."""
    found = copy.deepcopy(documents.document(score.FEATURES, score.LABELS, {}, version))
    del found["components"]["schemas"]["RecordsRequest"]["items"]["properties"]["Age"]
    return found


def test_contract_prints_the_document_read_with_the_key_at_the_swagger_uri(workspace, run_script):
    result = run_script(manage_online_endpoint, ["contract", "--endpoint_name", ENDPOINT, "--version", "3.1"])

    assert result.code == 0, result.err
    assert json.loads(result.out) == json.loads(json.dumps(documents.document(score.FEATURES, score.LABELS, {}, "3.1")))
    (get,) = swagger_gets(workspace)
    assert get.url.startswith(f"https://{ENDPOINT}.eastus.inference.ml.azure.com/swagger.json")
    assert get.query == {"version": ["3.1"]}
    assert get.headers["Authorization"] == "Bearer primary-key-0"


def test_contract_save_keeps_the_bytes_and_names_the_deployment(workspace, run_script, tmp_path):
    saved = tmp_path / "green.json"
    argv = ["contract", "--endpoint_name", ENDPOINT, "--deployment_name", "green", "--save", str(saved)]

    result = run_script(manage_online_endpoint, argv)

    assert result.code == 0, result.err
    (get,) = swagger_gets(workspace)
    assert get.headers["azureml-model-deployment"] == "green"
    assert saved.read_text() == json.dumps(documents.document(score.FEATURES, score.LABELS, {}, "3"))
    assert result.out.startswith(f"Saved the OpenAPI 3 document of {ENDPOINT}/green (")


def test_contract_check_sends_nothing_to_score(workspace, run_script, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"data": [[1, 2, 3]]}))

    good = run_script(
        manage_online_endpoint,
        ["contract", "--endpoint_name", ENDPOINT, "--check", str(SCORE_DIR / "sample-request.json")],
    )
    refused = run_script(manage_online_endpoint, ["contract", "--endpoint_name", ENDPOINT, "--check", str(bad)])

    assert good.code == 0 and "fits the contract of diabetes-classify (OpenAPI 3)" in good.out
    assert refused.code == EXIT_USAGE
    assert refused.err.splitlines()[1].startswith("  data[0]: sent [1, 2, 3] (3 items); allowed: at least 8 items")
    assert not [r for r in workspace.requests if r.url.endswith("/score")]


def test_promote_refuses_a_deployment_whose_contract_removes_a_feature_and_writes_nothing(workspace, run_script):
    workspace.swagger["green"] = without_age()

    result = run_script(manage_online_endpoint, ["promote", "--endpoint_name", ENDPOINT, "--deployment_name", "green"])

    assert result.code == EXIT_CONTRACT
    assert "  green against blue: feature removed: Age" in result.err.splitlines()
    assert "--allow_contract_change moves the traffic anyway" in result.err
    assert not workspace.sent("PUT", f"/onlineEndpoints/{ENDPOINT}")
    assert {r.headers["azureml-model-deployment"] for r in swagger_gets(workspace)} == {"blue", "green"}


def test_allow_contract_change_moves_the_traffic_and_says_what_changed(workspace, run_script):
    workspace.swagger["green"] = without_age()
    argv = ["traffic", "--endpoint_name", ENDPOINT, "--set", "blue=90", "green=10", "--allow_contract_change"]

    result = run_script(manage_online_endpoint, argv)

    assert result.code == 0, result.err
    assert "note: contract change allowed by --allow_contract_change: green against blue: feature removed: Age" in (
        result.err
    )
    (put,) = workspace.sent("PUT", f"/onlineEndpoints/{ENDPOINT}")
    assert put.body["properties"]["traffic"] == {"blue": 90, "green": 10}


def test_an_unchanged_contract_passes_and_an_unknown_one_is_a_warning(workspace, run_script):
    same = run_script(manage_online_endpoint, ["traffic", "--endpoint_name", ENDPOINT, "--set", "blue=90", "green=10"])
    workspace.swagger["green"] = {"swagger": "2.0", "paths": {}, "definitions": {"ServiceInput": {"type": "object"}}}
    unknown = run_script(
        manage_online_endpoint, ["traffic", "--endpoint_name", ENDPOINT, "--set", "blue=50", "green=50"]
    )

    assert same.code == 0 and "warning" not in same.err, same.err
    assert unknown.code == 0, unknown.err
    assert "warning: the contract of 'green' is unknown (its OpenAPI document has no request schema)" in unknown.err
    assert len(workspace.sent("PUT", f"/onlineEndpoints/{ENDPOINT}")) == 2


def test_mirror_traffic_is_not_gated(workspace, run_script):
    workspace.swagger["green"] = without_age()

    mirrored = run_script(manage_online_endpoint, ["traffic", "--endpoint_name", ENDPOINT, "--mirror", "green=10"])

    assert mirrored.code == 0, mirrored.err
    assert not swagger_gets(workspace)


def test_invoke_check_contract_sends_a_fitting_request_and_nothing_else(workspace, run_script, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"Pregnancies": 2}]))
    argv = ["--endpoint_name", ENDPOINT, "--check_contract"]

    fits = run_script(invoke_online_endpoint, argv)
    posted = len([r for r in workspace.requests if r.url.endswith("/score")])
    refused = run_script(invoke_online_endpoint, [*argv, "--request_file", str(bad)])

    assert fits.code == 0 and fits.out == '["diabetic"]\n', fits.err
    assert "fits the contract of diabetes-classify (OpenAPI 3)" in fits.err
    assert refused.code == EXIT_USAGE
    assert "allowed: the keys Pregnancies, PlasmaGlucose" in refused.err and "(missing: PlasmaGlucose" in refused.err
    assert posted == 1 and len([r for r in workspace.requests if r.url.endswith("/score")]) == 1


def test_the_generated_swagger_files_are_not_uploaded_with_the_code(fake_azure, run_script, tmp_path):
    """A local run of the server (azmlinfsrv in the folder) leaves them there; .amlignore keeps them out of Azure."""
    import shutil

    from tests.seeds import DEPLOYMENT_SEED, with_flag

    with_seed_assets(fake_azure).add_endpoint(ENDPOINT)
    code = shutil.copytree(SCORE_DIR, tmp_path / "code", ignore=shutil.ignore_patterns("swagger*.json"))
    documents.write(code, score.FEATURES, score.LABELS, {})

    result = run_script(create_online_deployment, with_flag(DEPLOYMENT_SEED, "--score_path", str(code)))

    assert result.code == 0, result.err
    uploaded = [name for name in fake_azure.blobs if "/code/" in name]
    assert any(name.endswith("/score.py") for name in uploaded)
    assert not [name for name in uploaded if "swagger" in name], uploaded
