"""A failed deployment's report: the reason, the cause found in its log, what the doctor's table makes of them, the
log's tail and the command that removes it."""

from __future__ import annotations

from common.azure.surface import Client
from common.doctor import diagnosis
from common.errors import CliError, DeploymentFailedError

LOG_TAIL_LINES = 50


def failure_details(
    client: Client, deployment: str, endpoint: str, log_name: str, closing: list[str], reason: str = ""
) -> str:
    """What follows a failed deployment's error line: the cause found in its log, what the doctor's table makes of
    the error and the log (common/doctor/diagnosis.py), the log's tail, then `closing`."""
    try:
        logs = client.online_deployments.get_logs(name=deployment, endpoint_name=endpoint, lines=LOG_TAIL_LINES)
    except Exception as error:  # the logs are a courtesy; never let fetching them hide the real failure
        logs = f"(could not fetch the deployment logs: {type(error).__name__}: {error})"
    cause = diagnosis.exception_line(str(logs))
    findings = diagnosis.diagnose(diagnosis.Evidence(error=reason, logs={"inference-server": str(logs)}))
    return "\n".join(
        [
            *([f"cause: {cause}"] if cause else []),
            *(f"doctor: {finding.cause}: {finding.fix}" for finding in findings),
            f"--- last {LOG_TAIL_LINES} lines of the {log_name} ---",
            str(logs).rstrip() or "(empty)",
            "---",
            *closing,
        ]
    )


def deployment_failed(client: Client, deployment: str, endpoint: str, reason: str, delete_command: str) -> CliError:
    """The error for a failed deployment: the reason, the tail of its logs, and the command that removes it."""
    closing = ["Traffic was not changed.", "Delete the failed deployment with:", f"  {delete_command}"]
    details = failure_details(client, deployment, endpoint, "deployment log", closing, reason)
    return DeploymentFailedError(f"deployment {deployment} failed: {reason}", details=details)
