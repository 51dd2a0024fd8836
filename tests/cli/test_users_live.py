"""Against a real ``mlops up`` (embedded: SQLite, no Redis): the ``mlops users`` commands
take effect in the running server (issue 9, item 9), and a client cannot choose its
address with X-Forwarded-For (item 3)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.live_server import MLOPS, LiveServer, clean_env, running_up

# The follower looks every second; this only bounds a stalled CI machine.
DEADLINE_SECONDS = 30


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with running_up(tmp_path) as live:
        yield live


def _mlops_users(tmp_path: Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [*MLOPS, "users", *args],
        env=clean_env(tmp_path / "data", COLUMNS="200"),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _login(url: str, username: str, password: str) -> str:
    response = httpx.post(
        f"{url}/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _status(url: str, credential: str) -> int:
    response = httpx.get(
        f"{url}/api/v1/users/me", headers={"Authorization": f"Bearer {credential}"}
    )
    return response.status_code


def _accepted_soon(url: str, credential: str) -> None:
    """Wait until the credential gets 200 (fails the test past the deadline)."""
    start = time.monotonic()
    while _status(url, credential) != 200:
        assert time.monotonic() - start < DEADLINE_SECONDS, "the change did not take effect"
        time.sleep(0.05)


def _refused_soon(url: str, *credentials: str) -> float:
    """Seconds until every credential gets 401 (fails the test past the deadline)."""
    start = time.monotonic()
    while any(_status(url, c) != 401 for c in credentials):
        assert time.monotonic() - start < DEADLINE_SECONDS, "the change did not take effect"
        time.sleep(0.1)
    return time.monotonic() - start


def test_users_commands_reach_the_running_server(server: LiveServer, tmp_path: Path) -> None:
    url = server.url
    admin = _login(url, "admin", server.admin_password)
    password = "Rita-Passphrase-2024"
    created = httpx.post(
        f"{url}/api/v1/users",
        json={"username": "rita", "password": password, "role": "editor"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert created.status_code == 201, created.text
    token = _login(url, "rita", password)
    key = httpx.post(
        f"{url}/api/v1/api-keys",
        json={"name": "laptop"},
        headers={"Authorization": f"Bearer {token}"},
    ).json()["key"]
    assert _status(url, token) == _status(url, key) == 200  # both cached by the server now

    said = _mlops_users(tmp_path, "disable", "rita")
    assert "applies it within 2 s" in said, said
    _refused_soon(url, token, key)
    refused = httpx.post(
        f"{url}/api/v1/auth/login", json={"username": "rita", "password": password}
    )
    assert refused.status_code == 401

    _mlops_users(tmp_path, "enable", "rita")
    token = _login(url, "rita", password)  # the login reads the database: it works at once
    _accepted_soon(url, token)  # the server's cached state follows within the bound
    assert _status(url, key) == 401  # revoked by the disable; enabling does not revive it

    _mlops_users(tmp_path, "set-role", "rita", "viewer")
    _refused_soon(url, token)
    token = _login(url, "rita", password)
    me = httpx.get(f"{url}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["role"] == "viewer"

    _mlops_users(tmp_path, "set-password", "rita", "--password-stdin", stdin="Rita-Reset-2025!\n")
    _refused_soon(url, token)
    assert _login(url, "rita", "Rita-Reset-2025!")
    old = httpx.post(f"{url}/api/v1/auth/login", json={"username": "rita", "password": password})
    assert old.status_code == 401  # the reset replaced the password, not added one
    assert old.json()["error"]["code"] == "invalid_credentials"


def test_x_forwarded_for_from_a_local_client_is_not_believed(tmp_path: Path) -> None:
    """uvicorn used to trust X-Forwarded-For from 127.0.0.1, so a local client could
    claim a new address on every guess. Without MLOPS_TRUSTED_PROXIES nobody is trusted."""
    env = {"MLOPS_LOGIN_FAILURES_PER_CLIENT": "3"}
    with running_up(tmp_path, env=env) as live:
        statuses = []
        for i in range(10):
            response = httpx.post(
                f"{live.url}/api/v1/auth/login",
                json={"username": f"user{i}", "password": "not-the-password"},
                headers={"X-Forwarded-For": f"10.0.{i}.1"},
            )
            statuses.append(response.status_code)
        # Waits of 1 s, 2 s, 4 s... after the third failure: some guess must be refused,
        # however slowly this machine answers.
        assert statuses[:3] == [401, 401, 401]
        assert 429 in statuses[3:], statuses
