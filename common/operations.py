"""Talking to the client surface both targets share: lookups, long-running operations with progress, traffic."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from common.cli import progress
from common.errors import EXIT_INTERRUPTED, EXIT_TIMEOUT, CliError, NotFoundError

if TYPE_CHECKING:
    from common.target import Target

POLL_INTERVAL_SECONDS = 10.0
ENDPOINT_SCHEMA_URL = "https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json"
DEPLOYMENT_SCHEMA_URL = "https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json"


def is_not_found(error: BaseException) -> bool:
    """The resource asked for does not exist (a missing workspace or resource group is another matter)."""
    from common.azure_errors import workspace_missing

    missing = (
        type(error).__name__ == "ResourceNotFoundError"
        or getattr(error, "status_code", None) == 404
        # azure-ai-ml raises ValidationException, not ResourceNotFoundError, for a name with no versions (the
        # lookup of "latest")
        or str(getattr(getattr(error, "error_type", None), "name", "")) == "RESOURCE_NOT_FOUND"
    )
    return missing and not workspace_missing(error)


def enum_value(value: Any) -> str | None:
    """A setting Azure returns as an enum member (e.g. 'DeploymentProvisioningState.SUCCEEDED' when printed) or as
    text, as its text value."""
    return None if value is None else str(getattr(value, "value", value))


def state_name(value: Any) -> str | None:
    """A provisioning state as text."""
    return enum_value(value)


def get_or_none(getter: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The resource, or None when Azure answers 404; every other failure propagates."""
    try:
        return getter(*args, **kwargs)
    except Exception as error:
        if is_not_found(error):
            return None
        raise


def get_deployment(client: Any, name: str, endpoint_name: str) -> Any:
    """The deployment, or None when Azure answers 404, with each data collection read in the case Azure answered
    (common.capture.read_modes). azure-ai-ml converts the answer in the same get; reading the generated operations'
    answer first keeps the mode it drops. The local target's client answers entities already."""
    from azure.ai.ml.operations import OnlineDeploymentOperations

    from common import capture

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


def with_answered_modes(client: Any, deployment: Any) -> Any:
    """A listed deployment whose collections all read as off read again with get_deployment: azure-ai-ml's list
    converts the modes the way its get does (an answered "enabled" reads as off). Others are returned as they are:
    one more read only where the SDK's reading may be wrong."""
    from common import capture

    collections = getattr(getattr(deployment, "data_collector", None), "collections", None)
    if not collections or capture.of_deployment(deployment).enabled:
        return deployment
    return get_deployment(client, deployment.name, deployment.endpoint_name) or deployment


DEPLOYMENT_HEADER = "azureml-model-deployment"  # names one deployment, in requests and in Azure's answers


def require_endpoint(client: Any, name: str, *, target: Target) -> Any:
    """The endpoint; NotFoundError with the command that creates it when it does not exist."""
    endpoint = get_or_none(client.online_endpoints.get, name)
    if endpoint is None:
        raise NotFoundError(f"endpoint {name!r} not found; create it first with: {target.create_endpoint(name)}")
    return endpoint


def bearer_secret(credentials: Any) -> str:
    """What goes after 'Bearer ': the primary key (auth_mode key) or the token (aml_token, aad_token)."""
    return str(getattr(credentials, "primary_key", None) or credentials.access_token)


