"""Run azureml-inference-server-http on a Unix domain socket instead of 0.0.0.0 (the local target's deployments).

The server's own CLI (azmlinfsrv) binds 0.0.0.0 with no flag to change it, so a local deployment would be reachable
by anyone around the front door. This does what azmlinfsrv does (the same argument parsing, environment variables,
logging configuration and banner, then gunicorn on azureml_inference_server_http.server.entry:app with the same
settings) with one difference: gunicorn binds `unix:SOCKET`, in a folder only the owner can enter.

It also dies with its parent (the front door that supervises it), so no deployment outlives its endpoint's
front door, whatever killed it. It imports nothing from this project: it runs in any Python environment that has
azureml-inference-server-http.

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
            return self.stream.write(text)
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


def gunicorn_argv(bind: str, worker_count: str) -> list[str]:
    """azureml_inference_server_http.amlserver_linux.run's gunicorn settings, bound to `bind` (unix:PATH or
    127.0.0.1:PORT)."""
    from azureml_inference_server_http.constants import (
        DEFAULT_WORKER_PRELOAD,
        DEFAULT_WORKER_TIMEOUT_SECONDS,
        ENV_WORKER_PRELOAD,
        ENV_WORKER_TIMEOUT,
    )

    argv = [
        "azmlinfsrv",
        *("-b", bind),
        *("-w", worker_count),
        *("--timeout", os.environ.get(ENV_WORKER_TIMEOUT, DEFAULT_WORKER_TIMEOUT_SECONDS)),
        *("--access-logfile", "-"),
        *("--error-logfile", "/dev/null"),
        # gunicorn 23+ also opens a control socket in ~/.gunicorn, shared by every server of the user: not wanted
        "--no-control-socket",
    ]
    if os.environ.get(ENV_WORKER_PRELOAD, DEFAULT_WORKER_PRELOAD).lower() == "true":
        argv.append("--preload")
    return [*argv, "azureml_inference_server_http.server.entry:app"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", help="the Unix socket to listen on (how the front door runs deployments)")
    where.add_argument("--loopback_port", type=int, help="listen on 127.0.0.1:PORT instead (a benchmark's direct run)")
    parser.add_argument("--parent_pid", type=int, required=True)
    ours, server_arguments = parser.parse_known_args()
    die_with_parent(ours.parent_pid)
    sys.stdout, sys.stderr = LossyOutput(sys.stdout), LossyOutput(sys.stderr)  # type: ignore[assignment]
    install_collector_sink()

    from azureml_inference_server_http import amlserver
    from azureml_inference_server_http.constants import ENV_WORKER_COUNT, PACKAGE_ROOT
    from azureml_inference_server_http.log_config import load_logging_config

    sys.argv = ["azmlinfsrv", *[a for a in server_arguments if a != "--"]]
    arguments = amlserver.parse_arguments()
    load_logging_config(PACKAGE_ROOT)
    amlserver.merge_configuration(arguments)
    amlserver.validate_environment_variables()
    amlserver.set_path_variable()
    amlserver.print_server_info()
    amlserver.print_server_settings()
    bind = f"unix:{ours.socket}" if ours.socket else f"127.0.0.1:{ours.loopback_port}"
    print(f"Listening on {bind} (liveness GET /, score POST /score)\n", flush=True)

    import gunicorn.app.wsgiapp

    sys.argv = gunicorn_argv(bind, os.environ[ENV_WORKER_COUNT])
    gunicorn.app.wsgiapp.WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").run()


if __name__ == "__main__":
    main()
