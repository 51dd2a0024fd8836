"""Deployment policies: canary share and stickiness, shadow, the guard, hot reload."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops.modelformats import Prediction
from tests.conftest import Platform, bearer
from tests.serving.conftest import dataplane, refresh, release

ROW = {"data": [[0.5, -1, 2, 0, 1]]}


async def _policy(platform: Platform, token: str, body: dict[str, object]) -> dict[str, object]:
    response = await platform.client.put(
        "/api/v1/models/m/deployment", json=body, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    await refresh(platform)
    result: dict[str, object] = response.json()
    return result


async def _versions(platform: Platform, token: str, count: int, **headers: str) -> list[int]:
    seen = []
    for i in range(count):
        extra = {"X-Routing-Key": headers["key"].format(i=i)} if "key" in headers else {}
        response = await platform.client.post(
            "/api/v1/models/m/predict", json=ROW, headers={**bearer(token), **extra}
        )
        assert response.status_code == 200, response.text
        seen.append(int(response.headers["X-Model-Version"]))
    return seen


@pytest.fixture
def seeded_routing() -> Iterator[None]:
    """Requests without a routing key meet the canary by ``random.random()``: seeded, the
    share is the same on every run (unseeded, 5,000 draws left 30 % +- 3 % about 0.3 % of
    runs), and the test still fails if the share the code gives is wrong."""
    state = random.getstate()
    random.seed(16)
    yield
    random.setstate(state)


@pytest.mark.usefixtures("seeded_routing")
async def test_canary_share_and_sticky_routing_keys(
    serving: Platform, admin_token: str, model_files: dict[str, Path], backend: str
) -> None:
    await release(serving, admin_token, "m", [model_files["onnx"], model_files["skops"]])
    await _policy(serving, admin_token, {"canary": {"version": 2, "percent": 30}})
    count = 5000 if backend == "embedded" else 2000
    versions = await _versions(serving, admin_token, count)
    share = versions.count(2) / count
    assert abs(share - 0.30) <= 0.03, share
    # The same key always meets the same version; different keys spread.
    for key in ("user-1", "user-2", "user-3"):
        assert len(set(await _versions(serving, admin_token, 20, key=key))) == 1
    spread = await _versions(serving, admin_token, 400, key="user-{i}")
    assert 0.2 < spread.count(2) / 400 < 0.4


async def test_shadow_never_changes_answers_even_when_it_fails(
    serving: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await release(serving, admin_token, "m", [model_files["onnx"], model_files["xgboost"]])
    await _policy(serving, admin_token, {"shadow": {"version": 2}})
    plane = dataplane(serving)
    before = await serving.client.post(
        "/api/v1/models/m/predict", json=ROW, headers=bearer(admin_token)
    )
    await plane.drain()
    shadow = plane.manager.loaded[("m", 2)]

    def broken(x: np.ndarray) -> Prediction:
        raise RuntimeError("shadow is broken")

    shadow.runtime.predict = broken  # type: ignore[method-assign]
    for _ in range(5):
        response = await serving.client.post(
            "/api/v1/models/m/predict", json=ROW, headers=bearer(admin_token)
        )
        assert response.status_code == 200
        assert response.json() == before.json()
    await plane.drain()
    text = (await serving.client.get("/metrics")).text
    assert 'mlops_shadow_requests_total{model="m",outcome="ok",version="2"} 1.0' in text
    assert 'mlops_shadow_requests_total{model="m",outcome="error",version="2"} 5.0' in text


@pytest.mark.usefixtures("seeded_routing")
async def test_guard_takes_a_failing_canary_out_of_traffic(
    serving: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await release(serving, admin_token, "m", [model_files["onnx"], model_files["skops"]])
    guard = {"max_error_rate": 0.05, "max_p95_ms": 1000, "window_s": 60, "min_requests": 20}
    await _policy(serving, admin_token, {"canary": {"version": 2, "percent": 50}, "guard": guard})
    canary = dataplane(serving).manager.loaded[("m", 2)]

    def failing(x: np.ndarray) -> Prediction:
        raise RuntimeError("canary bug")

    canary.runtime.predict = failing  # type: ignore[method-assign]
    statuses = []
    for _ in range(120):
        response = await serving.client.post(
            "/api/v1/models/m/predict", json=ROW, headers=bearer(admin_token)
        )
        statuses.append(response.status_code)
    # Some canary requests failed before the guard saw enough of them; then none.
    assert 500 in statuses[:60]
    assert set(statuses[-40:]) == {200}
    await dataplane(serving).drain()
    await refresh(serving)
    deployment = (
        await serving.client.get("/api/v1/models/m/deployment", headers=bearer(admin_token))
    ).json()
    assert deployment["policy"]["canary"] is None
    assert deployment["status"]["canary_rollback"]["version"] == 2
    assert "error rate" in deployment["status"]["canary_rollback"]["reason"]
    audit = (
        await serving.client.get(
            "/api/v1/audit?action=deployment.canary_rolled_back", headers=bearer(admin_token)
        )
    ).json()
    assert audit["total"] == 1


async def test_alias_move_under_steady_traffic_fails_nothing(
    serving: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    """Nothing but the engine's own follower applies the change (no explicit refresh).
    Version 2 (XGBoost, converted to ONNX when loaded) is loaded ahead by asking for it
    by number, so the move is about switching, not a conversion on a busy machine; and
    what is checked is order, not time: no failed answer, and once a request has met
    version 2, every request sent after it does too."""
    await release(serving, admin_token, "m", [model_files["onnx"], model_files["xgboost"]])
    ahead = await serving.client.post(
        "/api/v1/models/m/predict?version=2", json=ROW, headers=bearer(admin_token)
    )
    assert ahead.status_code == 200, ahead.text
    results: list[tuple[int, int]] = []  # (status, version), in the order answered
    stop = asyncio.Event()
    workers_count = 4

    async def traffic() -> None:
        while not stop.is_set():
            response = await serving.client.post(
                "/api/v1/models/m/predict", json=ROW, headers=bearer(admin_token)
            )
            results.append((response.status_code, int(response.headers.get("X-Model-Version", 0))))

    async def answers(count: int, what: str) -> None:
        deadline = time.monotonic() + 60
        while len(results) < count:
            assert time.monotonic() < deadline, f"traffic stalled waiting for {what}"
            await asyncio.sleep(0.02)

    workers = [asyncio.create_task(traffic()) for _ in range(workers_count)]
    await answers(20, "answers before the move")
    before_move = len(results)
    moved = await serving.client.put(
        "/api/v1/models/m/aliases/production", json={"version": 2}, headers=bearer(admin_token)
    )
    assert moved.status_code == 200
    deadline = time.monotonic() + 60
    while not any(version == 2 for _, version in results[before_move:]):
        assert time.monotonic() < deadline, "the alias move never reached serving"
        await asyncio.sleep(0.05)
    first_new = next(i for i, (_, version) in enumerate(results) if version == 2)
    await answers(first_new + 50, "answers after the move")
    stop.set()
    await asyncio.gather(*workers)
    assert all(status == 200 for status, _ in results)
    assert {version for _, version in results[:before_move]} == {1}
    # Requests already in flight when the first met version 2 (one per other worker)
    # may still answer with version 1; every later one is version 2.
    after = results[first_new + workers_count :]
    assert after and {version for _, version in after} == {2}


async def test_a_version_that_fails_to_load_never_takes_traffic(
    serving: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await release(serving, admin_token, "m", [model_files["onnx"], model_files["skops"]])
    version = (
        await serving.client.get("/api/v1/models/m/versions/2", headers=bearer(admin_token))
    ).json()
    keys = await serving.ctx.store.list_keys("")
    broken = next(k for k in keys if k.endswith(".skops"))
    await serving.ctx.store.delete(broken)
    assert version["format"] == "skops"
    await serving.client.put(
        "/api/v1/models/m/aliases/production", json={"version": 2}, headers=bearer(admin_token)
    )
    await refresh(serving)
    response = await serving.client.post(
        "/api/v1/models/m/predict", json=ROW, headers=bearer(admin_token)
    )
    assert response.status_code == 200
    assert response.headers["X-Model-Version"] == "1"
    deployment = (
        await serving.client.get("/api/v1/models/m/deployment", headers=bearer(admin_token))
    ).json()
    assert "2" in deployment["status"]["load_failures"]
    # Asked for by number, it answers 503 with the reason, without another attempt (the
    # next is due LOAD_RETRY_SECONDS later), however often it is asked for.
    for _ in range(3):
        explicit = await serving.client.post(
            "/api/v1/models/m/predict?version=2", json=ROW, headers=bearer(admin_token)
        )
        assert explicit.status_code == 503
        assert explicit.json()["error"]["code"] == "model_load_failed"
    await refresh(serving)
    assert (
        'mlops_model_load_failures_total{model="m",version="2"} 1.0'
        in (await serving.client.get("/metrics")).text
    )


async def test_policy_validation(
    serving: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await release(serving, admin_token, "m", [model_files["onnx"]])
    cases = [
        ({"canary": {"version": 9, "percent": 10}}, 404, "version_not_found"),
        ({"canary": {"version": 1, "percent": 0}}, 422, "validation_error"),
        ({"canary": {"version": 1, "percent": 101}}, 422, "validation_error"),
        ({"guard": {"max_error_rate": 0.1}}, 422, "validation_error"),
        ({"strategy": "yolo"}, 422, "validation_error"),
        # Version 1 is what "production" serves: nothing to compare it with.
        ({"canary": {"version": 1, "percent": 10}}, 409, "canary_is_primary"),
        ({"shadow": {"version": 1}}, 409, "shadow_is_primary"),
        # Applied, it would leave the model with no servable version.
        ({"alias": "staging"}, 409, "alias_not_set"),
    ]
    for body, status, code in cases:
        response = await serving.client.put(
            "/api/v1/models/m/deployment", json=body, headers=bearer(admin_token)
        )
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["code"] == code, body
    viewer = await serving.login("vi", await serving.create_user(admin_token, "vi", "viewer"))
    denied = await serving.client.put(
        "/api/v1/models/m/deployment", json={}, headers=bearer(viewer)
    )
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "forbidden"


async def _check_quiet_polls(platform: Platform) -> None:
    """Counted in polls, not in seconds: a busy machine may delay a poll, never
    reorder what each poll does."""
    from mlops.kv.channels import REGISTRY_GENERATION

    manager = dataplane(platform).manager
    kv = platform.ctx.kv
    refreshes = polls = 0
    original_refresh, original_get = manager.refresh, kv.get

    async def counting_refresh() -> None:
        nonlocal refreshes
        refreshes += 1
        await original_refresh()

    async def counting_get(key: str) -> str | None:
        nonlocal polls
        value = await original_get(key)
        if key == REGISTRY_GENERATION:
            polls += 1  # each poll reads the generation once, first thing
        return value

    async def polls_past(count: int) -> None:
        deadline = time.monotonic() + 60
        while polls < count:
            assert time.monotonic() < deadline, f"the follower stopped polling at {polls}"
            await asyncio.sleep(0.02)

    manager.refresh = counting_refresh  # type: ignore[method-assign]
    kv.get = counting_get  # type: ignore[method-assign]
    await polls_past(2)  # the first poll may re-read once to learn the generation
    settled = refreshes
    await polls_past(polls + 5)
    assert refreshes == settled  # nothing moved: no re-read
    # A change whose message was lost still moved the counter: the next poll catches it.
    await kv.increment(REGISTRY_GENERATION, ttl=60)
    await polls_past(polls + 3)
    assert refreshes == settled + 1


async def test_quiet_polls_skip_the_catalog_unless_its_generation_moved(
    registry_settings: Any,
) -> None:
    from tests.conftest import start_platform

    async for platform in start_platform(registry_settings(catalog_poll_seconds=0.2)):
        await _check_quiet_polls(platform)


async def test_a_model_server_alone_follows_changes_made_elsewhere(
    registry_settings: Any, model_files: dict[str, Path], backend: str
) -> None:
    """``mlops model-server`` beside ``mlops api``: with Redis, changes arrive by pub/sub
    (its poll is set far beyond the test, so nothing else could bring them); without it
    (development only), by re-reading the database on a poll. The deadline only stops a
    hung test: how fast a busy machine delivers is not what is checked."""
    from tests.conftest import start_platform

    settings = registry_settings(catalog_poll_seconds=0.2)
    poll = 600 if backend == "postgres" else 0.2
    alone_settings = settings.model_copy(update={"catalog_poll_seconds": poll})
    async for api in start_platform(settings):
        token = await api.login()
        await release(api, token, "m", [model_files["onnx"], model_files["skops"]])
        async for alone in start_platform(alone_settings, components={"serving"}):
            assert (await _versions(alone, token, 1)) == [1]
            # Loaded ahead (asked for by number), so what arrives is the move alone.
            ahead = await alone.client.post(
                "/api/v1/models/m/predict?version=2", json=ROW, headers=bearer(token)
            )
            assert ahead.status_code == 200
            moved = await api.client.put(
                "/api/v1/models/m/aliases/production", json={"version": 2}, headers=bearer(token)
            )
            assert moved.status_code == 200
            deadline = time.monotonic() + 60
            while (await _versions(alone, token, 1)) != [2]:
                assert time.monotonic() < deadline, "the alias move never arrived"
                await asyncio.sleep(0.05)


async def _guard_weighs_each_user_once(
    platform: Platform, model_files: dict[str, Path], route: str
) -> None:
    admin = await platform.login()
    await release(platform, admin, "m", [model_files["onnx"], model_files["skops"]])
    guard = {"max_error_rate": 0.3, "max_p95_ms": 60_000, "window_s": 600, "min_requests": 10}
    await _policy(platform, admin, {"canary": {"version": 2, "percent": 100}, "guard": guard})
    canary = dataplane(platform).manager.loaded[("m", 2)]
    healthy = canary.runtime.predict

    def poisoned(x: np.ndarray) -> Prediction:
        if (x == 999).any():  # an input only the attacker sends
            raise RuntimeError("canary bug")
        return healthy(x)

    canary.runtime.predict = poisoned  # type: ignore[method-assign]

    async def send(token: str, value: float) -> int:
        if route == "v2":
            body = {
                "inputs": [
                    {"name": "input", "shape": [1, 5], "datatype": "FP32", "data": [value] * 5}
                ]
            }
            answer = await platform.client.post(
                "/v2/models/m/infer", json=body, headers=bearer(token)
            )
        else:
            answer = await platform.client.post(
                "/api/v1/models/m/predict", json={"data": [[value] * 5]}, headers=bearer(token)
            )
        return answer.status_code

    for i in range(5):  # five users, ten good requests each
        user = await platform.login(f"u{i}", await platform.create_user(admin, f"u{i}", "viewer"))
        assert {await send(user, 0.5) for _ in range(10)} == {200}
    eve = await platform.login("eve", await platform.create_user(admin, "eve", "viewer"))
    # 30 failures of 80 would be 37.5%; eve weighs 10 of 60, 16.7%, under the 30% limit.
    assert {await send(eve, 999) for _ in range(30)} == {500}
    await dataplane(platform).drain()
    assert dataplane(platform).manager.routes["m"].canary is canary
    assert (await send(eve, 0.5)) == 200


@pytest.mark.parametrize("route", ["fast", "documented", "v2"])
async def test_the_guard_weighs_each_user_once_on_every_route(
    registry_settings: Any, model_files: dict[str, Path], route: str
) -> None:
    from tests.conftest import start_platform

    settings = registry_settings(predict_fast_path=route != "documented")
    async for platform in start_platform(settings):
        await _guard_weighs_each_user_once(platform, model_files, route)
