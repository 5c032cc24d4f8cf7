"""The doctor's table: the failures Azure explains badly, each recognised by a line of the deployment's error or
of its containers' logs (inference-server, storage-initializer), with the fix.

Causes are tried in order (the more specific first: the servers that import azureml.contrib also show a missing
module) and every one that matches is reported with the line it matched, unless an earlier cause explained that
line. The fixes (common/doctor/diagnosis_fixes.py) read what the deployment is set to (probes, request timeout,
instance type) from `Evidence.settings`. Unmatched, the doctor says so and shows the last traceback and the log's
tail. Adding a cause: a Cause in CAUSES (its key unique), a case with a real line and its source in
tests/test_doctor.py, a row in docs/capacity.md (a test checks each).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from common.doctor.diagnosis_fixes import (
    Evidence as Evidence,  # the doctor's input, read by callers as diagnosis.Evidence
)
from common.doctor.diagnosis_fixes import (
    bad_argument_fix,
    build_log,
    oom_fix,
    probe_fix,
    quota_fix,
    scoringtimeout_fix,
    timeout_fix,
)

VERSION = r"\d+(?:\.\d+)*(?:\.?[a-z]+\d*)?"  # 1.9.1, 1.3rc1, 1.6.dev0: never a sentence's closing period
SOURCES = ("error", "inference-server", "storage-initializer")
OUT_OF_MEMORY = "out_of_memory"  # the key of the cause whose fix needs the instance's memory (read only then)


EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit)(?:: .*)?$")
SERVER_WRAPPERS = ("azureml_inference_server_http.", "gunicorn.")


CHAINED_TRACEBACK = ("The above exception was the direct cause", "During handling of the above exception")


def exception_line(log: str) -> str | None:
    """The exception the log's last traceback ends in: the first one that is not the server's own wrapper around it
    (a failed init() is re-raised as the server's UserScriptException, after the user's real error). Earlier
    tracebacks are not the failure: the server also logs errors it recovers from."""
    lines = log.splitlines()
    start = 0
    for index, line in enumerate(lines):
        if "Traceback (most recent call last)" in line:
            before = next((text.strip() for text in reversed(lines[:index]) if text.strip()), "")
            if not before.startswith(CHAINED_TRACEBACK):
                start = index
    found = [line.strip() for line in lines[start:] if EXCEPTION_LINE.match(line.strip())]
    own = [line for line in found if not line.startswith(SERVER_WRAPPERS)]
    return (own or found)[0] if own or found else None


@dataclass(frozen=True)
class Finding:
    key: str  # the cause's, for code to look it up by (its name is for people and may be reworded)
    cause: str
    source: str
    evidence: str
    fix: str


@dataclass(frozen=True)
class Cause:
    key: str  # stable, unique: what code looks a cause up by
    name: str
    pattern: re.Pattern[str]
    fix: Callable[[re.Match[str], Evidence], str]
    sources: tuple[str, ...] = SOURCES


CAUSES: tuple[Cause, ...] = (
    # Sources of the causes and fixes below: learn.microsoft.com/azure/machine-learning/
    # how-to-troubleshoot-online-endpoints ("Common deployment errors", "HTTP status codes"), unless said otherwise.
    Cause(
        "registry_authorization",
        "image build failure: container registry authorization",
        re.compile(r"(?i)[^\n]*container registry authorization failure[^\n]*"),
        lambda m, e: (
            "the workspace's keys are out of step with its container registry: run az ml workspace sync-keys (Azure "
            "also syncs them after a while); a registry behind a virtual network must allow the workspace in"
        ),
        ("error",),
    ),
    Cause(
        "private_registry",
        "image build failure: private container registry",
        re.compile(r"(?i)[^\n]*failed to communicate with the workspace's container registry[^\n]*"),
        lambda m, e: (
            "the workspace's container registry is private: let it build images in the virtual network (the "
            "workspace's image build compute), see how-to-managed-network 'Configure image builds'"
        ),
        ("error",),
    ),
    Cause(
        "image_build_timeout",
        "image build timed out",
        re.compile(
            r"(?i)[^\n]*(timeout while waiting for Environment Image|image build[^\n]*tim(?:ed|ing) ?out)[^\n]*"
        ),
        lambda m, e: (
            "the environment's image took too long to build"
            + build_log(e.error)
            + ": build it once beforehand (register the environment and wait for its image), or make it smaller "
            "(fewer, pinned packages)"
        ),
        ("error",),
    ),
    Cause(
        "image_build",
        "image build failure",
        re.compile(r"(?i)(image build fail\w*|ImageBuildFailure|failed to build the (docker )?image)[^\n]*"),
        lambda m, e: (
            "the environment's image did not build"
            + build_log(e.error)
            + ": check environment.yml's packages and pins (a log ending in 'Installing pip dependencies: "
            "...working...' points at an unpinned dependency), and try the deployment here first with --preflight"
        ),
        ("error", "inference-server"),
    ),
    Cause(
        "environment_install",
        "pip or conda could not install the environment",
        re.compile(
            r"(ERROR: (?:Could not find a version that satisfies the requirement|No matching distribution found for)"
            r"[^\n]*|ResolvePackageNotFound[^\n]*|Pip subprocess error[^\n]*|ResolutionImpossible[^\n]*)"
        ),
        lambda m, e: (
            "a package of the environment cannot be installed as written: check its name, version and channel "
            "(conda packages under dependencies:, PyPI ones under pip:), then --preflight builds it here first"
        ),
        ("error", "inference-server"),
    ),
    Cause(
        OUT_OF_MEMORY,
        "out of memory",
        re.compile(r"(?i)(OOMKilled|exit code:? ?137|exited with code 137|out of memory)[^\n]*"),
        oom_fix,
    ),
    Cause(
        "server_imports_contrib",
        "inference server 1.3.0-1.3.4 imports azureml.contrib",
        re.compile(r"No module named '(azureml\.contrib[^']*)'"),
        lambda m, e: (
            "azureml-inference-server-http 1.3.0 to 1.3.4 import azureml.contrib.services when they start, which "
            "the environment does not have (azureml-examples pull request 4012): pin the server outside that range "
            "in the conda file (>=1.4 on Python 3.9 or later, <1.3 on 3.8); if score.py imports azureml.contrib "
            "itself, import AMLResponse from azureml_inference_server_http.api.aml_response instead"
        ),
        ("error", "inference-server"),
    ),
    Cause(
        "flask_2",
        "Flask 2 with an older inference server",
        re.compile(r"TypeError: register\(\) takes 3 positional arguments but 4 were given[^\n]*"),
        lambda m, e: (
            "Flask 2 was installed beside an inference server written for Flask 1: upgrade "
            "azureml-inference-server-http (or azureml-defaults) in the conda file, or pin Flask below 2 "
            "(how-to-inference-server-http, 'TypeError during server startup')"
        ),
        ("error", "inference-server"),
    ),
    Cause(
        "module_missing",
        "module missing from the environment",
        re.compile(r"(?:ModuleNotFoundError|ImportError): No module named '([^']+)'"),
        lambda m, e: (
            f"the environment lacks {m.group(1).split('.')[0]}: add it to environment.yml and deploy with "
            "--create_environment (or --preflight to try it here first)"
        ),
        ("error", "inference-server"),
    ),
    Cause(
        "scikit_learn_version",
        "scikit-learn version differs from the model's",
        # score.py's own warning, or scikit-learn's InconsistentVersionWarning for any pickle ("... when using
        # version 1.9.1. This might lead to breaking code"): a version is digits and dots, never the sentence's period
        re.compile(
            rf"scikit-learn differs: model ({VERSION}), runtime ({VERSION})"
            rf"|Trying to unpickle estimator \S+ from version ({VERSION}) when using version ({VERSION})"
        ),
        lambda m, e: (
            f"the model was trained with scikit-learn {m.group(1) or m.group(3)} and the environment runs "
            f"{m.group(2) or m.group(4)}: pin scikit-learn=={m.group(1) or m.group(3)} under pip: in the "
            "environment's conda file (the toolkit's model records its version in metadata.json), or train the "
            "model again with the environment's"
        ),
        ("inference-server",),
    ),
    Cause(
        "quota",
        "quota",
        re.compile(r"(?i)[^\n]*(OutOfQuota|not enough quota|QuotaExceeded)[^\n]*"),
        quota_fix,
        ("error",),
    ),
    Cause(
        "bad_argument",
        "BadArgument",
        re.compile(r"[^\n]*\bBadArgument\b[^\n]*"),
        bad_argument_fix,
        ("error",),
    ),
    Cause(
        "managed_network",
        "workspace managed network not ready",
        re.compile(r"[^\n]*WorkspaceManagedNetworkNotReady[^\n]*"),
        lambda m, e: (
            "the workspace's managed virtual network is not provisioned yet: provision it (az ml workspace "
            "provision-network), then create the deployment again"
        ),
        ("error",),
    ),
    Cause(
        "operation_canceled",
        "operation canceled",
        re.compile(r"[^\n]*\bOperationCanceled\b[^\n]*"),
        lambda m, e: (
            "another operation on the endpoint took precedence, or the same one was sent twice close together: "
            "wait a minute and run the command again"
        ),
        ("error",),
    ),
    Cause(
        "secrets_injection",
        "secrets injection failed",
        re.compile(r"[^\n]*\bSecretsInjectionError\b[^\n]*"),
        lambda m, e: (
            "the endpoint's identity could not read a secret the deployment references: give it read access to the "
            "workspace connection or key vault (role assignments take a while), and check each reference's format "
            "and that the secret exists"
        ),
        ("error",),
    ),
    Cause(
        "resource_not_found",
        "a resource the deployment names was not found (ResourceNotFound)",
        re.compile(r"[^\n]*\bResourceNotFound\b[^\n]*"),
        lambda m, e: (
            "Azure could not find something the deployment names (a storage path, an image, a registry): check the "
            "names and paths; an image in a private registry needs AcrPull for the endpoint's system identity and "
            "the environment's image used as it is"
        ),
        ("error",),
    ),
    Cause(
        "storage_initializer",
        "model or code not found by the storage initializer",
        re.compile(r"(?i)[^\n]*(\bnot found\b|\bdoes not exist\b|BlobNotFound|\b404\b)[^\n]*"),
        lambda m, e: (
            "the storage initializer could not download the model or code: check that --model_path names a "
            "registered version whose files are in the datastore, and that the workspace's identity may read the "
            "storage account"
        ),
        ("storage-initializer",),
    ),
    Cause(
        "probe_failure",
        "liveness or readiness probe failure",
        re.compile(r"(?i)(liveness|readiness) probe failed[^\n]*"),
        probe_fix,
    ),
    Cause(
        "scoring_timeout",
        "scoring timeout (the inference server's SCORING_TIMEOUT_MS)",
        # the server's own message (azureml-inference-server-http: "Scoring timeout after {timeout_ms} ms")
        re.compile(r"Scoring timeout after (\d+) ms[^\n]*"),
        scoringtimeout_fix,
        ("error", "inference-server"),
    ),
    Cause(
        "request_timeout",
        "request timeouts",
        # a 408 as a status (never a timestamp's milliseconds, as in 10:03:00,408)
        re.compile(
            r"(?i)((?:answered|HTTP(?:/1\.[01])?|status(?:_?code)?[\"']?\s*[:=]?)\s*408\b[^\n]*"
            r"|request timed? ?out[^\n]*)"
        ),
        timeout_fix,
        ("error",),
    ),
    Cause(
        "credential_refused",
        "key or token refused at invoke",
        re.compile(
            r"(?i)(\b401\b[^\n]*unauthori[sz]ed[^\n]*|key_auth_access_denied[^\n]*|invalid authentication[^\n]*)"
        ),
        lambda m, e: (
            "the endpoint refused the credential: fetch the key again (the keys verb), a "
            "regenerated key replaces the old one; with aml_token, tokens expire (fetch a new one)"
        ),
        ("error",),
    ),
    Cause(
        "run_failed",
        "run() failed at invoke (424)",
        # a model that answers 4xx says why in its own message (the line already carries it); a 5xx is run() failing
        re.compile(r"(?i)answered 424 \(the model answered 5\d\d\)[^\n]*"),
        lambda m, e: (
            "the endpoint reached the model and run() failed on this request (Azure answers 424 with the model's "
            "own status): its traceback is in the inference-server log (the logs verb)"
        ),
        ("error",),
    ),
    Cause(
        "too_many_requests",
        "too many requests at invoke (429)",
        re.compile(r"(?i)(\b429\b[^\n]*too many|too many (pending )?requests)[^\n]*"),
        lambda m, e: (
            "the deployment admits 2 x max_concurrent_requests_per_instance x instance_count requests at once "
            "and refuses the rest: send with backoff, raise --max_concurrent_requests_per_instance (with "
            "WORKER_COUNT to match) or --instance_count; an endpoint's own rate limit also answers 429"
        ),
        ("error",),
    ),
    Cause(
        "no_traffic",
        "no deployment takes traffic at invoke (404)",
        re.compile(r"(?i)No valid deployments to route to[^\n]*"),
        lambda m, e: (
            "no deployment of the endpoint has a traffic share: give one a share (the traffic verb), or name the "
            "deployment in the request (--deployment_name)"
        ),
        ("error",),
    ),
    Cause(
        "container_not_ready",
        "container not ready (ResourceNotReady)",
        re.compile(r"ResourceNotReady[^\n]*"),
        lambda m, e: (
            "the inference-server container exited or never became ready"
            + (
                f": its log's last traceback ends in {line}"
                if (line := exception_line(e.logs.get("inference-server", "")))
                else ": its log shows no traceback (look at the storage-initializer's)"
            )
        ),
        ("error",),
    ),
)


def diagnose(evidence: Evidence) -> list[Finding]:
    """Every cause of the table that the evidence shows, in the table's order, with its first matching line. A line
    that a cause already explained is not reported again by a later, more general one (an image build failure that
    names a registry authorization failure is that, not also a generic build failure)."""
    found = []
    explained: set[tuple[str, int]] = set()
    for cause in CAUSES:
        for source in cause.sources:
            text = evidence.text(source)
            match = cause.pattern.search(text)
            if not match:
                continue
            line = (source, text.count("\n", 0, match.start()))
            if line not in explained:
                explained.add(line)
                found.append(
                    Finding(cause.key, cause.name, source, match.group(0).strip()[:300], cause.fix(match, evidence))
                )
            break
    return found


def lines(findings: list[Finding], evidence: Evidence, tail: int = 20) -> list[str]:
    if findings:
        out = []
        for finding in findings:
            out += [
                f"cause: {finding.cause}",
                f"  evidence ({finding.source}): {finding.evidence}",
                f"  fix: {finding.fix}",
            ]
        return out
    log = evidence.logs.get("inference-server", "")
    last = exception_line(log)
    return [
        "cause: unknown (nothing in the doctor's table matches)",
        f"  last traceback ends in: {last}" if last else "  no traceback in the inference-server log",
        f"--- last {tail} lines of the inference-server log ---",
        *(log.splitlines()[-tail:] or ["(empty)"]),
        "---",
    ]
