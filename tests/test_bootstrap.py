"""The first admin comes from the migration step, not from the servers' pods.

`mlops db upgrade` (the db-migrate Job) makes it from MLOPS_ADMIN_PASSWORD when no user
exists, with no signing key; `mlops api`, `model-server`, `web` and `worker` start
without that password outside development, and an API with no user at all says how to
make the first admin. `mlops up` still needs it outside development (it makes the admin).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from mlops.auth import service as users
from mlops.bootstrap import NoAdmin, check_startup_settings, ensure_first_admin
from mlops.cli.main import app
from mlops.config import load_settings
from mlops.context import create_context
from mlops.errors import ConfigError
from tests.cli.live_server import MLOPS, clean_env
from tests.conftest import REDIS_URL, SECRET_KEY, start_platform
from tests.services import free_port

runner = CliRunner()
STRONG = "Migration-Job-Passphrase-7"
METRICS_TOKEN = "m" * 40
DEADLINE_S = 60.0


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_servers_start_without_the_admin_password_outside_development(
    tmp_path: Path, environment: str
) -> None:
    base: dict[str, Any] = {
        "environment": environment,
        "data_dir": tmp_path,
        "secret_key": SECRET_KEY,
        "metrics_token": METRICS_TOKEN,
    }
    check_startup_settings(load_settings(**base))
    # mlops up makes the first admin itself: it still needs the password.
    with pytest.raises(ConfigError, match="MLOPS_ADMIN_PASSWORD is required"):
        check_startup_settings(load_settings(**base), creates_admin=True)
    check_startup_settings(load_settings(**base, admin_password=STRONG), creates_admin=True)
    # A password given anyway must still be a strong one, to every process.
    for creates_admin in (False, True):
        with pytest.raises(ConfigError, match="MLOPS_ADMIN_PASSWORD is too weak"):
            check_startup_settings(
                load_settings(**base, admin_password="admin123"), creates_admin=creates_admin
            )


def _database_env(settings_factory: Any) -> dict[str, str]:
    """This test's database (migrated, no user yet) as the Job's environment names it."""
    settings = settings_factory()
    env = {"MLOPS_DATA_DIR": str(settings.data_dir)}
    if settings.database_url is not None:
        env["MLOPS_DATABASE_URL"] = settings.database_url
    return env


def test_db_upgrade_creates_the_first_admin_and_the_api_needs_no_password(
    settings_factory: Any,
) -> None:
    # As the db-migrate Job runs it: production, the admin password, no signing key.
    env = {**_database_env(settings_factory), "MLOPS_ENVIRONMENT": "production"}
    upgraded = runner.invoke(app, ["db", "upgrade"], env={**env, "MLOPS_ADMIN_PASSWORD": STRONG})
    assert upgraded.exit_code == 0, upgraded.output
    assert "first admin admin created from MLOPS_ADMIN_PASSWORD" in upgraded.output
    # Again (the next release's Job): users exist, nothing is made or changed.
    again = runner.invoke(
        app, ["db", "upgrade"], env={**env, "MLOPS_ADMIN_PASSWORD": "Another-Passphrase-99"}
    )
    assert again.exit_code == 0, again.output
    assert "first admin" not in again.output and "warning" not in again.output

    async def log_in_to_an_api_without_the_password() -> None:
        settings = settings_factory(
            environment="production", admin_password=None, metrics_token=METRICS_TOKEN
        )
        check_startup_settings(settings)
        async for platform in start_platform(settings, components=["api"]):
            for password, status in ((STRONG, 200), ("Another-Passphrase-99", 401)):
                answer = await platform.client.post(
                    "/api/v1/auth/login", json={"username": "admin", "password": password}
                )
                assert answer.status_code == status, answer.text

    asyncio.run(log_in_to_an_api_without_the_password())


def test_db_upgrade_refuses_a_weak_admin_password_before_migrating(tmp_path: Path) -> None:
    env = {"MLOPS_DATA_DIR": str(tmp_path / "data"), "MLOPS_ENVIRONMENT": "production"}
    for weak in ("", "admin123"):
        refused = runner.invoke(app, ["db", "upgrade"], env={**env, "MLOPS_ADMIN_PASSWORD": weak})
        assert refused.exit_code == 2, refused.output
        assert "MLOPS_ADMIN_PASSWORD is too weak" in refused.output
    # Nothing was migrated.
    status = runner.invoke(app, ["db", "status"], env={**env, "MLOPS_SECRET_KEY": SECRET_KEY})
    assert status.exit_code == 1, status.output


def test_db_upgrade_without_a_password_says_how_to_make_the_first_admin(tmp_path: Path) -> None:
    env = {"MLOPS_DATA_DIR": str(tmp_path / "data"), "MLOPS_ENVIRONMENT": "staging"}
    upgraded = runner.invoke(app, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    assert "database schema is at" in upgraded.output
    assert "no user exists and MLOPS_ADMIN_PASSWORD is unset" in upgraded.output
    assert "mlops users create admin --role admin" in upgraded.output
    # Development stays quiet: `mlops up` makes the admin with a generated password.
    quiet = runner.invoke(app, ["db", "upgrade"], env={"MLOPS_DATA_DIR": str(tmp_path / "dev")})
    assert quiet.exit_code == 0, quiet.output
    assert "warning" not in quiet.output


async def test_without_users_or_password_the_first_admin_is_not_made_up(
    settings_factory: Any,
) -> None:
    settings = settings_factory(environment="production", admin_password=None)
    ctx = create_context(settings)
    try:
        assert isinstance(await ensure_first_admin(ctx), NoAdmin)
        async with ctx.sessions() as session:
            assert await users.count_users(session=session) == 0
    finally:
        await ctx.close()


def test_the_api_starts_without_users_and_says_how_to_make_the_first_admin(
    tmp_path: Path, redis_client: Any
) -> None:
    data = tmp_path / "data"
    assert runner.invoke(app, ["db", "upgrade"], env={"MLOPS_DATA_DIR": str(data)}).exit_code == 0
    port = free_port()
    env = clean_env(
        data,
        MLOPS_ENVIRONMENT="production",
        MLOPS_SECRET_KEY=SECRET_KEY,
        MLOPS_METRICS_TOKEN=METRICS_TOKEN,
        MLOPS_REDIS_URL=REDIS_URL,
        MLOPS_REDIS_NAMESPACE=f"bootstrap-{port}:",
    )
    log = tmp_path / "api.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [*MLOPS, "api", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + DEADLINE_S
        ready = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code
            except httpx.HTTPError:
                ready = None
            if ready == 200:
                break
            time.sleep(0.25)
        assert ready == 200, log.read_text()[-3000:]
    finally:
        process.terminate()
        process.wait(timeout=30)
    output = log.read_text()
    warning = "WARNING mlops.bootstrap: no user exists and MLOPS_ADMIN_PASSWORD is unset"
    assert warning in output, output[-3000:]
