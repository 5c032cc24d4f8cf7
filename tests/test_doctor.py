"""The doctor: each cause of its table recognised in a realistic error or log, with the fix; "unknown" honestly
otherwise; a failed Azure deployment names its cause; the doctor verb on Azure (fake control plane) and locally."""

from __future__ import annotations

import json

import pytest
from sklearn.exceptions import InconsistentVersionWarning

import create_online_deployment
import manage_online_endpoint
from common import diagnosis
from tests.localtarget import local_target, write_score
from tests.seeds import DEPLOYMENT_SEED, with_seed_assets

TRACEBACK = """Traceback (most recent call last):
  File "/var/azureml-app/09-deploy-model/score.py", line 3, in <module>
{line}
"""
SLOW_INIT = """2026-12-01 10:00:00,100 I [1] azmlinfsrv - Starting AML Inference Server
2026-12-01 10:01:30,400 I [1] azmlinfsrv - Users's init has completed successfully
"""

CASES = [
    (
        "image build failure",
        diagnosis.Evidence(
            error="ImageBuildFailure: Environment image build failed. Build log: "
            "https://ml.azure.com/builds/abc123/logs"
        ),
        "build log: https://ml.azure.com/builds/abc123/logs",
    ),
    (
        "out of memory",
        diagnosis.Evidence(
            logs={
                "inference-server": "[2026-12-01 10:02:00 +0000] [9] [ERROR] Worker (pid:41) was sent SIGKILL! "
                "Perhaps out of memory?"
            },
            settings={"instance_type": "Standard_DS2_v2", "memory_gb": 7.0},
        ),
        "Standard_DS2_v2 has 7 GB",
    ),
    (
        "inference server version change",
        diagnosis.Evidence(
            logs={"inference-server": TRACEBACK.format(line="ModuleNotFoundError: No module named 'azureml.contrib'")}
        ),
        "azureml_inference_server_http.api.aml_response",
    ),
    (
        "module missing from the environment",
        diagnosis.Evidence(
            logs={"inference-server": TRACEBACK.format(line="ModuleNotFoundError: No module named 'lightgbm'")}
        ),
        "the environment lacks lightgbm",
    ),
    (
        "scikit-learn version differs from the model's",
        diagnosis.Evidence(
            logs={
                # the warning as scikit-learn words it for any pickle (its own str, not a copy of it)
                "inference-server": "2026-12-01 10:00:01,000 W [7] py.warnings - InconsistentVersionWarning: "
                + str(
                    InconsistentVersionWarning(
                        estimator_name="LogisticRegression",
                        current_sklearn_version="1.9.1",
                        original_sklearn_version="1.3.2",
                    )
                )
            }
        ),
        "the model was trained with scikit-learn 1.3.2 and the environment runs 1.9.1: pin scikit-learn==1.3.2 "
        "under pip: in the environment's conda file",
    ),
    (
        "quota",
        diagnosis.Evidence(
            error="OutOfQuota: Container terminated due to insufficient quota. Not enough quota "
            "available for Standard_DS3_v2. Current usage/limit: 0/6. Additional needed: 8"
        ),
        "https://ml.azure.com/quota",
    ),
    (
        "model or code not found by the storage initializer",
        diagnosis.Evidence(
            logs={
                "storage-initializer": "Error: azureml://datastores/workspaceblobstore/paths/"
                "LocalUpload/x/diabetes-model does not exist (BlobNotFound)"
            }
        ),
        "--model_path names a registered version",
    ),
    (
        "liveness or readiness probe failure",
        diagnosis.Evidence(
            error="ResourceNotReady: User container has crashed or terminated: Liveness probe failed: HTTP probe "
            "failed with statuscode: 502",
            logs={"inference-server": SLOW_INIT},
            settings={"liveness_probe": {"initial_delay": 10, "period": 10, "failure_threshold": 3}},
        ),
        "init() took 90 s in the log: give it more, e.g. --liveness_probe initial_delay=120",
    ),
    (
        "request timeouts",
        diagnosis.Evidence(
            logs={"inference-server": "2026-12-01 10:03:00,000 E [7] azmlinfsrv - Scoring timeout after 3000 ms"},
            settings={"request_timeout_ms": 3000},
        ),
        "request_timeout_ms (3000 ms)",
    ),
    (
        "key or token refused at invoke",
        diagnosis.Evidence(error="HTTP 401 Unauthorized: key_auth_access_denied"),
        "fetch the key again",
    ),
    (
        "container not ready (ResourceNotReady)",
        diagnosis.Evidence(
            error="ResourceNotReady: User container has crashed or terminated",
            logs={"inference-server": TRACEBACK.format(line="ValueError: AZUREML_MODEL_DIR holds no model")},
        ),
        "last traceback ends in ValueError: AZUREML_MODEL_DIR holds no model",
    ),
]


def test_every_cause_of_the_table_has_a_case_here():
    assert [name for name, _evidence, _fix in CASES] == [cause.name for cause in diagnosis.CAUSES]


