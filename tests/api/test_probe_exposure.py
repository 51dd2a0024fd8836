"""What an anonymous caller may read from the probe and scrape endpoints: /ready and
/health name components and their status only; /metrics needs MLOPS_METRICS_TOKEN
when it is set, which it must be outside development."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mlops.bootstrap import check_startup_settings
from mlops.config import load_settings
from mlops.errors import ConfigError
from tests.conftest import ADMIN_PASSWORD, SECRET_KEY, Platform, bearer, start_platform

METRICS_TOKEN = "scrape-" + "t" * 40


@pytest.fixture
async def guarded_metrics(settings_factory: Any) -> AsyncIterator[Platform]:
    async for platform in start_platform(settings_factory(metrics_token=METRICS_TOKEN)):
        yield platform


async def test_metrics_need_the_scrape_token_when_it_is_set(
    guarded_metrics: Platform, admin_token: str
) -> None:
    client = guarded_metrics.client
    for headers in (
        {},
        bearer("wrong-" + "t" * 40),
        bearer(admin_token),
        {"Authorization": METRICS_TOKEN},
    ):
        refused = await client.get("/metrics", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.json()["error"]["code"] == "unauthorized"
        assert "MLOPS_METRICS_TOKEN" in refused.json()["error"]["message"]
        assert "mlops_http_requests_total" not in refused.text
    scraped = await client.get("/metrics", headers=bearer(METRICS_TOKEN))
    assert scraped.status_code == 200
    assert "mlops_http_requests_total" in scraped.text


async def test_metrics_are_open_in_development_without_a_token_and_it_is_logged(
    settings_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mlops.health"):
        async for platform in start_platform(settings_factory()):
            assert (await platform.client.get("/metrics")).status_code == 200
    warnings = [r.getMessage() for r in caplog.records if r.name == "mlops.health"]
    assert any("/metrics is open" in w and "MLOPS_METRICS_TOKEN" in w for w in warnings)


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_outside_development_a_start_without_the_token_is_refused(
    environment: str, tmp_path: Path
) -> None:
    given: dict[str, Any] = {
        "environment": environment,
        "data_dir": tmp_path,
        "secret_key": SECRET_KEY,
        "admin_password": ADMIN_PASSWORD,
    }
    with pytest.raises(ConfigError, match="MLOPS_METRICS_TOKEN is required"):
        check_startup_settings(load_settings(**given))
    check_startup_settings(load_settings(**given, metrics_token=METRICS_TOKEN))


def test_a_short_token_is_refused() -> None:
    with pytest.raises(ConfigError, match="MLOPS_METRICS_TOKEN: .*at least 32"):
        load_settings(metrics_token="short")


async def test_ready_names_components_and_statuses_only(platform: Platform) -> None:
    response = await platform.client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "checks"}
    assert {"database", "schema", "redis", "artifact_store"} <= set(body["checks"])
    for check in body["checks"].values():
        assert set(check) == {"status"}
    # The artifact store's path (the ok answer used to carry it) is not shown.
    assert str(platform.settings.data_dir) not in response.text
    assert (await platform.client.get("/health")).json() == {"status": "ok"}


async def test_a_failing_check_is_explained_in_the_log_not_the_answer(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    store = platform.settings.data_dir / "artifacts"
    assert store.is_dir()
    store.rename(store.with_name("artifacts-away"))
    try:
        with caplog.at_level(logging.WARNING, logger="mlops.health"):
            response = await platform.client.get("/ready")
    finally:
        store.with_name("artifacts-away").rename(store)
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["artifact_store"] == {"status": "error"}
    assert str(store) not in response.text
    assert "does not exist" not in response.text
    logged = [r.getMessage() for r in caplog.records if r.name == "mlops.health"]
    assert any("artifact_store" in line and str(store) in line for line in logged), logged
    assert (await platform.client.get("/ready")).status_code == 200
