"""Opening a private endpoint (public network access disabled) to the public network needs --yes, on Azure (fake
control plane) and on the local target; closing it, and every other update, does not. show says which it is."""

from __future__ import annotations

import json
from pathlib import Path

import create_online_endpoint
import manage_online_endpoint
from tests.localtarget import local_target

ENDPOINT = ["--endpoint_name", "diabetes-classify"]


def test_opening_a_private_endpoint_is_refused_without_yes(fake_azure, run_script):
    fake_azure.add_endpoint("diabetes-classify", {}, publicNetworkAccess="Disabled")

    result = run_script(create_online_endpoint, [*ENDPOINT, "--public_network", "enabled"])

    assert result.code == 2
    assert "endpoint 'diabetes-classify' is private (public network access disabled)" in result.err
    assert "add --yes to confirm" in result.err
    assert fake_azure.writes() == []


def test_opening_a_private_endpoint_with_yes(fake_azure, run_script):
    fake_azure.add_endpoint("diabetes-classify", {}, publicNetworkAccess="Disabled")

    result = run_script(create_online_endpoint, [*ENDPOINT, "--public_network", "enabled", "--yes"])

    assert result.code == 0, result.err
    [put] = fake_azure.sent("PUT", "/onlineEndpoints/diabetes-classify")
    assert put.body["properties"]["publicNetworkAccess"].lower() == "enabled"


def test_closing_an_endpoint_and_other_updates_need_no_confirmation(fake_azure, run_script):
    fake_azure.add_endpoint("diabetes-classify", {})

    closed = run_script(create_online_endpoint, [*ENDPOINT, "--public_network", "disabled"])
    described = run_script(create_online_endpoint, [*ENDPOINT, "--description", "private now"])

    assert (closed.code, described.code) == (0, 0), closed.err + described.err
    assert fake_azure.endpoints["diabetes-classify"]["properties"]["publicNetworkAccess"].lower() == "disabled"


def test_local_endpoint_follows_the_same_rule(tmp_path: Path, model_dir: Path, run_script):
    with local_target(tmp_path / "home", "private-local", model_dir) as local:
        argv = ["--local", "--endpoint_name", "private-local", "--public_network"]
        assert local.run(create_online_endpoint.main, [*argv, "disabled"]) == 0
        revision = local.endpoint()["revision"]
        shown = run_script(manage_online_endpoint, ["show", "--local", "--endpoint_name", "private-local"])
        shown_json = run_script(
            manage_online_endpoint, ["show", "--local", "--endpoint_name", "private-local", "--output", "json"]
        )
        assert "Public network:     disabled" in shown.out.splitlines()
        assert json.loads(shown_json.out)["public_network_access"] == "disabled"

        assert local.run(create_online_endpoint.main, [*argv, "enabled"]) == 2
        assert local.endpoint()["revision"] == revision

        assert local.run(create_online_endpoint.main, [*argv, "enabled", "--yes"]) == 0
        assert local.endpoint()["public_network_access"] == "enabled"
