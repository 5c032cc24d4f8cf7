"""A full disk breaks nothing: a local home on a small tmpfs is filled, then a server is killed and commands run.
Supervision restarts the server without writing state first, show never calls a dead server running, and each
command is one line naming the folder and the figures, with nothing half-written (real processes; skipped where
a tmpfs cannot be mounted)."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import create_online_deployment
import manage_online_endpoint
from tests.localtarget import local_target, wait_until

ENDPOINT = "full-disk"
DISK_MEGABYTES = 48


@contextlib.contextmanager
def small_disk(folder: Path, size: str = f"{DISK_MEGABYTES}m") -> Iterator[Path]:
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill ({mounted.stderr.decode().strip() or 'not root'})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the device is full; the file, to remove to free the space again."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as handle, contextlib.suppress(OSError):  # nothing left to flush at close
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    return filler


def one_line_no_space(result, folder: str) -> None:
    lines = result.err.strip().splitlines()
    assert result.code == 1 and "Traceback" not in result.err, result.err
    assert lines[-1].startswith("error: no space left on the device for ") and folder in lines[-1], result.err
    assert "bytes free" in lines[-1] and "are needed" in lines[-1], result.err


def test_a_full_disk_stops_no_restart_and_every_command_says_so_in_one_line(tmp_path, model_dir, run_script):
    with small_disk(tmp_path / "disk") as disk, local_target(disk / "home", ENDPOINT, model_dir) as setup:
        setup.deploy("blue", 100)
        setup.deploy("green", 0)
        before = setup.status("blue")
        filler = fill(disk)

        os.kill(before["pid"], signal.SIGKILL)
        shown = run_script(manage_online_endpoint, ["show", "--local", "--endpoint_name", ENDPOINT, "--output", "json"])
        assert shown.code == 0
        blue = next(d for d in json.loads(shown.out)["deployments"] if d["name"] == "blue")
        # never running while it does not answer (it may be restarted by now: then it answers)
        assert blue["health"] != "running" or setup.score(deployment="blue").status_code == 200, blue
        frontdoor_log = setup.store.endpoint_dir(ENDPOINT) / "frontdoor.log"
        assert wait_until(lambda: setup.score().status_code == 200, 20), frontdoor_log.read_text()[-3000:]

        traffic = ["traffic", "--local", "--endpoint_name", ENDPOINT, "--set", "blue=90", "green=10"]
        revision, keys = setup.endpoint()["revision"], setup.store.keys_file(ENDPOINT).read_text()
        one_line_no_space(run_script(manage_online_endpoint, traffic), str(setup.store.endpoint_dir(ENDPOINT)))
        regenerate = ["keys", "--local", "--endpoint_name", ENDPOINT, "--regenerate", "secondary"]
        one_line_no_space(run_script(manage_online_endpoint, regenerate), str(setup.store.endpoint_dir(ENDPOINT)))
        assert setup.endpoint()["revision"] == revision and setup.store.keys_file(ENDPOINT).read_text() == keys
        created = run_script(create_online_deployment, setup.deployment_args("purple", 0))
        one_line_no_space(created, str(setup.store.deployment_dir(ENDPOINT, "purple")))
        assert not list(setup.store.deployment_dir(ENDPOINT, "purple").glob("code-*"))  # no partial snapshot

        filler.unlink()
        assert run_script(manage_online_endpoint, traffic).code == 0

        def both_answer() -> bool:
            return all(setup.score(deployment=name).status_code == 200 for name in ("blue", "green"))

        answers = {name: setup.score(deployment=name).text for name in ("blue", "green")}
        assert wait_until(both_answer, 15), (answers, setup.status("blue"), setup.status("green"))


def test_capture_on_a_full_disk_never_fails_a_request_and_keeps_whole_records(tmp_path, model_dir, run_script):
    """A whole local target on a full disk, collecting every request: the requests are answered, the records that
    could not be written are counted (show), and once there is room again collection goes on with whole records
    only (every line of every file parses: nothing half-written, nothing glued)."""
    from common.local import capture_files

    with small_disk(tmp_path / "disk") as disk, local_target(disk / "home", ENDPOINT, model_dir) as setup:
        argv = [*setup.deployment_args("blue", 100), "--data_collection", "model_inputs,model_outputs"]
        assert run_script(create_online_deployment, argv).code == 0
        assert setup.score().status_code == 200
        filler = fill(disk)

        answered = [setup.score().status_code for _ in range(40)]  # each collected request finds the disk full
        filler.unlink()
        assert answered == [200] * 40
        assert wait_until(lambda: setup.score().status_code == 200, 10)

        def dropped() -> int:
            shown = run_script(
                manage_online_endpoint, ["show", "--local", "--endpoint_name", ENDPOINT, "--output", "json"]
            )
            blue = next(d for d in json.loads(shown.out)["deployments"] if d["name"] == "blue")
            return int(blue.get("dropped_records", 0))

        assert wait_until(lambda: dropped() > 0, 20), "no dropped record was counted"
        for _ in range(10):
            assert setup.score().status_code == 200
        folder = setup.store.capture_dir(ENDPOINT, "blue")
        written = folder / "model_inputs"
        assert wait_until(lambda: any(written.rglob("*.jsonl")), 10)
        skipped: collections.Counter[str] = collections.Counter()
        records = list(capture_files.read(folder, "model_inputs", time.time() - 3600, time.time() + 60, skipped))
        assert records and not skipped, skipped  # whole lines only
