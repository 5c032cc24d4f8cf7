"""Local deployments run in their environment's own Python (common/local/environments.py): real builds with uv
(from the package registry, cached for the test session), real servers, real HTTP on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import create_online_deployment
import manage_online_endpoint
from common.local import environments
from common.local.environments import CondaSpec, EnvironmentProblem, load_conda_file, read_conda
from tests.conftest import ROOT
from tests.localtarget import SAMPLE as SAMPLE_BODY
from tests.localtarget import LocalSetup, local_target, write_score

ENDPOINT = "env-local"
SERVER = "azureml-inference-server-http==1.5.1"


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[LocalSetup]:
    with local_target(tmp_path_factory.mktemp("env-home"), ENDPOINT, model_dir) as setup:
        setup.deploy("blue", 100)
        yield setup


def conda(*dependencies: object) -> dict[str, object]:
    return {"name": "x", "dependencies": list(dependencies)}


# --- what a conda file can and cannot become ----------------------------------------------------------------------


def test_the_repositorys_environment_yml_is_python_and_its_pins():
    spec = load_conda_file(ROOT / "environment.yml")
    assert spec.python == "3.11"
    assert SERVER in spec.pip
    assert spec.pin("scikit-learn") == "1.9.1"
    assert spec.pin("scikit_learn") == "1.9.1"  # names compare as pip compares them
    assert spec.pin("tensorflow") is None


def test_the_definition_hash_ignores_order_and_follows_content():
    one = CondaSpec("3.11", ("numpy==2.4.6", SERVER))
    assert one.hash == CondaSpec("3.11", (SERVER, "numpy==2.4.6")).hash
    assert one.hash != CondaSpec("3.11", ("numpy==2.4.5", SERVER)).hash
    assert one.hash != CondaSpec("3.12", ("numpy==2.4.6", SERVER)).hash


@pytest.mark.parametrize(
    ("python", "expected"), [("python=3.11", "3.11"), ("python==3.11.7", "3.11.7"), ("python>=3.10", ">=3.10")]
)
def test_the_python_version_is_read_as_conda_writes_it(python, expected):
    assert read_conda(conda(python, "pip", {"pip": [SERVER]}), "f").python == expected


def test_conda_packages_come_from_pypi_under_their_pypi_names_with_their_versions():
    """Azure's model-1 conda.yaml lists numpy, scikit-learn and scipy as conda packages: each becomes its PyPI
    requirement (conda's fuzzy =X.Y is pip's ==X.Y.*, a build string and a channel dropped); the platform's own
    packages (C runtimes, OpenMP) are the machine's here."""
    spec = read_conda(
        conda(
            "python=3.12", "pip", "numpy=2.3.1", "scikit-learn=1.7.0", "conda-forge::py-xgboost>=2.0", "pandas 2.2.3",
            "matplotlib-base=3.9.1=py312h_0", "libgomp", "_openmp_mutex", "joblib", {"pip": [SERVER]},
        ),
        "conda.yaml",
    )  # fmt: skip

    assert spec.from_conda == (
        "numpy==2.3.1.*", "scikit-learn==1.7.0.*", "xgboost>=2.0", "pandas==2.2.3.*", "matplotlib==3.9.1.*", "joblib",
    )  # fmt: skip
    assert spec.pip == (*spec.from_conda, SERVER)
    assert spec.pin("scikit-learn") == "1.7.0"


def test_conda_packages_with_no_pypi_counterpart_are_refused_by_name_when_no_channel_can_be_reached(
    tmp_path, monkeypatch
):
    """Only a conda channel has r-base: the conda solver is tried first; without a channel it is refused by name."""
    spec = read_conda(conda("python=3.11", "pip", "r-base=4.3", "numpy", {"pip": [SERVER]}), "env.yml")
    assert spec.not_on_pypi == ("r-base=4.3",)
    assert spec.conda == ("python=3.11", "pip", "r-base=4.3", "numpy") and spec.wants_conda
    unreachable = dataclasses.replace(spec, channels=((tmp_path / "no-channel").as_uri(),))
    monkeypatch.setenv(environments.ENVIRONMENTS_VARIABLE, str(tmp_path / "venvs"))

    with pytest.raises(EnvironmentProblem) as refused:
        environments.ensure(unreachable, "rbase:1", tmp_path)

    message = str(refused.value)
    assert message.startswith("environment rbase:1: conda package(s) r-base=4.3 have no PyPI counterpart, and no "
                              "conda channel can be reached (could not find subdir ")  # fmt: skip
    assert message.endswith("deploy to Azure without --local, or replace them with PyPI packages under pip:")
    assert refused.value.exit_code == 10
    assert not (tmp_path / "venvs" / unreachable.hash / "venv").exists()


