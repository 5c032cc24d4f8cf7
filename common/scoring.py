"""Calling an endpoint's scoring URI, on either target: its key or token, the POST, and what a refusal means.

The POST is made here rather than through MLClient.online_endpoints.invoke so that a refusal keeps its status, the
model's own status (Azure's 424 headers) and the deployment that answered; score.py and the local front door answer
refusals in Azure's error shape, {"error": {"code", "message"}}, which invoke (and `az ml online-endpoint invoke`)
read too. error_text still reads the older {"error": "..."} of a score.py deployed before.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from common.azure.surface import Client
from common.control.lookups import bearer_secret, get_or_none, require_endpoint
from common.control.wire import DEPLOYMENT_HEADER
from common.errors import EXIT_AUTH, CliError, NotFoundError

if TYPE_CHECKING:
    from common.target import Target

SCORING_TIMEOUT_SECONDS = 200.0  # above Azure's largest request timeout (180 s)
MODEL_STATUS_HEADER = "ms-azureml-model-error-statuscode"  # Azure's 424: what the model itself answered
MODEL_REASON_HEADER = "ms-azureml-model-error-reason"


class ScoringRefused(CliError):
    """The endpoint answered the request with an error status."""


class CredentialRefused(ScoringRefused):
    """The endpoint answered 401: the key or token."""

    exit_code = EXIT_AUTH


def score(client: Client, endpoint_name: str, body: bytes, deployment: str | None, *, target: Target) -> str:
    """POST `body` to the endpoint (to `deployment` alone when named) and return the answer's text."""
    import requests

    endpoint = addressed_endpoint(client, endpoint_name, deployment, target=target)
    headers = request_headers(client, endpoint_name, deployment)
    try:
        response = requests.post(endpoint.scoring_uri, data=body, headers=headers, timeout=SCORING_TIMEOUT_SECONDS)
    except requests.RequestException as error:
        reason = unreachable_reason(error)
        raise CliError(f"the scoring URI {endpoint.scoring_uri} is not reachable: {reason}") from None
    if response.status_code >= 300:
        raise refusal(response.status_code, response.headers, response.text, target)
    return response.text


def addressed_endpoint(client: Client, endpoint_name: str, deployment: str | None, *, target: Target) -> Any:
    """The endpoint a data-plane request goes to; NotFoundError when it, or the deployment named, does not exist."""
    endpoint = require_endpoint(client, endpoint_name, target=target)
    if deployment and get_or_none(client.online_deployments.get, name=deployment, endpoint_name=endpoint_name) is None:
        raise NotFoundError(f"endpoint {endpoint_name!r} has no deployment {deployment!r}")
    return endpoint


def unreachable_reason(error: BaseException) -> str:
    """Why a request got no answer, in a few words: the operating system's reason ('Connection refused') rather
    than urllib3's wrapped repr of its connection object, else the error's type."""
    import re

    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(error))
    if found:
        return found.group(1).strip()
    return type(error).__name__ if len(str(error)) > 200 or not str(error) else str(error)


def request_headers(client: Client, endpoint_name: str, deployment: str | None = None) -> dict[str, str]:
    """A scoring request's headers: the endpoint's key or token, JSON, and the deployment when one is named."""
    headers = {
        "Authorization": f"Bearer {bearer_secret(client.online_endpoints.get_keys(endpoint_name))}",
        "Content-Type": "application/json",
    }
    if deployment:
        headers[DEPLOYMENT_HEADER] = deployment
    return headers


INVOKE_HINTED = (404, 408, 424, 429)
PROBE_TIMEOUT_SECONDS = 30.0  # how long a probe request (the probe verb, a rollout's --probe_requests) may take


def refusal(status: int, headers: Any, text: str, target: Target) -> ScoringRefused:
    """One line: the endpoint's status, the model's own status when Azure reports it (424), the error text."""
    model_status = headers.get(MODEL_STATUS_HEADER)
    said_by = f" (the model answered {model_status})" if model_status else ""
    message = f"the endpoint answered {status}{said_by}: {error_text(text)}"
    if status in INVOKE_HINTED:  # the doctor's table knows these answers: its fix, on the same line
        from common.doctor import diagnosis

        findings = diagnosis.diagnose(diagnosis.Evidence(error=message))
        message += "".join(f"; {finding.fix}" for finding in findings[:1])
    if status == 401:
        return CredentialRefused(
            f"{message}; the endpoint refused the key or token (check its auth mode and keys with "
            f"{target.verb('keys')})"
        )
    return ScoringRefused(message)


def error_text(text: str) -> str:
    """The error an answer carries: Azure's {"error": {"message": ...}} (score.py's and the front door's too), the
    inference server's {"message": ...}, an older {"error": "..."}, else the text itself (its first line,
    shortened)."""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        found = body.get("error", body.get("message"))
        if isinstance(found, dict):
            found = found.get("message", found)
        if found is not None:
            text = str(found)
    first = text.strip().splitlines()[0] if text.strip() else "(no body)"
    return first if len(first) <= 500 else first[:500] + "..."
