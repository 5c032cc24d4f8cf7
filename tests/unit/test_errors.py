"""Exit codes are carried by error types: each failure kind is a subclass, and rewording keeps it."""

from __future__ import annotations

import pytest

from common import errors
from common.errors import CliError


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (errors.UsageError, errors.EXIT_USAGE),
        (errors.NotFoundError, errors.EXIT_NOT_FOUND),
        (errors.DeploymentFailedError, errors.EXIT_DEPLOYMENT_FAILED),
        (errors.AuthError, errors.EXIT_AUTH),
        (errors.ConflictError, errors.EXIT_CONFLICT),
        (errors.QuotaError, errors.EXIT_QUOTA),
        (errors.TimedOutError, errors.EXIT_TIMEOUT),
        (errors.InterruptedByUser, errors.EXIT_INTERRUPTED),
        (errors.BreakingContractChange, errors.EXIT_CONTRACT),
        (CliError, errors.EXIT_FAILED),
    ],
)
def test_each_kind_of_failure_has_its_exit_code(kind, code):
    assert kind("what failed").exit_code == code


def test_a_reworded_failure_keeps_its_type_exit_code_and_details():
    error = errors.ConflictError("another operation is in progress", details="x-ms-request-id: 1")

    reworded = error.reworded("another operation is in progress; --traffic_allocation 10 was not applied")

    assert type(reworded) is errors.ConflictError and reworded.exit_code == errors.EXIT_CONFLICT
    assert (
        str(reworded) == reworded.message == "another operation is in progress; --traffic_allocation 10 was not applied"
    )
    assert reworded.details == "x-ms-request-id: 1"
    assert error.message == "another operation is in progress"  # the original is left as it was


def test_an_exit_code_cannot_be_passed_beside_the_type():
    with pytest.raises(TypeError):
        CliError("failed", exit_code=errors.EXIT_AUTH)  # type: ignore[call-arg]


def test_an_interrupt_python_cannot_raise_where_it_lands_still_ends_the_command(capsys):
    """A Ctrl-C (or SIGTERM) landing in a weakref callback of the import machinery printed "Exception ignored" and a
    traceback, and the command went on as if never interrupted."""
    import time

    from common.cli import run_main

    class RaisesWhenCollected:
        def __del__(self) -> None:
            raise KeyboardInterrupt  # where Python cannot raise it: "unraisable"

    def main(_argv: object) -> int:
        RaisesWhenCollected()
        for _ in range(2000):  # the re-delivered interrupt lands at the next bytecode boundary
            time.sleep(0.001)
        return 0

    code = run_main(main, [])

    assert code == errors.EXIT_INTERRUPTED
    assert capsys.readouterr().err == "error: interrupted\n"
