"""One running server of a local deployment (a generation): how it is started, its process, its socket, its probes
and its stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from common.doctor.diagnosis import exception_line
from common.local import capture_files, processes, upstream
from common.local.collector_sink import CAPTURE_DIR_VARIABLE, SEGMENT_BYTES_VARIABLE, SOURCE_VARIABLE
from common.local.inference_server import LAUNCHER_EXIT_CODE, LAUNCHER_MARK
from common.local.logfiles import BANNER_PREFIX
from common.local.settings import LOCAL_READINESS, Probe, server_workers
from common.local.state import HOME_VARIABLE
from common.local.state_types import DeploymentSpec

log = logging.getLogger("frontdoor")

STOP_GRACE_SECONDS = 10.0
LAUNCHER = Path(__file__).with_name("inference_server.py")
# The launcher runs by path without its folder on sys.path (`python launcher.py` would put common/local/ there, and
# score.py could import the toolkit's modules): only the code folder, the working directory, is, as in Azure.
RUN_LAUNCHER = "import runpy, sys; runpy.run_path(sys.argv.pop(1), run_name='__main__')"
# The toolkit's own Python settings stay out of a deployment's environment (its deployment variables still apply).
# Without PYTHONDONTWRITEBYTECODE the first server start writes the bytecode of what score.py imports, as Azure's
# image holds it compiled: every later start (restarts, preflights, a second deployment) imports in 1.6 s, not 4.8.
TOOLKIT_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "PYTHONDONTWRITEBYTECODE")


def start_server(
    spec: DeploymentSpec, socket: Path, log_path: Path, banner: str, home: Path
) -> subprocess.Popen[bytes]:
    """The deployment's server process on `socket`, in its environment's Python, its output appended to `log_path`
    after a `banner` line."""
    python = spec.python or sys.executable
    argv = [
        *(python, "-c", RUN_LAUNCHER, str(LAUNCHER)),
        *("--socket", str(socket), "--parent_pid", str(os.getpid()), "--"),
        *("--entry_script", spec.scoring_script, "--worker_count", str(server_workers(spec))),
    ]
    inherited = {key: value for key, value in os.environ.items() if key not in TOOLKIT_VARIABLES}
    environment = {
        **inherited,
        "PATH": f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        # In Azure each deployment has its own VM; here several servers share the cores, and scikit-learn's
        # OpenMP threads spinning against each other made a 10 ms prediction take seconds.
        "OMP_NUM_THREADS": "1",
        # the deployment's --env (a YAML file may give numbers: the process sees text), as Azure sets them
        **{key: str(value) for key, value in spec.environment_variables.items()},
        **spec.platform_variables,
        "AZUREML_MODEL_DIR": spec.model_dir,
        HOME_VARIABLE: str(home),
        **_collection_variables(spec),
    }
    with log_path.open("ab", buffering=0) as handle:  # unbuffered: nothing left to fail when it is closed
        with contextlib.suppress(OSError):  # a full disk: the server starts all the same, its banner unwritten
            handle.write(f"{BANNER_PREFIX}{time.strftime('%Y-%m-%d %H:%M:%S')} {banner} ---\n".encode())
        return subprocess.Popen(
            argv,
            cwd=spec.code_dir,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _collection_variables(spec: DeploymentSpec) -> dict[str, str]:
    """What configures azureml-ai-monitoring in the server (AZUREML_MDC_CONFIG_PATH, as the package reads it) and
    where the local collector writes (collector_sink.py); none when the deployment collects nothing."""
    if not spec.collector_config or not spec.capture_dir:
        return {}
    source = f"/local/onlineEndpoints/{spec.endpoint_name}/deployments/{spec.name}"
    return {
        "AZUREML_MDC_CONFIG_PATH": spec.collector_config,
        CAPTURE_DIR_VARIABLE: spec.capture_dir,
        SOURCE_VARIABLE: source,
        SEGMENT_BYTES_VARIABLE: str(capture_files.segment_bytes()),
    }


class Instance:
    """One server process of one generation of a deployment, reached on its Unix socket."""

    def __init__(
        self,
        generation: int,
        socket: Path,
        process: subprocess.Popen[bytes] | None,
        readiness: Probe = LOCAL_READINESS,
        banner: str = "",
    ) -> None:
        self.generation, self.socket, self.process = generation, socket, process
        self.banner = banner  # the log line written before it started: where its own output begins
        self.readiness = readiness  # its generation's readiness probe, which decides when it first serves
        self.in_flight = 0
        self.answered = False  # answered a scoring request since the last probe (a busy server is a live one)
        self.started = time.monotonic()
        self.last_liveness = self.last_readiness = 0.0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def exit_code(self) -> int | None:
        return self.process.poll() if self.process else None

    async def score(self, body: bytes, content_type: str, request_id: str = "") -> upstream.Answer:
        """POST /score; upstream.Unreachable when the socket does not answer (the caller bounds the time)."""
        return await upstream.exchange(str(self.socket), upstream.scoring_request(body, content_type, request_id))

    async def get(self, target: str) -> upstream.Answer:
        """GET `target` (a path and its query) from the server; upstream.Unreachable when it does not answer."""
        return await upstream.exchange(str(self.socket), upstream.http_request("GET", target))

    async def probe(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                answer = await self.get("/")
        except (upstream.Unreachable, TimeoutError):
            return False
        return answer.status == 200

    async def stop(self, grace: float = STOP_GRACE_SECONDS, drain: float = 0.0) -> None:
        """Let requests in flight finish (at most `drain` s), then stop the process group."""
        deadline = time.monotonic() + drain
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.process is not None:
            await asyncio.to_thread(processes.stop, self.process.pid, None, grace)
            self.process.poll()
        self.socket.unlink(missing_ok=True)


INIT_STARTED = "Invoking user's init function"  # azureml-inference-server-http's log lines (0.x and 1.x alike)
INIT_DONE = "init has completed successfully"
SERVER_ARGUMENT_ERROR = "azmlinfsrv: error:"


def start_failure(output: str, exit_code: int | None) -> str:
    """Why a server did not become ready, naming the component that failed: the toolkit's launcher, the inference
    server, or score.py's init(); `output` is what the server process wrote, `exit_code` None while it runs."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    marked = [line for line in lines if line.startswith(LAUNCHER_MARK)]
    if marked or exit_code == LAUNCHER_EXIT_CODE:
        said = marked[-1].removeprefix(LAUNCHER_MARK) if marked else "it exited without saying why"
        return f"the toolkit's server launcher could not start the server (not score.py): {said}"
    refused = [line for line in lines if SERVER_ARGUMENT_ERROR in line]
    if refused:
        return f"the inference server refused the arguments the toolkit's launcher gave it: {refused[-1]}"
    ended = f"exited with code {exit_code}" if exit_code is not None else "did not answer in time"
    if any(INIT_STARTED in line for line in lines) and not any(INIT_DONE in line for line in lines):
        raised = exception_line(output) or "no exception in its output"
        return f"score.py's init() failed ({raised}); its server {ended}"
    if any(INIT_DONE in line for line in lines):
        return f"score.py's init() succeeded, then its server {ended}; see the log"
    return f"its server {ended} before it ran score.py's init(); see the log"
