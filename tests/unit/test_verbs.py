"""Every verb's contract (commands/__init__.py): validate(args) returns a frozen, typed request and leaves the
parsed flags as they were; run reads the request only."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest

import commands
import manage_online_endpoint
from commands.target import AZURE, LOCAL
from tests.conftest import ROOT

VALID_FLAGS = {
    "show": [],
    "keys": ["--regenerate", "secondary"],
    "logs": ["--deployment_name", "blue", "--lines", "5"],
    "traffic": ["--set", "blue=90", "green=10", "--mirror", "green=5"],
    "promote": ["--deployment_name", "green"],
    "rollback": [],
    "metrics": ["--minutes", "10"],
    "rollout": ["--deployment_name", "green", "--steps", "10", "100", "--bake_seconds", "60"],
    "compare": ["--deployment_name", "green", "--against", "blue", "--minutes", "30"],
    "drift": ["--deployment_name", "blue", "--minutes", "30", "--plot", "drift.png"],
    "capacity": ["--instance_type", "Standard_DS3_v2", "--instance_count", "2"],
    "doctor": ["--deployment_name", "blue"],
    "autoscale": [
        *("--deployment_name", "blue", "--min", "1", "--max", "3", "--default", "1"),
        *("--cpu_out", "70", "--cpu_in", "30"),
    ],
    "register": ["--name", "my-model", "--path", "09-deploy-model", "--version", "3"],
    "delete": ["--deployment_name", "green", "--yes"],
    "probe": ["--requests", "20"],
    "start": ["--local"],
    "stop": ["--local"],
}


def test_every_verb_has_a_valid_command_line_here():
    assert set(VALID_FLAGS) == set(commands.VERBS)


@pytest.mark.parametrize("verb", sorted(VALID_FLAGS))
def test_validate_returns_a_frozen_request_and_leaves_the_flags_alone(verb: str):
    names_endpoint = getattr(commands.load(verb), "ENDPOINT_REQUIRED", True) is not None  # register names none
    endpoint = ["--endpoint_name", "diabetes-classify"] if names_endpoint else []
    args, request = manage_online_endpoint.parse_args([verb, *endpoint, *VALID_FLAGS[verb]])
    assert isinstance(request, commands.Request) and dataclasses.is_dataclass(request)
    assert request.endpoint_name == ("diabetes-classify" if names_endpoint else "")
    assert request.target == (LOCAL if "--local" in VALID_FLAGS[verb] else AZURE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.endpoint_name = "other"  # type: ignore[misc]
    parsed = copy.deepcopy(vars(args))
    assert commands.load(verb).validate(args) == request
    assert vars(args) == parsed


def test_a_request_carries_what_validate_worked_out():
    _, traffic = manage_online_endpoint.parse_args(
        ["traffic", "--endpoint_name", "diabetes-classify", "--set", "blue=90", "green=10", "--mirror", "green=5"]
    )
    assert (traffic.plan, traffic.mirror_plan) == ({"blue": 90, "green": 10}, {"green": 5})
    assert traffic.change == "traffic --set blue=90 green=10 --mirror green=5"
    _, rollout = manage_online_endpoint.parse_args(
        [
            "rollout",
            "--endpoint_name",
            "diabetes-classify",
            "--deployment_name",
            "green",
            "--steps",
            "10",
            "100",
            "--max_p95_ms",
            "250",
        ]
    )
    assert rollout.steps == [10, 100] and rollout.limits.max_p95_ms == 250


def test_drift_plot_alone_draws_under_outputs_which_the_checkout_ignores():
    _, request = manage_online_endpoint.parse_args(
        ["drift", "--endpoint_name", "diabetes-classify", "--deployment_name", "Blue", "--plot"]
    )
    assert request.plot == Path("outputs") / "drift-blue.png"
    assert "outputs/" in (ROOT / ".gitignore").read_text().splitlines()
