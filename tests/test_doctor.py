"""The doctor: each cause of its table recognised in a realistic error or log, with the fix; "unknown" honestly
otherwise; a failed Azure deployment names its cause; the doctor verb on Azure (fake control plane) and locally."""

from __future__ import annotations

import json
import re

import pytest
from sklearn.exceptions import InconsistentVersionWarning

import create_online_deployment
import manage_online_endpoint
from common.doctor import diagnosis
from tests.localtarget import local_target, write_score
from tests.seeds import DEPLOYMENT_SEED, with_seed_assets

TRACEBACK = """Traceback (most recent call last):
  File "/var/azureml-app/09-deploy-model/score.py", line 3, in <module>
{line}
"""
SLOW_INIT = """2026-12-01 10:00:00,100 I [1] azmlinfsrv - Starting AML Inference Server
2026-12-01 10:01:30,400 I [1] azmlinfsrv - Users's init has completed successfully
"""

TSG = "how-to-troubleshoot-online-endpoints"  # learn.microsoft.com/azure/machine-learning/, the doc each line is from
# Real lines, each with where it was seen (an issue thread, the doc's own quote, or the package that prints it).
CPU_QUOTA = (  # MicrosoftLearning/mslearn-azure-ml#30, az ml online-deployment create
    'OutOfQuota: InferencingClient HttpRequest error, error detail: {"errors":{"VmSize":["Not enough quota available '
    "for Standard_F4s_v2 in SubscriptionId a7842ee4-aaba-4d38-8bba-c1804e31a761. Current usage/limit: 0/6. Additional "
    'needed: 8 Please see troubleshooting guide, available here: https://aka.ms/oe-tsg#error-outofquota"]}}'
)
IMAGE_TIMEOUT = (  # Azure/data-product-analytics#137, azureml-examples' online-endpoints-simple-deployment
    "ResourceNotFound: Deployment failed due to timeout while waiting for Environment Image to become available. "
    "Check Environment Build Log in Workspace or Workspace storage for potential failures. Environment info: Name: "
    "CliV2AnonymousEnvironment, Version: f53727d1df8137354bc0f2c69d2619ee, Build log may be available at (log Please "
    "see troubleshooting guide, available here: https://aka.ms/oe-tsg#error-resourcenotfound"
)

