"""The command line's surface pinned byte for byte: every script's and every verb's --help against the files in
tests/golden/help/ (regenerate them with UPDATE_GOLDEN=1 after a change meant to show there)."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

import pytest

import commands
import create_online_deployment
import create_online_endpoint
import invoke_online_endpoint
import manage_online_endpoint
import train_model

GOLDEN = Path(__file__).parents[1] / "golden" / "help"
SCRIPTS = {
    "create_online_endpoint.py": create_online_endpoint,
    "create_online_deployment.py": create_online_deployment,
    "invoke_online_endpoint.py": invoke_online_endpoint,
    "manage_online_endpoint.py": manage_online_endpoint,
    "train_model.py": train_model,
}
CASES = [(script, []) for script in SCRIPTS] + [("manage_online_endpoint.py", [verb]) for verb in commands.VERBS]


def help_text(script: str, verb: list[str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", "120")  # argparse wraps to the terminal's width
    monkeypatch.setattr(sys, "argv", [script])  # the program name argparse prints
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        SCRIPTS[script].main([*verb, "--help"])
    assert done.value.code == 0
    return out.getvalue()


@pytest.mark.parametrize(
    ("script", "verb"), CASES, ids=lambda value: value if isinstance(value, str) else "-".join(value)
)
def test_help_is_unchanged(script, verb, monkeypatch):
    name = "-".join([script.removesuffix(".py"), *verb]) + ".txt"
    text = help_text(script, verb, monkeypatch)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        (GOLDEN / name).write_text(text)
    assert text == (GOLDEN / name).read_text()
