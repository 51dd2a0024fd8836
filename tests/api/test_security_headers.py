"""Every answer carries nosniff, no-referrer and a no-framing policy: JSON, errors,
HTML, and the predictions the fast path answers before the middleware stack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mlops.registry.demo import register_demo_model
from tests.conftest import Platform, bearer, start_platform

API_CSP = "default-src 'none'; frame-ancestors 'none'"


def assert_secured(response: httpx.Response, csp: str = API_CSP) -> None:
    assert response.headers["x-content-type-options"] == "nosniff", response.headers
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers.get_list("content-security-policy") == [csp]


async def test_json_and_error_answers_carry_the_headers(
    platform: Platform, admin_token: str
) -> None:
    answers = [
        await platform.client.get("/health"),
        await platform.client.get("/ready"),
        await platform.client.get("/openapi.json"),
        await platform.client.get("/api/v1/users/me", headers=bearer(admin_token)),
        await platform.client.get("/api/v1/users/me"),  # 401
        await platform.client.get("/no/such/path"),  # 404
        await platform.client.delete("/health"),  # 405
        await platform.client.post(
            "/api/v1/auth/login",
            content=b"x" * (2 << 20),
            headers={"Content-Type": "application/json"},
        ),  # 413 from the body limit, before any route
    ]
    assert [r.status_code for r in answers] == [200, 200, 200, 200, 401, 404, 405, 413]
    for response in answers:
        assert_secured(response)


async def test_open_inference_protocol_answers_carry_them_too(
    platform: Platform, admin_token: str
) -> None:
    live = await platform.client.get("/v2/health/live")
    assert live.status_code == 200
    assert_secured(live)
    # Errors on /v2 are rewritten to the protocol's shape by the outermost middleware.
    missing = await platform.client.get("/v2/models/nope", headers=bearer(admin_token))
    assert missing.status_code == 404
    assert isinstance(missing.json()["error"], str)
    assert_secured(missing)


async def test_an_unexpected_500_carries_them_too(platform: Platform) -> None:
    @platform.app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    response = await platform.client.get("/boom")
    assert response.status_code == 500
    assert_secured(response)


async def test_html_gets_a_strict_content_security_policy(platform: Platform) -> None:
    response = await platform.client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert_secured(response, csp)
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert "unsafe" not in csp


@pytest.fixture(params=[True, False], ids=["fast-path", "fastapi-route"])
async def demo_platform(
    settings_factory: Any, request: pytest.FixtureRequest
) -> AsyncIterator[Platform]:
    """The demo model served as the default model, by either predict implementation."""
    async for platform in start_platform(settings_factory(predict_fast_path=request.param)):
        assert await register_demo_model(platform.ctx)
        await platform.app.state.dataplane.manager.refresh()
        yield platform


async def test_predict_answers_carry_the_headers(demo_platform: Platform) -> None:
    token = await demo_platform.login()
    body = {"data": [[1, 2, 3, 4, 5]]}
    ok = await demo_platform.client.post("/api/v1/models/predict", json=body, headers=bearer(token))
    assert ok.status_code == 200, ok.text
    assert_secured(ok)
    named = await demo_platform.client.post(
        "/api/v1/models/demo/predict", json=body, headers=bearer(token)
    )
    assert named.status_code == 200
    assert_secured(named)
    unauthenticated = await demo_platform.client.post("/api/v1/models/predict", json=body)
    assert unauthenticated.status_code == 401
    assert_secured(unauthenticated)
    bad = await demo_platform.client.post(
        "/api/v1/models/predict", json={"data": [[1, 2]]}, headers=bearer(token)
    )
    assert bad.status_code == 422
    assert_secured(bad)
