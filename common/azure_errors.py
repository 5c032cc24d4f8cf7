"""Azure SDK exceptions turned into one clear line and an exit code: the one place that knows them."""

from __future__ import annotations

from common.errors import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_USAGE, CliError

EXIT_AUTH = 5
EXIT_CONFLICT = 6


def service_message(error: BaseException) -> str:
    """The service's error code and first line of its message, without the SDK's multi-line decoration."""
    inner = getattr(error, "error", None)
    code = getattr(inner, "code", None)
    message = getattr(inner, "message", None) or getattr(error, "message", None) or str(error)
    first_line = str(message).strip().splitlines()[0] if str(message).strip() else type(error).__name__
    return f"{code}: {first_line}" if code and code not in first_line else first_line


def is_azure_error(error: BaseException) -> bool:
    return type(error).__module__.startswith("azure.")


def translate(error: BaseException) -> CliError | None:
    """A CliError for an Azure SDK exception, or None when the exception is not Azure's."""
    if not is_azure_error(error):
        return None
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceNotFoundError,
    )

    if type(error).__name__ == "CredentialUnavailableError" or (
        isinstance(error, ClientAuthenticationError) and getattr(error, "status_code", None) is None
    ):
        return CliError(
            "no Azure credential found: run `az login` (or set AZURE_CLIENT_ID, AZURE_TENANT_ID and "
            "AZURE_CLIENT_SECRET for a service principal)",
            exit_code=EXIT_AUTH,
        )
    status = getattr(error, "status_code", None)
    if isinstance(error, ClientAuthenticationError) or status in (401, 403):
        return CliError(
            f"Azure refused access ({status}): {service_message(error)}. You need the AzureML Data Scientist "
            "role (or Contributor) on the workspace",
            exit_code=EXIT_AUTH,
        )
    if isinstance(error, ResourceNotFoundError) or status == 404:
        return CliError(f"not found in Azure: {service_message(error)}", exit_code=EXIT_NOT_FOUND)
    if isinstance(error, ResourceExistsError) or status == 409:
        return CliError(f"conflict in Azure: {service_message(error)}", exit_code=EXIT_CONFLICT)
    if isinstance(error, HttpResponseError):
        return CliError(f"service error ({status}): {service_message(error)}", exit_code=EXIT_FAILED)
    if type(error).__name__ in ("ValidationException", "ValidationError"):
        return CliError(f"azure-ai-ml rejected the request: {service_message(error)}", exit_code=EXIT_USAGE)
    return CliError(f"{type(error).__name__}: {service_message(error)}", exit_code=EXIT_FAILED)
