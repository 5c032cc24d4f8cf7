"""Azure failures turned into one clear line and a distinct exit code: the one place that knows them.

Scripts never catch SDK exceptions themselves; run_main hands them here. With --verbose the service's request
and correlation ids follow the message, for support tickets.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlparse

from common.azure.skus import smaller_skus
from common.errors import AuthError, CliError, ConflictError, NotFoundError, QuotaError, UsageError

QUOTA_PAGE = "https://ml.azure.com/quota"
ROLE_HINT = "your identity needs the AzureML Data Scientist role (or Contributor) on the workspace"
WORKSPACE_MISSING_CODES = {"ResourceGroupNotFound", "SubscriptionNotFound", "WorkspaceNotFound"}
QUOTA_CODES = {"OutOfQuota", "QuotaExceeded", "InsufficientQuota"}
# A 409 about an endpoint that is busy, not about its name: "Cannot create a deployment in endpoint X because it
# is in Updating provisioning state", "an operation is already in progress" (and the local target's "another
# operation ...").
BUSY = re.compile(
    r"in progress|provisioning state|is (?:being )?(?:updat|creat|delet)ing|another operation", re.IGNORECASE
)
TRANSIENT_STATUSES = {408, 429, 500, 502, 503, 504}


def is_transient(error: BaseException) -> bool:
    """A failure of the connection or the service's front end (retried by the SDK and still failing), which says
    nothing about the operation it was asking after."""
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    return (
        isinstance(error, ServiceRequestError | ServiceResponseError)
        or getattr(error, "status_code", None) in TRANSIENT_STATUSES
    )


def is_azure_error(error: BaseException) -> bool:
    return type(error).__module__.startswith("azure.")


def _error_code(error: BaseException) -> str | None:
    inner = getattr(error, "error", None)
    return getattr(inner, "code", None)


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def service_message(error: BaseException) -> str:
    """The service's error code and first line of its message, without the SDK's multi-line decoration."""
    code = _error_code(error)
    message = getattr(getattr(error, "error", None), "message", None) or getattr(error, "message", None) or str(error)
    first_line = _first_line(str(message)) or type(error).__name__
    return f"{code}: {first_line}" if code and code not in first_line else first_line


def _first_line(message: str) -> str:
    """The line that says what went wrong. azure-ai-ml's validation errors are colour-coded templates ("1) YAML
    file cannot be parsed", "Details:", "(x) <the error>", "Resolutions:"): the "(x)" line and its continuation are
    the error itself."""
    lines = [line.strip() for line in ANSI_ESCAPE.sub("", message).splitlines()]
    for index, line in enumerate(lines):
        if line.startswith("(x) "):
            detail = [line[4:]]
            for following in lines[index + 1 :]:
                if not following or following.startswith("If you wish to bypass"):
                    break
                detail.append(following)
            return " ".join(detail)
    return next((line for line in lines if line), "")


def request_ids(error: BaseException) -> str:
    """'request id: ...; correlation id: ...' from the service's response headers, or ''."""
    headers = getattr(getattr(error, "response", None), "headers", None) or {}
    found = [
        f"{label}: {headers[name]}"
        for name, label in (("x-ms-request-id", "request id"), ("x-ms-correlation-request-id", "correlation id"))
        if headers.get(name)
    ]
    return "; ".join(found)


def _workspace_in(error: BaseException) -> tuple[str, str]:
    """(resource group, workspace) from the failed request's URL."""
    request = getattr(getattr(error, "response", None), "request", None)
    path = urlparse(getattr(request, "url", "") or "").path
    group = re.search(r"/resourceGroups/([^/]+)", path, re.IGNORECASE)
    workspace = re.search(r"/workspaces/([^/]+)", path, re.IGNORECASE)
    return (group.group(1) if group else "?", workspace.group(1) if workspace else "?")


def _request(error: BaseException) -> tuple[str, str]:
    request = getattr(getattr(error, "response", None), "request", None)
    return getattr(request, "method", "") or "", urlparse(getattr(request, "url", "") or "").path


def workspace_missing(error: BaseException) -> bool:
    """A 404 about the workspace or its resource group, not about the resource asked for."""
    if getattr(error, "status_code", None) != 404:
        return False
    code = _error_code(error) or ""
    if code in WORKSPACE_MISSING_CODES:
        return True
    message = service_message(error)
    return (
        code == "ResourceNotFound"
        and "Microsoft.MachineLearningServices/workspaces/" in message
        and ("onlineEndpoints" not in message)
    )


def is_quota_error(error: BaseException) -> bool:
    return (_error_code(error) or "") in QUOTA_CODES or "quota" in service_message(error).lower()


