"""environment.yml (what Azure serves with) pins the same libraries as requirements.txt (what we test with)."""

from __future__ import annotations

import re

from tests.conftest import ROOT
from tests.pins import pinned_versions, requirement_pins

SHARED = ("scikit-learn", "joblib", "pandas", "numpy", "orjson", "azureml-inference-server-http")


def test_environment_pins_match_requirements():
    requirements = requirement_pins(ROOT / "requirements.txt")
    served = pinned_versions(ROOT / "environment.yml")
    for package in SHARED:
        assert package in requirements, f"{package} is not pinned in requirements.txt"
        assert served.get(package) == requirements[package], f"{package}: environment.yml differs"


def test_installed_scikit_learn_is_the_pinned_one():
    import sklearn

    assert requirement_pins(ROOT / "requirements.txt")["scikit-learn"] == sklearn.__version__


def test_the_lock_pins_what_requirements_txt_pins():
    """make setup installs requirements.txt and requirements.lock together: a pin changed in one alone fails it."""
    requirements = requirement_pins(ROOT / "requirements.txt")
    locked = requirement_pins(ROOT / "requirements.lock")
    differing = {
        name: (version, locked.get(name)) for name, version in requirements.items() if locked.get(name) != version
    }
    assert not differing, f"run make lock: requirements.txt and requirements.lock differ on {differing}"
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        name = re.match(r"^([A-Za-z0-9_.-]+)", line.strip())
        if name and not line.lstrip().startswith("#"):
            assert re.sub(r"[-_.]+", "-", name.group(1)).lower() in locked, (
                f"run make lock: {name.group(1)} is not in requirements.lock"
            )
