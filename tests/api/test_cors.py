"""CORS is off by default; MLOPS_CORS_ORIGINS lists the only origins whose pages
may call the API from a browser."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from mlops.config import load_settings
from mlops.errors import ConfigError
from mlops.registry.demo import register_demo_model
from tests.conftest import Platform, bearer, start_platform

ALLOWED = "https://ui.example.com"


def preflight(origin: str, method: str = "POST", headers: str = "authorization") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


@pytest.fixture
async def cors_platform(settings_factory: Any) -> AsyncIterator[Platform]:
    settings = settings_factory(cors_origins=f"{ALLOWED}, http://localhost:3000")
    async for platform in start_platform(settings):
        yield platform


async def test_preflight_is_refused_by_default(platform: Platform) -> None:
    response = await platform.client.options("/api/v1/users/me", headers=preflight(ALLOWED))
    assert response.status_code in (400, 405)
    assert "access-control-allow-origin" not in response.headers
    simple = await platform.client.get("/health", headers={"Origin": ALLOWED})
    assert "access-control-allow-origin" not in simple.headers


async def test_a_listed_origin_may_call(cors_platform: Platform, admin_token: str) -> None:
    response = await cors_platform.client.options(
        "/api/v1/models", headers=preflight(ALLOWED, "POST", "authorization, content-type")
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in response.headers
    actual = await cors_platform.client.get(
        "/api/v1/users/me", headers={"Origin": ALLOWED, **bearer(admin_token)}
    )
    assert actual.status_code == 200
    assert actual.headers["access-control-allow-origin"] == ALLOWED
    assert "X-Request-ID" in actual.headers["access-control-expose-headers"]


async def test_an_unlisted_origin_is_refused_with_a_clear_error(cors_platform: Platform) -> None:
    response = await cors_platform.client.options(
        "/api/v1/models", headers=preflight("https://evil.example")
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    error = response.json()["error"]
    assert error["code"] == "cors_refused"
    assert "origin" in error["message"] and "MLOPS_CORS_ORIGINS" in error["message"]
    assert ALLOWED not in error["message"]  # the allow-list is not disclosed
    actual = await cors_platform.client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in actual.headers


async def test_predictions_from_a_listed_origin_get_cors_headers(
    cors_platform: Platform, admin_token: str
) -> None:
    assert await register_demo_model(cors_platform.ctx)
    await cors_platform.app.state.dataplane.manager.refresh()
    response = await cors_platform.client.post(
        "/api/v1/models/predict",
        json={"data": [[1, 2, 3, 4, 5]]},
        headers={"Origin": ALLOWED, **bearer(admin_token)},
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ALLOWED


@pytest.mark.parametrize(
    "value", ["*", "https://ui.example.com/", "https://ui.example.com/app", "ui.example.com"]
)
def test_only_exact_origins_are_accepted(value: str) -> None:
    with pytest.raises(ConfigError, match="MLOPS_CORS_ORIGINS"):
        load_settings(cors_origins=value)
