"""az ml YAML files given to the scripts (--file), read with azure-ai-ml's own loaders: Azure's published sample
endpoint.yml (tests/data/azureml-examples), flags overriding the file, and bad files refused in one line."""

from __future__ import annotations

import shutil

import create_online_deployment
import create_online_endpoint
from tests.conftest import ROOT
from tests.localtarget import local_target

SAMPLE_ENDPOINT = ROOT / "tests" / "data" / "azureml-examples" / "managed" / "sample" / "endpoint.yml"


def test_azures_sample_endpoint_yml_creates_its_endpoint(fake_azure, run_script):
    result = run_script(create_online_endpoint, ["--file", str(SAMPLE_ENDPOINT)])

    assert result.code == 0, result.err
    [put] = fake_azure.sent("PUT", "/onlineEndpoints/my-endpoint")
    assert put.body["properties"]["authMode"] == "Key"
    assert put.body["properties"]["publicNetworkAccess"].lower() == "enabled"  # the default: the file sets none


def test_a_flag_beside_the_file_overrides_its_value(fake_azure, run_script):
    argv = ["--file", str(SAMPLE_ENDPOINT), "--endpoint_name", "Other-Endpoint", "--auth_mode", "aml_token"]

    result = run_script(create_online_endpoint, argv)

    assert result.code == 0, result.err
    assert fake_azure.sent("PUT", "/onlineEndpoints/my-endpoint") == []
    [put] = fake_azure.sent("PUT", "/onlineEndpoints/other-endpoint")
    assert put.body["properties"]["authMode"] == "AMLToken"


def test_a_file_the_schema_refuses_is_one_line_naming_the_file_and_the_fields(fake_azure, run_script, tmp_path):
    bad = tmp_path / "endpoint.yml"
    bad.write_text("name: my-endpoint\nauth_mode: banana\ncolour: blue\n")
    broken = tmp_path / "broken.yml"
    broken.write_text("name: [my-endpoint\n")

    refused = run_script(create_online_endpoint, ["--file", str(bad)])
    unparsed = run_script(create_online_endpoint, ["--file", str(broken)])
    nameless = run_script(create_online_endpoint, ["--file", str(SAMPLE_ENDPOINT.parent / "missing.yml")])

    assert refused.code == unparsed.code == nameless.code == 2
    assert refused.err.splitlines() == [
        f"error: --file {str(bad)!r}: auth_mode: Value 'banana' passed is not in set ['aml_token', 'key', "
        "'aad_token']; colour: Unknown field. (see https://aka.ms/ml-cli-v2-endpoint-online-yaml-reference)"
    ]
    assert unparsed.err.startswith(f"error: --file {str(broken)!r} is not valid YAML: ")
    assert "is not a file" in nameless.err
    assert fake_azure.requests == []


def test_the_sample_endpoint_yml_creates_a_local_endpoint(tmp_path, model_dir, run_script):
    with local_target(tmp_path / "home", "diabetes-yaml", model_dir) as local:
        result = run_script(create_online_endpoint, ["--local", "--file", str(SAMPLE_ENDPOINT)])

        assert result.code == 0, result.err
        assert result.out.splitlines()[-1].strip() == (  # the deployment file beside it, Azure's blue first
            f"python create_online_deployment.py --file {SAMPLE_ENDPOINT.parent / 'blue-deployment.yml'} "
            "--endpoint_name my-endpoint --traffic_allocation 100 --local"
        )
        assert "my-endpoint" in local.store.endpoints()
        assert local.client().online_endpoints.get("my-endpoint").auth_mode == "key"


EXAMPLES = ROOT / "tests" / "data" / "azureml-examples"


def test_an_inline_model_and_environment_are_registered_as_azure_ai_ml_registers_them(fake_azure, run_script):
    """At the HTTP boundary, the real SDK: blue-deployment.yml's model folder is uploaded and registered as an
    anonymous model version, its conda file as an anonymous environment version, its code uploaded; the deployment
    names all three."""
    fake_azure.add_endpoint("my-endpoint")
    deployment_file = EXAMPLES / "managed" / "sample" / "blue-deployment.yml"

    result = run_script(create_online_deployment, ["--file", str(deployment_file), "--skip_capacity_check"])

    assert result.code == 0, result.err
    [environment] = fake_azure.sent("PUT", "/environments/CliV2AnonymousEnvironment/versions/[0-9a-f]+")
    assert "numpy=2.3.1" in environment.body["properties"]["condaFile"]
    assert environment.body["properties"]["image"] == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
    [model] = fake_azure.sent("PUT", "/models/[0-9a-f]+/versions/1")
    assert model.body["properties"]["isAnonymous"] is True
    assert model.body["properties"]["modelType"] == "custom_model"
    assert any(key.endswith("/model/sklearn_regression_model.pkl") for key in fake_azure.blobs)  # uploaded
    assert any(key.endswith("/onlinescoring/score.py") for key in fake_azure.blobs)
    put = fake_azure.sent("PUT", "/onlineEndpoints/my-endpoint/deployments/blue")[-1].body["properties"]
    assert put["model"].endswith(f"/models/{model.resource.split('/')[2]}/versions/1")
    assert put["environmentId"].endswith(environment.resource)
    assert put["codeConfiguration"]["scoringScript"] == "score.py"


def test_the_ncd_mlflow_model_is_registered_by_its_name_and_sent_without_code(fake_azure, run_script):
    fake_azure.add_endpoint("my-endpoint")

    result = run_script(
        create_online_deployment,
        ["--file", str(EXAMPLES / "ncd" / "sklearn-deployment.yaml"), "--skip_capacity_check"],
    )

    assert result.code == 0, result.err
    [model] = fake_azure.sent("PUT", "/models/mir-sample-sklearn-ncd-model/versions/2")
    assert model.body["properties"]["modelType"] == "mlflow_model"
    assert fake_azure.sent("PUT", "/environments/.*") == []
    put = fake_azure.sent("PUT", "/onlineEndpoints/my-endpoint/deployments/sklearn-deployment")[-1].body["properties"]
    assert put["model"].endswith("/models/mir-sample-sklearn-ncd-model/versions/2")
    assert "codeConfiguration" not in put and "environmentId" not in put


def test_settings_a_deployment_file_leaves_out_are_left_to_the_deployment(tmp_path):
    """The loader fills in app_insights_enabled: false; a file that does not write it must not switch off Application
    Insights on the deployment it updates (None: the existing deployment's value is kept)."""
    from common import specs

    sample = specs.load_deployment(EXAMPLES / "managed" / "sample" / "blue-deployment.yml")
    text = (EXAMPLES / "managed" / "sample" / "blue-deployment.yml").read_text()
    written = tmp_path / "managed" / "sample" / "with-settings.yml"
    written.parent.mkdir(parents=True)
    for folder in ("model-1",):
        shutil.copytree(EXAMPLES / folder, tmp_path / folder)
    written.write_text(
        text
        + "app_insights_enabled: true\nrequest_settings:\n  request_timeout_ms: 9000\nliveness_probe:\n  period: 20\n"
    )
    with_settings = specs.load_deployment(written)

    assert sample.settings.app_insights_enabled is None and sample.settings.egress_public_network_access is None
    assert sample.settings.request_timeout_ms is None and sample.settings.liveness_probe is None
    assert with_settings.settings.app_insights_enabled is True
    assert with_settings.settings.request_timeout_ms == 9000
    assert with_settings.settings.liveness_probe == {"period": 20}
    assert with_settings.environment.source == "../../model-1/environment/conda.yaml"
