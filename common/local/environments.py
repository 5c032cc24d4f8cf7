"""Local deployments run in their environment's own Python, as Azure runs them in their environment's image.

An environment's conda file is turned into an environment of its own, nothing of the toolkit's in it. A file
that lists conda packages (beyond python, pip and the platform's) is solved and installed from its channels by
py-rattler, as Azure's image build installs it (common/local/conda_solver.py), its pip: packages then with uv; when
no channel can be reached, its conda packages are installed from PyPI under their PyPI names, which is said once.
Any other file is a virtual environment made by uv from an interpreter already on this machine, with its pip:
packages exactly as pinned. It is built once per definition: its folder is named by a hash of the Python version
and the requirements, so a second deployment with the same file starts in seconds and a changed file gets a new
environment.

What cannot be had (a pin nothing satisfies: exit 10; a Python with no interpreter on this machine: exit 11; a
conda package PyPI lacks with no channel reachable) and what Azure could not start (no
azureml-inference-server-http) are refused with a message that says what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.cli import progress
from common.errors import EXIT_ENVIRONMENT, EXIT_NO_PYTHON, CliError
from common.local.state import ENVIRONMENTS_FOLDER

ENVIRONMENTS_VARIABLE = "AZUREML_LOCAL_ENVIRONMENTS"  # where built environments live (default: HOME/venvs)
SERVER_PACKAGE = "azureml-inference-server-http"
SERVER_PROVIDERS = {SERVER_PACKAGE, "azureml-defaults"}  # azureml-defaults 1.x requires the server (0.x releases)
# (oldest Python 3 minor version, the server release to suggest for it), newest first; 1.3.0-1.3.4 are left out
# (azureml-examples #4012: they break azureml.contrib imports)
SERVER_RELEASES = (
    (9, f"{SERVER_PACKAGE}==1.5.1"),
    (8, f"{SERVER_PACKAGE}==1.2.2"),
    (7, f"{SERVER_PACKAGE}==0.8.4"),
    (6, f"{SERVER_PACKAGE}==0.7.7"),
)
BUILD_FORMAT = 1  # bump when the way environments are built changes: every environment is rebuilt
RECORD = "environment.json"
CONDA_PACKAGE_CACHE = "conda-packages"  # beside the environments: package files downloaded once for all of them
REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
# Conda packages whose PyPI package has another name (conda-forge's and defaults' names)
PYPI_NAMES = {
    "py-xgboost": "xgboost",
    "py-xgboost-cpu": "xgboost",
    "py-lightgbm": "lightgbm",
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "matplotlib-base": "matplotlib",
    "msgpack-python": "msgpack",
    "py-opencv": "opencv-python-headless",
    "opencv": "opencv-python-headless",
    "pytables": "tables",
}
# Conda packages that are the platform a conda environment stands on (C runtimes, OpenMP, certificates, the package
# manager): a uv environment stands on this machine's, and the PyPI wheels carry the libraries they need
PLATFORM_PACKAGES = {
    "pip", "_libgcc_mutex", "_openmp_mutex", "libgcc-ng", "libgcc", "libstdcxx-ng", "libstdcxx", "libgomp",
    "ca-certificates", "openssl", "libffi", "libzlib", "zlib", "xz", "bzip2", "ncurses", "readline", "sqlite", "tk",
    "tzdata", "ld_impl_linux-64", "libuuid", "libnsl", "libsqlite", "libxcrypt", "mkl", "mkl-service", "intel-openmp",
    "blas", "libblas", "libcblas", "liblapack", "libopenblas", "openblas", "nomkl",
}  # fmt: skip
# Conda packages with no PyPI counterpart at all: a conda file that needs them is refused here
NOT_ON_PYPI = {"r-base", "r-essentials", "cudatoolkit", "cudnn", "cuda-toolkit", "nodejs", "openjdk", "gcc", "gxx"}
CONDA_SPEC = re.compile(r"^\s*([A-Za-z0-9_][A-Za-z0-9._-]*)\s*(?:(==|=|>=|<=|>|<|!=|~=)\s*([^\s#]+))?")


class EnvironmentProblem(CliError):
    """An environment the local target cannot build, or that Azure could not start."""

    exit_code = EXIT_ENVIRONMENT


class PythonNotFound(EnvironmentProblem):
    """The conda file's Python has no interpreter on this machine (uv installs none: only-system)."""

    exit_code = EXIT_NO_PYTHON