def wait_with_progress(
    poller: Any,
    what: str,
    check_command: str,
    *,
    timeout: float | None = None,
    interval: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Any:
    """Wait for a long-running operation, printing elapsed time and status.

    Ctrl-C, or `timeout` seconds passing, stops the waiting, not the operation: the error says so and how to
    check on it.
    """
    started = clock()
    where = poller.where if isinstance(getattr(poller, "where", None), str) else "in Azure"
    try:
        while not poller.done():
            poller.wait(interval if interval is not None else POLL_INTERVAL_SECONDS)
            elapsed = int(clock() - started)
            progress(f"  [{elapsed // 60:02d}:{elapsed % 60:02d}] {what}: {poller.status()}")
            if timeout is not None and elapsed >= timeout and not poller.done():
                raise CliError(
                    f"gave up waiting after {elapsed // 60} min {elapsed % 60} s: {what} keeps running {where}; "
                    f"check it with: {check_command}",
                    exit_code=EXIT_TIMEOUT,
                )
        return poller.result()
    except KeyboardInterrupt:
        raise CliError(
            f"interrupted while waiting: {what} keeps running {where}; check it with: {check_command}",
            exit_code=EXIT_INTERRUPTED,
        ) from None


def entity_document(entity: Any, schema_url: str) -> dict[str, Any]:
    """What `az ml ... create -f` accepts for an azure-ai-ml entity, as a dict (empty sections left out).

    Uses the entity's own schema (_to_dict): ManagedOnlineEndpoint.dump ignores its destination in azure-ai-ml 1.35.
    """
    plain = json.loads(json.dumps(entity._to_dict()))
    return {"$schema": schema_url, **{key: value for key, value in plain.items() if value not in ({}, [], None)}}


def entity_yaml(entity: Any, schema_url: str) -> str:
    return str(yaml.safe_dump(entity_document(entity, schema_url), sort_keys=False))


def dry_run_output(entity: Any, schema_url: str, output_format: str, note: str = "") -> str:
    """--dry_run's answer: the YAML (with `note` as a closing comment), or with --output json the same document
    as JSON (the note as "note")."""
    if output_format == "json":
        document = entity_document(entity, schema_url)
        return json.dumps({**document, **({"note": note} if note else {})}, indent=2)
    return entity_yaml(entity, schema_url) + (f"# {note}\n" if note else "")


CHANGED_SINCE_READ = 412  # the local target refuses a write based on an older read of the endpoint
UPDATE_ATTEMPTS = 10


def public_network_access(endpoint: Any) -> str:
    """'enabled' or 'disabled' as the flag spells it ('' when the endpoint does not say): Azure answers Enabled, the
    local target enabled."""
    return (enum_value(getattr(endpoint, "public_network_access", None)) or "").lower()


def endpoint_fingerprint(endpoint: Any) -> dict[str, Any]:
    """What an update of the endpoint can change, as Azure keeps it (deployments at 0 dropped, traffic keys in
    lowercase as azure-ai-ml sends them), to tell whether someone else wrote the endpoint."""

    def shares(value: Any) -> dict[str, int]:
        return {str(name).lower(): int(share) for name, share in (value or {}).items() if int(share)}

    return {
        "traffic": shares(endpoint.traffic),
        "mirror_traffic": shares(getattr(endpoint, "mirror_traffic", None)),
        "tags": dict(endpoint.tags or {}),
        "auth_mode": str(endpoint.auth_mode or "").lower(),
        "public_network_access": public_network_access(endpoint),
        "description": endpoint.description or None,
    }


Changed = TypeVar("Changed")  # what an endpoint update's change returns


def update_endpoint(
    client: Any,
    name: str,
    change: Callable[[Any], Changed],
    *,
    target: Target,
    what: str,
    timeout: float | None = None,
) -> tuple[Any, Changed]:
    """Read the endpoint, let `change` modify it, write it back and wait: (the updated endpoint, `change`'s value).

    Locally the write is conditional: when another command changed the endpoint in between, the local target answers
    412 and `change` is applied again to what is there now, so concurrent commands never undo each other's changes.
    Azure offers no conditional write for an online endpoint (its resource carries no ETag and azure-ai-ml's
    begin_create_or_update takes no If-Match): the last writer wins. There the endpoint is read again just before the
    write (a change in between: `change` is applied again to the new state), and once more after it: when what
    Azure holds then is not what was written, another writer came at the same moment and the warning says so.
    """
    for attempt in range(UPDATE_ATTEMPTS):
        endpoint = require_endpoint(client, name, target=target)
        read = endpoint_fingerprint(endpoint)
        outcome = change(endpoint)
        written = endpoint_fingerprint(endpoint)
        last_attempt = attempt == UPDATE_ATTEMPTS - 1
        if not target.local and not last_attempt and _changed_since(client, name, endpoint, read, target):
            continue  # written by someone else since it was read: decide again on what is there now
        try:
            poller = client.online_endpoints.begin_create_or_update(endpoint)
            result = wait_with_progress(poller, what, target.show(name), timeout=timeout)
        except Exception as error:
            if getattr(error, "status_code", None) != CHANGED_SINCE_READ or last_attempt:
                raise
            time.sleep(random.uniform(0.01, 0.1) * (attempt + 1))
            continue
        if not target.local:
            _warn_if_overwritten(client, name, written, target)
        return result, outcome
    raise AssertionError("unreachable")


def _changed_since(client: Any, name: str, endpoint: Any, read: dict[str, Any], target: Target) -> bool:
    fresh = require_endpoint(client, name, target=target)
    return fresh is not endpoint and endpoint_fingerprint(fresh) != read


def _warn_if_overwritten(client: Any, name: str, written: dict[str, Any], target: Target) -> None:
    now = endpoint_fingerprint(require_endpoint(client, name, target=target))
    differs = [field for field in written if now[field] != written[field]]
    if differs:
        from common.cli import warn

        warn(
            f"endpoint {name!r} changed while this command wrote it ({', '.join(differs)} now differ from what it "
            "wrote): another writer came at the same moment, and Azure keeps the last write; check it with: "
            f"{target.show(name)}"
        )


LOG_TAIL_LINES = 50


def failure_details(
    client: Any, deployment: str, endpoint: str, log_name: str, closing: list[str], reason: str = ""
) -> str:
    """What follows a failed deployment's error line: the cause found in its log, what the doctor's table makes of
    the error and the log (common/diagnosis.py), the log's tail, then `closing`."""
    from common import diagnosis

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


def deployment_failed(client: Any, deployment: str, endpoint: str, reason: str, delete_command: str) -> CliError:
    """The error for a failed deployment: the reason, the tail of its logs, and the command that removes it."""
    from common.errors import DeploymentFailedError

    closing = ["Traffic was not changed.", "Delete the failed deployment with:", f"  {delete_command}"]
    details = failure_details(client, deployment, endpoint, "deployment log", closing, reason)
    return DeploymentFailedError(f"deployment {deployment} failed: {reason}", details=details)
