"""What another user of this machine can do to a local endpoint: connect to its front door on 127.0.0.1 like any
client. Holding connections open, or sending an endless header block, must not keep the endpoint's own clients
from being answered, nor restart anything (real processes, a throw-away user, 127.0.0.1 only)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

import create_online_deployment
import manage_online_endpoint
from common.local.operations import FRONTDOOR_START_SECONDS
from tests.conftest import ROOT
from tests.localtarget import LocalSetup, local_target
from tests.other_user import OtherUser, limit_descriptors, other_user, soft_descriptor_limit

ENDPOINT = "other-user"
DESCRIPTORS = 1024  # soft and hard: the front door cannot raise its way out of the attack
IDLE_CONNECTIONS = 1100
ATTACK_SECONDS = 8.0
# Holds `count` connections open and sends nothing; a connection the server closes is opened again at once. Prints
# how many it held at the end and how many times it had to reconnect.
HOLD_IDLE = """
import selectors, socket, sys, time
port, count, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
selector = selectors.DefaultSelector()
reconnects = 0
def connect():
    try:
        held = socket.create_connection(("127.0.0.1", port), timeout=2)
    except OSError:
        return False
    held.setblocking(False)
    selector.register(held, selectors.EVENT_READ)
    return True
opened = sum(connect() for _ in range(count))
print("opened", opened, flush=True)
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    for key, _ in selector.select(timeout=0.2):
        try:
            if key.fileobj.recv(65536):
                continue
        except OSError:
            pass
        selector.unregister(key.fileobj)
        key.fileobj.close()
        reconnects += connect()
    while len(selector.get_map()) < count and connect():
        reconnects += 1
print("held", len(selector.get_map()), "reconnects", reconnects, flush=True)
"""


def served_while(setup: LocalSetup, attack_running) -> tuple[int, int]:
    """(answered, sent): scoring requests of a legitimate client while `attack_running()` is true."""
    answered = sent = 0
    with httpx.Client(timeout=5.0) as http:
        while attack_running() and sent < 2000:
            sent += 1
            try:
                response = http.post(
                    f"{setup.uri}/score",
                    content=b'{"data": [[2, 180, 74, 24, 21, 23.9, 1.48, 22]]}',
                    headers=setup.headers(),
                )
                answered += response.status_code == 200
            except httpx.TransportError:
                time.sleep(0.05)
    return answered, sent


def hold_idle_connections_and_score(setup: LocalSetup, attacker: OtherUser) -> None:
    frontdoor, server = setup.frontdoor_pid(), setup.status("blue")["pid"]
    restarts = setup.status("blue").get("restarts", 0)
    attack = attacker.python(HOLD_IDLE, str(setup.endpoint()["port"]), str(IDLE_CONNECTIONS), str(ATTACK_SECONDS))
    assert attack.stdout is not None
    opened = attack.stdout.readline().strip()
    answered, sent = served_while(setup, lambda: attack.poll() is None)
    out, err = attack.communicate(timeout=30)
    print(f"attacker: {opened}; {out.strip()}; client: {answered}/{sent} answered")

    assert attack.returncode == 0, err
    assert sent >= 20 and answered >= 0.95 * sent, f"{answered} of {sent} answered ({opened}, {out.strip()})"
    assert setup.frontdoor_pid() == frontdoor and psutil.pid_exists(frontdoor)
    assert setup.status("blue")["pid"] == server and setup.status("blue").get("restarts", 0) == restarts
    assert "Too many open files" not in (setup.store.endpoint_dir(ENDPOINT) / "frontdoor.log").read_text()


def test_a_front_door_started_with_a_low_soft_limit_raises_it_and_outlasts_idle_connections(tmp_path, model_dir):
    """The soft limit a command inherits (often 1,024) is raised to the hard one at start."""
    with (
        other_user() as attacker,
        soft_descriptor_limit(DESCRIPTORS),  # the front door starts with the endpoint, with these limits
        local_target(tmp_path / "home", ENDPOINT, model_dir) as setup,
    ):
        setup.deploy("blue", 100)
        hold_idle_connections_and_score(setup, attacker)


def test_idle_connections_of_another_user_beyond_the_descriptor_limit_leave_the_endpoint_answering(tmp_path, model_dir):
    """Where the hard limit is low too, the front door keeps descriptors for its own work and closes the connection
    idle the longest to admit a new one."""
    with other_user() as attacker, local_target(tmp_path / "home", ENDPOINT, model_dir) as setup:
        setup.deploy("blue", 100)
        limit_descriptors(setup.frontdoor_pid(), DESCRIPTORS)
        hold_idle_connections_and_score(setup, attacker)


# Four connections each start a 16 MB header block and never finish it (what took the front door from 35 to 204
# MiB), held open together; each prints how much it sent and the first line of any answer, then all wait for a line
# on stdin (the test measures the front door meanwhile).
ENDLESS_HEADERS = """
import socket, sys
port = int(sys.argv[1])
held = []
for _ in range(4):
    connection = socket.create_connection(("127.0.0.1", port), timeout=5)
    connection.sendall(b"POST /score HTTP/1.1\\r\\nHost: x\\r\\nX-Filler: ")
    sent = 0
    try:
        while sent < 16 * 1024 * 1024:
            connection.sendall(b"a" * 65536)
            sent += 65536
        answer = b"unanswered"
    except OSError:
        try:
            answer = connection.recv(200) or b"closed"
        except OSError:
            answer = b"reset"
    held.append(connection)
    print(sent, answer.split(b"\\r\\n")[0].decode(), flush=True)
