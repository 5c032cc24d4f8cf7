"""What the doctor reads (Evidence), and the fixes its table (common/doctor/diagnosis.py) suggests, worked out from
what it matched and the evidence: the deployment's settings (probes, request timeout, instance type and memory) and
its logs."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Any

from common.azure.azure_errors import QUOTA_PAGE
from common.deployment_settings import AZURE_PROBE_DEFAULTS, AZURE_REQUEST_TIMEOUT_MS

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


def probe_fix(match: re.Match[str], evidence: Evidence) -> str:
    kind = "readiness_probe" if "readiness" in match.group(0).lower() else "liveness_probe"
    probe = {**AZURE_PROBE_DEFAULTS, **evidence.settings.get(kind, {})}
    seconds = init_seconds(evidence.logs.get("inference-server", ""))
    took = f"init() took {seconds:.0f} s in the log" if seconds is not None else "init() time not found in the log"
    delay = max(int(probe["initial_delay"]), int((seconds or 0) + 30))
    return (
        f"the server did not answer its {kind.split('_')[0]} probe in time (initial_delay {probe['initial_delay']} s, "
        f"period {probe['period']} s, timeout {probe['timeout']} s, failure_threshold {probe['failure_threshold']}); "
        f"{took}: give it more, e.g. --{kind} initial_delay={delay}"
    )


def oom_fix(_match: re.Match[str], evidence: Evidence) -> str:
    memory = evidence.settings.get("memory_gb")
    kind = evidence.settings.get("instance_type", "the instance type")
    has = f"{kind} has {memory:g} GB" if memory else f"{kind}'s memory"
    return (
        f"the server was killed for using more memory than the instance has ({has}): use a larger --instance_type, "
        "or fewer workers (--env WORKER_COUNT=...)"
    )


def timeout_fix(match: re.Match[str], evidence: Evidence) -> str:
    configured = evidence.settings.get("request_timeout_ms")
    set_to = f" ({configured} ms)" if configured else ""  # invoke does not read the deployment's settings
    return (
        f"requests took longer than request_timeout_ms{set_to}: raise --request_timeout_ms (Azure's most "
        "is 180000) or make run() faster (fewer rows per request)"
    )


def scoringtimeout_fix(match: re.Match[str], evidence: Evidence) -> str:
    configured = evidence.settings.get("request_timeout_ms") or AZURE_REQUEST_TIMEOUT_MS
    return (
        f"the inference server stopped run() at its own limit, SCORING_TIMEOUT_MS ({match.group(1)} ms; not the "
        f"endpoint's request_timeout_ms, {configured} ms): make run() faster, or raise it with "
        "--env SCORING_TIMEOUT_MS=... (the endpoint still answers 408 after request_timeout_ms)"
    )


def build_log(error: str) -> str:
    """Where the build log is: the storage path Azure names in the error, else a link that is not the help page."""
    if where := re.search(r"the build log under the storage account[^\n]*?(?=\.\s|$)", error):
        return f" ({where.group(0)})"
    links = [url for url in re.findall(r"https://[^\s\"'\]),]+", error) if "aka.ms/" not in url]
    return f" (build log: {links[0]})" if links else ""


# OutOfQuota names several resources (how-to-troubleshoot-online-endpoints, "ERROR: OutOfQuota"): each its own fix.
QUOTA_KINDS: tuple[tuple[str, str], ...] = (
    (
        r"capacity in the region|failed to provision the specified VM size|region[- ]wide",
        "the region has no capacity for this VM size now (not your quota): retry later, or deploy to another "
        "region or another --instance_type",
    ),
    (
        r"role assignment",
        "the subscription has reached its role assignment limit (the endpoint's identity needs one): delete "
        "unused role assignments (Access control of the subscription)",
    ),
    (r"\bdisk\b", "the model does not fit the instance's disk: a --instance_type with more disk, or a smaller model"),
    (r"\bmemory\b", "the model does not fit the instance's memory: a --instance_type with more memory"),
    (
        r"\bendpoints?\b(?! *quota *with)",
        "the subscription has as many endpoints as it may: delete unused ones, or ask for a higher endpoint limit",
    ),
)


def quota_fix(match: re.Match[str], evidence: Evidence) -> str:
    text = match.group(0)
    for pattern, fix in QUOTA_KINDS:
        if re.search(pattern, text, re.IGNORECASE):
            return fix
    return (
        f"the subscription lacks cores for this size: see the capacity verb's table, request more at {QUOTA_PAGE}, "
        "or use a smaller --instance_type or --instance_count"
    )


def bad_argument_fix(match: re.Match[str], evidence: Evidence) -> str:
    text = match.group(0).lower()
    if "authorization" in text or "role assignment" in text:
        return (
            "the endpoint's identity may not read the workspace's storage or registry: a user-assigned identity "
            "needs Storage Blob Data Reader on the storage account and AcrPull on the container registry"
        )
    if "template function" in text:
        return "an Azure Policy assignment has a template function Azure cannot evaluate: fix or remove that policy"
    if "container image" in text:
        return "the image is not in the workspace's container registry: check the environment's image"
    if "model" in text:
        return (
            "the model could not be downloaded: register it in the same workspace as the deployment and check its "
            "files are in the workspace's storage"
        )
    return "Azure refused an argument of the deployment: read the error's message for the field it names"
