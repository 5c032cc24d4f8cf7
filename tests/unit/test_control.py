"""Waiting on long-running operations, and the dry-run YAML helper."""

from __future__ import annotations

from unittest.mock import MagicMock

import pytest

from common.control.lookups import get_or_none
from common.control.waiting import wait_with_progress
from common.errors import EXIT_INTERRUPTED, CliError


def test_progress_shows_elapsed_time_and_status(capsys):
    poller = MagicMock()
    poller.done.side_effect = [False, False, True]
    poller.status.side_effect = ["InProgress", "Succeeded"]
    poller.result.return_value = "deployment"
    ticks = iter([0.0, 65.0, 130.0])

    result = wait_with_progress(poller, "deployment blue", "az ml ...", interval=0, clock=lambda: next(ticks))

    assert result == "deployment"
    assert capsys.readouterr().err.splitlines() == [
        "  [01:05] deployment blue: InProgress",
        "  [02:10] deployment blue: Succeeded",
    ]


def test_ctrl_c_says_the_operation_keeps_running_and_how_to_check():
    poller = MagicMock()
    poller.done.return_value = False
    poller.wait.side_effect = KeyboardInterrupt

    with pytest.raises(CliError) as error:
        wait_with_progress(poller, "deployment blue", "az ml online-deployment show --name blue -e ep")

    assert error.value.exit_code == EXIT_INTERRUPTED
    assert str(error.value) == (
        "interrupted while waiting: deployment blue keeps running in Azure; "
        "check it with: az ml online-deployment show --name blue -e ep"
    )


def test_get_or_none_only_swallows_not_found():
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    assert get_or_none(MagicMock(side_effect=ResourceNotFoundError("gone"))) is None
    assert get_or_none(MagicMock(return_value=7)) == 7
    with pytest.raises(HttpResponseError):
        get_or_none(MagicMock(side_effect=HttpResponseError("boom")))


def test_the_cause_of_a_failed_init_is_the_users_exception_not_the_servers_wrapper():
    from common.doctor.diagnosis import exception_line

    log = "\n".join(
        [
            "Traceback (most recent call last):",
            '  File "/var/azureml-app/score.py", line 3, in init',
            "ModuleNotFoundError: No module named 'xgboost'",
            "",
            "The above exception was the direct cause of the following exception:",
            "azureml_inference_server_http.server.user_script.UserScriptException: Failed to execute init",
            "2026-11-24 10:00:00,000 I [1] gunicorn.error - Worker exiting (pid: 2)",
        ]
    )

    assert exception_line(log) == "ModuleNotFoundError: No module named 'xgboost'"
    assert exception_line("Booting worker\nListening at: unix:/tmp/s.sock") is None


def test_the_cause_is_in_the_last_traceback_not_an_earlier_one_the_server_recovered_from():
    from common.doctor.diagnosis import exception_line

    log = "\n".join(
        [
            "Traceback (most recent call last):",
            '  File ".../appinsights_client.py", line 230, in _get_model_ids',
            "ValueError: invalid literal for int() with base 10: 'diabetes-predict'",
            "2026-11-24 20:12:11,928 E [3605] azmlinfsrv - Traceback (most recent call last):",
            '  File ".../score.py", line 1, in <module>',
            "ModuleNotFoundError: No module named 'azure.ai'",
            "",
            "The above exception was the direct cause of the following exception:",
            "",
            "Traceback (most recent call last):",
            "azureml_inference_server_http.server.user_script.UserScriptImportException: Failed to import user script",
            "2026-11-24 20:12:12,017 E [3604] gunicorn.error - Reason: Worker failed to boot.",
        ]
    )

    assert exception_line(log) == "ModuleNotFoundError: No module named 'azure.ai'"
