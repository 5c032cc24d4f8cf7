"""Reading resources through the client surface both targets share: None for a 404, the deployment with its
collections as Azure answered them, the endpoint or the command that creates it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from common.azure.surface import Client
from common.control.wire import enum_value
from common.errors import NotFoundError

if TYPE_CHECKING:
    from common.target import Target


def is_not_found(error: BaseException) -> bool:
    """The resource asked for does not exist (a missing workspace or resource group is another matter)."""
    from common.azure.azure_errors import workspace_missing

    missing = (
        type(error).__name__ == "ResourceNotFoundError"
        or getattr(error, "status_code", None) == 404
        # azure-ai-ml raises ValidationException, not ResourceNotFoundError, for a name with no versions (the
        # lookup of "latest")
        or str(getattr(getattr(error, "error_type", None), "name", "")) == "RESOURCE_NOT_FOUND"
    )
    return missing and not workspace_missing(error)


def get_or_none(getter: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The resource, or None when Azure answers 404; every other failure propagates."""
    try:
        return getter(*args, **kwargs)
    except Exception as error:
        if is_not_found(error):
            return None
        raise


def get_deployment(client: Client, name: str, endpoint_name: str) -> Any:
    """The deployment, or None when Azure answers 404, with each data collection read in the case Azure answered
    (common.monitoring.capture.read_modes). azure-ai-ml converts the answer in the same get; reading the generated
    operations' answer first keeps the mode it drops. The local target's client answers entities already."""
    from azure.ai.ml.operations import OnlineDeploymentOperations

    from common.monitoring import capture

    operations = client.online_deployments
    if not isinstance(operations, OnlineDeploymentOperations):  # the local target's, a test's stand-in
        return get_or_none(operations.get, name=name, endpoint_name=endpoint_name)
    answer = get_or_none(
        operations._online_deployment.get,  # azure-ai-ml 1.35.2's generated REST operations: the answer as sent
        endpoint_name=endpoint_name,
        deployment_name=name,
        resource_group_name=operations._resource_group_name,
        workspace_name=operations._workspace_name,
        **operations._init_kwargs,
    )
    if answer is None:
        return None
    from azure.ai.ml.entities import OnlineDeployment

    collector = getattr(answer.properties, "data_collector", None)
    modes = {  # an enum member when Azure answers "Enabled", the string as answered otherwise ("enabled")
        collection_name: str(enum_value(getattr(collection, "data_collection_mode", None)) or "")
        for collection_name, collection in (getattr(collector, "collections", None) or {}).items()
    }
    return capture.read_modes(OnlineDeployment._from_rest_object(answer), modes)


def with_answered_modes(client: Client, deployment: Any) -> Any:
    """A listed deployment whose collections all read as off read again with get_deployment: azure-ai-ml's list
    converts the modes the way its get does (an answered "enabled" reads as off). Others are returned as they are:
    one more read only where the SDK's reading may be wrong."""
    from common.monitoring import capture

    collections = getattr(getattr(deployment, "data_collector", None), "collections", None)
    if not collections or capture.of_deployment(deployment).enabled:
        return deployment
    return get_deployment(client, deployment.name, deployment.endpoint_name) or deployment


def require_endpoint(client: Client, name: str, *, target: Target) -> Any:
    """The endpoint; NotFoundError with the command that creates it when it does not exist."""
    endpoint = get_or_none(client.online_endpoints.get, name)
    if endpoint is None:
        raise NotFoundError(f"endpoint {name!r} not found; create it first with: {target.create_endpoint(name)}")
    return endpoint


def bearer_secret(credentials: Any) -> str:
    """What goes after 'Bearer ': the primary key (auth_mode key) or the token (aml_token, aad_token)."""
    return str(getattr(credentials, "primary_key", None) or credentials.access_token)
