"""A script's first step, before it imports the toolkit's libraries (each script calls prepare() at its top)."""

from __future__ import annotations

import importlib.util
import signal
import sys
import threading


def _require_the_virtual_environment() -> None:
    """A script run with a Python that lacks the toolkit's libraries stops here with one line, not a traceback from
    the first import (cli.run_main does the same for the libraries imported later, once a command runs)."""
    for module in ("yaml", "azure.ai.ml"):
        try:
            found = importlib.util.find_spec(module)
        except ModuleNotFoundError:
            found = None
        if found is None:
            from common.errors import not_installed

            raise SystemExit(not_installed(module))


def _interrupted_while_starting(_signum: int, _frame: object) -> None:
    print("error: interrupted", file=sys.stderr)
    raise SystemExit(130)


def _quiet_ctrl_c_while_starting() -> None:
    """Ctrl-C while a script is still importing its libraries ends it with exit 130 and one line, as later (a
    KeyboardInterrupt raised inside an import would be a traceback); cli.run_main puts Python's handler back."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is (
        signal.default_int_handler
    ):
        signal.signal(signal.SIGINT, _interrupted_while_starting)


def prepare() -> None:
    """What a script does first, before it imports the toolkit's libraries: stop with one line when they are not
    installed, and make Ctrl-C while they load one line too."""
    _require_the_virtual_environment()
    _quiet_ctrl_c_while_starting()
