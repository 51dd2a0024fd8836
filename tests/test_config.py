"""Settings: environment, YAML file, validation messages, production refusals."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from mlops.bootstrap import check_startup_settings
from mlops.config import ensure_secret_key, load_settings
from mlops.errors import ConfigError

STRONG = "Correct-Horse-Battery-9"


def test_defaults_are_embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.environment == "development"
    assert settings.data_dir == Path(".mlops")
    assert settings.redis_url is None
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path}/.mlops/mlops.db"


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_DATABASE_URL", "postgresql://u@db:5432/mlops")
    monkeypatch.setenv("MLOPS_REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("MLOPS_DATABASE_POOL_SIZE", "25")
    settings = load_settings()
    assert settings.resolved_database_url == "postgresql+psycopg://u@db:5432/mlops"
    assert settings.redis_url == "redis://cache:6379/0"
    assert settings.database_pool_size == 25


def test_yaml_file_with_nested_sections_and_env_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "application.yml"
    config.write_text(
        "environment: staging\n"
        "database:\n  url: postgresql://u@db/mlops\n  pool_size: 30\n"
        "access_token_ttl_seconds: 600\n"
    )
    monkeypatch.setenv("MLOPS_DATABASE_POOL_SIZE", "40")
    settings = load_settings(config)
    assert settings.environment == "staging"
    assert settings.database_url == "postgresql://u@db/mlops"
    assert settings.database_pool_size == 40  # the environment wins
    assert settings.access_token_ttl_seconds == 600


def test_the_shipped_template_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    template = Path("infrastructure/production/config/application.yml.template")
    settings = load_settings(template)
    assert settings.environment == "production"


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("MLOPS_ENVIRONMENT", "prod", "MLOPS_ENVIRONMENT"),
        ("MLOPS_DATABASE_POOL_SIZE", "zero", "MLOPS_DATABASE_POOL_SIZE"),
        ("MLOPS_DATABASE_URL", "mysql://x/y", "MLOPS_DATABASE_URL"),
        ("MLOPS_REDIS_URL", "http://x", "MLOPS_REDIS_URL"),
        ("MLOPS_PASSWORD_HASH_MEMORY_KIB", "1024", "MLOPS_PASSWORD_HASH_MEMORY_KIB"),
    ],
)
def test_bad_values_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, named: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=named):
        load_settings()


def test_unknown_yaml_keys_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "a.yml"
    config.write_text("database:\n  uri: x\n")
    with pytest.raises(ConfigError, match="unknown setting.*database_uri"):
        load_settings(config)
    config.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(config)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.yml")


def test_development_generates_and_keeps_a_secret_key(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "d")
    first = ensure_secret_key(settings)
    assert len(first) >= 32
    assert ensure_secret_key(settings) == first
    mode = stat.S_IMODE((tmp_path / "d" / "secret_key").stat().st_mode)
    assert mode == 0o600


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_production_requires_a_strong_secret_and_admin_password(
    tmp_path: Path, environment: str
) -> None:
    base: dict[str, Any] = {"environment": environment, "data_dir": tmp_path}
    with pytest.raises(ConfigError, match="MLOPS_SECRET_KEY is required"):
        check_startup_settings(load_settings(**base, admin_password=STRONG))
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        check_startup_settings(load_settings(**base, secret_key="short", admin_password=STRONG))
    key = "s" * 40
    # Only mlops up, which makes the first admin, needs it (tests/test_bootstrap.py).
    with pytest.raises(ConfigError, match="MLOPS_ADMIN_PASSWORD is required"):
        check_startup_settings(load_settings(**base, secret_key=key), creates_admin=True)
    with pytest.raises(ConfigError, match="MLOPS_ADMIN_PASSWORD is too weak"):
        check_startup_settings(load_settings(**base, secret_key=key, admin_password="admin123"))
    with pytest.raises(ConfigError, match="common passwords"):
        check_startup_settings(load_settings(**base, secret_key=key, admin_password="qwerty123456"))
    # The metrics token outside development: tests/api/test_probe_exposure.py.
    ready = load_settings(**base, secret_key=key, admin_password=STRONG, metrics_token="m" * 32)
    check_startup_settings(ready)
    assert not (tmp_path / "secret_key").exists()


def test_a_misspelt_or_replaced_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_DATABSE_URL", "postgresql://u@db/mlops")
    monkeypatch.setenv("MLOPS_LOGIN_LOCKOUT_SECONDS", "900")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    message = str(refused.value)
    assert "MLOPS_DATABSE_URL is not a setting" in message
    assert "MLOPS_LOGIN_LOCKOUT_SECONDS was replaced by MLOPS_LOGIN_WINDOW_SECONDS" in message


def test_client_and_test_variables_are_not_settings_but_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLOPS_URL", "http://127.0.0.1:8000")
    monkeypatch.setenv("MLOPS_API_KEY", "mlops_x")
    monkeypatch.setenv("MLOPS_TEST_BACKENDS", "embedded")
    assert load_settings().environment == "development"
