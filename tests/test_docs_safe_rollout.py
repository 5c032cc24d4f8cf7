"""docs/safe-rollout.md's local sequence run as written, command by command (its own file: the longest test, so it
runs beside the others when the suite runs in parallel)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

from tests.conftest import ROOT


def readme_sequence() -> list[str]:
    """docs/safe-rollout.md's local commands, in order (the code block after its marker)."""
    text = (ROOT / "docs" / "safe-rollout.md").read_text()
    block = text.split("<!-- safe-rollout-local", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.strip().splitlines()]


def test_the_readmes_safe_rollout_sequence_works_as_written(tmp_path):
    commands = readme_sequence()
    assert len(commands) == 13 and all(command.startswith("python ") and "--local" in command for command in commands)
    environment = {**os.environ, "AZUREML_LOCAL_HOME": str(tmp_path / "home")}
    outputs: list[str] = []
    try:
        for command in commands:
            argv = shlex.split(command)[1:]
            if argv[0] == "train_model.py":  # as written, but its model folder goes to the test's folder
                argv += ["--output_dir", str(tmp_path / "model")]
            done = subprocess.run(
                [sys.executable, *argv], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300
            )
            assert done.returncode == 0, (command, done.stdout, done.stderr)
            outputs.append(done.stdout)
    finally:
        subprocess.run(
            [
                sys.executable,
                "manage_online_endpoint.py",
                "delete",
                "--local",
                "--endpoint_name",
                "diabetes-safe",
                "--yes",
            ],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            timeout=120,
        )
    assert "Mirror traffic: none -> green=10%" in outputs[5]
    assert "mirrored copies:" in outputs[7]  # green answered its mirror share of the 300 probes
    assert "step 3/3: green 100%" in outputs[9] and "Rollout of green completed" in outputs[9]
    assert "Rolled back 'rollout green 10 50 100'" in outputs[10]
    assert "Live traffic:   blue=100% -> green=100%" in outputs[11]
    assert "Deleted deployment blue" in outputs[12]
