"""keys --regenerate: a key replaced on Azure (fake control plane, mocked MLClient) and for real on the local target,
where the old key is refused from the very next request while the other keeps working; local tokens revoked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

import create_online_endpoint
import manage_online_endpoint
from tests.conftest import existing_endpoint, finished_poller
from tests.localtarget import SAMPLE, LocalSetup, local_target

ENDPOINT = ["--endpoint_name", "diabetes-classify"]
SCORING_URI = "https://diabetes-classify.eastus.inference.ml.azure.com/score"


def score_on_azure(key: str) -> int:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return requests.post(SCORING_URI, data=SAMPLE, headers=headers, timeout=10).status_code


def test_azure_regenerates_the_primary_key(fake_azure, run_script):
    fake_azure.add_endpoint("diabetes-classify", {"blue": 100})

    result = run_script(manage_online_endpoint, ["keys", *ENDPOINT, "--regenerate", "primary"])

    assert result.code == 0, result.err
    [regenerate] = fake_azure.sent("POST", "/onlineEndpoints/diabetes-classify/regenerateKeys")
    assert regenerate.body["keyType"] == "Primary"
    assert fake_azure.endpoint_keys("diabetes-classify") == {
        "primaryKey": "primary-key-1",
        "secondaryKey": "secondary-key-0",
    }
    assert [score_on_azure(key) for key in ("primary-key-0", "primary-key-1", "secondary-key-0")] == [401, 200, 200]
    assert "Regenerated the primary key of diabetes-classify: the old one is refused" in result.out


def test_azure_regenerate_that_leaves_the_key_is_a_failure(fake_azure, run_script):
    fake_azure.add_endpoint("diabetes-classify", {"blue": 100})
    fake_azure.regenerate_keeps_key = True

    result = run_script(manage_online_endpoint, ["keys", *ENDPOINT, "--regenerate", "secondary"])

    assert result.code == 1
    assert "the secondary key of 'diabetes-classify' is unchanged after the regenerate request" in result.err


def test_azure_token_endpoint_has_no_keys_to_regenerate(fake_azure, run_script):
    fake_azure.add_endpoint("diabetes-classify", {"blue": 100}, auth_mode="AMLToken")

    result = run_script(manage_online_endpoint, ["keys", *ENDPOINT, "--regenerate", "primary"])

    assert result.code == 2
    assert "uses auth_mode aml_token, which has no keys to regenerate" in result.err
    assert fake_azure.writes() == []


def test_azure_tokens_cannot_be_revoked_and_nothing_is_called(fake_azure, run_script):
    result = run_script(manage_online_endpoint, ["keys", *ENDPOINT, "--regenerate", "token"])

    assert result.code == 2
    assert "Azure has no way to revoke aml_token tokens: each expires on its own" in result.err
    assert fake_azure.requests == []


def test_mocked_client_regenerates_with_the_sdk_call(azure, run_script):
    azure.client.online_endpoints.get.side_effect = None
    azure.client.online_endpoints.get.return_value = existing_endpoint("diabetes-classify", {"blue": 100})
    old, new = ({"primary_key": "p", "secondary_key": s} for s in ("s0", "s1"))
    azure.client.online_endpoints.get_keys.side_effect = [type("Keys", (), keys)() for keys in (old, new)]
    azure.client.online_endpoints.begin_regenerate_keys.return_value = finished_poller(None)

    result = run_script(manage_online_endpoint, ["keys", *ENDPOINT, "--regenerate", "secondary", "--output", "json"])

    assert result.code == 0, result.err
    azure.client.online_endpoints.begin_regenerate_keys.assert_called_once_with(
        "diabetes-classify", key_type="secondary"
    )
    assert '"regenerated": "secondary"' in result.out


@pytest.fixture
def local(tmp_path: Path, model_dir: Path) -> Iterator[LocalSetup]:
    with local_target(tmp_path / "home", "keys-local", model_dir) as setup:
        setup.deploy("blue", 100)
        yield setup


def regenerate_locally(setup: LocalSetup, key_type: str) -> int:
    argv = ["keys", "--local", "--endpoint_name", setup.endpoint_name, "--regenerate", key_type]
    return setup.run(manage_online_endpoint.main, argv)


def test_local_regenerated_key_is_refused_on_the_very_next_request(local):
    keys = {"primary": local.key, "secondary": _secondary(local)}

    assert regenerate_locally(local, "primary") == 0

    assert local.score(key=keys["primary"]).status_code == 401
    assert local.score(key=keys["secondary"]).status_code == 200
    assert local.score(key=local.key).status_code == 200
    assert local.key != keys["primary"]

    assert regenerate_locally(local, "secondary") == 0

    assert local.score(key=keys["secondary"]).status_code == 401
    assert local.score(key=_secondary(local)).status_code == 200
    assert local.store.keys_file(local.endpoint_name).stat().st_mode & 0o777 == 0o600


def _secondary(setup: LocalSetup) -> str:
    from common.local.state import read_json

    return read_json(setup.store.keys_file(setup.endpoint_name))["secondary_key"]


def _token(setup: LocalSetup) -> str:
    return setup.client().online_endpoints.get_keys(setup.endpoint_name).access_token


def _set_auth_mode(setup: LocalSetup, mode: str) -> None:
    argv = ["--local", "--endpoint_name", setup.endpoint_name, "--auth_mode", mode]
    assert setup.run(create_online_endpoint.main, argv) == 0


def test_local_regenerate_token_revokes_every_token_issued(local):
    _set_auth_mode(local, "aml_token")
    issued = _token(local)
    assert local.score(key=issued).status_code == 200

    assert regenerate_locally(local, "token") == 0

    assert local.score(key=issued).status_code == 401
    assert local.score(key=_token(local)).status_code == 200


def test_local_auth_mode_change_revokes_tokens(local):
    _set_auth_mode(local, "aml_token")
    issued = _token(local)

    _set_auth_mode(local, "key")
    _set_auth_mode(local, "aml_token")

    assert local.score(key=issued).status_code == 401
    assert local.score(key=_token(local)).status_code == 200


@pytest.mark.parametrize(
    ("mode", "key_type", "message"),
    [
        ("key", "token", "uses auth_mode key, so it has keys, not tokens"),
        ("aml_token", "primary", "has no keys to regenerate: --regenerate token revokes its tokens"),
    ],
)
def test_local_regenerate_must_fit_the_auth_mode(local, run_script, mode, key_type, message):
    if mode != "key":
        _set_auth_mode(local, mode)
    revision = local.endpoint()["revision"]
    argv = ["keys", "--local", "--endpoint_name", local.endpoint_name, "--regenerate", key_type]

    result = run_script(manage_online_endpoint, argv)

    assert result.code == 2 and message in result.err
    assert local.endpoint()["revision"] == revision
