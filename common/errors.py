"""Errors the scripts turn into one line on stderr and a distinct exit code."""

from __future__ import annotations

import copy

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_DEPLOYMENT_FAILED = 4
EXIT_AUTH = 5
EXIT_CONFLICT = 6
EXIT_QUOTA = 7
EXIT_TIMEOUT = 8
EXIT_ROLLED_BACK = 9  # a rollout crossed a limit and restored the split from before it
EXIT_ENVIRONMENT = 10  # the local target cannot build the environment (a package pin nothing satisfies, ...)
EXIT_NO_PYTHON = 11  # the Python a conda file asks for is not on this machine
EXIT_CONTRACT = 12  # traffic refused to a deployment whose contract breaks the live one's callers
EXIT_INTERRUPTED = 130


def not_installed(module: str) -> str:
    """The line for a script run with a Python that lacks one of the toolkit's libraries."""
    return (
        f"error: {module} is not installed here: the toolkit runs in its virtual environment; run `make setup` and "
        "`source .venv/bin/activate`, then the command again"
    )


class CliError(Exception):
    """A failure the user can act on; the message is printed as is, without a traceback. Its exit code is its
    type's: a failure with another exit code is another subclass."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def reworded(self, message: str) -> CliError:
        """The same failure (its type, so its exit code, and its details) told with another message."""
        error = copy.copy(self)
        error.message, error.args = message, (message,)
        return error


class UsageError(CliError):
    """A bad flag value or a missing setting: found before anything is sent to Azure."""

    exit_code = EXIT_USAGE


class NotFoundError(CliError):
    exit_code = EXIT_NOT_FOUND


class DeploymentFailedError(CliError):
    exit_code = EXIT_DEPLOYMENT_FAILED


class AuthError(CliError):
    """No credential, or one Azure or the endpoint refuses."""

    exit_code = EXIT_AUTH


class ConflictError(CliError):
    """Another operation is in progress, or the name is taken."""

    exit_code = EXIT_CONFLICT


class QuotaError(CliError):
    exit_code = EXIT_QUOTA


class TimedOutError(CliError):
    """Waited as long as asked for: the operation may still go ahead."""

    exit_code = EXIT_TIMEOUT


class InterruptedByUser(CliError):
    """Ctrl-C: what was started is said, and what was restored."""

    exit_code = EXIT_INTERRUPTED


class BreakingContractChange(CliError):
    """The deployment gaining traffic declares another contract than the live one: nothing was changed."""

    exit_code = EXIT_CONTRACT
