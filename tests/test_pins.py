"""environment.yml (what Azure serves with) pins the same libraries as requirements.txt (what we test with)."""

from __future__ import annotations

from common.pins import pinned_versions, requirement_pins
from tests.conftest import ROOT

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