def quota_hint(error: BaseException) -> str:
    """What to do about a quota error: a smaller SKU (named from the message when it names one) or more quota."""
    sku = re.search(r"Standard_[A-Za-z0-9_]+", service_message(error))
    smaller = smaller_skus(sku.group(0)) if sku else []
    suggestion = (
        f"use a smaller --instance_type such as {smaller[0]}, or " if smaller else "use a smaller --instance_type, or "
    )
    what = f"not enough quota for {sku.group(0)}" if sku else "not enough quota"
    return f"{what}: {suggestion}request more quota at {QUOTA_PAGE}"


def operation_failure(error: BaseException) -> tuple[str, str] | None:
    """How an error raised while waiting on a long-running operation reads: ("lost", message) when asking after it
    failed for a while (the operation's state is unknown: it may still succeed), ("failed", reason) when the
    operation itself failed (a quota error with what to do), None when it is not Azure's or is the credential's
    (translate's general rule applies)."""
    if not is_azure_error(error) or getattr(error, "status_code", None) in (401, 403):
        return None
    if is_transient(error):
        return "lost", service_message(error)
    return "failed", service_message(error) + (f"; {quota_hint(error)}" if is_quota_error(error) else "")


def translate(error: BaseException, show_verb: str = "the show command") -> CliError | None:
    """A CliError for an Azure SDK exception, or None when the exception is not Azure's. `show_verb` names the
    command that shows an endpoint (the commands layer knows it)."""
    if not is_azure_error(error):
        return None
    translated = _translate(error, show_verb)
    if logging.getLogger().isEnabledFor(logging.DEBUG) and request_ids(error):
        translated.details = "\n".join(filter(None, [translated.details, request_ids(error)]))
    return translated


def _translate(error: BaseException, show_verb: str) -> CliError:
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceNotFoundError,
        ServiceRequestError,
    )

    status = getattr(error, "status_code", None)
    if status is None and isinstance(error, ResourceNotFoundError):
        status = 404
    if status is None and isinstance(error, ResourceExistsError):
        status = 409
    message = service_message(error)
    sign_in = re.search(r"AADSTS\d+[^\n]*", str(error))
    if sign_in and status is None:  # Entra ID refused the sign-in itself (MFA, conditional access, expired, ...)
        return AuthError(
            f"Azure sign-in failed: {sign_in.group(0).strip()}; sign in again with `az login` (add --tenant or use "
            "the method your organisation requires)"
        )
    if type(error).__name__ == "CredentialUnavailableError" or (
        isinstance(error, ClientAuthenticationError) and status is None
    ):
        return AuthError(
            "no Azure credential found: run `az login` (or set AZURE_CLIENT_ID, AZURE_TENANT_ID and "
            "AZURE_CLIENT_SECRET for a service principal)"
        )
    if status == 401:
        return AuthError(f"Azure rejected the credential (401): {message}; sign in again with `az login`")
    if status == 403:
        return AuthError(f"Azure refused access (403): {message}; {ROLE_HINT}")
    if workspace_missing(error):
        group, workspace = _workspace_in(error)
        return NotFoundError(
            f"workspace {workspace!r} or its resource group {group!r} not found ({message}); check "
            "--subscription_id, --resource_group and --workspace_name (or the environment variables or config.json)"
        )
    if status == 404:
        return NotFoundError(f"not found: {message}")
    if status == 409 or _error_code(error) == "Conflict":
        method, path = _request(error)
        endpoint = re.search(r"/onlineEndpoints/([^/]+)", path)
        if BUSY.search(message):
            where = f" on endpoint {endpoint.group(1)!r}" if endpoint else ""
            return ConflictError(
                f"another operation is in progress{where} ({message}): wait until it finishes (check it with "
                f"{show_verb}), then run the command again"
            )
        if method == "PUT" and endpoint and path.endswith(f"/onlineEndpoints/{endpoint.group(1)}"):
            return ConflictError(
                f"endpoint name {endpoint.group(1)!r} cannot be used ({message}): endpoint names are unique per "
                "Azure region; choose another --endpoint_name"
            )
        return ConflictError(f"conflict (409): {message}")
    if is_quota_error(error):
        return QuotaError(f"{quota_hint(error)} ({message})")
    if isinstance(error, ServiceRequestError):
        return CliError(f"cannot reach Azure: {message}")
    if isinstance(error, HttpResponseError):
        return CliError(f"service error ({status}): {message}" if status else message)
    if type(error).__name__ in ("ValidationException", "ValidationError"):
        return UsageError(f"azure-ai-ml rejected the request: {message}")
    return CliError(f"{type(error).__name__}: {message}")