@pytest.mark.parametrize(
    ("python", "suggested"),
    [
        ("python=3.11", "azureml-inference-server-http==1.5.1"),
        ("python=3.8", "azureml-inference-server-http==1.2.2"),
        ("python=3.7", "azureml-inference-server-http==0.8.4"),
        ("python=3.6.9", "azureml-inference-server-http==0.7.7"),
    ],
)
def test_a_conda_file_without_the_inference_server_is_refused_with_one_its_python_can_install(python, suggested):
    with pytest.raises(EnvironmentProblem) as refused:
        read_conda(conda(python, {"pip": ["scikit-learn==1.9.1"]}), "env.yml")
    assert str(refused.value).startswith(
        "env.yml lacks azureml-inference-server-http (or azureml-defaults, which brings it) under pip:, so in Azure"
    )
    assert str(refused.value).endswith(f"add {suggested} under pip:")


def test_azureml_defaults_counts_as_the_inference_server():
    spec = read_conda(conda("python=3.7", "pip", {"pip": ["azureml-defaults==1.47.0", "scikit-learn==0.24.2"]}), "f")
    assert spec.python == "3.7" and "azureml-defaults==1.47.0" in spec.pip


@pytest.mark.parametrize("document", [None, [], {"dependencies": "numpy"}])
def test_what_is_not_a_conda_file_is_refused(document):
    with pytest.raises(EnvironmentProblem, match="is not a conda file"):
        read_conda(document, "env.yml")


def test_a_python_this_machine_lacks_is_named_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv(environments.ENVIRONMENTS_VARIABLE, str(tmp_path / "venvs"))
    with pytest.raises(EnvironmentProblem) as refused:
        environments.ensure(CondaSpec("2.5", (SERVER,)), "old:1", tmp_path)
    assert str(refused.value).startswith("environment old:1 needs Python 2.5 and uv found no such interpreter")
    assert "--- uv said ---" in refused.value.details
    assert not (tmp_path / "venvs" / CondaSpec("2.5", (SERVER,)).hash).exists()  # nothing half-built is kept


# --- deployments in their environments ----------------------------------------------------------------------------


def test_a_deployment_runs_in_the_environment_show_names(local, run_script, shared_local_environments):
    spec = load_conda_file(ROOT / "environment.yml")

    result = run_script(manage_online_endpoint, ["show", "--local", "--endpoint_name", ENDPOINT])

    assert result.code == 0, result.err
    assert f"environment: diabetes-classify (environment.yml), Python 3.11.7, hash {spec.hash}" in result.out
    python = shared_local_environments / spec.hash / "venv" / "bin" / "python"
    assert local.deployment("blue")["python"] == str(python)
    assert local.score().status_code == 200


@pytest.mark.parametrize(
    ("statement", "missing"),
    [
        ("import azure.ai.ml  # the toolkit has it, the environment does not", "No module named 'azure"),
        ("import common.cli  # the toolkit's own code is not on the server's path", "No module named 'common'"),
    ],
)
def test_an_import_the_environment_cannot_satisfy_fails_the_deployment_with_the_error_first(
    local, run_script, tmp_path, statement, missing
):
    code = write_score(tmp_path / "code", f"{statement}\n\n\ndef init():\n    pass\n\n\ndef run(raw):\n    return []\n")
    before = local.endpoint()["traffic"]

    result = run_script(create_online_deployment, local.deployment_args("missing", 10, score_path=code))

    assert result.code == 4, result.err
    cause = result.err.splitlines()[3]
    assert cause.startswith("cause: ModuleNotFoundError: ") and missing in cause, result.err
    assert "Traffic was not changed." in result.err
    assert local.endpoint()["traffic"] == before
    run_script(
        manage_online_endpoint,
        ["delete", "--local", "--endpoint_name", ENDPOINT, "--deployment_name", "missing", "--yes"],
    )