@pytest.mark.parametrize(("name", "evidence", "fix"), CASES, ids=[case[0] for case in CASES])
def test_each_cause_is_named_with_its_evidence_and_fix(name, evidence, fix):
    findings = diagnosis.diagnose(evidence)

    assert findings, f"nothing matched for {name}"
    named = {finding.cause: finding for finding in findings}
    assert name in named, [f.cause for f in findings]
    assert fix in named[name].fix
    assert named[name].evidence


def test_an_unmatched_failure_says_unknown_and_shows_the_last_traceback():
    log = TRACEBACK.format(line="ZeroDivisionError: division by zero")

    found = diagnosis.lines(
        diagnosis.diagnose(diagnosis.Evidence(logs={"inference-server": log})),
        diagnosis.Evidence(logs={"inference-server": log}),
    )

    assert found[0] == "cause: unknown (nothing in the doctor's table matches)"
    assert found[1] == "  last traceback ends in: ZeroDivisionError: division by zero"
    assert "ZeroDivisionError: division by zero" in found[-2]


@pytest.fixture
def workspace(fake_azure):
    fake = with_seed_assets(fake_azure)
    fake.add_endpoint("diabetes-classify")
    return fake


def test_a_failed_azure_deployment_names_its_cause(workspace, run_script):
    workspace.deployment_outcome = "Failed"
    workspace.deployment_error = ("ResourceNotReady", "User container has crashed or terminated")
    workspace.logs = TRACEBACK.format(line="ModuleNotFoundError: No module named 'lightgbm'")

    result = run_script(create_online_deployment, DEPLOYMENT_SEED)

    assert result.code == 4
    assert "doctor: module missing from the environment: the environment lacks lightgbm" in result.err


def test_the_doctor_verb_reads_both_containers_and_writes_nothing(workspace, run_script):
    workspace.add_deployment("diabetes-classify", "blue")
    workspace.storage_logs = "Error: model path does not exist (BlobNotFound)"
    workspace.logs = "2026-12-01 10:00:00,000 I [1] azmlinfsrv - Starting AML Inference Server"

    result = run_script(
        manage_online_endpoint,
        ["doctor", "--endpoint_name", "diabetes-classify", "--deployment_name", "blue", "--output", "json"],
    )

    assert result.code == 0, result.err
    found = json.loads(result.out)
    assert [c["cause"] for c in found["causes"]] == ["model or code not found by the storage initializer"]
    assert found["causes"][0]["source"] == "storage-initializer"
    kinds = [r.body.get("containerType") for r in workspace.sent("POST", r".*/deployments/blue/getLogs")]
    assert sorted(kinds) == ["InferenceServer", "StorageInitializer"]
    assert workspace.writes() == []


def test_a_healthy_deployment_is_said_to_be_healthy_not_an_unknown_failure(workspace, run_script):
    workspace.add_deployment("diabetes-classify", "blue")
    workspace.logs = "2026-12-01 10:00:00,000 I [1] azmlinfsrv - Starting AML Inference Server"
    argv = ["doctor", "--endpoint_name", "diabetes-classify", "--deployment_name", "blue"]

    text = run_script(manage_online_endpoint, argv)
    data = run_script(manage_online_endpoint, [*argv, "--output", "json"])

    assert text.code == 0, text.err
    assert text.out.splitlines()[1] == (
        f"nothing wrong found: blue succeeded and is running, and none of the doctor's {len(diagnosis.CAUSES)} "
        "known causes shows in its state or its logs"
    )
    assert "cause: unknown" not in text.out
    assert (json.loads(data.out)["healthy"], json.loads(data.out)["causes"]) == (True, [])


def test_the_local_targets_failures_go_through_the_same_doctor(tmp_path, model_dir, run_script):
    broken = write_score(
        tmp_path / "broken", "import lightgbm\n\ndef init():\n    pass\n\ndef run(raw):\n    return []\n"
    )
    with local_target(tmp_path / "home", "doctor-local", model_dir) as setup:
        argv = setup.deployment_args("blue", 0, score_path=broken)
        created = run_script(create_online_deployment, argv)
        assert created.code == 4, created.err
        assert "doctor: module missing from the environment: the environment lacks lightgbm" in created.err

        result = run_script(
            manage_online_endpoint,
            ["doctor", "--local", "--endpoint_name", "doctor-local", "--deployment_name", "blue"],
        )

    assert result.code == 0, result.err
    assert "cause: module missing from the environment" in result.out
    assert "No module named 'lightgbm'" in result.out


AZURE_FAILURES = [case for case in CASES if not case[1].logs.get("storage-initializer")]


@pytest.mark.parametrize(("name", "evidence", "_fix"), AZURE_FAILURES, ids=[case[0] for case in AZURE_FAILURES])
def test_a_failed_azure_deployment_is_diagnosed_from_its_error_and_log(workspace, run_script, name, evidence, _fix):
    """The fake control plane fails the deployment with the case's error and inference-server log."""
    code, _, message = (evidence.error or "ResourceNotReady: User container has crashed or terminated").partition(": ")
    workspace.deployment_outcome = "Failed"
    workspace.deployment_error = (code, message)
    workspace.logs = evidence.logs.get("inference-server", "")

    result = run_script(create_online_deployment, DEPLOYMENT_SEED)

    assert result.code == 4
    assert f"doctor: {name}: " in result.err, result.err
