"""Health, readiness, metrics, the error shape, request ids and JSON logs."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator

import pytest

from tests.conftest import Platform, bearer


async def test_health_has_no_dependencies(platform: Platform) -> None:
    response = await platform.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_reports_each_check(platform: Platform, backend: str) -> None:
    response = await platform.client.get("/ready")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["database"]["status"] == "ok"
    assert checks["schema"]["status"] == "ok"
    assert checks["redis"]["status"] == ("ok" if backend == "postgres" else "disabled")


async def test_metrics_expose_routes_latency_pool_and_logins(
    platform: Platform, admin_token: str
) -> None:
    await platform.client.get("/api/v1/users/me", headers=bearer(admin_token))
    await platform.client.get("/api/v1/users/me")
    text = (await platform.client.get("/metrics")).text
    assert (
        'mlops_http_requests_total{method="GET",route="/api/v1/users/me",status="200"} 1.0' in text
    )
    assert (
        'mlops_http_requests_total{method="GET",route="/api/v1/users/me",status="401"} 1.0' in text
    )
    # Buckets from 1 ms to over 1 s, so a p95 can be read anywhere in that range.
    buckets = [
        float(b)
        for b in re.findall(
            r'mlops_http_request_duration_seconds_bucket\{le="([0-9.]+)",method="GET",'
            r'route="/api/v1/users/me"\}',
            text,
        )
    ]
    assert buckets[0] == 0.001
    assert max(buckets) > 1.0
    assert len([b for b in buckets if 0.001 <= b <= 1.0]) >= 15
    assert re.search(r"^mlops_db_pool_connections_in_use \d", text, re.M)
    assert re.search(r"^mlops_db_pool_size [1-9]", text, re.M)
    assert "mlops_login_failures_total" in text


async def test_unknown_paths_share_one_metric_label(platform: Platform) -> None:
    for i in range(3):
        await platform.client.get(f"/no/such/path/{i}")
    text = (await platform.client.get("/metrics")).text
    assert 'route="unmatched",status="404"} 3.0' in text
    assert "/no/such/path" not in text


async def test_error_shape_for_each_kind_of_error(platform: Platform, admin_token: str) -> None:
    not_found = await platform.client.get("/api/v1/nothing")
    assert not_found.status_code == 404
    assert set(not_found.json()["error"]) == {"code", "message"}
    wrong_method = await platform.client.delete("/health")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
    invalid = await platform.client.post(
        "/api/v1/users", json={"username": "x"}, headers=bearer(admin_token)
    )
    assert invalid.status_code == 422
    error = invalid.json()["error"]
    assert error["code"] == "validation_error"
    assert "password" in error["message"]
    assert {d["field"] for d in error["details"]} >= {"password"}


async def test_oversized_bodies_are_refused_before_parsing(platform: Platform) -> None:
    big = b'{"username": "' + b"a" * (2 << 20) + b'", "password": "x"}'
    response = await platform.client.post(
        "/api/v1/auth/login", content=big, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"a" * 65536

    streamed = await platform.client.post(
        "/api/v1/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413


async def test_request_id_is_generated_or_kept(platform: Platform) -> None:
    generated = await platform.client.get("/health")
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["X-Request-ID"])
    kept = await platform.client.get("/health", headers={"X-Request-ID": "trace-abc.123"})
    assert kept.headers["X-Request-ID"] == "trace-abc.123"
    # An id that could smuggle anything into logs is replaced.
    for hostile in (b"a b\r\nX-Evil: 1", "caf\u00e9".encode(), b"x" * 65):
        replaced = await platform.client.get("/health", headers=[(b"X-Request-ID", hostile)])
        assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["X-Request-ID"])


async def test_errors_carry_the_request_id_too(platform: Platform) -> None:
    response = await platform.client.get("/api/v1/users/me", headers={"X-Request-ID": "rid-401"})
    assert response.status_code == 401
    assert response.headers["X-Request-ID"] == "rid-401"


async def test_log_lines_are_json_with_the_request_id(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlops.observability import access_log
    from mlops.observability.logs import configure_logging

    configure_logging("INFO", json_lines=True)
    try:
        await platform.client.get("/health", headers={"X-Request-ID": "log-check-1"})
        access_log.flush()  # access lines are written in batches, off the event loop
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    finally:
        access_log.uninstall()
        logging.getLogger().handlers.clear()
    access = [line for line in lines if line.get("logger") == "mlops.access"]
    assert access, lines
    assert access[-1]["request_id"] == "log-check-1"
    assert access[-1]["route"] == "/health"
    assert access[-1]["status"] == 200


async def test_unexpected_errors_hide_the_trace(platform: Platform) -> None:
    @platform.app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    response = await platform.client.get("/boom", headers={"X-Request-ID": "rid-500"})
    assert response.status_code == 500
    body = response.json()
    assert body["error"]["code"] == "internal_error"
    assert "rid-500" in body["error"]["message"]
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
    assert response.headers["X-Request-ID"] == "rid-500"
