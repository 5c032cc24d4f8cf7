"""The doctor's table: the failures Azure explains badly, each recognised by a line of the deployment's error or
of its containers' logs (inference-server, storage-initializer), with the fix.

Causes are tried in order (the more specific first: an inference server version change is also a missing module)
and every one that matches is reported with the line it matched. The fixes read what the deployment is set to
(probes, request timeout, instance type) from `Evidence.settings`. Unmatched, the doctor says so and shows the last
traceback and the log's tail.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from common.azure_errors import QUOTA_PAGE
from common.operations import exception_line

VERSION = r"\d+(?:\.\d+)*(?:\.?[a-z]+\d*)?"  # 1.9.1, 1.3rc1, 1.6.dev0: never a sentence's closing period
SOURCES = ("error", "inference-server", "storage-initializer")
TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)")
INIT_DONE = re.compile(r"(Users's init has completed successfully|init\(\) completed|Loaded .*model)", re.IGNORECASE)


@dataclass
class Evidence:
    """What the doctor reads: the deployment's error (its state and message) and its containers' logs."""

    error: str = ""
    logs: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)  # probes, request_timeout_ms, instance_type, memory_gb

    def text(self, source: str) -> str:
        return self.error if source == "error" else self.logs.get(source, "")


@dataclass(frozen=True)
class Finding:
    cause: str
    source: str
    evidence: str
    fix: str


@dataclass(frozen=True)
class Cause:
    name: str
    pattern: re.Pattern[str]
    fix: Callable[[re.Match[str], Evidence], str]
    sources: tuple[str, ...] = SOURCES


def init_seconds(log: str) -> float | None:
    """Seconds from the log's first timestamp to the line that says init() finished, when both are there."""
    first = done = None
    for line in log.splitlines():
        stamp = TIMESTAMP.match(line.strip())
        if not stamp:
            continue
        moment = datetime.datetime.fromisoformat(stamp.group(1).replace(" ", "T"))
        first = first or moment
        if INIT_DONE.search(line):
            done = moment
    return (done - first).total_seconds() if first and done else None


def _probe_fix(match: re.Match[str], evidence: Evidence) -> str:
    kind = "readiness_probe" if "readiness" in match.group(0).lower() else "liveness_probe"
    probe = {
        "initial_delay": 10,
        "period": 10,
        "timeout": 2,
        "failure_threshold": 30,
        **evidence.settings.get(kind, {}),
    }
    seconds = init_seconds(evidence.logs.get("inference-server", ""))
    took = f"init() took {seconds:.0f} s in the log" if seconds is not None else "init() time not found in the log"
    delay = max(int(probe["initial_delay"]), int((seconds or 0) + 30))
    return (
        f"the server did not answer its {kind.split('_')[0]} probe in time (initial_delay {probe['initial_delay']} s, "
        f"period {probe['period']} s, timeout {probe['timeout']} s, failure_threshold {probe['failure_threshold']}); "
        f"{took}: give it more, e.g. --{kind} initial_delay={delay}"
    )


def _oom_fix(_match: re.Match[str], evidence: Evidence) -> str:
    memory = evidence.settings.get("memory_gb")
    kind = evidence.settings.get("instance_type", "the instance type")
    has = f"{kind} has {memory:g} GB" if memory else f"{kind}'s memory"
    return (
        f"the server was killed for using more memory than the instance has ({has}): use a larger --instance_type, "
        "or fewer workers (--env WORKER_COUNT=...)"
    )


def _timeout_fix(match: re.Match[str], evidence: Evidence) -> str:
    configured = evidence.settings.get("request_timeout_ms") or 5000
    return (
        f"requests took longer than request_timeout_ms ({configured} ms): raise --request_timeout_ms (Azure's most "
        "is 180000) or make run() faster (fewer rows per request)"
    )


CAUSES: tuple[Cause, ...] = (
    Cause(
        "image build failure",
        re.compile(r"(?i)(image build fail\w*|ImageBuildFailure|failed to build the (docker )?image)[^\n]*"),
        lambda m, e: (
            "the environment's image did not build"
            + (f" (build log: {url.group(0)})" if (url := re.search(r"https://\S+", e.error)) else "")
            + ": check environment.yml's packages and pins, and try the deployment here first with --preflight"
        ),
        ("error", "inference-server"),
    ),
    Cause(
        "out of memory",
        re.compile(r"(?i)(OOMKilled|exit code:? ?137|exited with code 137|out of memory)[^\n]*"),
        _oom_fix,
    ),
    Cause(
        "inference server version change",
        re.compile(r"No module named '(azureml\.contrib[^']*)'"),
        lambda m, e: (
            f"score.py imports {m.group(1)}, which the inference server no longer ships "
            "(azureml-inference-server-http >= 1.0): import AMLResponse from "
            "azureml_inference_server_http.api.aml_response (09-deploy-model/score.py does both), or pin the server "
            "version in environment.yml"
        ),
        ("error", "inference-server"),
    ),
    Cause(
        "module missing from the environment",
        re.compile(r"(?:ModuleNotFoundError|ImportError): No module named '([^']+)'"),
        lambda m, e: (
            f"the environment lacks {m.group(1).split('.')[0]}: add it to environment.yml and deploy with "
            "--create_environment (or --preflight to try it here first)"
        ),
        ("error", "inference-server"),
    ),
    Cause(
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
        re.compile(r"(?i)(OutOfQuota|not enough quota|QuotaExceeded)[^\n]*"),
        lambda m, e: (
            f"the subscription lacks cores for this size: see the capacity verb's table, request "
            f"more at {QUOTA_PAGE}, or use a smaller --instance_type or --instance_count"
        ),
        ("error",),
    ),
    Cause(
        "model or code not found by the storage initializer",
        re.compile(r"(?i)[^\n]*(not found|does not exist|BlobNotFound|404)[^\n]*"),
        lambda m, e: (
            "the storage initializer could not download the model or code: check that --model_path names a "
            "registered version whose files are in the datastore, and that the workspace's identity may read the "
            "storage account"
        ),
        ("storage-initializer",),
    ),
    Cause(
        "liveness or readiness probe failure",
        re.compile(r"(?i)(liveness|readiness) probe failed[^\n]*"),
        _probe_fix,
    ),
    Cause(
        "request timeouts",
        re.compile(r"(?i)(\b408\b[^\n]*|request timed? ?out[^\n]*|Scoring timeout after \d+ ms[^\n]*)"),
        _timeout_fix,
    ),
    Cause(
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
    """Every cause of the table that the evidence shows, in the table's order, with its first matching line."""
    found = []
    for cause in CAUSES:
        for source in cause.sources:
            match = cause.pattern.search(evidence.text(source))
            if match:
                found.append(Finding(cause.name, source, match.group(0).strip()[:300], cause.fix(match, evidence)))
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
