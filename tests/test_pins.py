"""environment.yml (what Azure serves with) pins the same libraries as requirements.txt (what we test with)."""

from __future__ import annotations

import re

import yaml

from tests.conftest import ROOT

SHARED = ("scikit-learn", "joblib", "pandas", "numpy", "azureml-inference-server-http")
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)")


def pins(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        match = PIN.match(line.strip())
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def test_environment_pins_match_requirements():
    requirements = pins((ROOT / "requirements.txt").read_text().splitlines())
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict) and "pip" in d)
    served = pins(pip_section)
    for package in SHARED:
        assert package in requirements, f"{package} is not pinned in requirements.txt"
        assert served.get(package) == requirements[package], f"{package}: environment.yml differs"


def test_installed_scikit_learn_is_the_pinned_one():
    import sklearn

    assert pins((ROOT / "requirements.txt").read_text().splitlines())["scikit-learn"] == sklearn.__version__
