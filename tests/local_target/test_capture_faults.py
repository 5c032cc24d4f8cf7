"""Captured data and mirrored answers under faults and hostile answers, on the local target for real (issue 29):
nothing the shadow answers can change or fail a live answer, collection goes on after the cap removed its folder,
and a rollout restores the mirror whatever stops it."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import create_online_deployment
import manage_online_endpoint
from commands import run as run_command
from tests.localtarget import SAMPLE, LocalSetup, local_target, wait_until, write_score

ENDPOINT = "capture-faults"
# A shadow whose answer json cannot parse back: nested far deeper than Python's recursion limit
DEEP_SCORE = (
    "from azureml_inference_server_http.api.aml_response import AMLResponse\n\n"
    "def init():\n    pass\n\n"
    "def run(raw):\n    return AMLResponse('[' * 20000 + ']' * 20000, 200, json_str=False)\n"
)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[LocalSetup]:
    """blue live (the toolkit's model, collecting its inputs and outputs), `deep` collecting too (so the pairs of
    its mirrored answers are written)."""
    with local_target(tmp_path_factory.mktemp("capture-faults-home"), ENDPOINT, model_dir) as setup:
        collect = ["--data_collection", "model_inputs,model_outputs"]
        # out of the rotation after 3 failed readiness probes in a row, not 1, and 60 s for a request, not 5:
        # scoring one 272,221-row request keeps the only worker busy for seconds under load (CI took over 5), which
        # is the model's time, not capture's
        patient = ["--readiness_probe", "failure_threshold=3", "--request_timeout_ms", "60000"]
        assert setup.run(create_online_deployment.main, [*setup.deployment_args("blue", 100), *collect, *patient]) == 0
        code = write_score(tmp_path_factory.mktemp("deep") / "code", DEEP_SCORE)
        assert setup.run(create_online_deployment.main, [*setup.deployment_args("deep", 0, code), *collect]) == 0
        yield setup


def manage(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = run_command(manage_online_endpoint.main, [*argv, "--local", "--endpoint_name", ENDPOINT])
    printed = capsys.readouterr()
    return code, printed.out + printed.err


def test_a_shadow_answering_json_too_deep_to_parse_never_fails_a_live_request(target, capsys):
    """It made 16 of 40 live requests answer 500 (RecursionError in the pairing, on the live request's path)."""
    code, said = manage(capsys, "traffic", "--set", "blue=100", "--mirror", "deep=50")
    assert code == 0, said

    answers = [target.score() for _ in range(40)]

    assert [answer.status_code for answer in answers] == [200] * 40
    assert all(answer.json() == ["diabetic"] for answer in answers)
    pairs_folder = target.store.capture_dir(ENDPOINT, "deep") / "mirror_pairs"
    assert wait_until(lambda: any(pairs_folder.rglob("*.jsonl")), 5)  # the pairs are still written
    written = [json.loads(line) for path in pairs_folder.rglob("*.jsonl") for line in path.read_text().splitlines()]
    assert written and all(pair["shadow"]["answer"] is None for pair in written)  # kept, without its answer
    code, said = manage(capsys, "compare", "--deployment_name", "deep")
    assert "Traceback" not in said and "RecursionError" not in said


def test_collection_goes_on_after_its_hour_folder_is_removed(target):
    """The cap (or a person) removes the folder being written to: the next records make it again."""
    folder = target.store.capture_dir(ENDPOINT, "blue") / "model_inputs"

    def records() -> int:
        return len([line for path in folder.rglob("*.jsonl") for line in path.read_text().splitlines()])

    before = records()
    target.score(deployment="blue")
    assert wait_until(lambda: records() > before, 5)  # written: nothing of it is left to come after the removal
    shutil.rmtree(folder)

    answers = [target.score(deployment="blue") for _ in range(3)]

    assert [answer.status_code for answer in answers] == [200] * 3
    assert wait_until(lambda: records() == 3, 5), records()  # none of the three lost to the folder gone


def test_the_pairs_are_not_served_on_the_scoring_port_and_survive_a_restart(target, capsys):
    """A scoring key (a client application's) read every mirrored request's answers through GET /shadow/pairs; and
    compare read only the front door's memory, so a stop/start lost them. Now they are files in the owner's home."""
    leaked = target.http.get(f"{target.uri}/shadow/pairs", params={"since": 0}, headers=target.headers())
    code, before = manage(capsys, "compare", "--deployment_name", "deep", "--against", "blue", "--output", "json")
    assert code == 0, before
    requests_before = json.loads(before)["requests"]

    for verb in ("stop", "start"):
        assert manage(capsys, verb)[0] == 0
    code, after = manage(capsys, "compare", "--deployment_name", "deep", "--against", "blue", "--output", "json")

    assert leaked.status_code == 404
    assert requests_before > 0
    assert code == 0, after
    assert json.loads(after)["requests"] == requests_before  # every pair of the window, after the restart


def test_the_cap_takes_the_oldest_records_of_every_collection_and_keeps_the_newest(target, monkeypatch, capsys):
    """Under a 300,000-byte cap, 60 requests of 100 rows removed all of the current hour's model_inputs (one file
    per process per hour, removed whole, by name) and kept older outputs: drift then found nothing. Now the oldest
    records go first, across the collections, and the newest of both stay."""
    import time

    from tests.conftest import CANONICAL_ROW

    monkeypatch.setenv("AZUREML_LOCAL_CAPTURE_MAX_BYTES", "300000")  # read by the front door this endpoint starts
    endpoint = "capture-cap"
    assert run_command(__import__("create_online_endpoint").main, ["--local", "--endpoint_name", endpoint]) == 0
    argv = [*target.deployment_args("blue", 100), "--data_collection", "model_inputs,model_outputs"]
    argv[argv.index("--endpoint_name") + 1] = endpoint
    assert target.run(create_online_deployment.main, argv) == 0
    port = json.loads(target.store.endpoint_file(endpoint).read_text())["port"]
    key = json.loads(target.store.keys_file(endpoint).read_text())["primary_key"]
    body = json.dumps({"data": [CANONICAL_ROW] * 100})
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    answers = [target.http.post(f"http://127.0.0.1:{port}/score", content=body, headers=headers) for _ in range(60)]
    last_sent = time.time()
    folder = target.store.capture_dir(endpoint, "blue")

    def size() -> int:
        return sum(path.stat().st_size for path in folder.rglob("*.jsonl"))

    assert [answer.status_code for answer in answers] == [200] * 60
    assert wait_until(lambda: size() <= 300_000, 15), size()  # once nothing is being written, within the cap
    for collection in ("model_inputs", "model_outputs"):
        times = [
            json.loads(line)["time"]
            for path in (folder / collection).rglob("*.jsonl")
            for line in path.read_text().splitlines()
        ]
        listing = [(str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime) for p in folder.rglob("*.jsonl")]
        assert times, f"{collection}: every record removed: {listing}"
        newest = max(time.mktime(time.strptime(moment, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone for moment in times)
        assert newest >= last_sent - 5, (collection, newest, last_sent)  # the newest records are the ones kept
    capsys.readouterr()
    code = run_command(
        manage_online_endpoint.main,
        ["drift", "--deployment_name", "blue", "--output", "json", "--local", "--endpoint_name", endpoint],
    )
    said = capsys.readouterr().out
    assert code == 0, said
    assert json.loads(said)["rows"] > 0  # drift finds the newest inputs (it found 0 in the last 60 min)


def test_capture_readers_take_regular_files_only_and_say_what_they_skipped(target, capsys):
    """A link to /dev/zero ran drift out of memory, a FIFO hung it, a line of 2,000 '[' crashed compare and drift
    (RecursionError), NaN values were counted in the figures and written as NaN (invalid JSON). Now: regular files
    only, every skipped file and line counted by reason, NaN and infinity left out and counted, strict JSON."""
    import os
    import time

    for _ in range(110):  # enough rows for a drift figure
        assert target.score(deployment="blue").status_code == 200
    folder = target.store.capture_dir(ENDPOINT, "blue") / "model_inputs"
    assert wait_until(lambda: any(folder.rglob("*.jsonl")), 5)
    hour = sorted(path.parent for path in folder.rglob("*.jsonl"))[-1]
    os.symlink("/dev/zero", hour / "zero.jsonl")
    os.mkfifo(hour / "fifo.jsonl")
    moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    row = {name: float("nan") for name in ("Pregnancies", "PlasmaGlucose")}
    hostile = [
        "[" * 2000,
        json.dumps({"time": moment, "data": [row]}),  # NaN, as json writes it
        '{"time": "' + moment + '", "data": [1, 2, \xff]}',
    ]
    (hour / "hostile.jsonl").write_bytes("\n".join(hostile).encode("latin-1") + b"\n")

    drift_code, drift_said = manage(capsys, "drift", "--deployment_name", "blue", "--output", "json")
    compare_code, compare_said = manage(capsys, "compare", "--deployment_name", "deep", "--against", "blue")
    plot_code, plot_said = manage(capsys, "drift", "--deployment_name", "blue", "--plot", "/proc/drift.png")

    assert drift_code == 0, drift_said
    found = json.loads(drift_said, parse_constant=lambda constant: pytest.fail(f"not strict JSON: {constant}"))
    assert found["skipped"] == {
        "file not a regular file": 1,
        "file unreadable or a link": 1,
        "line nested too deep": 1,
        "line not UTF-8": 1,
    }
    assert found["not_finite_values"] == 2
    assert compare_code == 0 and "Traceback" not in compare_said
    assert plot_code == 1
    assert plot_said.strip().splitlines()[-1].startswith("error: cannot write the plot to '/proc/drift.png': ")
    for name in ("zero.jsonl", "fifo.jsonl", "hostile.jsonl"):
        (hour / name).unlink()


NOISY_SCORE = (
    "import sys\n\n"
    "def init():\n"
    "    print('\\x1b]0;owned\\x07\\x1b]52;c;ZXZpbA==\\x07\\x1b[2J' + 'x' * 50000, flush=True)\n\n"
    "def run(raw):\n    return ['ok']\n"
)
BROKEN_NOISY_SCORE = NOISY_SCORE.replace("flush=True)\n", "flush=True)\n    raise RuntimeError('\\x1b[2Jbroken')\n")


def test_a_deployments_terminal_escapes_and_huge_lines_are_printed_inert(target, capsys, tmp_path):
    """logs and a failed create printed a deployment's raw window-title, clipboard (OSC 52) and clear-screen
    sequences, and whole 10 MB lines: now every control character is escaped and a long line is cut."""
    noisy = write_score(tmp_path / "noisy", NOISY_SCORE)
    broken = write_score(tmp_path / "broken", BROKEN_NOISY_SCORE)
    assert target.run(create_online_deployment.main, target.deployment_args("noisy", 0, noisy)) == 0

    code, logs = manage(capsys, "logs", "--deployment_name", "noisy", "--lines", "200")
    capsys.readouterr()
    failed = run_command(create_online_deployment.main, target.deployment_args("broken", 0, broken))
    printed = capsys.readouterr()

    assert code == 0
    assert "\x1b" not in logs and "\x07" not in logs
    assert "\\x1b]52;c;ZXZpbA==\\x07" in logs  # shown, inert
    assert "[... 46" in logs and "more characters cut]" in logs
    assert failed != 0
    assert "\x1b" not in printed.err and "\\x1b[2Jbroken" in printed.err
    assert max(len(line) for line in printed.err.splitlines()) < 4100


def test_deleting_a_deployment_says_where_its_collected_data_stays(target, capsys):
    """As Azure keeps the data collector's blobs after a delete, the local target keeps the folder: the delete says
    where, and says nothing for a deployment that collected nothing."""
    code, said = manage(capsys, "delete", "--deployment_name", "deep", "--force", "--yes")
    quiet_code, quiet = manage(capsys, "delete", "--deployment_name", "noisy", "--yes")

    folder = target.store.capture_dir(ENDPOINT, "deep")
    assert code == 0, said
    assert f"Its collected data stays in {folder}" in said
    assert folder.is_dir()
    assert quiet_code == 0, quiet
    assert "collected data" not in quiet


class FramePayload:
    """What azureml-ai-monitoring 1.0.0 hands its worker for one collect() of a DataFrame (the methods the local
    collector reads, and the frame where the package keeps it: LogData._data)."""

    def __init__(self, frame: object) -> None:
        self._data = type("LogData", (), {"_data": frame})()

    def time(self) -> float:
        return 1_800_000_000.0

    def id(self) -> str:
        return "payload-id"

    def designation(self) -> str:
        return "model_inputs"

    def contenttype(self) -> str:
        return "application/json"

    def correlation_id(self) -> str:
        return "request-id"

    def agent(self) -> str:
        return "azureml-ai-monitoring/1.0.0"

    def model_version(self) -> None:
        return None


def test_a_huge_request_is_collected_as_a_record_cut_to_its_first_rows_and_marked():
    """One 272,221-row request became 61 MB of records, converted while it held the server's interpreter lock: a
    record now keeps the rows that fit in about 1 MiB and says how many the request had."""
    import pandas as pd

    from common.local.collector_sink import DEFAULT_RECORD_BYTES, FileSender
    from tests.conftest import CANONICAL_ROW

    columns = ["Pregnancies", "PlasmaGlucose", "DiastolicBloodPressure", "TricepsThickness", "SerumInsulin", "BMI",
               "DiabetesPedigree", "Age"]  # fmt: skip
    huge = pd.DataFrame([CANONICAL_ROW] * 272_221, columns=columns)
    small = pd.DataFrame([CANONICAL_ROW] * 3, columns=columns)
    sender = FileSender(Path("unused"), "/local/onlineEndpoints/e/deployments/d")

    cut = json.loads(sender.line(FramePayload(huge)))
    whole = json.loads(sender.line(FramePayload(small)))

    assert len(json.dumps(cut)) <= DEFAULT_RECORD_BYTES * 1.1
    assert cut["truncated"] == {"rows": 272_221, "kept": len(cut["data"])}
    assert cut["data"][0]["PlasmaGlucose"] == 180
    assert "truncated" not in whole and len(whole["data"]) == 3


def test_a_full_disk_leaves_whole_records_and_counts_every_dropped_one(tmp_path, caplog):
    """On a full disk a half-written line stayed and the next record was glued to it, and the log counted 2 dropped
    records where about 40 were: a write that fails part-way is cut back, and every drop is in the log's count."""
    import logging
    import os

    import pandas as pd

    from common.local.collector_sink import FileSender
    from tests.conftest import CANONICAL_ROW
    from tests.local_target.test_full_disk import small_disk

    columns = ["Pregnancies", "PlasmaGlucose", "DiastolicBloodPressure", "TricepsThickness", "SerumInsulin", "BMI",
               "DiabetesPedigree", "Age"]  # fmt: skip
    frame = pd.DataFrame([CANONICAL_ROW] * 100, columns=columns)
    with small_disk(tmp_path / "disk", "256k") as disk, caplog.at_level(logging.ERROR, logger="mdc.sender"):
        sender = FileSender(disk, "source", segment_bytes=10**9)
        for _ in range(40):
            sender.write([FramePayload(frame)])
        files = list(disk.rglob("*.jsonl"))
        lines = [line for path in files for line in path.read_text().splitlines()]
        whole = [json.loads(line) for line in lines]  # every line parses: nothing glued, nothing cut
        for path in files:
            path.unlink()  # room again
        sender.write([FramePayload(frame)])
        tally = json.loads((disk / ".dropped" / f"{os.getpid()}.json").read_text())  # what `show` adds up

    assert len(whole) + sender.dropped == 40 and sender.dropped > 0
    assert tally["dropped"] == sender.dropped
    said = [record.getMessage() for record in caplog.records]
    assert said[-1].endswith(f"{sender.dropped} in all since the server started (collection goes on)"), said
    assert sum(int(message.split()[1]) for message in said) == sender.dropped  # each drop counted once


def test_a_deployment_created_again_counts_only_its_own_rows_unless_asked(target, capsys):
    """Deleted and created again under its name, a deployment found its predecessor's collected data in the same
    place and counted it as its own."""
    collect = ["--data_collection", "model_inputs,model_outputs"]
    argv = [*target.deployment_args("again", 0), *collect]
    assert target.run(create_online_deployment.main, argv) == 0
    for _ in range(110):
        assert target.score(deployment="again").status_code == 200
    folder = target.store.capture_dir(ENDPOINT, "again") / "model_inputs"

    def records() -> int:
        return len([line for path in folder.rglob("*.jsonl") for line in path.read_text().splitlines()])

    assert wait_until(lambda: records() == 110, 10), records()
    assert manage(capsys, "delete", "--deployment_name", "again", "--yes")[0] == 0
    assert target.run(create_online_deployment.main, argv) == 0

    code, own = manage(capsys, "drift", "--deployment_name", "again", "--output", "json")
    code_all, everything = manage(
        capsys, "drift", "--deployment_name", "again", "--include_previous", "--output", "json"
    )

    assert code == 0 and code_all == 0
    assert json.loads(own)["rows"] == 0
    assert json.loads(own)["window"].startswith("counted since again was created at ")
    assert json.loads(everything)["rows"] == 110


def test_a_huge_request_being_captured_does_not_starve_the_others(target):
    """Capturing one 272,221-row request (4.9 MB) blocked the server's only worker: its readiness probe failed and
    another client got 1,419 x 503 of 1,629 requests. Now its record is cut to about 1 MiB, marked."""
    import threading

    huge = json.dumps({"data": [[1, 2, 3, 4, 5, 6, 7, 8]] * 272_221}, separators=(",", ":"))
    statuses: list[int] = []
    stop = threading.Event()

    def others() -> None:
        # each waits behind the huge request in the only worker: as long as its scoring takes (over 10 s seen under
        # CI load), within blue's request timeout
        patient = httpx.Client(timeout=60)
        while not stop.is_set() and len(statuses) < 5000:
            answered = patient.post(f"{target.uri}/score", content=SAMPLE, headers=target.headers(deployment="blue"))
            statuses.append(answered.status_code)

    other = threading.Thread(target=others)
    other.start()
    try:
        answer = target.http.post(
            f"{target.uri}/score", content=huge, headers=target.headers(deployment="blue"), timeout=60
        )
        time.sleep(3)  # the record is written, and the probes go on, after the answer
    finally:
        stop.set()
        other.join(timeout=30)

    frontdoor_log = target.store.endpoint_dir(ENDPOINT) / "frontdoor.log"
    assert answer.status_code == 200, (answer.text[:300], frontdoor_log.read_text()[-3000:])
    assert len(answer.json()) == 272_221
    assert statuses and set(statuses) == {200}, {code: statuses.count(code) for code in set(statuses)}
    folder = target.store.capture_dir(ENDPOINT, "blue") / "model_inputs"
    records = [json.loads(line) for path in folder.rglob("*.jsonl") for line in path.read_text().splitlines()]
    assert any(record.get("truncated", {}).get("rows") == 272_221 for record in records)