CASES = [
    (
        "image build failure: container registry authorization",
        # TSG, "Azure Container Registry authorization failure": the message mentions this phrase
        diagnosis.Evidence(error="ImageBuildFailure: Image build failed: container registry authorization failure"),
        "az ml workspace sync-keys",
    ),
    (
        "image build failure: private container registry",
        # TSG, "Image build compute not set in a private workspace with virtual network"
        diagnosis.Evidence(
            error="ImageBuildFailure: Image build failed: failed to communicate with the workspace's container registry"
        ),
        "image build compute",
    ),
    (
        "image build timed out",
        diagnosis.Evidence(error=IMAGE_TIMEOUT),
        "took too long to build: build it once beforehand",  # and the aka.ms help link is never "the build log"
    ),
    (
        "image build failure",
        # TSG, "ERROR: ImageBuildFailure": "the exact location might be returned as part of the error, for example"
        diagnosis.Evidence(
            error="ImageBuildFailure: Image build failed. For more details, check the build log under the storage "
            "account 'wsstore' in the container 'azureml' at the path 'imagelogs/0a1b/build.log'. Please see "
            "troubleshooting guide, available here: https://aka.ms/oe-tsg#error-imagebuildfailure"
        ),
        "(the build log under the storage account 'wsstore' in the container 'azureml' at the path "
        "'imagelogs/0a1b/build.log')",
    ),
    (
        "pip or conda could not install the environment",
        # pip's own resolver message (pip/_internal/resolution), as a failed conda pip: step prints it
        diagnosis.Evidence(
            error="ImageBuildFailure: build step failed",
            logs={
                "inference-server": "ERROR: Could not find a version that satisfies the requirement "
                "scikit-learn==9.9.9 (from versions: 1.5.2, 1.6.1, 1.7.2)"
            },
        ),
        "cannot be installed as written",
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
        "inference server 1.3.0-1.3.4 imports azureml.contrib",
        # Azure/azureml-examples#4012: "Container startup crashes with ModuleNotFoundError: No module named
        # 'azureml.contrib'" (server 1.3.4 in the MLflow image)
        diagnosis.Evidence(
            logs={"inference-server": TRACEBACK.format(line="ModuleNotFoundError: No module named 'azureml.contrib'")}
        ),
        "pin the server outside that range",
    ),
    (
        "Flask 2 with an older inference server",
        # TSG, "ERROR: ResourceNotReady": "If you get the TypeError: register() takes 3 positional arguments ..."
        diagnosis.Evidence(
            logs={
                "inference-server": TRACEBACK.format(
                    line="TypeError: register() takes 3 positional arguments but 4 were given"
                )
            }
        ),
        "upgrade azureml-inference-server-http",
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
    ("quota", diagnosis.Evidence(error=CPU_QUOTA), "lacks cores for this size"),
    (
        "BadArgument",
        # TSG, "ERROR: BadArgument": "Startup task failed due to authorization error"
        diagnosis.Evidence(error="BadArgument: Startup task failed due to authorization error"),
        "Storage Blob Data Reader on the storage account and AcrPull",
    ),
    (
        "workspace managed network not ready",
        diagnosis.Evidence(error="WorkspaceManagedNetworkNotReady: managed network is not provisioned"),  # TSG
        "az ml workspace provision-network",
    ),
    (
        "operation canceled",
        diagnosis.Evidence(error="OperationCanceled: Operation was canceled by another operation"),  # TSG
        "wait a minute",
    ),
    (
        "secrets injection failed",
        diagnosis.Evidence(error="SecretsInjectionError: failed to retrieve secrets"),  # TSG
        "read access to the workspace connection or key vault",
    ),
    (
        "a resource the deployment names was not found (ResourceNotFound)",
        # TSG, "Resource Manager can't find a resource": a storage account not found at the path specified
        diagnosis.Evidence(error="ResourceNotFound: The storage account 'wsstore' could not be found"),
        "check the names and paths",
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
        "scoring timeout (the inference server's SCORING_TIMEOUT_MS)",
        # microsoft/azureml-inference-server, server/routes: AMLResponse(f"Scoring timeout after {ex.timeout_ms} ms")
        diagnosis.Evidence(
            logs={"inference-server": "2026-12-01 10:03:00,000 E [7] azmlinfsrv - Scoring timeout after 3000 ms"},
            settings={"request_timeout_ms": 5000},
        ),
        "SCORING_TIMEOUT_MS (3000 ms; not the endpoint's request_timeout_ms, 5000 ms)",
    ),
    (
        "request timeouts",
        # TSG, "HTTP status codes": 408, the model took longer than request_timeout_ms (invoke's one line)
        diagnosis.Evidence(error="the endpoint answered 408: request timed out", settings={"request_timeout_ms": 3000}),
        "request_timeout_ms (3000 ms)",
    ),
    (
        "key or token refused at invoke",
        diagnosis.Evidence(error="HTTP 401 Unauthorized: key_auth_access_denied"),
        "fetch the key again",
    ),
    (
        "run() failed at invoke (424)",
        # TSG, "HTTP status codes": 424, the model's status in ms-azureml-model-error-statuscode (invoke's one line)
        diagnosis.Evidence(error="the endpoint answered 424 (the model answered 500): division by zero"),
        "its traceback is in the inference-server log",
    ),
    (
        "too many requests at invoke (429)",
        diagnosis.Evidence(error="the endpoint answered 429: Too many pending requests"),  # TSG, "HTTP status codes"
        "2 x max_concurrent_requests_per_instance x instance_count",
    ),
    (
        "no deployment takes traffic at invoke (404)",
        # microsoft/semantic-kernel#9085, an invoke of an endpoint whose deployments all have 0%
        diagnosis.Evidence(
            error="NotFoundError('No valid deployments to route to. Please check that the endpoint has at least one "
            "deployment with positive weight values or use a deployment specific header to route.')"
        ),
        "give one a share (the traffic verb)",
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

HEALTHY_SERVER_LOG = "\n".join(  # the server's own timestamps: milliseconds 408 and 404 are not statuses
    f"2026-12-01 10:03:{second:02d},{millis} I [7] azmlinfsrv - POST /score 200 {millis // 100}.2ms 16"
    for second, millis in zip(range(60), [408, 404, 123, 999] * 15, strict=True)
)


def test_a_healthy_servers_timestamps_and_download_sizes_are_no_cause():
    """Before: 10:03:00,408 read as a request timeout; "Downloaded 14040 bytes" as a 404."""
    evidence = diagnosis.Evidence(
        error="provisioning state Succeeded",
        logs={
            "inference-server": HEALTHY_SERVER_LOG,
            "storage-initializer": "2026-12-01 10:00:02,000 I Downloaded 14040 bytes of azureml://.../model.pkl",
        },
    )

    assert diagnosis.diagnose(evidence) == []


@pytest.mark.parametrize(
    ("message", "fix"),
    [  # the wording of each TSG subsection of "ERROR: OutOfQuota" (the doc quotes no message for them)
        ("OutOfQuota: the size of the model is larger than the available disk space", "more disk"),
        ("OutOfQuota: the memory footprint of the model is larger than the available memory", "more memory"),
        ("OutOfQuota: role assignment limit reached for the subscription", "role assignment limit"),
        ("OutOfQuota: too many endpoints in this subscription", "as many endpoints as it may"),
        (
            "OutOfQuota: Due to a lack of Azure Machine Learning capacity in the region, the service failed to "
            "provision the specified VM size",
            "retry later, or deploy to another region",
        ),
    ],
)
def test_each_kind_of_quota_gets_its_own_fix(message, fix):
    (finding,) = diagnosis.diagnose(diagnosis.Evidence(error=message))

    assert finding.cause == "quota" and fix in finding.fix and "lacks cores" not in finding.fix


def test_every_cause_of_the_table_has_a_case_here():
    assert [name for name, _evidence, _fix in CASES] == [cause.name for cause in diagnosis.CAUSES]


def test_every_cause_has_a_unique_snake_case_key_that_its_findings_carry():
    keys = [cause.key for cause in diagnosis.CAUSES]
    assert len(set(keys)) == len(keys)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", key) for key in keys), keys
    assert diagnosis.OUT_OF_MEMORY in keys
    for name, evidence, _fix in CASES:
        cause = next(c for c in diagnosis.CAUSES if c.name == name)
        assert cause.key in {finding.key for finding in diagnosis.diagnose(evidence)}, name


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


def test_the_doctor_asked_later_reads_the_failed_writes_error_from_the_activity_log(workspace, run_script):
    """A deployment's GET carries no error: before, a doctor asked after the failed create saw only "provisioning
    state Failed" and the error-only causes (quota here) never matched."""
    workspace.deployment_outcome = "Failed"
    workspace.deployment_error = ("OutOfQuota", CPU_QUOTA.partition(": ")[2])
    assert run_script(create_online_deployment, DEPLOYMENT_SEED).code == 4
    workspace.deployment_outcome, workspace.deployment_error = "Succeeded", ("", "")

    result = run_script(
        manage_online_endpoint,
        [
            "doctor",
            "--endpoint_name",
            "diabetes-classify",
            "--deployment_name",
            "diabetes-classify-blue-dp",
            "--output",
            "json",
        ],
    )

    assert result.code == 0, result.err
    found = json.loads(result.out)
    assert "last failed write (activity log): DeploymentFailed: Deployment failed.; OutOfQuota:" in found["state"]
    assert [c["cause"] for c in found["causes"]] == ["quota"]
    assert "lacks cores for this size" in found["causes"][0]["fix"]
    (read,) = workspace.sent("GET", r"/subscriptions/[^/]+/providers/Microsoft.Insights/eventtypes/management/values")
    assert (
        "resourceUri eq '" in read.query["$filter"][0]
        and "/deployments/diabetes-classify-blue-dp'" in read.query["$filter"][0]
    )


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


def test_azures_help_link_is_never_called_the_build_log():
    """Before: the first https URL of the error, which is often https://aka.ms/oe-tsg#..., was "the build log"."""
    (timeout,) = diagnosis.diagnose(diagnosis.Evidence(error=IMAGE_TIMEOUT))
    linked = diagnosis.diagnose(
        diagnosis.Evidence(
            error="ImageBuildFailure: see https://aka.ms/oe-tsg#error-imagebuildfailure; build log: "
            "https://wsstore.blob.core.windows.net/azureml/imagelogs/0a1b/build.log"
        )
    )

    assert "aka.ms" not in timeout.fix
    assert "(build log: https://wsstore.blob.core.windows.net/azureml/imagelogs/0a1b/build.log)" in linked[0].fix


@pytest.mark.parametrize(
    ("status", "headers", "body", "hint"),
    [
        (408, {}, '{"error": {"message": "deployment \'blue\' took longer than 5 s"}}', "raise --request_timeout_ms"),
        (424, {"ms-azureml-model-error-statuscode": "500"}, '{"message": "ZeroDivisionError"}', "its traceback is"),
        (429, {}, '{"message": "Too many pending requests"}', "2 x max_concurrent_requests_per_instance"),
        (
            404,
            {},
            '{"error": {"message": "No valid deployments to route to. Please check that the endpoint has at least '
            'one deployment with positive weight values or use a deployment specific header to route."}}',
            "give one a share (the traffic verb)",
        ),
        (424, {"ms-azureml-model-error-statuscode": "400"}, '{"message": "row 0: has 2 values"}', None),
    ],
)
def test_a_refused_invoke_carries_the_doctors_fix_on_its_one_line(status, headers, body, hint):
    from commands.target import AZURE
    from common.scoring import refusal

    message = str(refusal(status, headers, body, AZURE))

    assert message.startswith(f"the endpoint answered {status}")
    if hint is None:  # a model that refused the request said why: nothing added
        assert message == "the endpoint answered 424 (the model answered 400): row 0: has 2 values"
    else:
        assert hint in message and message.count("; ") >= 1


def test_the_docs_table_has_a_row_for_every_cause():
    from tests.conftest import ROOT

    page = (ROOT / "docs" / "capacity.md").read_text()
    rows = {line.split(" | ")[0].lstrip("| ").replace("`", "") for line in page.splitlines() if line.startswith("| ")}

    missing = [c.name for c in diagnosis.CAUSES if c.name.split(" (")[0] not in {r.split(" (")[0] for r in rows}]
    assert missing == []
