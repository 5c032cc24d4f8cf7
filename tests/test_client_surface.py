"""The three clients the toolkit talks to (azure-ai-ml's MLClient, LocalMLClient, and the tests' mocked MLClient)
have the surface common/azure/surface.py declares: every method, with parameters of the same names and kinds."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from commands.target import LOCAL
from common.azure import surface
from common.local.client import LocalMLClient


def sdk_operations() -> dict[str, type]:
    from azure.ai.ml.operations import (
        EnvironmentOperations,
        ModelOperations,
        OnlineDeploymentOperations,
        OnlineEndpointOperations,
    )

    return {
        "online_endpoints": OnlineEndpointOperations,
        "online_deployments": OnlineDeploymentOperations,
        "models": ModelOperations,
        "environments": EnvironmentOperations,
    }


def local_operations(tmp_path: Any) -> dict[str, type]:
    client = LocalMLClient(home=tmp_path, target=LOCAL)
    return {name: type(getattr(client, name)) for name in surface.OPERATIONS}


def protocol_methods(protocol: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(protocol).items()
        if callable(member) and not name.startswith("_")
    }


def accepts(implementation: inspect.Signature, declared: inspect.Signature) -> list[str]:
    """What `declared` passes that `implementation` would refuse."""
    parameters = implementation.parameters
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    problems = []
    for name, wanted in declared.parameters.items():
        if name == "self":
            continue
        found = parameters.get(name)
        if found is None:
            if not (takes_kwargs and wanted.kind is wanted.KEYWORD_ONLY):
                problems.append(f"no parameter {name}")
        elif wanted.kind is wanted.KEYWORD_ONLY and found.kind not in (found.KEYWORD_ONLY, found.POSITIONAL_OR_KEYWORD):
            problems.append(f"{name} is not a keyword")
        elif wanted.kind is wanted.POSITIONAL_OR_KEYWORD and found.kind is not found.POSITIONAL_OR_KEYWORD:
            problems.append(f"{name} cannot be given by position")
    extra = [
        name
        for name, p in parameters.items()
        if name != "self"
        and name not in declared.parameters
        and p.default is p.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    return problems + [f"requires {name}" for name in extra]


CASES = [(group, method) for group, protocol in surface.OPERATIONS.items() for method in protocol_methods(protocol)]


@pytest.mark.parametrize(("group", "method"), CASES, ids=lambda value: value)
def test_the_sdk_and_the_local_target_have_every_call_the_toolkit_makes(group, method, tmp_path):
    declared = protocol_methods(surface.OPERATIONS[group])[method]
    for where, classes in (("azure-ai-ml", sdk_operations()), ("local target", local_operations(tmp_path))):
        implementation = getattr(classes[group], method, None)
        assert implementation is not None, f"{where} {group} has no {method}"
        assert accepts(inspect.signature(implementation), declared) == [], f"{where} {group}.{method}"


def test_the_mocked_client_refuses_a_call_outside_the_surface(azure):
    with pytest.raises(AttributeError):
        azure.client.online_endpoints.invoke  # noqa: B018 - the SDK has it; the toolkit does not use it
    with pytest.raises(TypeError):
        azure.client.online_deployments.get("blue")  # endpoint_name missing: the SDK would refuse it too


def test_the_calls_only_one_target_has_exist_there_with_their_signatures(tmp_path):
    """surface.AzureClient's members are MLClient's (on_azure), surface.LocalClient's are LocalMLClient's
    (on_local): a narrowed client never lacks what the narrowing promised."""
    from azure.ai.ml import MLClient
    from azure.ai.ml.operations import ComputeOperations

    azure_only = {name for name in vars(surface.AzureClient) if not name.startswith("_")}
    assert azure_only == {"subscription_id", "resource_group_name", "workspace_name", "compute", "datastores"}
    for name in azure_only:
        assert isinstance(getattr(MLClient, name, None), property), f"MLClient has no {name}"
    for method, declared in protocol_methods(surface.Compute).items():
        assert accepts(inspect.signature(getattr(ComputeOperations, method)), declared) == [], method

    local = LocalMLClient(home=tmp_path, target=LOCAL)
    for group, protocol in (
        ("online_endpoints", surface.LocalOnlineEndpoints),
        ("online_deployments", surface.LocalOnlineDeployments),
    ):
        for method, declared in protocol_methods(protocol).items():
            implementation = getattr(type(getattr(local, group)), method, None)
            assert implementation is not None, f"the local target's {group} has no {method}"
            assert accepts(inspect.signature(implementation), declared) == [], f"{group}.{method}"
    assert local.store.home == tmp_path