def test_a_registered_conda_file_gets_its_own_environment_and_the_same_file_reuses_it(local, run_script, tmp_path):
    conda_file = tmp_path / "pinned-python.yml"
    conda_file.write_text((ROOT / "environment.yml").read_text().replace("python=3.11", "python=3.11.7"))
    argv = [
        *local.deployment_args("pinned", 0),
        *("--environment", "pinned-python", "--create_environment", "--conda_file", str(conda_file)),
    ]

    first = run_script(create_online_deployment, argv)
    again = run_script(create_online_deployment, argv)

    assert first.code == 0, first.err
    assert again.code == 0, again.err
    expected = load_conda_file(conda_file).hash
    assert expected != load_conda_file(ROOT / "environment.yml").hash
    assert f"Built environment pinned-python:1 ({expected}, Python 3.11.7, uv from PyPI)" in first.err
    steps = [line.split(" (")[0].strip() for line in first.err.splitlines() if line.startswith("  installed in ")]
    assert len(steps) == 1 and re.match(r"installed in [\d.]+ s; compiling", steps[0]), first.err  # never silent
    assert "Building environment" not in again.err
    assert local.deployment("pinned")["local_environment"]["hash"] == expected

    conda_file.write_text(conda_file.read_text().replace("      - joblib==1.6.0\n", ""))
    changed = run_script(create_online_deployment, argv)

    assert changed.code == 0, changed.err
    assert "Building environment pinned-python:2" in changed.err
    assert local.deployment("pinned")["local_environment"]["hash"] == load_conda_file(conda_file).hash != expected
    assert local.score(deployment="pinned").status_code == 200


def test_a_conda_file_the_local_target_cannot_build_is_refused_before_anything_is_written(local, run_script, tmp_path):
    conda_file = tmp_path / "conda-only.yml"
    conda_file.write_text("dependencies:\n  - python=3.11\n  - r-base\n  - pip:\n      - " + SERVER + "\n")
    argv = [
        *local.deployment_args("condaonly", 0),
        *("--environment", "conda-only", "--create_environment", "--conda_file", str(conda_file)),
    ]

    result = run_script(create_online_deployment, argv)

    assert result.code == 10, result.err
    (line,) = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert "conda package(s) r-base have no PyPI counterpart" in line
    assert not local.store.deployment_dir(ENDPOINT, "condaonly").exists()


@pytest.mark.parametrize(
    ("dependencies", "exit_code", "said"),
    [
        (
            "  - python=3.11\n  - pip:\n      - " + SERVER + "\n      - scikit-learn==0.0.1\n",
            10,
            "environment cannot10:1: installing its pip packages failed (the image build would fail in Azure too)",
        ),
        (
            "  - python=3.5\n  - pip:\n      - " + SERVER + "\n",
            11,
            "environment cannot11:1 needs Python 3.5 and uv found no such interpreter on this machine",
        ),
    ],
    ids=["a-pin-nothing-satisfies", "a-python-not-here"],
)
def test_an_environment_that_cannot_be_had_is_one_line_with_its_own_exit_code(
    local, run_script, tmp_path, dependencies, exit_code, said
):
    """A pin no release satisfies (10) and a Python this machine does not have (11): one error line (uv's own words
    follow it), and no deployment written."""
    conda_file = tmp_path / "unsatisfiable.yml"
    conda_file.write_text("dependencies:\n" + dependencies)
    name = f"cannot{exit_code}"
    argv = [
        *local.deployment_args(name, 0),
        *("--environment", name, "--create_environment", "--conda_file", str(conda_file)),
    ]

    result = run_script(create_online_deployment, argv)

    assert result.code == exit_code, result.err
    lines = result.err.splitlines()
    mine = next(index for index, line in enumerate(lines) if line.startswith("error:"))
    assert said in lines[mine]
    assert lines[mine + 1] == "--- uv said ---"  # what follows is uv's
    assert not local.store.deployment_dir(ENDPOINT, name).exists()


def test_a_model_trained_with_another_scikit_learn_is_warned_about_at_deploy_time(
    local, run_script, model_dir, tmp_path
):
    model = tmp_path / "old-model"
    shutil.copytree(model_dir / "diabetes-model", model)
    metadata = json.loads((model / "metadata.json").read_text())
    (model / "metadata.json").write_text(json.dumps({**metadata, "sklearn_version": "1.0.2"}))
    argv = [arg if arg != "azureml:diabetes-predict:1" else str(model) for arg in local.deployment_args("oldsk", 0)]

    result = run_script(create_online_deployment, argv)

    assert (
        "warning: the model was trained with scikit-learn 1.0.2 and environment diabetes-classify (environment.yml) "
        "pins scikit-learn 1.9.1" in result.err
    )
    assert result.err.index("warning: the model was trained") < result.err.index("deployment oldsk: Succeeded")


