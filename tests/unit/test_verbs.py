"""Every verb's contract (commands/__init__.py): validate(args) returns a frozen, typed request and leaves the
parsed flags as they were; run reads the request only."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib
import inspect
import shlex
from pathlib import Path

import pytest

import commands
import manage_online_endpoint
from commands import dispatch
from commands.target import AZURE, LOCAL
from tests.conftest import ROOT

VALID_FLAGS = {
    "show": [],
    "keys": ["--regenerate", "secondary"],
    "logs": ["--deployment_name", "blue", "--lines", "5"],
    "contract": ["--deployment_name", "blue", "--version", "3.1", "--check", "09-deploy-model/sample-request.json"],
    "traffic": ["--set", "blue=90", "green=10", "--mirror", "green=5"],
    "promote": ["--deployment_name", "green"],
    "rollback": [],
    "metrics": ["--minutes", "10"],
    "rollout": ["--deployment_name", "green", "--steps", "10", "100", "--bake_seconds", "60"],
    "compare": ["--deployment_name", "green", "--against", "blue", "--minutes", "30"],
    "drift": ["--deployment_name", "blue", "--minutes", "30", "--plot", "drift.png"],
    "capacity": ["--instance_type", "Standard_DS3_v2", "--instance_count", "2"],
    "doctor": ["--deployment_name", "blue"],
    "size": ["--deployment_name", "blue", "--target_rps", "50", "--instance_type", "Standard_DS3_v2", "--local"],
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


def parse(argv: list[str]) -> tuple[argparse.Namespace, dispatch.VerbModule, commands.Request]:
    return dispatch.parse(manage_online_endpoint.__doc__, commands.VERBS, argv)


def test_every_verb_has_a_valid_command_line_here():
    assert set(VALID_FLAGS) == set(commands.VERBS)


@pytest.mark.parametrize("verb", sorted(VALID_FLAGS))
def test_validate_returns_a_frozen_request_and_leaves_the_flags_alone(verb: str):
    names_endpoint = commands.VERBS[verb].endpoint != "none"  # register names none
    endpoint = ["--endpoint_name", "diabetes-classify"] if names_endpoint else []
    args, module, request = parse([verb, *endpoint, *VALID_FLAGS[verb]])
    assert isinstance(request, commands.Request) and dataclasses.is_dataclass(request)
    assert request.endpoint_name == ("diabetes-classify" if names_endpoint else "")
    assert request.target == (LOCAL if "--local" in VALID_FLAGS[verb] else AZURE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.endpoint_name = "other"  # type: ignore[misc]
    parsed = copy.deepcopy(vars(args))
    assert module.validate(args) == request
    assert vars(args) == parsed


def test_a_request_carries_what_validate_worked_out():
    _, _, traffic = parse(
        ["traffic", "--endpoint_name", "diabetes-classify", "--set", "blue=90", "green=10", "--mirror", "green=5"]
    )
    assert (traffic.plan, traffic.mirror_plan) == ({"blue": 90, "green": 10}, {"green": 5})
    assert traffic.change == "traffic --set blue=90 green=10 --mirror green=5"
    _, _, rollout = parse(
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
    _, _, request = parse(["drift", "--endpoint_name", "diabetes-classify", "--deployment_name", "Blue", "--plot"])
    assert request.plot == Path("outputs") / "drift-blue.png"
    assert "outputs/" in (ROOT / ".gitignore").read_text().splitlines()


@pytest.mark.parametrize(
    ("verb", "flag", "value", "said"),
    [
        (
            "contract",
            "--save",
            "no-such-folder/contract.json",
            "invalid --save 'no-such-folder/contract.json': its folder",
        ),
        ("contract", "--save", "09-deploy-model", "invalid --save '09-deploy-model': it is a folder; name a file"),
        ("drift", "--plot", "no-such-folder/drift.png", "invalid --plot 'no-such-folder/drift.png': its folder"),
        ("drift", "--plot", "drift.svg", "invalid --plot 'drift.svg': name a .png file"),
    ],
)
def test_a_file_to_write_is_refused_in_one_line_when_it_cannot_be_written(monkeypatch, capsys, verb, flag, value, said):
    monkeypatch.chdir(ROOT)
    argv = [verb, "--endpoint_name", "diabetes-classify", "--deployment_name", "blue", flag, value]

    code = commands.run(manage_online_endpoint.main, argv)

    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {said}"), line


SCRIPTS = sorted(path.name for path in ROOT.glob("*.py") if "dispatch(__doc__" in path.read_text())


def test_every_script_dispatches_its_own_registry_and_every_registry_has_its_script():
    assert sorted(commands.REGISTRIES) == SCRIPTS
    for name in SCRIPTS:
        source = (ROOT / name).read_text()
        assert f'dispatch(__doc__, commands.REGISTRIES["{name}"], argv)' in source, name


@pytest.mark.parametrize("verb", [v for registry in commands.REGISTRIES.values() for v in registry.values()])
def test_every_registered_module_has_the_verb_contract(verb: commands.Verb):
    module = dispatch.load(verb)
    assert isinstance(module, dispatch.VerbModule), verb.module
    request_type = inspect.signature(module.validate).return_annotation
    assert "Request" in str(request_type), f"{verb.module}.validate returns a typed request, not {request_type}"


def examples(doc: str, script: str) -> list[list[str]]:
    """The command lines of a docstring's examples (continued lines joined, comments dropped)."""
    text = doc.replace("\\\n", " ")
    lines = [line.split("  #")[0].strip() for line in text.splitlines()]
    return [shlex.split(line)[2:] for line in lines if line.startswith(f"python {script}")]


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_example_in_a_scripts_help_parses_and_every_verb_has_one(name: str):
    doc = importlib.import_module(name.removesuffix(".py")).__doc__
    registry = commands.REGISTRIES[name]
    found = examples(doc, name)

    assert found, f"{name}'s docstring shows no example"
    for argv in found:
        parser = dispatch.new_parser(doc, registry, dispatch.chosen_verb(registry, argv))
        parser.parse_args(argv)  # argparse exits (SystemExit) on a flag or verb the script does not have
    if commands.SINGLE not in registry:
        assert {argv[0] for argv in found} == set(registry), "every verb has an example, every example a verb"


@pytest.mark.parametrize("page", ["contract.md", "capacity.md"])
def test_every_command_of_a_docs_page_parses_and_validates_with_its_script(page: str, monkeypatch):
    """The page's commands as written: the flags parse and the values validate (nothing is sent)."""
    monkeypatch.chdir(ROOT)
    text = (ROOT / "docs" / page).read_text()
    blocks = [block.split("```", 1)[0] for block in text.split("```bash\n")[1:]]
    lines = [line for block in blocks for line in block.strip().splitlines() if line.startswith("python ")]
    assert lines
    for line in lines:
        script, *argv = shlex.split(line)[1:]
        importlib.import_module(script.removesuffix(".py"))
        dispatch.parse(None, commands.REGISTRIES[script], argv)