sys.stdin.readline()
"""


def test_an_endless_header_block_is_refused_before_auth_and_costs_no_memory(tmp_path, model_dir):
    with other_user() as attacker, local_target(tmp_path / "home", ENDPOINT, model_dir) as setup:
        setup.deploy("blue", 100)
        frontdoor = psutil.Process(setup.frontdoor_pid())
        before = frontdoor.memory_info().rss
        attack = attacker.python(ENDLESS_HEADERS, str(setup.endpoint()["port"]))
        assert attack.stdout is not None
        lines = [attack.stdout.readline().strip() for _ in range(4)]
        grown = (frontdoor.memory_info().rss - before) / 2**20
        out, err = attack.communicate("done\n", timeout=30)
        print(f"front door grew {grown:.1f} MiB; {lines}")

        assert attack.returncode == 0, err
        assert all(line.endswith("HTTP/1.1 431 Request Header Fields Too Large") for line in lines), out
        assert all(int(line.split()[0]) < 16 * 1024 * 1024 for line in lines), out  # refused before the end
        assert grown < 16, f"the front door grew by {grown:.1f} MiB"
        assert setup.score().status_code == 200


def test_a_header_block_that_trickles_in_is_closed_at_its_deadline(tmp_path, model_dir, monkeypatch):
    import socket

    monkeypatch.setenv("AZUREML_LOCAL_HEADER_TIMEOUT_SECONDS", "1")
    with local_target(tmp_path / "home", ENDPOINT, model_dir) as setup:
        port = setup.endpoint()["port"]
        silent = socket.create_connection(("127.0.0.1", port), timeout=5)
        slow = socket.create_connection(("127.0.0.1", port), timeout=5)
        started = time.monotonic()
        slow.sendall(b"POST /score HTTP/1.1\r\n")
        answer = b""
        for _ in range(30):  # one header byte every 0.1 s: never a complete block
            try:
                slow.sendall(b"X")
            except OSError:
                break
            time.sleep(0.1)
        slow.settimeout(2)
        answer = slow.recv(200)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert time.monotonic() - started < 2.5
        assert silent.recv(10) == b""  # a connection that sent nothing is closed without an answer
        assert setup.score().status_code == 503  # no deployment yet: the front door itself answers


# Tries to list the home and read each file named; prints one line per path: "read" or the error's name
READ_EACH = """
import os, sys
for path in sys.argv[1:]:
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").read(1)
        print(path, "read")
    except OSError as error:
        print(path, type(error).__name__)
