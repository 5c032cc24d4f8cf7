"""What each script and verb prints on stdout against the local target, in text and --output json, pinned byte for
byte (tests/golden/local/; UPDATE_GOLDEN=1 rewrites them after a change meant to show there). One endpoint goes
through every verb in order; what differs from run to run (ports, keys, times, latencies, the Python version) is
replaced by a placeholder before the comparison."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import create_online_deployment
import create_online_endpoint
import invoke_online_endpoint
import manage_online_endpoint
from tests.localtarget import LocalSetup, local_target

GOLDEN = Path(__file__).parents[1] / "golden" / "local"
ENDPOINT = "golden-local"
AT = ["--local", "--endpoint_name", ENDPOINT]
MANAGE = manage_online_endpoint
# (golden file, script, argv); the order matters: each step starts from the state the one before left
STEPS = [
    ("deployment.text", create_online_deployment, "blue 100"),
    ("deployment.json", create_online_deployment, "green 0"),
    ("endpoint.text", create_online_endpoint, [*AT, "--description", "kept"]),
    ("endpoint.json", create_online_endpoint, [*AT, "--description", "kept"]),
    ("show.text", MANAGE, ["show", *AT]),
    ("show.json", MANAGE, ["show", *AT]),
    ("keys.text", MANAGE, ["keys", *AT]),
    ("keys.json", MANAGE, ["keys", *AT]),
    ("invoke.text", invoke_online_endpoint, AT),
    ("invoke.json", invoke_online_endpoint, AT),
    ("probe.text", MANAGE, ["probe", *AT, "--requests", "10"]),
    ("probe.json", MANAGE, ["probe", *AT, "--requests", "10"]),
    ("metrics.text", MANAGE, ["metrics", *AT, "--deployment_name", "blue"]),
    ("metrics.json", MANAGE, ["metrics", *AT, "--deployment_name", "blue"]),
    ("logs.text", MANAGE, ["logs", *AT, "--deployment_name", "blue", "--container", "storage-initializer"]),
    ("logs.json", MANAGE, ["logs", *AT, "--deployment_name", "blue", "--container", "storage-initializer"]),
    ("traffic.text", MANAGE, ["traffic", *AT, "--set", "blue=80", "green=20"]),
    ("traffic.json", MANAGE, ["traffic", *AT, "--set", "blue=70", "green=30"]),
    ("mirror.text", MANAGE, ["traffic", *AT, "--set", "blue=100", "--mirror", "green=10"]),
    ("mirror.json", MANAGE, ["traffic", *AT, "--mirror", "none"]),
    ("promote.text", MANAGE, ["promote", *AT, "--deployment_name", "green"]),
    ("promote.json", MANAGE, ["promote", *AT, "--deployment_name", "blue"]),
    ("rollback.text", MANAGE, ["rollback", *AT]),
    ("rollback.json", MANAGE, ["rollback", *AT]),
    ("stop.text", MANAGE, ["stop", *AT]),
    ("start.text", MANAGE, ["start", *AT]),
    ("stop.json", MANAGE, ["stop", *AT]),
    ("start.json", MANAGE, ["start", *AT]),
    ("delete-deployment.text", MANAGE, ["delete", *AT, "--deployment_name", "green", "--force"]),
    ("delete.json", MANAGE, ["delete", *AT, "--yes"]),
]


def normalized(text: str, setup: LocalSetup) -> str:
    keys = setup.store.keys_file(ENDPOINT)
    if keys.is_file():
        for name, value in json.loads(keys.read_text()).items():
            if isinstance(value, str) and len(value) > 8:
                text = text.replace(value, f"<{name}>")
    text = text.replace(str(setup.home), "<home>")
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)?", "<time>", text)
    text = re.sub(r"Python \d+\.\d+\.\d+, hash [0-9a-f]+", "Python <version>, hash <hash>", text)
    return re.sub(r"(p50|p95|p99)(_ms\": | )\d+(\.\d+)?", r"\1\2<ms>", text)


def test_every_verb_prints_what_it_printed(tmp_path, model_dir, run_script):
    differing = []
    with local_target(tmp_path / "home", ENDPOINT, model_dir) as setup:
        for name, script, argv in STEPS:
            if isinstance(argv, str):  # a deployment: name and traffic
                deployment, share = argv.split()
                argv = setup.deployment_args(deployment, int(share))
            if name.endswith(".json"):
                argv = [*argv, "--output", "json"]
            result = run_script(script, argv)
            assert result.code == 0, f"{name}: {result.err}"
            out = normalized(result.out, setup)
            if os.environ.get("UPDATE_GOLDEN"):
                GOLDEN.mkdir(parents=True, exist_ok=True)
                (GOLDEN / name).write_text(out)
            if out != (GOLDEN / name).read_text():
                differing.append(f"{name}:\n{out}")
    assert not differing, "\n".join(differing)
