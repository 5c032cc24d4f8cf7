"""The README's deployment commands parse and validate as written (run with --dry_run: nothing is sent)."""

from __future__ import annotations

import shlex

import pytest

import create_online_deployment
import create_online_endpoint
from tests.conftest import ROOT

SCRIPTS = {"create_online_endpoint.py": create_online_endpoint, "create_online_deployment.py": create_online_deployment}


def readme_commands() -> list[str]:
    lines = (ROOT / "README.md").read_text().splitlines()
    return [line.strip() for line in lines if line.strip().startswith(tuple(f"python {s}" for s in SCRIPTS))]


def test_the_seed_commands_are_in_the_readme_verbatim():
    commands = readme_commands()
    assert (
        'python create_online_endpoint.py --endpoint_name diabetes-classify --description "Diabetes classification '
        'endpoint" --auth_mode aml_token --public_network enabled --verbose'
    ) in commands
    assert (
        "python create_online_deployment.py --deployment_name diabetes-classify-blue-dp --endpoint_name "
        "diabetes-classify --model_path azureml:diabetes-predict:3 --environment diabetes-classify --score_path "
        "09-deploy-model --score_script score.py --instance_type Standard_DS3_v2 --instance_count 1 "
        "--traffic_allocation 100"
    ) in commands


@pytest.mark.parametrize("command", [c for c in readme_commands() if "--preflight" not in c])
def test_readme_command_is_accepted(command, azure, run_script):
    _python, script_name, *argv = shlex.split(command)

    result = run_script(SCRIPTS[script_name], [*argv, "--dry_run"])

    assert result.code == 0, result.err
    assert result.out.startswith("$schema: ")
    azure.client_class.assert_not_called()


def test_the_readme_preflight_command_is_the_one_the_preflight_tests_run():
    """--preflight with --dry_run reads Azure (it runs the preflight): tests/test_preflight.py runs this command."""
    from tests.seeds import DEPLOYMENT_SEED

    (command,) = [c for c in readme_commands() if "--preflight" in c]
    _python, script_name, *argv = shlex.split(command)
    assert script_name == "create_online_deployment.py"
    assert argv == [*DEPLOYMENT_SEED, "--preflight"]
