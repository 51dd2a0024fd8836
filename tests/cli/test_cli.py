"""The ``mlops`` command: help, migrations, users, start-up refusals, a real server."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from mlops.cli.main import app
from tests.cli.live_server import LiveServer, clean_env, free_port
from tests.cli.live_server import running_up as start_up

runner = CliRunner()
MLOPS = [sys.executable, "-m", "mlops.cli.main"]
STRONG = "Correct-Horse-Battery-9"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return clean_env(tmp_path / "data", **extra)


@pytest.mark.parametrize(
    "command",
    [[], ["up"], ["api"], ["db"], ["db", "upgrade"], ["users"], ["users", "create"], ["login"]],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_db_upgrade_and_users_commands(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert runner.invoke(app, ["db", "status"], env=env).exit_code == 1
    upgraded = runner.invoke(app, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    assert runner.invoke(app, ["db", "status"], env=env).exit_code == 0
    created = runner.invoke(
        app,
        ["users", "create", "olive", "--role", "editor", "--password-stdin"],
        input="Olive-Passphrase-77\n",
        env=env,
    )
    assert created.exit_code == 0, created.output
    weak = runner.invoke(
        app, ["users", "create", "weak", "--password-stdin"], input="password\n", env=env
    )
    assert weak.exit_code == 1
    assert "at least 12 characters" in weak.output
    assert runner.invoke(app, ["users", "set-role", "olive", "admin"], env=env).exit_code == 0
    assert runner.invoke(app, ["users", "disable", "olive"], env=env).exit_code == 0
    listed = runner.invoke(app, ["users", "list"], env=env)
    assert re.search(r"olive\s.*admin\s.*yes", listed.output), listed.output
    missing = runner.invoke(app, ["users", "disable", "nobody"], env=env)
    assert missing.exit_code == 1
    assert "does not exist" in missing.output


@pytest.mark.parametrize("command", ["up", "api"])
def test_production_start_is_refused_without_secrets(tmp_path: Path, command: str) -> None:
    cases = [
        ({"MLOPS_ADMIN_PASSWORD": STRONG}, "MLOPS_SECRET_KEY is required"),
        ({"MLOPS_SECRET_KEY": "s" * 40, "MLOPS_ADMIN_PASSWORD": "admin123"}, "too weak"),
        # mlops up makes the first admin; the API leaves that to `mlops db upgrade`.
        (
            {"MLOPS_SECRET_KEY": "s" * 40},
            "MLOPS_ADMIN_PASSWORD is required"
            if command == "up"
            else "MLOPS_METRICS_TOKEN is required",
        ),
        (
            {"MLOPS_SECRET_KEY": "s" * 40, "MLOPS_ADMIN_PASSWORD": STRONG},
            "MLOPS_METRICS_TOKEN is required",
        ),
    ]
    for extra, message in cases:
        env = _env(tmp_path, MLOPS_ENVIRONMENT="production", **extra)
        result = subprocess.run(
            [*MLOPS, command, "--port", str(free_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, result.stdout + result.stderr
        assert message in result.stderr


@pytest.mark.parametrize("command", ["api", "model-server"])
def test_a_process_apart_needs_redis_outside_development(tmp_path: Path, command: str) -> None:
    secrets = {
        "MLOPS_SECRET_KEY": "s" * 40,
        "MLOPS_ADMIN_PASSWORD": STRONG,
        "MLOPS_METRICS_TOKEN": "m" * 40,
    }
    result = subprocess.run(
        [*MLOPS, command, "--port", str(free_port())],
        env=_env(tmp_path, MLOPS_ENVIRONMENT="production", **secrets),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "MLOPS_REDIS_URL is unset" in result.stderr
    assert "Set MLOPS_REDIS_URL, or run `mlops up`" in result.stderr


def test_api_refuses_a_schema_that_is_behind(tmp_path: Path) -> None:
    result = subprocess.run(
        [*MLOPS, "api", "--port", str(free_port())],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "mlops db upgrade" in result.stderr


@pytest.fixture
def running_up(tmp_path: Path) -> Iterator[LiveServer]:
    """``mlops up`` as a user starts it (its output in ``tmp_path / "up.log"``)."""
    with start_up(tmp_path) as server:
        yield server


def test_up_serves_the_guide_walkthrough(running_up: LiveServer, tmp_path: Path) -> None:
    url, password = running_up.url, running_up.admin_password
    assert httpx.get(f"{url}/ready").json()["status"] == "ok"
    login = httpx.post(f"{url}/api/v1/auth/login", json={"username": "admin", "password": password})
    assert login.status_code == 200
    token = login.json()["access_token"]
    me = httpx.get(f"{url}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["username"] == "admin"

    creds = tmp_path / "creds" / "credentials.json"
    env = {"MLOPS_CREDENTIALS_FILE": str(creds)}
    result = runner.invoke(
        app, ["login", "--url", url, "--username", "admin", "--password", password], env=env
    )
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert json.loads(creds.read_text())["url"] == url
    whoami = runner.invoke(app, ["whoami"], env=env)
    assert "admin (admin)" in whoami.output
    bad = runner.invoke(
        app, ["login", "--url", url, "--username", "admin", "--password", "wrong-password"], env=env
    )
    assert bad.exit_code == 1
    assert "Wrong username or password" in bad.output
    kept = json.loads(creds.read_text())["access_token"]
    assert kept != token
    kept_me = httpx.get(f"{url}/api/v1/users/me", headers={"Authorization": f"Bearer {kept}"})
    assert kept_me.status_code == 200
    assert runner.invoke(app, ["logout"], env=env).exit_code == 0
    assert not creds.exists()
    # The CLI's own token is revoked on the server, not only forgotten here.
    ended = httpx.get(f"{url}/api/v1/users/me", headers={"Authorization": f"Bearer {kept}"})
    assert ended.status_code == 401
    assert ended.json()["error"]["code"] == "token_revoked"
    revoked = httpx.get(f"{url}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert revoked.status_code == 200  # logout revoked only the CLI's own token


def test_the_commands_up_prints_work_when_pasted(running_up: LiveServer, tmp_path: Path) -> None:
    printed = (tmp_path / "up.log").read_text()
    login = re.search(r"Log in: +(.+)", printed)
    predict = re.search(r"Predict: +(.+)", printed)
    assert login and predict, printed
    password = f'"password":"{running_up.admin_password}"'
    script = login.group(1).replace('"password":"..."', password) + "\n" + predict.group(1)
    deadline = time.monotonic() + 30
    while True:  # the demo model loads in the background after the first start
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        answer = json.loads(result.stdout)
        if "predictions" in answer or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert answer["model"] == "demo", answer
    assert len(answer["predictions"]) == 1
