"""The README's and docs/' commands parse and validate as written (run with --dry_run: nothing is sent), the links
between them resolve, and the README stays short."""

from __future__ import annotations

import shlex

import pytest
import yaml

import create_online_deployment
import create_online_endpoint
from tests.conftest import ROOT

SCRIPTS = {"create_online_endpoint.py": create_online_endpoint, "create_online_deployment.py": create_online_deployment}


DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def documented_lines() -> list[str]:
    return [line for document in DOCUMENTS for line in document.read_text().splitlines()]


def readme_commands() -> list[str]:
    lines = documented_lines()
    return [line.strip() for line in lines if line.strip().startswith(tuple(f"python {s}" for s in SCRIPTS))]


def test_the_seed_commands_are_in_the_readme_verbatim():
    lines = (ROOT / "README.md").read_text().splitlines()
    commands = [line.strip() for line in lines if line.strip().startswith("python create_online_")]
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
    """--preflight with --dry_run reads Azure (it runs the preflight): tests/local_target/test_preflight.py runs
    this command."""
    from tests.seeds import DEPLOYMENT_SEED

    (command,) = [c for c in readme_commands() if "--preflight" in c]
    _python, script_name, *argv = shlex.split(command)
    assert script_name == "create_online_deployment.py"
    assert argv == [*DEPLOYMENT_SEED, "--preflight"]


def manage_dry_runs() -> list[str]:
    lines = documented_lines()
    return [
        line.strip()
        for line in lines
        if line.strip().startswith("python manage_online_endpoint.py") and "--dry_run" in line
    ]


@pytest.mark.parametrize("command", manage_dry_runs())
def test_readme_manage_dry_runs_work_as_written_without_a_workspace(command, run_script, monkeypatch, tmp_path):
    import json

    import manage_online_endpoint

    for variable in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(tmp_path)  # no config.json: a newcomer's machine
    _python, _script, *argv = shlex.split(command)

    result = run_script(manage_online_endpoint, argv)

    assert result.code == 0, result.err
    assert "/subscriptions/<subscription_id>/resourceGroups/<resource_group>/" in json.dumps(json.loads(result.out))


def local_endpoints_created() -> set[str]:
    """The local endpoints the README's commands create (and the demos', in the Makefile)."""
    import re

    text = "\n".join(documented_lines()) + (ROOT / "Makefile").read_text()
    names = set()
    for line in text.splitlines():
        if "create_online_endpoint.py" in line and "--local" in line:
            found = re.search(r"--endpoint_name (\S+)", line)
            from_file = re.search(r"--file (\S+)", line)
            if found:
                names.add(found.group(1))
            elif from_file:  # the name the endpoint YAML file gives
                names.add(yaml.safe_load((ROOT / from_file.group(1)).read_text())["name"])
    return names


def test_make_demo_clean_deletes_every_local_endpoint_the_readme_creates():
    import re

    makefile = (ROOT / "Makefile").read_text()
    variables = dict(re.findall(r"^(\w+) := (.*)$", makefile, re.M))
    listed = set(re.sub(r"\$\((\w+)\)", lambda m: variables[m.group(1)], variables["README_ENDPOINTS"]).split())
    created = {variables.get(name[2:-1], name) if name.startswith("$(") else name for name in local_endpoints_created()}
    assert created and created <= listed, created - listed