@dataclass(frozen=True)
class CondaSpec:
    """What defines a local environment: the Python version asked for (None: any) and the pip requirements, those
    the conda file lists as conda packages first (`from_conda`, as PyPI names them)."""

    python: str | None
    pip: tuple[str, ...]
    from_conda: tuple[str, ...] = ()
    # the conda packages as the file writes them (python and pip included), its channels, and those of its conda
    # packages PyPI does not have: what the conda solver installs when a channel can be reached
    conda: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    not_on_pypi: tuple[str, ...] = ()

    @property
    def pip_section(self) -> tuple[str, ...]:
        """The file's pip: requirements alone (without its conda packages' PyPI names)."""
        return tuple(requirement for requirement in self.pip if requirement not in self.from_conda)

    @property
    def wants_conda(self) -> bool:
        """Whether the file lists conda packages beyond python and the platform's: the conda solver is tried first."""
        return bool(self.from_conda or self.not_on_pypi)

    @property
    def hash(self) -> str:
        definition: dict[str, Any] = {"format": BUILD_FORMAT, "python": self.python, "pip": sorted(self.pip)}
        if self.not_on_pypi:  # only a conda channel has them: they tell two such files apart
            definition["conda_only"] = sorted(self.not_on_pypi)
        return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16]

    def pin(self, package: str) -> str | None:
        """The version pinned for `package` (NAME==VERSION, or a conda package's NAME==VERSION.*), if any."""
        for requirement in self.pip:
            name, _, version = requirement.partition("==")
            if _normal(name) == _normal(package) and version and not re.search(r"[,;<>!~=]", version):
                return version.strip().removesuffix(".*")
        return None


@dataclass(frozen=True)
class BuiltEnvironment:
    name: str
    hash: str
    python: Path
    python_version: str
    seconds: float
    reused: bool
    built_with: str = "uv from PyPI"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hash": self.hash,
            "python": self.python_version,
            "path": str(self.python),
            "built_with": self.built_with,
        }


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def short_hash(document: Any) -> str:
    """A conda document's short fingerprint: how an environment without a name is told apart."""
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()[:8]


def requirement_name(text: str) -> str:
    """The normalized package name of a pip requirement or a conda spec ('' for neither)."""
    match = REQUIREMENT_NAME.match(text.split("::")[-1])
    return _normal(match.group(1)) if match else ""


def read_conda(document: Any, source: str) -> CondaSpec:
    """The Python version and pip requirements of a conda file; refuses what uv cannot reproduce and what Azure
    could not start."""
    if not isinstance(document, dict) or not isinstance(document.get("dependencies", []), list):
        raise EnvironmentProblem(f"{source} is not a conda file: it needs a dependencies: list")
    python: str | None = None
    pip: list[str] = []
    from_conda: list[str] = []
    unsupported: list[str] = []
    for dependency in document.get("dependencies") or []:
        if isinstance(dependency, dict) and "pip" in dependency:
            pip.extend(str(requirement).strip() for requirement in dependency["pip"] or [])
            continue
        text = str(dependency).split("::")[-1]  # conda-forge::numpy=2.3.1: the channel is conda's alone
        match = CONDA_SPEC.match(text)
        name = match.group(1).lower() if match else ""
        if name == "python":
            operator, version = match.group(2), match.group(3)  # type: ignore[union-attr]
            python = version if operator in ("=", "==") else (f"{operator}{version}" if version else None)
        elif name in NOT_ON_PYPI or not match:
            unsupported.append(str(dependency))
        elif name not in PLATFORM_PACKAGES:
            operator, version = match.group(2), match.group(3)
            bare = text[match.end() :].split()
            if operator is None and bare and bare[0][:1].isdigit():  # "numpy 2.3.1": conda's spelling of =2.3.1
                operator, version = "=", bare[0]
            from_conda.append(pypi_requirement(name, operator, version))
    if not any(requirement_name(requirement) in SERVER_PROVIDERS for requirement in pip):
        raise EnvironmentProblem(
            f"{source} lacks {SERVER_PACKAGE} (or azureml-defaults, which brings it) under pip:, so in Azure the "
            f"container could not start (the server that runs score.py is not there); add "
            f"{server_for_python(python)} under pip:"
        )
    conda = tuple(str(d) for d in document.get("dependencies") or [] if not isinstance(d, dict))
    channels = tuple(str(channel) for channel in document.get("channels") or [])
    return CondaSpec(python, tuple([*from_conda, *pip]), tuple(from_conda), conda, channels, tuple(unsupported))


def pypi_requirement(name: str, operator: str | None, version: str | None) -> str:
    """A conda package spec as pip writes it: conda's fuzzy `=1.2` (1.2 or any 1.2.x) is pip's `==1.2.*`, a build
    string (`=1.2.3=py312h...`) is dropped, and the name is its PyPI name."""
    pypi = PYPI_NAMES.get(name, name)
    if not version:
        return pypi
    version = version.split("=")[0]  # numpy=2.3.1=py312h... : the build string is conda's alone
    if operator == "=":
        return f"{pypi}=={version}" if version.endswith("*") else f"{pypi}=={version}.*"
    return f"{pypi}{operator}{version}"