# --- older servers and gunicorns: the launcher adapts, and names itself when it cannot ------------------------------

TRIVIAL_SCORE = "def init():\n    print('init ran')\n\n\ndef run(raw):\n    return {'ok': True}\n"


def deploy_with(
    local: LocalSetup, run_script, tmp_path: Path, name: str, pip: list[str], python: str = "3.11"
) -> tuple[object, object]:
    """A deployment of a trivial score.py in an environment of these pip packages (and this Python)."""
    conda_file = tmp_path / f"{name}.yml"
    conda_file.write_text(json.dumps(conda(f"python={python}", "pip", {"pip": pip})))
    code = write_score(tmp_path / f"{name}-code", TRIVIAL_SCORE)
    argv = [
        *local.deployment_args(name, 0, score_path=code),
        *("--environment", f"{name}-env", "--create_environment", "--conda_file", str(conda_file)),
    ]
    return run_script(create_online_deployment, argv), code


def test_server_1_4_under_gunicorn_23_starts_without_the_control_socket_option(local, run_script, tmp_path):
    """gunicorn's --no-control-socket exists from 25.1: passing it to gunicorn 23 ended the server at start."""
    result, _ = deploy_with(
        local, run_script, tmp_path, "older", ["azureml-inference-server-http==1.4.0", "gunicorn==23.0.0"]
    )

    assert result.code == 0, result.err
    assert local.score(SAMPLE_BODY, deployment="older").json() == {"ok": True}


def test_a_server_0_x_missing_a_package_is_the_environments_fault_named_by_the_launcher(local, run_script, tmp_path):
    """azureml-inference-server-http 0.8.4 (what azureml-defaults 1.4x brings) runs under gunicorn 20.1, which imports
    pkg_resources: without setuptools the launcher says so, never that score.py's init() failed; with it, it serves."""
    missing, _ = deploy_with(local, run_script, tmp_path, "zero-x", ["azureml-inference-server-http==0.8.4"])

    assert missing.code == 4
    assert (
        "error: deployment zero-x failed: the toolkit's server launcher could not start the server (not score.py): "
        "the inference server cannot be imported in the deployment's environment (ModuleNotFoundError: No module "
        "named 'pkg_resources'): add setuptools<81 under pip: in its conda file"
    ) in missing.err.splitlines()
    assert "init()" not in missing.err.split("not score.py")[1].splitlines()[0]

    fixed, _ = deploy_with(
        local, run_script, tmp_path, "zero-x", ["azureml-inference-server-http==0.8.4", "setuptools<81"]
    )
    assert fixed.code == 0, fixed.err
    assert local.score(SAMPLE_BODY, deployment="zero-x").json() == {"ok": True}


def test_pyenvs_pythons_replace_its_shims_the_selected_one_first(tmp_path, monkeypatch):
    monkeypatch.delenv("PYENV_VERSION", raising=False)
    root = tmp_path / "pyenv"
    for version in ("3.9.18", "3.7.16", "3.11.7", "3.13.0"):
        (root / "versions" / version / "bin").mkdir(parents=True)
    (root / "version").write_text("3.11.7\n")
    versions = root / "versions"

    path = environments.interpreter_path(f"/cargo/bin:{root}/shims:/usr/bin", str(root))

    assert path.split(":") == [
        "/cargo/bin",
        *(f"{versions}/{name}/bin" for name in ("3.11.7", "3.13.0", "3.9.18", "3.7.16")),
        "/usr/bin",  # after them, as the shims were: its python3.11 is not the one pyenv selected
    ]
    assert environments.interpreter_path("/usr/bin:/bin", str(root)) == "/usr/bin:/bin"  # no pyenv: as it was