def test_make_demo_clean_and_clean_local_remove_them_for_real(tmp_path, model_dir):
    """Real endpoints (no deployment: seconds), deleted by the Makefile's targets as a user runs them."""
    import os
    import subprocess

    from tests.localtarget import local_target

    home = tmp_path / "home"
    with local_target(home, "diabetes-local", model_dir) as local:
        assert local.run(create_online_endpoint.main, ["--local", "--endpoint_name", "somebody-elses"]) == 0
        environment = {**os.environ, "AZUREML_LOCAL_HOME": str(home)}
        run = subprocess.run(["make", "-s", "demo-clean"], cwd=ROOT, env=environment, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert local.store.endpoints() == ["somebody-elses"]  # demo-clean removes the README's only

        run = subprocess.run(["make", "-s", "clean-local"], cwd=ROOT, env=environment, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert not home.exists()


def test_the_readme_is_read_in_five_minutes():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation but - and _ dropped, spaces as -."""
    import re

    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_link_between_the_documents_resolves(document):
    import re

    for target in re.findall(r"\]\(([^)#:]*\.md)?(#[^)]*)?\)", document.read_text()):
        path, fragment = target
        linked = (document.parent / path).resolve() if path else document
        assert linked.is_file(), (document.name, path)
        if fragment:
            headings = [line.lstrip("#") for line in linked.read_text().splitlines() if line.startswith("#")]
            assert fragment[1:] in {anchor(heading) for heading in headings}, (document.name, path, fragment)


def flag_value(line: str, flag: str) -> str | None:
    import re

    found = re.search(rf"{flag}[ =](\S+)", line)
    return found.group(1) if found else None


def local_deployments_created() -> set[tuple[str, str]]:
    """(endpoint, deployment) of every local create in the documents, and the demos' in the Makefile (whose commands
    name the endpoint through a variable: $(DEMO_DEPLOY), $(ROLLOUT_DEPLOY), $(SHADOW_DEPLOY))."""
    import re

    created = set()
    for line in documented_lines():
        if "create_online_deployment.py" in line and "--local" in line:
            created.add((flag_value(line, "--endpoint_name"), flag_value(line, "--deployment_name")))
    makefile = (ROOT / "Makefile").read_text()
    variables = dict(re.findall(r"^(\w+) := (.*)$", makefile, re.M))
    for prefix, deployment in re.findall(r"\$\((\w+)_DEPLOY\).*?--deployment_name (\S+)", makefile):
        created.add((variables[f"{prefix}_ENDPOINT"], deployment))
    return created


def local_deployments_used() -> list[tuple[str, str, str]]:
    """(endpoint, deployment, line) of every documented local command that names an existing deployment."""
    used = []
    for line in documented_lines():
        if "--local" in line and line.strip().startswith("python manage_online_endpoint.py"):
            deployment = flag_value(line, "--deployment_name")
            if deployment and " delete " not in line:
                used.append((flag_value(line, "--endpoint_name"), deployment, line.strip()))
    return used


def test_every_local_deployment_a_document_uses_is_one_a_document_or_demo_creates():
    """A command copied from one page finds what another page (or a demo) created: same endpoint, same deployment."""
    created = local_deployments_created()
    missing = [line for endpoint, deployment, line in local_deployments_used() if (endpoint, deployment) not in created]
    assert local_deployments_used() and not missing, missing


def test_local_examples_deploy_the_newest_registered_model_not_a_fixed_version():
    """Every demo and `train_model.py --register --local` registers the next version: a fixed :1 goes stale."""
    fixed = [
        line
        for line in documented_lines()
        if "create_online_deployment.py" in line and "--local" in line and ":diabetes-predict:" in line
    ]
    assert not fixed, fixed


def test_the_readme_lists_the_endpoints_demo_clean_deletes():
    import re

    makefile = (ROOT / "Makefile").read_text()
    variables = dict(re.findall(r"^(\w+) := (.*)$", makefile, re.M))
    listed = set(re.sub(r"\$\((\w+)\)", lambda m: variables[m.group(1)], variables["README_ENDPOINTS"]).split())
    readme = " ".join((ROOT / "README.md").read_text().split())
    sentence = readme[readme.index("stops every process and deletes every local endpoint") :].split(";")[0]
    assert set(re.findall(r"`([\w-]+)`", sentence)) == listed, sentence


def test_the_readme_counts_about_as_many_tests_as_there_are():
    """The README's "N tests" is re-measured when the suite grows: within 15% of what pytest collects."""
    import re
    import subprocess
    import sys

    claimed = re.search(r"([\d,]+) tests, measured", (ROOT / "README.md").read_text())
    assert claimed, "the README says how many tests there are, and when it was measured"
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    found = re.search(r"^(\d+) tests? collected", collected.stdout, re.M)
    assert found, collected.stdout[-2000:] + collected.stderr[-2000:]
    count, said = int(found.group(1)), int(claimed.group(1).replace(",", ""))
    assert abs(count - said) <= 0.15 * count, (said, count)