def server_for_python(python: str | None) -> str:
    """The newest azureml-inference-server-http the Python asked for can install (each release's Requires-Python:
    1.4 and later need 3.9, 1.0-1.3 need 3.8, 0.8 needs 3.7, 0.7 runs on 3.6)."""
    found = re.match(r"^(?:==|=)?\s*3\.(\d+)", python or "")
    minor = int(found.group(1)) if found else None
    for oldest_minor, requirement in SERVER_RELEASES:
        if minor is None or minor >= oldest_minor:
            return requirement
    return SERVER_RELEASES[-1][1]


def load_conda_file(path: Path) -> CondaSpec:
    import yaml

    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise EnvironmentProblem(f"cannot read the conda file {str(path)!r}: {error}") from None
    return read_conda(document, str(path))


def root(home: Path) -> Path:
    configured = os.environ.get(ENVIRONMENTS_VARIABLE, "").strip()
    return Path(configured).expanduser() if configured else home / ENVIRONMENTS_FOLDER


def _uv() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def _tool_environment() -> dict[str, str]:
    """uv's environment: nothing of the toolkit's own virtual environment, so it cannot be picked as the base, and
    a PATH on which it finds every Python pyenv installed (interpreter_path)."""
    hidden = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "CONDA_PREFIX", "UV_PYTHON")
    kept = {key: value for key, value in os.environ.items() if key not in hidden}
    return {**kept, "PATH": interpreter_path(os.environ.get("PATH", ""), os.environ.get("PYENV_ROOT"))}


def interpreter_path(path: str, pyenv_root: str | None) -> str:
    """PATH for uv's interpreter search: pyenv's shims replaced, where they stood, by the folders of the Pythons
    pyenv installed, its selected ones first (what the shims ran), then the others, newest first.

    A pyenv shim for a version that is not selected (python3.9 while 3.11 is pyenv's global one) fails when run
    instead of being skipped, and uv stops at the first one it finds: a conda file's python=3.9 could never be had.
    """
    root = Path(pyenv_root or Path.home() / ".pyenv")
    shims = str(root / "shims")
    folders = [folder for folder in path.split(os.pathsep) if folder]
    if shims not in (folder.rstrip("/") for folder in folders):
        return path
    installed = {folder.parent.name: str(folder) for folder in (root / "versions").glob("*/bin")}
    selected = [name for name in _selected_versions(root) if name in installed]
    others = sorted(set(installed) - set(selected), key=_version_key, reverse=True)
    pythons = [installed[name] for name in [*selected, *others]]
    replaced = [entry for folder in folders for entry in (pythons if folder.rstrip("/") == shims else [folder])]
    return os.pathsep.join(replaced)


def _selected_versions(root: Path) -> list[str]:
    """The versions pyenv's shims run: PYENV_VERSION, else its global version file."""
    chosen = os.environ.get("PYENV_VERSION", "")
    if not chosen:
        try:
            chosen = (root / "version").read_text()
        except OSError:
            return []
    return [name for name in re.split(r"[\s:]+", chosen) if name]


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name))


def ensure(spec: CondaSpec, name: str, home: Path) -> BuiltEnvironment:
    """The built environment for `spec`, building it first if this machine has not yet (under a lock, so two
    deployments asking at once build it once)."""
    from filelock import FileLock

    folder = root(home) / spec.hash
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        record = _read_record(folder)
        if record is not None:
            python = folder / "venv" / record.get("interpreter", "bin/python")
            built_with = record.get("built_with", "uv from PyPI")
            return BuiltEnvironment(name, spec.hash, python, record["python"], 0.0, True, built_with)
        return _build(spec, name, folder)


