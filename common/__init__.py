"""Shared helpers for the deployment scripts: argument handling, workspace, validation, traffic."""

import importlib.util


def _require_the_virtual_environment() -> None:
    """A script run with a Python that lacks the toolkit's libraries stops here with one line, not a traceback from
    the first import (cli.run_main does the same for the libraries imported later, once a command runs)."""
    for module in ("yaml", "azure.ai.ml"):
        try:
            found = importlib.util.find_spec(module)
        except ModuleNotFoundError:
            found = None
        if found is None:
            raise SystemExit(
                f"error: {module} is not installed here: the toolkit runs in its virtual environment; run `make "
                "setup` and `source .venv/bin/activate`, then the command again"
            )


_require_the_virtual_environment()
