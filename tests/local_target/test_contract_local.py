"""The contract on the local target, for real: the front door's GET /swagger.json behind the endpoint's auth, routed
like /score, passing through what each deployment's inference server serves; the contract verb and the traffic gate
against it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import manage_online_endpoint
from commands import run as run_command
from common.errors import EXIT_CONTRACT, EXIT_NOT_FOUND, EXIT_USAGE
from tests.conftest import SCORE_DIR, load_code_module
from tests.localtarget import LocalSetup, local_target, write_score

ENDPOINT = "contract-local"
documents = load_code_module("openapi_contract.py", "openapi_contract_local_test")
score = load_code_module("score.py", "score_contract_local_test")
PLAIN_SCORE = "def init():\n    pass\n\ndef run(raw_data):\n    return []\n"


def their_document() -> dict[str, Any]:
    """A user's own swagger3.json: score.py's, without the feature Age (a model retrained on 7 features)."""
    found = documents.document(score.FEATURES, score.LABELS, {}, "3")
    del found["components"]["schemas"]["RecordsRequest"]["items"]["properties"]["Age"]
    found["info"] = {"title": "theirs", "version": "7"}
    return found


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[LocalSetup]:
    """blue: the toolkit's score.py, live; own: a code folder with its own swagger3.json; plain: a score.py the
    server knows nothing of (no schema, no swagger files)."""
    with local_target(tmp_path_factory.mktemp("contract-home"), ENDPOINT, model_dir) as setup:
        setup.deploy("blue", 100)
        own = write_score(tmp_path_factory.mktemp("own") / "code", PLAIN_SCORE)
        (own / "swagger3.json").write_text(json.dumps(their_document()))
        setup.deploy("own", 0, own)
        setup.deploy("plain", 0, write_score(tmp_path_factory.mktemp("plain") / "code", PLAIN_SCORE))
        yield setup


def swagger(target: LocalSetup, query: str = "", **headers: str) -> Any:
    return target.http.get(f"{target.uri}/swagger.json{query}", headers=headers)


def manage(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run_command(manage_online_endpoint.main, [*argv, "--local", "--endpoint_name", ENDPOINT])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("query", "version"), [("", "2"), ("?version=2", "2"), ("?version=3", "3"), ("?version=3.1", "3.1")]
)
def test_each_version_is_score_pys_document_of_the_deployed_model_as_the_server_writes_it(target, query, version):
    """The bytes Azure's inference server writes for the same model and code: json.dumps of the document."""
    metadata = json.loads(next((target.store.home / "models").rglob("metadata.json")).read_text())

    answer = swagger(target, query, **target.headers())

    assert answer.status_code == 200, answer.text
    assert answer.headers["azureml-model-deployment"] == "blue"
    assert answer.content == json.dumps(documents.document(score.FEATURES, score.LABELS, metadata, version)).encode()


def test_without_a_valid_credential_the_document_is_refused(target):
    assert swagger(target).status_code == 401
    assert swagger(target, "?version=3", Authorization="Bearer not-the-key").status_code == 401


def test_the_deployment_header_routes_it_and_a_users_own_files_pass_through(target):
    own = swagger(target, "?version=3", **target.headers(deployment="own"))
    plain = swagger(target, "?version=3", **target.headers(deployment="plain"))
    missing = swagger(target, "?version=3", **target.headers(deployment="nobody"))
    unknown_version = swagger(target, "?version=9", **target.headers())

    assert own.status_code == 200 and own.json() == their_document()
    assert own.headers["azureml-model-deployment"] == "own"
    assert plain.status_code == 200
    assert plain.json()["components"]["schemas"]["ServiceInput"] == {"type": "object", "example": {}}
    assert missing.status_code == 404
    assert unknown_version.status_code == 404 and "Supported versions: [2, 3, 3.1]" in unknown_version.text


def test_the_documents_example_request_scores(target):
    document = swagger(target, "?version=3", **target.headers()).json()
    example = document["components"]["schemas"]["ServiceInput"]["example"]

    answer = target.score(json.dumps(example))

    assert answer.status_code == 200 and answer.json()[0] in score.LABELS


def test_contract_saves_the_bytes_served_and_checks_requests(target, capsys, tmp_path):
    saved = tmp_path / "blue.json"

    saved_code, saved_out, _ = manage(capsys, "contract", "--save", str(saved), "--version", "3.1")
    fits_code, fits_out, _ = manage(capsys, "contract", "--check", str(SCORE_DIR / "sample-request.json"))
    plain_code, _, plain_err = manage(
        capsys, "contract", "--deployment_name", "plain", "--check", str(SCORE_DIR / "sample-request.json")
    )
    gone_code, _, gone_err = manage(capsys, "contract", "--deployment_name", "nobody")

    assert saved_code == 0 and saved.read_bytes() == swagger(target, "?version=3.1", **target.headers()).content
    assert saved_out.startswith(f"Saved the OpenAPI 3.1 document of {ENDPOINT} (")
    assert fits_code == 0 and "fits the contract" in fits_out
    assert plain_code == EXIT_USAGE and "no request schema" in plain_err
    assert gone_code == EXIT_NOT_FOUND and "has no deployment 'nobody'" in gone_err


def test_traffic_to_a_deployment_that_removes_a_feature_is_refused_and_nothing_changes(target, capsys):
    code, _, err = manage(capsys, "traffic", "--set", "blue=90", "own=10")

    assert code == EXIT_CONTRACT
    assert "  own against blue: feature removed: Age" in err.splitlines()
    assert target.endpoint()["traffic"] == {"blue": 100}


def test_traffic_to_a_deployment_of_unknown_contract_is_a_warning(target, capsys):
    code, _, err = manage(capsys, "traffic", "--set", "blue=90", "plain=10")
    try:
        assert code == 0, err
        assert "warning: the contract of 'plain' is unknown" in err
        assert target.endpoint()["traffic"] == {"blue": 90, "plain": 10}
    finally:
        target.set_traffic(blue=100)


def test_init_writes_the_documents_into_the_servers_app_root_the_deployments_snapshot(target):
    """AML_APP_ROOT: the local target's copy of the code folder (Azure's: the container's), not the user's folder."""
    snapshot = Path(target.deployment("blue")["code_dir"])
    assert sorted(path.name for path in snapshot.glob("swagger*.json")) == sorted(documents.FILES.values())
    assert all(documents.ours(path) for path in snapshot.glob("swagger*.json"))


@pytest.mark.parametrize("version", ["2", "3", "3.1"])
def test_the_same_model_and_code_give_the_same_bytes_on_both_targets(target, capsys, tmp_path, fake_azure, version):
    """contract --save on the local target, and on Azure (the fake control plane's swaggerUri serves what the
    inference server serves for score.py and the same model's metadata.json)."""
    fake_azure.model_metadata = json.loads(next((target.store.home / "models").rglob("metadata.json")).read_text())
    fake_azure.add_endpoint(ENDPOINT, {"blue": 100})
    fake_azure.add_deployment(ENDPOINT, "blue")
    here, there = tmp_path / "local.json", tmp_path / "azure.json"

    local_code, _, local_err = manage(capsys, "contract", "--version", version, "--save", str(here))
    capsys.readouterr()
    azure_code = run_command(
        manage_online_endpoint.main,
        ["contract", "--endpoint_name", ENDPOINT, "--version", version, "--save", str(there)],
    )

    assert local_code == 0 and azure_code == 0, (local_err, capsys.readouterr().err)
    assert here.read_bytes() == there.read_bytes()