def test_a_conda_file_with_conda_packages_builds_and_serves(local, run_script, tmp_path):
    """numpy as a conda package (and libgomp, the platform's): installed from PyPI at the version written, said once."""
    conda_file = tmp_path / "conda-packages.yml"
    conda_file.write_text(
        "dependencies:\n  - python=3.11\n  - pip\n  - numpy=2.4.6\n  - libgomp\n  - pip:\n      - " + SERVER + "\n"
    )
    code = write_score(
        tmp_path / "numpy-code",
        "import numpy\n\ndef init():\n    pass\n\ndef run(raw):\n    return {'numpy': numpy.__version__}\n",
    )
    argv = [
        *local.deployment_args("condapkgs", 0, score_path=code),
        *("--environment", "conda-packages", "--create_environment", "--conda_file", str(conda_file)),
    ]

    result = run_script(create_online_deployment, argv)

    assert result.code == 0, result.err
    said = [line for line in result.err.splitlines() if "conda packages come from PyPI" in line]
    assert len(said) == 1 and said[0].startswith(
        "  its conda packages come from PyPI, under their PyPI names (no conda channel can be reached: "
    )  # conda's defaults cannot be reached from here
    assert said[0].endswith("): numpy==2.4.6.*")
    assert local.score(SAMPLE_BODY, deployment="condapkgs").json() == {"numpy": "2.4.6"}


# --- conda packages from a conda channel, solved and installed by py-rattler ---------------------------------------


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A conda channel made here (conda channels cannot be reached from this machine): `python`, this interpreter,
    and `tinylib`, which only this channel has. Its URL and its Python's version."""
    from tests import conda_channel

    folder = tmp_path_factory.mktemp("channel")
    version = conda_channel.python_package(folder)
    conda_channel.noarch_package(folder, "tinylib", "1.2.3")
    return conda_channel.index(folder), version


def test_conda_packages_come_from_the_files_channel_when_it_can_be_reached(local, run_script, tmp_path, channel):
    url, python = channel
    conda_file = tmp_path / "conda-channel.yml"
    conda_file.write_text(
        f"channels:\n  - {url}\ndependencies:\n  - python={python}\n  - tinylib=1.2\n  - pip:\n      - {SERVER}\n"
    )
    code = write_score(
        tmp_path / "tinylib-code",
        "import sys\nimport tinylib\n\ndef init():\n    pass\n\n"
        "def run(raw):\n    return {'tinylib': tinylib.VERSION, 'prefix': sys.prefix}\n",
    )
    argv = [
        *local.deployment_args("fromchannel", 0, score_path=code),
        *("--environment", "from-channel", "--create_environment", "--conda_file", str(conda_file)),
    ]

    result = run_script(create_online_deployment, argv)

    assert result.code == 0, result.err
    said = [line for line in result.err.splitlines() if "conda packages come from" in line]
    assert len(said) == 1 and said[0].startswith(f"  its conda packages come from {url}: 2 installed in "), said
    answer = local.score(SAMPLE_BODY, deployment="fromchannel").json()
    environment = local.deployment("fromchannel")["local_environment"]
    assert answer == {"tinylib": "1.2.3", "prefix": str(Path(environment["path"]).parents[1])}  # the conda prefix
    record = json.loads((Path(environment["path"]).parents[2] / "environment.json").read_text())
    assert record["conda"] == [f"python=={python}", "tinylib==1.2.3"]
    assert record["built_with"].startswith(f"conda packages from {url} (py-rattler)")


def test_a_conda_file_its_channel_cannot_satisfy_is_one_line_exit_10(local, run_script, tmp_path, channel):
    url, python = channel
    conda_file = tmp_path / "unsolvable.yml"
    conda_file.write_text(
        f"channels:\n  - {url}\ndependencies:\n  - python={python}\n  - tinylib=9\n  - pip:\n      - {SERVER}\n"
    )
    argv = [
        *local.deployment_args("unsolvable", 0),
        *("--environment", "unsolvable", "--create_environment", "--conda_file", str(conda_file)),
    ]

    result = run_script(create_online_deployment, argv)

    assert result.code == 10, result.err
    (line,) = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert f"its conda packages cannot be installed from {url} (Cannot solve the request because of: No candidates " \
           "were found for tinylib 9.*" in line  # fmt: skip
    assert not local.store.deployment_dir(ENDPOINT, "unsolvable").exists()


def test_channels_are_read_as_conda_reads_them():
    from common.local.conda_solver import DEFAULT_CHANNELS, channels_of

    assert channels_of([]) == DEFAULT_CHANNELS  # no channels: conda's defaults
    assert channels_of(["conda-forge", "defaults"]) == ("conda-forge", *DEFAULT_CHANNELS)
    assert channels_of(["conda-forge", "conda-forge"]) == ("conda-forge",)