def _read_record(folder: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or "python" not in record:
        return None
    return record if (folder / "venv" / str(record.get("interpreter", "bin/python"))).exists() else None


def _build(spec: CondaSpec, name: str, folder: Path) -> BuiltEnvironment:
    shutil.rmtree(folder, ignore_errors=True)  # a build that was interrupted
    folder.mkdir(parents=True)
    wanted = f"Python {spec.python}" if spec.python else "this machine's Python"
    started = time.monotonic()
    log = folder / "build.log"
    venv = folder / "venv"
    from_channels = _from_conda_channels(spec, name, folder, log) if spec.wants_conda else None
    if from_channels is not None:
        built_with = f"conda packages from {', '.join(spec.channels) or 'defaults'} (py-rattler), pip: with uv"
        requirements_list = spec.pip_section
    else:
        progress(
            f"Building environment {name} ({wanted}, {len(spec.pip)} pip packages) with uv into {folder} "
            "(first use of this definition only)..."
        )
        python_flag = ["--python", spec.python] if spec.python else []
        _run(
            [_uv(), "venv", "--no-config", "--python-preference", "only-system", *python_flag, str(venv)],
            log,
            PythonNotFound(
                f"environment {name} needs {wanted} and uv found no such interpreter on this machine: install it "
                "(with your package manager or pyenv, for example) or change python= in its conda file"
            ),
        )
        built_with = "uv from PyPI" + (" (its conda packages under their PyPI names)" if spec.from_conda else "")
        requirements_list = spec.pip
    python = _interpreter(venv)
    requirements = folder / "requirements.txt"
    requirements.write_text("\n".join(requirements_list) + "\n")
    progress(
        f"  installing {', '.join(requirements_list)} (uv; seconds when its cache has them, longer to download)..."
    )
    _run(
        [
            *(_uv(), "pip", "install", "--no-config", "--python", str(python), "-r", str(requirements)),
            *(["--break-system-packages"] if from_channels is not None else []),  # a conda prefix, not a venv
        ],
        log,
        EnvironmentProblem(
            f"environment {name}: installing its pip packages failed (the image build would fail in Azure too)"
        ),
    )
    # compiled on every core, as pip compiles it in Azure's image build: the first start would otherwise compile
    # what score.py imports one file at a time (pandas and scikit-learn: 5.5 s instead of 4); packages' tests left out
    progress(f"  installed in {time.monotonic() - started:.1f} s; compiling the packages' bytecode on every core...")
    subprocess.run(
        [str(python), "-m", "compileall", "-q", "-j", "0", "-x", "/tests?/", str(venv / "lib")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    version = subprocess.run(
        [str(python), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    seconds = time.monotonic() - started
    record = {
        "name": name,
        "hash": spec.hash,
        "python": version,
        "interpreter": str(python.relative_to(venv)),
        "built_with": built_with,
        "pip": list(spec.pip),
        "conda": list(from_channels or ()),
        "build_seconds": seconds,
    }
    (folder / RECORD).write_text(json.dumps(record, indent=2))
    progress(f"Built environment {name} ({spec.hash}, Python {version}, {built_with}) in {seconds:.1f} s")
    return BuiltEnvironment(name, spec.hash, python, version, seconds, False, built_with)


def _interpreter(prefix: Path) -> Path:
    """The Python of a virtual environment or a conda prefix (a conda python package links bin/python too)."""
    for candidate in (prefix / "bin" / "python", prefix / "bin" / "python3", *sorted(prefix.glob("bin/python3.*"))):
        if candidate.exists():
            return candidate
    return prefix / "bin" / "python"


def _from_conda_channels(spec: CondaSpec, name: str, folder: Path, log: Path) -> tuple[str, ...] | None:
    """The environment's conda packages solved and installed from its channels into folder/venv, as Azure's image
    build installs them (the packages installed); None when no channel can be reached: the caller installs them
    from PyPI, which it says once. A file nothing satisfies is refused (exit 10), as Azure's build would fail."""
    from common.local import conda_solver

    channels = conda_solver.channels_of(list(spec.channels))
    progress(
        f"Building environment {name}: solving its conda packages ({', '.join(spec.conda)}) from "
        f"{', '.join(channels)} with py-rattler into {folder} (first use of this definition only)..."
    )
    cache = folder.parent / CONDA_PACKAGE_CACHE
    outcome = conda_solver.solve_and_install(channels, spec.conda, folder / "venv", cache, log)
    if outcome.kind == "installed":
        progress(
            f"  its conda packages come from {', '.join(channels)}: {len(outcome.packages)} installed in "
            f"{outcome.seconds:.1f} s"
        )
        return outcome.packages
    if outcome.kind == "unreachable":
        shutil.rmtree(folder / "venv", ignore_errors=True)
        if spec.not_on_pypi:
            raise EnvironmentProblem(
                f"environment {name}: conda package(s) {', '.join(spec.not_on_pypi)} have no PyPI counterpart, and "
                f"no conda channel can be reached ({outcome.message}): deploy to Azure without --local, or "
                "replace them with PyPI packages under pip:"
            )
        progress(
            f"  its conda packages come from PyPI, under their PyPI names (no conda channel can be reached: "
            f"{outcome.message}): {', '.join(spec.from_conda)}"
        )
        return None
    raise EnvironmentProblem(
        f"environment {name}: its conda packages cannot be installed from {', '.join(channels)} ({outcome.message}); "
        "the image build would fail in Azure too",
        details=f"see {log}",
    )


def _run(argv: list[str], log: Path, failure: EnvironmentProblem) -> None:
    with log.open("a") as output:
        output.write(f"$ {' '.join(argv)}\n")
        output.flush()
        result = subprocess.run(argv, stdout=output, stderr=subprocess.STDOUT, env=_tool_environment(), check=False)
    if result.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-12:])
        shutil.rmtree(log.parent, ignore_errors=True)
        failure.details = f"--- uv said ---\n{tail}"
        raise failure
