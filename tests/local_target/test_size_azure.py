"""size for an Azure deployment: the deployment (its registered model, environment and the code asset Azure holds)
is downloaded through the real SDK from the fake control plane and tried on the local target (real server, real
HTTP on 127.0.0.1), then sized with the region's VM sizes, prices and quotas. Nothing is written to Azure."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest

import create_online_deployment
import manage_online_endpoint
from common.azure import prices
from common.errors import EXIT_QUOTA, EXIT_USAGE
from tests.conftest import ROOT
from tests.fake_azure.capacity import SIZES, usage
from tests.seeds import DEPLOYMENT_SEED

ENDPOINT, DEPLOYMENT = "diabetes-classify", "diabetes-classify-blue-dp"


@pytest.fixture
def deployed(fake_azure, model_dir: Path, monkeypatch: pytest.MonkeyPatch, run_script) -> Any:
    """The seed deployment created on the fake control plane (its code uploaded to the fake blob store as the SDK
    uploads it); model downloads are served from the test model."""
    from azure.ai.ml.operations import ModelOperations

    fake_azure.add_model("diabetes-predict", "3")
    fake_azure.add_environment("diabetes-classify", "7", conda_file=(ROOT / "environment.yml").read_text())
    fake_azure.add_endpoint(ENDPOINT)

    def download(_self: Any, name: str, version: str, download_path: str = ".") -> None:
        shutil.copytree(model_dir / "diabetes-model", Path(download_path) / name)

    monkeypatch.setattr(ModelOperations, "download", download)
    created = run_script(create_online_deployment, DEPLOYMENT_SEED)
    assert created.code == 0, created.err
    return fake_azure


def size(run_script, *argv: str) -> Any:
    names = ("--endpoint_name", ENDPOINT, "--deployment_name", DEPLOYMENT, "--seconds", "1", "--max_concurrency", "2")
    # a p95 limit no loaded test machine misses: what these tests check does not depend on the latency
    return run_script(manage_online_endpoint, ["size", *names, "--p95_ms", "60000", *argv])


def test_an_azure_deployment_is_tried_here_and_sized_with_the_regions_prices_and_quota(deployed, run_script):
    writes_before = deployed.writes()

    result = size(
        run_script, "--target_rps", "20", "--instance_type", "Standard_DS3_v2", "Standard_F4s_v2", "--output", "json"
    )

    assert result.code == 0, result.err
    assert deployed.writes() == writes_before  # measured here; nothing written to Azure
    assert f"Size: deploying {DEPLOYMENT} on the local target first" in result.err
    assert "downloading code " in result.err and "concurrency 1:" in result.err
    found = json.loads(result.out)
    ds3, f4 = found["candidates"]
    assert ds3["price"]["source"] == prices.AZURE_SOURCE  # the REST example's DS3_v2 price, from the fake's answer
    assert f4["price"]["source"] == prices.TABLE_SOURCE  # the example gives F4s_v2 none: the dated table
    assert ds3["fits_quota"] is True and ds3["quota_free"] == 100
    assert ds3["cores_needed"] == 4 * 4  # ceil(1.2 x 3 instances) x 4 vCPUs
    create, autoscale = found["commands"]
    assert "--model_path azureml:diabetes-predict:3 --environment azureml:diabetes-classify:7" in create
    assert "--score_path 09-deploy-model --score_script score.py" in create
    assert autoscale.startswith(f"python manage_online_endpoint.py autoscale --endpoint_name {ENDPOINT}")

    dry = run_script(create_online_deployment, [*shlex.split(create)[2:], "--dry_run"])  # runs as printed

    assert dry.code == 0, dry.err
    assert deployed.writes() == writes_before


def test_a_target_beyond_the_quota_is_refused_with_the_largest_that_fits(deployed, run_script):
    deployed.usages = [usage(None, 0, 100), usage("standardDSv2Family", 90, 100), usage("standardFSv2Family", 0, 8)]

    result = size(run_script, "--target_rps", "5000", "--instance_type", "Standard_DS2_v2", "Standard_F4s_v2")

    assert result.code == EXIT_QUOTA, result.err
    (line,) = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert "--target_rps 5000 cannot be met within the subscription's quota" in line
    assert "Standard_DS2_v2: " in line and "10 free" in line and "Standard_F4s_v2: " in line and "8 free" in line
    assert "the largest that fits: 4 x Standard_DS2_v2" in line  # ceil(1.2 x 4) x 2 = 10 cores
    assert "nothing was changed" in line


def test_an_instance_type_the_region_does_not_offer_is_refused_before_measuring(deployed, run_script):
    result = size(run_script, "--target_rps", "5", "--instance_type", "Standard_DS1_v2")

    assert result.code == EXIT_USAGE, result.err
    assert "--instance_type Standard_DS1_v2 is offered there, but not for managed online deployments" in result.err
    assert "concurrency 1:" not in result.err and "downloading" not in result.err


def test_when_the_regions_sizes_cannot_be_read_it_warns_and_sizes_from_the_table(deployed, run_script):
    deployed.fail("GET", SIZES, 403, "AuthorizationFailed", "no read permission on vmSizes")

    result = size(run_script, "--target_rps", "5", "--instance_type", "Standard_DS3_v2", "--output", "json")

    assert result.code == 0, result.err
    assert "the region's VM sizes and quotas could not be read (403" in result.err
    (candidate,) = json.loads(result.out)["candidates"]
    assert candidate["price"]["source"] == prices.TABLE_SOURCE and candidate["fits_quota"] is None


def test_a_deployment_that_does_not_start_here_is_said_and_nothing_is_written(deployed, run_script):
    (uploaded,) = [path for path in deployed.blobs if path.endswith("/09-deploy-model/score.py")]
    deployed.blobs[uploaded] = b"import no_such_module\n\n\ndef init():\n    pass\n\n\ndef run(raw):\n    return []\n"
    writes_before = deployed.writes()

    result = size(run_script, "--target_rps", "5", "--instance_type", "Standard_DS2_v2")

    assert result.code == 4, result.err
    assert f"error: size of {DEPLOYMENT} failed: it did not start" in result.err
    assert "No module named 'no_such_module'" in result.err and "concurrency 1:" not in result.err
    assert deployed.writes() == writes_before


def test_a_type_short_of_quota_is_marked_and_the_cheapest_that_fits_is_chosen(deployed, run_script):
    deployed.usages = [usage(None, 0, 100), usage("standardDSv2Family", 96, 100), usage("standardFSv2Family", 0, 100)]

    result = size(run_script, "--target_rps", "5", "--instance_type", "Standard_DS2_v2", "Standard_F4s_v2")

    assert result.code == 0, result.err
    ds2, f4 = [line for line in result.out.splitlines() if line.startswith("Standard_")]
    assert ds2.endswith("SHORT (4 free)") and f4.endswith("fits (100 free)")  # 3 x DS2_v2 need ceil(3.6) x 2 = 8
    assert "The cheapest that fits the quota, Standard_F4s_v2, as a new Azure deployment" in result.out
    assert "--instance_type Standard_F4s_v2" in result.out