"""


def too_open(home: Path) -> list[str]:
    """Folders and files under `home` that group or others may use (sockets and links aside)."""
    found = []
    for path in [home, *home.rglob("*")]:
        info = path.lstat()
        if not (stat.S_ISLNK(info.st_mode) or stat.S_ISSOCK(info.st_mode)) and stat.S_IMODE(info.st_mode) & 0o077:
            found.append(f"{oct(stat.S_IMODE(info.st_mode))} {path.relative_to(home)}")
    return found


def test_another_user_can_read_no_key_no_env_value_and_no_log(tmp_path, model_dir):
    with other_user() as reader, local_target(tmp_path / "home", ENDPOINT, model_dir) as setup:
        argv = [*setup.deployment_args("blue", 100), "--env", "API_TOKEN=s3cret-value"]
        assert setup.run(create_online_deployment.main, argv) == 0
        assert setup.score().status_code == 200
        home, store = setup.home, setup.store
        assert not too_open(home), too_open(home)
        secrets = [
            store.keys_file(ENDPOINT),
            store.deployment_file(ENDPOINT, "blue"),
            store.status_file(ENDPOINT, "blue"),
            store.server_log(ENDPOINT, "blue"),
            store.endpoint_dir(ENDPOINT) / "frontdoor.log",
            store.endpoint_dir(ENDPOINT) / "access.log",
        ]
        home.parent.chmod(0o755)  # the test's own folder aside: only the home's modes stand in the way
        attempt = reader.python(READ_EACH, str(home), *map(str, secrets))
        out, err = attempt.communicate(timeout=30)
        assert attempt.returncode == 0, err
        assert out.split() == [word for path in [home, *secrets] for word in (str(path), "PermissionError")], out

        # an older home (or a hand-made chmod) is tightened at the next command
        store.deployment_file(ENDPOINT, "blue").chmod(0o644)
        store.endpoint_dir(ENDPOINT).chmod(0o755)
        home.chmod(0o755)
        assert setup.run(manage_online_endpoint.main, ["show", "--local", "--endpoint_name", ENDPOINT]) == 0
        assert not too_open(home), too_open(home)


def frontdoors_of(setup: LocalSetup) -> list[int]:
    """The front doors running for this local home (a command that started one did not refuse in time)."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        command_line = process.info["cmdline"] or []
        if "common.local.frontdoor" in command_line and str(setup.home) in command_line:
            found.append(process.info["pid"])
    return found


def test_a_socket_folder_made_by_another_user_is_refused_by_the_command_in_seconds(tmp_path, model_dir):
    """Another user can create the deployments' socket folder first (it lives under the shared TMPDIR)."""
    shared = Path(tempfile.mkdtemp(dir="/tmp", prefix="azml-shared-"))
    shared.chmod(0o1777)  # as /tmp itself
    squatted = shared / f"azureml-local-{os.getuid()}"
    try:
        with other_user() as squatter, local_target(tmp_path / "home", ENDPOINT, model_dir) as setup:
            made = squatter.python("import os, sys; os.mkdir(sys.argv[1], 0o777)", str(squatted))
            assert made.communicate(timeout=30)[1] == "" and made.returncode == 0
            assert setup.run(manage_online_endpoint.main, ["stop", "--local", "--endpoint_name", ENDPOINT]) == 0
            environment = {**os.environ, "TMPDIR": str(shared), "AZUREML_LOCAL_HOME": str(setup.home)}

            def command(*argv: str) -> tuple[subprocess.CompletedProcess[str], float]:
                started = time.monotonic()
                done = subprocess.run(
                    [sys.executable, *argv], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
                )
                return done, time.monotonic() - started

            for argv in (
                ["create_online_deployment.py", *setup.deployment_args("blue", 100)],
                ["manage_online_endpoint.py", "start", "--local", "--endpoint_name", ENDPOINT],
            ):
                done, seconds = command(*argv)
                # refused before anything starts: no front door was spawned, and it did not wait for one (a front
                # door is given FRONTDOOR_START_SECONDS; the refusal takes 2 s here, more on a busy machine)
                assert done.returncode == 1 and seconds < FRONTDOOR_START_SECONDS, (seconds, done.stderr)
                assert not frontdoors_of(setup), frontdoors_of(setup)
                assert done.stderr.strip().splitlines()[-1] == (
                    f"error: {str(squatted)!r} belongs to another user, and the local deployments' sockets go "
                    "there: have it removed (by its owner or an administrator), or set TMPDIR to a folder of your "
                    "own, and run the command again"
                ), done.stderr
            assert not setup.store.deployment_file(ENDPOINT, "blue").exists()  # nothing half-written
            assert not list(setup.store.deployment_dir(ENDPOINT, "blue").glob("code-*"))

            done, _ = command("manage_online_endpoint.py", "delete", "--local", "--endpoint_name", ENDPOINT, "--yes")
            assert done.returncode == 0, done.stderr
            assert not setup.store.endpoint_dir(ENDPOINT).exists()
    finally:
        shutil.rmtree(shared, ignore_errors=True)
