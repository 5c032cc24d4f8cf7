"""The local state files as types: what loads, what is refused with which line, and what a dump writes."""

from __future__ import annotations

import json

import pytest

from common.local.state import LocalStateError
from common.local.state_types import SCHEMA_VERSION, DeploymentSpec, EndpointSpec, to_json

DEPLOYMENT = {
    "name": "blue",
    "endpoint_name": "ep1",
    "model_dir": "/m",
    "code_dir": "/c",
    "scoring_script": "score.py",
    "generation": 3,
}


def test_an_endpoint_round_trips_with_its_schema_version(tmp_path):
    path = tmp_path / "endpoint.json"
    spec = EndpointSpec("ep1", 5001, "key", revision=4, traffic={"blue": 90, "green": 10}, mirror_traffic={"dark": 5})

    spec.dump(path)

    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION
    assert EndpointSpec.load(path) == spec
    assert spec.share("green") == 10 and spec.share("dark") == 5 and spec.share("other") == 0


def test_a_file_written_before_the_schema_version_reads_as_version_1(tmp_path):
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps({**DEPLOYMENT, "instance_count": 2, "environment_variables": {"WORKER_COUNT": 4}}))

    spec = DeploymentSpec.load(path)

    assert (spec.generation, spec.instance_count, spec.python) == (3, 2, None)
    assert spec.environment_variables == {"WORKER_COUNT": 4}
    assert to_json(spec)["schema_version"] == 1


def test_a_file_of_a_newer_toolkit_is_refused_naming_the_versions(tmp_path):
    path = tmp_path / "endpoint.json"
    path.write_text(json.dumps({"name": "ep1", "port": 1, "auth_mode": "key", "schema_version": SCHEMA_VERSION + 1}))

    newer = SCHEMA_VERSION + 1
    with pytest.raises(LocalStateError) as raised:
        EndpointSpec.load(path, ": restore it")

    assert str(raised.value) == (
        f"local state file '{path}' was written by a newer version of this toolkit (schema {newer}; this one reads "
        f"up to {SCHEMA_VERSION}): use that version, or remove the file: restore it"
    )


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"generation": "3"}, "generation"),
        ({"generation": True}, "generation"),
        ({"code_dir": None}, "code_dir"),
        ({"instance_count": 1.5}, "instance_count"),
        ({"snapshots": ["/c", 7]}, "snapshots"),
        ({"environment_variables": ["WORKER_COUNT=2"]}, "environment_variables"),
    ],
)
def test_a_field_of_the_wrong_type_makes_the_file_unreadable_naming_it(tmp_path, change, named):
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps({**DEPLOYMENT, **change}))

    with pytest.raises(LocalStateError) as raised:
        DeploymentSpec.load(path, ": restore it")

    assert str(raised.value) == (
        f"local state file '{path}' is unreadable (no valid {named}: it is not a deployment this toolkit wrote): "
        "restore it"
    )


def test_a_missing_field_a_server_starts_from_is_named(tmp_path):
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps({key: value for key, value in DEPLOYMENT.items() if key != "scoring_script"}))

    with pytest.raises(LocalStateError, match=r"\(no valid scoring_script: it is not a deployment"):
        DeploymentSpec.load(path)


def test_an_endpoint_without_its_port_is_not_an_endpoint(tmp_path):
    path = tmp_path / "endpoint.json"
    path.write_text(json.dumps({"name": "ep1", "auth_mode": "key"}))

    with pytest.raises(LocalStateError, match=r"\(no valid port: it is not an endpoint this toolkit wrote\)"):
        EndpointSpec.load(path)


def test_a_deployment_being_deleted_is_read_for_its_names_alone(tmp_path):
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps({"name": "blue", "endpoint_name": "ep1", "deleting": True, "generation": "junk"}))

    spec = DeploymentSpec.load(path)

    assert (spec.name, spec.deleting, spec.generation) == ("blue", True, 1)


def test_a_serving_spec_kept_in_a_status_file_that_is_not_whole_is_none():
    assert DeploymentSpec.from_json({"name": "blue"}) is None
    assert DeploymentSpec.from_json(DEPLOYMENT) == DeploymentSpec(**DEPLOYMENT)


def test_a_reader_that_only_looks_gets_none_for_a_missing_or_damaged_deployment(tmp_path):
    path = tmp_path / "deployment.json"
    assert DeploymentSpec.read(path) is None
    path.write_text('{"name": "blue", "endpoint_na')  # half-written
    assert DeploymentSpec.read(path) is None
    path.write_text(json.dumps(DEPLOYMENT))
    assert DeploymentSpec.read(path) == DeploymentSpec(**DEPLOYMENT)
