"""delete --force: a deployment that takes traffic is deleted after its share moves to the others (in proportion)
and its mirror share is cleared, on Azure (fake control plane) and for real on the local target."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import manage_online_endpoint
from tests.localtarget import LocalSetup, local_target

ENDPOINT = ["--endpoint_name", "diabetes-classify"]


@pytest.fixture
def three_deployments(fake_azure):
    fake_azure.add_endpoint("diabetes-classify", {"blue": 60, "green": 30, "red": 10})
    return fake_azure


def test_force_moves_the_share_in_proportion_then_deletes(three_deployments, run_script):
    result = run_script(manage_online_endpoint, ["delete", *ENDPOINT, "--deployment_name", "red", "--force"])

    assert result.code == 0, result.err
    assert three_deployments.writes() == [
        "PUT /onlineEndpoints/diabetes-classify",
        "DELETE /onlineEndpoints/diabetes-classify/deployments/red",
    ]
    put = three_deployments.sent("PUT", "/onlineEndpoints/diabetes-classify")[-1]
    assert put.body["properties"]["traffic"] == {"blue": 67, "green": 33}
    assert put.body["tags"]["toolkit.rollback.1"].endswith("|delete red --force|blue=60,green=30,red=10|-")
    assert "Live traffic:   blue=60%, green=30%, red=10% -> blue=67%, green=33%" in result.err
    assert "Deleted deployment red" in result.out


def test_rollback_after_force_waits_for_the_deployment_to_come_back(three_deployments, run_script):
    """What the README's table says: the history keeps the split from before delete --force; rollback is refused
    while red is gone (nothing written) and restores it once red is deployed again."""
    assert run_script(manage_online_endpoint, ["delete", *ENDPOINT, "--deployment_name", "red", "--force"]).code == 0
    writes = len(three_deployments.writes())

    refused = run_script(manage_online_endpoint, ["rollback", *ENDPOINT])

    assert refused.code == 2
    assert "deployment 'red' no longer exists; deploy it again under the same name and run rollback again" in (
        refused.err
    )
    assert len(three_deployments.writes()) == writes

    three_deployments.add_deployment("diabetes-classify", "red")
    restored = run_script(manage_online_endpoint, ["rollback", *ENDPOINT])

    assert restored.code == 0, restored.err
    put = three_deployments.sent("PUT", "/onlineEndpoints/diabetes-classify")[-1]
    assert put.body["properties"]["traffic"] == {"blue": 60, "green": 30, "red": 10}


def test_force_clears_a_mirror_share(fake_azure, run_script):
    fake_azure.add_endpoint("diabetes-classify", {"blue": 100})
    fake_azure.add_deployment("diabetes-classify", "green")
    fake_azure.endpoints["diabetes-classify"]["properties"]["mirrorTraffic"] = {"green": 10}

    result = run_script(manage_online_endpoint, ["delete", *ENDPOINT, "--deployment_name", "green", "--force"])

    assert result.code == 0, result.err
    put = fake_azure.sent("PUT", "/onlineEndpoints/diabetes-classify")[-1]
    assert (put.body["properties"]["traffic"], put.body["properties"].get("mirrorTraffic") or {}) == ({"blue": 100}, {})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--yes"], "add --force to move it to the other deployments first"),
        ([], "add --yes to confirm deleting deployment 'red'"),
    ],
)
def test_without_force_a_deployment_with_traffic_is_refused(three_deployments, run_script, argv, message):
    result = run_script(manage_online_endpoint, ["delete", *ENDPOINT, "--deployment_name", "red", *argv])

    assert result.code == 2 and message in result.err
    assert three_deployments.writes() == []


def test_force_refuses_when_the_share_has_nowhere_to_go(fake_azure, run_script):
    fake_azure.add_endpoint("diabetes-classify", {"blue": 100})
    fake_azure.add_deployment("diabetes-classify", "green")

    result = run_script(manage_online_endpoint, ["delete", *ENDPOINT, "--deployment_name", "blue", "--force"])

    assert result.code == 2
    assert "cannot delete 'blue' with --force: it takes 100% of the live traffic" in result.err
    assert fake_azure.writes() == []


def test_deleting_the_endpoint_says_what_it_removes(three_deployments, run_script):
    result = run_script(manage_online_endpoint, ["delete", *ENDPOINT, "--yes"])

    assert result.code == 0, result.err
    assert "and its deployments: blue (60%), green (30%), red (10%)" in result.err
    assert "Deleted endpoint diabetes-classify and its deployments (blue, green, red)" in result.out


@pytest.fixture
def local(tmp_path: Path, model_dir: Path) -> Iterator[LocalSetup]:
    with local_target(tmp_path / "home", "delete-force", model_dir) as setup:
        setup.deploy("blue", 100)
        setup.deploy("green", 20)
        yield setup


def test_local_force_delete_keeps_serving(local, run_script):
    argv = ["delete", "--local", "--endpoint_name", "delete-force", "--deployment_name", "blue", "--force"]

    result = run_script(manage_online_endpoint, argv)

    assert result.code == 0, result.err
    assert local.endpoint()["traffic"] == {"green": 100}
    assert "blue" not in local.store.deployments("delete-force")
    answers = {local.score().headers["azureml-model-deployment"] for _ in range(20)}
    assert answers == {"green"}
