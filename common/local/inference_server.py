"""Run azureml-inference-server-http on a Unix domain socket instead of 0.0.0.0 (the local target's deployments).

The server's own CLI (azmlinfsrv) binds 0.0.0.0 with no flag to change it, so a local deployment would be reachable
by anyone around the front door. This does what azmlinfsrv does (the same argument parsing, environment variables,
logging configuration and banner, then gunicorn on azureml_inference_server_http.server.entry:app with the same
settings) with one difference: gunicorn binds `unix:SOCKET`, in a folder only the owner can enter.

It also dies with its parent (the front door that supervises it), so no deployment outlives its endpoint's
front door, whatever killed it. It imports nothing from this project: it runs in any Python environment that has
azureml-inference-server-http, of any version Azure runs (0.x, as azureml-defaults brings it, and 1.x), under any
gunicorn. When it cannot start the server itself, it says so in one line starting with LAUNCHER_MARK and exits
with LAUNCHER_EXIT_CODE, so the failure is never taken for score.py's.

Usage: python inference_server.py --socket PATH --parent_pid PID -- [azmlinfsrv arguments: --entry_script ...]
       python inference_server.py --loopback_port PORT ...   (benchmarks/serving.py: the server measured direct)
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import sys
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent(parent_pid: int) -> None:
    """SIGTERM when the parent exits (Linux), and exit now if it already has."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:
        sys.exit("the front door that started this server is gone")


class LossyOutput:
    """The server's stdout or stderr, which go to its log: a write the disk refuses (full) is dropped, so a full disk
    costs log lines, never the server (print(..., flush=True) would otherwise end it at start)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self.stream.write(text))
        except OSError:
            return len(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError):
            self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def install_collector_sink() -> None:
    """The deployment's collected data to files instead of Azure's collector sidecar (collector_sink.py, beside this
    file, loaded by path: the project is not on this process's path). Installed before gunicorn forks its workers,
    so each worker's package sends there."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("collector_sink", Path(__file__).with_name("collector_sink.py"))
    if spec is None or spec.loader is None:
        return
    sink = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sink)
    sink.install()


LAUNCHER_EXIT_CODE = 78  # EX_CONFIG: this launcher, not the server or score.py, could not start the server
LAUNCHER_MARK = "toolkit launcher: "  # the line that says so in the deployment's log (read by the front door)
# What to add for a module the server or gunicorn cannot import (gunicorn before 22 imports pkg_resources, which
# setuptools 81 removed; a conda environment used to bring setuptools with pip, a uv one does not)
PACKAGES_OF_MODULES = {
    "azureml_inference_server_http": "azureml-inference-server-http (or azureml-defaults)",
    "gunicorn": "gunicorn",
    "pkg_resources": "setuptools<81",
}
CONTROL_SOCKET_GUNICORN = (25, 1)  # gunicorn's --no-control-socket (and its ~/.gunicorn socket) exist from 25.1


def launcher_failure(problem: str) -> None:
    """Stop with one line that names this launcher as what failed (never score.py's init())."""
    print(f"{LAUNCHER_MARK}{problem}", file=sys.stderr, flush=True)
    sys.exit(LAUNCHER_EXIT_CODE)


def rebound(argv: list[str], bind: str, gunicorn_version: tuple[int, ...]) -> list[str]:
    """The gunicorn command line the server built (host:port, and a health port where it has one), bound to `bind`
    alone; without the per-user control socket where gunicorn has one. Every other setting is the server's."""
    kept: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if token in ("-b", "--bind"):
            next(tokens, None)
        elif not token.startswith("--bind="):
            kept.append(token)
    options = ["-b", bind]
    if gunicorn_version >= CONTROL_SOCKET_GUNICORN:
        options.append("--no-control-socket")
    return [kept[0], *options, *kept[1:]]


def serve(bind: str) -> None:
    """The server's own azmlinfsrv, whatever its version (0.x from azureml-defaults, 1.x): its argument parsing,
    environment variables, logging and banner, and its own gunicorn settings, with only the bind changed (and
    gunicorn's control socket left out). The server's modules differ between versions; its entry point does not."""
    try:
        import gunicorn
        import gunicorn.app.wsgiapp
        from azureml_inference_server_http import amlserver
    except ImportError as error:
        missing = getattr(error, "name", None) or ""
        package = PACKAGES_OF_MODULES.get(missing.split(".")[0], missing.split(".")[0] or "the missing package")
        launcher_failure(
            f"the inference server cannot be imported in the deployment's environment ({type(error).__name__}: "
            f"{error}): add {package} under pip: in its conda file"
        )
        return
    gunicorn_version = tuple(int(part) for part in gunicorn.__version__.split(".")[:2] if part.isdigit())
    application = gunicorn.app.wsgiapp.WSGIApplication

    class ReboundApplication(application):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            sys.argv = rebound(sys.argv, bind, gunicorn_version)
            print(f"Listening on {bind} (liveness GET /, score POST /score)\n", flush=True)
            super().__init__(*args, **kwargs)

    gunicorn.app.wsgiapp.WSGIApplication = ReboundApplication
    amlserver.run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", help="the Unix socket to listen on (how the front door runs deployments)")
    where.add_argument("--loopback_port", type=int, help="listen on 127.0.0.1:PORT instead (a benchmark's direct run)")
    parser.add_argument("--parent_pid", type=int, required=True)
    ours, server_arguments = parser.parse_known_args()
    die_with_parent(ours.parent_pid)
    sys.stdout, sys.stderr = LossyOutput(sys.stdout), LossyOutput(sys.stderr)
    try:
        install_collector_sink()
    except Exception as error:  # the toolkit's sink, not the user's code: named as such
        launcher_failure(f"the local data collection sink could not be installed: {type(error).__name__}: {error}")
    sys.argv = ["azmlinfsrv", *[a for a in server_arguments if a != "--"]]
    serve(f"unix:{ours.socket}" if ours.socket else f"127.0.0.1:{ours.loopback_port}")


if __name__ == "__main__":
    main()
