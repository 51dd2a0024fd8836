"""REST predictions: runtimes agree with their libraries; routing; validation."""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import onnxruntime
import pytest
import skops.io
import xgboost

from mlops.registry.demo import register_demo_model
from tests.conftest import Platform, bearer, start_platform
from tests.registry.model_files import training_data
from tests.serving.conftest import refresh, release

ROWS = training_data()[0][:40].astype(np.float64)


def library_predictions(kind: str, path: Path) -> np.ndarray:
    """What each library itself predicts for ROWS (tests trust their own files)."""
    if kind == "skops":
        model = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
        return np.asarray(model.predict(ROWS))
    if kind == "onnx":
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return np.asarray(session.run(None, {"X": ROWS.astype(np.float32)})[0])
    if kind == "xgboost":
        booster = xgboost.Booster(model_file=str(path))
        return (booster.predict(xgboost.DMatrix(ROWS)) > 0.5).astype(int)
    lgbm = lightgbm.Booster(model_file=str(path))
    return (np.asarray(lgbm.predict(ROWS)) > 0.5).astype(int)


@pytest.mark.parametrize("kind", ["skops", "onnx", "xgboost", "lightgbm"])
async def test_every_runtime_agrees_with_its_library(
    serving: Platform, admin_token: str, model_files: dict[str, Path], kind: str
) -> None:
    await release(serving, admin_token, "m", [model_files[kind]])
    response = await serving.client.post(
        "/api/v1/models/m/predict",
        json={"data": ROWS.tolist(), "return_probabilities": True},
        headers=bearer(admin_token),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "m"
    assert body["version"] == 1
    assert response.headers["X-Model-Version"] == "1"
    assert np.array_equal(
        np.asarray(body["predictions"]), library_predictions(kind, model_files[kind])
    )
    probabilities = np.asarray(body["probabilities"])
    assert probabilities.shape == (40, 2)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)


async def test_the_guides_request_works_with_the_demo_model(
    serving: Platform, admin_token: str
) -> None:
    await register_demo_model(serving.ctx)
    await refresh(serving)
    response = await serving.client.post(
        "/api/v1/models/predict", json={"data": [[1, 2, 3, 4, 5]]}, headers=bearer(admin_token)
    )
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "demo"
    assert response.json()["predictions"] in ([0], [1])


async def test_any_role_and_api_keys_may_predict_but_not_anonymous(
    serving: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await release(serving, admin_token, "m", [model_files["onnx"]])
    viewer = await serving.login("vi", await serving.create_user(admin_token, "vi", "viewer"))
    key = (
        await serving.client.post(
            "/api/v1/api-keys", json={"name": "app", "role": "viewer"}, headers=bearer(viewer)
        )
    ).json()["key"]
    for credential in (viewer, key):
        response = await serving.client.post(
            "/api/v1/models/m/predict", json={"data": [[0] * 5]}, headers=bearer(credential)
        )
        assert response.status_code == 200
    anonymous = await serving.client.post("/api/v1/models/m/predict", json={"data": [[0] * 5]})
    assert anonymous.status_code == 401


async def test_version_and_alias_query(
    serving: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await release(serving, admin_token, "m", [model_files["onnx"], model_files["skops"]])
    await serving.client.put(
        "/api/v1/models/m/aliases/staging", json={"version": 2}, headers=bearer(admin_token)
    )
    await refresh(serving)
    for query, expected in (("", 1), ("?version=2", 2), ("?alias=staging", 2)):
        response = await serving.client.post(
            f"/api/v1/models/m/predict{query}",
            json={"data": [[0] * 5]},
            headers=bearer(admin_token),
        )
        assert response.json()["version"] == expected, query
    missing = await serving.client.post(
        "/api/v1/models/m/predict?version=9", json={"data": [[0] * 5]}, headers=bearer(admin_token)
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "version_not_found"


INVALID = [
    ({"data": [[1, 2, 3, 4]]}, 422, "expected 5 features per row (f0..f4), row 0 has 4"),
    ({"data": [[1, 2, 3, 4, 5], [1, 2, 3, 4]]}, 422, "row 1 has 4"),
    ({"data": [[1, 2, "x", 4, 5]]}, 422, "row 0, feature 2: 'x' is not a number"),
    ({"data": [[1, 2, None, 4, 5]]}, 422, "is not a number"),
    (b'{"data": [[1e999, 2, 3, 4, 5]]}', 400, "not valid JSON: number is infinity"),
    (b'{"data": [[1, 2, 3, 4, 5]]', 400, "not valid JSON: unexpected end of data"),
    (b'{"data": [[NaN, 2, 3, 4, 5]]}', 400, "(NaN and Infinity are not JSON numbers)"),
    # numpy would read [true, 2] as [1, 2]: JSON booleans are refused like any non-number.
    ({"data": [[True, 2, 3, 4, 5]]}, 422, "row 0, feature 0: true is not a number (send 1 or 0)"),
    ({"data": [[1, 2, 3, 4, 5], [1, 2, 3, 4.5, False]]}, 422, "row 1, feature 4: false is not"),
    ({"data": [[True] * 5]}, 422, "row 0, feature 0: true is not a number"),
    ({"data": [[0, 1, 2, 3, True]], "return_probabilities": True}, 422, "feature 4: true is"),
    ({"data": []}, 422, "non-empty list"),
    ({"data": "rows"}, 422, "non-empty list"),
    ({"rows": [[1, 2, 3, 4, 5]]}, 422, '{"data"'),
    ({"data": [[1, 2, 3, 4, 5]], "extra": 1}, 422, "unknown fields: extra"),
    ({"data": [{"a": 1}]}, 422, "features have no names"),
]


@pytest.mark.parametrize(("body", "status", "message"), INVALID)
async def test_bad_inputs_say_what_the_model_expects(
    serving: Platform,
    admin_token: str,
    model_files: dict[str, Path],
    body: object,
    status: int,
    message: str,
) -> None:
    await release(serving, admin_token, "m", [model_files["onnx"]])
    response = await serving.client.post(
        "/api/v1/models/m/predict",
        headers={**bearer(admin_token), "Content-Type": "application/json"},
        **({"content": body} if isinstance(body, bytes) else {"json": body}),
    )
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]


async def test_limits_and_missing_things(
    registry_settings: object, model_files: dict[str, Path]
) -> None:
    from tests.conftest import start_platform

    settings = registry_settings(max_predict_rows=5, max_predict_body_bytes=4096)  # type: ignore[operator]
    async for serving in start_platform(settings):
        token = await serving.login()
        await release(serving, token, "m", [model_files["onnx"]])
        rows = await serving.client.post(
            "/api/v1/models/m/predict", json={"data": [[0] * 5] * 6}, headers=bearer(token)
        )
        assert rows.status_code == 413
        assert "limit of 5" in rows.json()["error"]["message"]
        big = await serving.client.post(
            "/api/v1/models/m/predict",
            json={"data": [[0.123456789] * 5] * 200},
            headers=bearer(token),
        )
        assert big.status_code == 413
        unknown = await serving.client.post(
            "/api/v1/models/nope/predict", json={"data": [[0] * 5]}, headers=bearer(token)
        )
        assert unknown.status_code == 404
        await serving.client.post("/api/v1/models", json={"name": "empty"}, headers=bearer(token))
        await refresh(serving)
        unreleased = await serving.client.post(
            "/api/v1/models/empty/predict", json={"data": [[0] * 5]}, headers=bearer(token)
        )
        assert unreleased.status_code == 409
        assert (
            "PUT /api/v1/models/empty/aliases/production" in unreleased.json()["error"]["message"]
        )
        no_default = await serving.client.post(
            "/api/v1/models/predict", json={"data": [[0] * 5]}, headers=bearer(token)
        )
        assert no_default.status_code == 409
        assert no_default.json()["error"]["code"] == "no_default_model"


async def test_metrics_by_model_and_version(
    serving: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await release(serving, admin_token, "m", [model_files["onnx"]])
    await serving.client.post(
        "/api/v1/models/m/predict", json={"data": [[0] * 5] * 3}, headers=bearer(admin_token)
    )
    await serving.client.post(
        "/api/v1/models/m/predict", json={"data": [[0] * 4]}, headers=bearer(admin_token)
    )
    text = (await serving.client.get("/metrics")).text
    assert 'mlops_predictions_total{model="m",outcome="ok",version="1"} 1.0' in text
    assert 'mlops_predictions_total{model="m",outcome="invalid",version="1"} 1.0' in text
    assert 'mlops_prediction_rows_total{model="m",version="1"} 3.0' in text
    assert 'mlops_models_loaded{model="m",version="1"} 1.0' in text
    assert 'mlops_inference_duration_seconds_count{model="m",version="1"} ' in text
    assert 'mlops_batch_size_rows_bucket{le="4.0",model="m",version="1"}' in text
    assert 'mlops_prediction_duration_seconds_count{model="m",version="1"} 1.0' in text


BIG_BODY = b'{"data": [[' + b"1.0, " * 1000 + b"1.0]]}"


async def _in_two_chunks(body: bytes) -> AsyncIterator[bytes]:
    """Sent without Content-Length (chunked): the limit must hold while reading."""
    yield body[:3000]
    yield body[3000:]


async def test_fast_path_and_documented_route_answer_alike(
    registry_settings: Any, model_files: dict[str, Path]
) -> None:
    """The predict front (before FastAPI) and the FastAPI routes: same answers, same
    errors, same request ids, metrics and body limit."""
    rounds = []
    for fast in (True, False):
        settings = registry_settings(predict_fast_path=fast, max_predict_body_bytes=4096)
        async for serving in start_platform(settings):
            token = await serving.login()
            name = "fast" if fast else "slow"  # one database for both rounds
            await release(serving, token, name, [model_files["onnx"]])
            path = f"/api/v1/models/{name}/predict"
            auth = bearer(token)

            answers = [
                await serving.client.post(path, json={"data": ROWS[:3].tolist()}, headers=auth),
                await serving.client.post(
                    f"{path}?version=1", json={"data": [[1, 2]]}, headers=auth
                ),
                await serving.client.post(path, json={"data": [[0] * 5]}),
                await serving.client.post(
                    f"{path}?alias=Bad!", json={"data": [[0] * 5]}, headers=auth
                ),
                await serving.client.post(path, content=b"{not json", headers=auth),
                await serving.client.post(
                    f"{path}?verison=1", json={"data": [[0] * 5]}, headers=auth
                ),
                await serving.client.post(
                    f"{path}?version=x1", json={"data": [[0] * 5]}, headers=auth
                ),
                await serving.client.post(path, content=BIG_BODY, headers=auth),
                await serving.client.post(path, content=_in_two_chunks(BIG_BODY), headers=auth),
                await serving.client.post(
                    path,
                    json={"data": [[0] * 5]},
                    headers={**auth, "X-Request-ID": "front-check-1"},
                ),
            ]
            for answer in answers:
                assert len(answer.headers["x-request-id"]) in (32, len("front-check-1"))
            assert answers[-1].headers["x-request-id"] == "front-check-1"
            rounds.append(
                [
                    (a.status_code, a.headers.get("x-model-version"), a.json().get("error"))
                    for a in answers
                ]
                + [answers[0].json()["predictions"]]
            )
            assert "row 0 has 2" in answers[1].json()["error"]["message"]
            metrics = (await serving.client.get("/metrics")).text
            assert 'route="/api/v1/models/{name}/predict",status="200"' in metrics
            assert 'route="/api/v1/models/{name}/predict",status="413"' in metrics
    assert rounds[0] == rounds[1]
    assert [status for status, _, _ in rounds[0][:-1]] == [
        200, 422, 401, 422, 400, 422, 422, 413, 413, 200
    ]  # fmt: skip
    assert rounds[0][5][2]["message"].startswith("unknown query parameters: verison;")
    assert rounds[0][7][2]["message"] == "request body is larger than the limit of 4096 bytes"


async def test_an_unexpected_failure_is_a_500_with_the_request_id(
    serving: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await release(serving, admin_token, "m", [model_files["onnx"]])

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    serving.app.state.dataplane.predict = broken
    response = await serving.client.post(
        "/api/v1/models/m/predict", json={"data": [[0] * 5]}, headers=bearer(admin_token)
    )
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]
    assert response.json()["error"] == {
        "code": "internal_error",
        "message": f"internal error; quote request id {request_id} when reporting it",
    }


async def test_a_client_gone_before_its_body_is_read_is_not_counted_as_bad_json(
    serving: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    # uvicorn hands the app a disconnect instead of the rest of the body when the client
    # goes away; answering 400 invalid_json would count an error that nobody received.
    await release(serving, admin_token, "m", [model_files["onnx"]])
    incoming: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"data": [[0, 0', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return incoming.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/models/m/predict",
        "raw_path": b"/api/v1/models/m/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {admin_token}".encode()),
        ],
        "client": ("127.0.0.9", 5555),
        "server": ("testserver", 80),
        "state": {},
    }
    await serving.app(scope, receive, send)
    assert sent == [], "nobody is there to read an answer"
    text = (await serving.client.get("/metrics")).text
    assert 'method="POST",route="/api/v1/models/{name}/predict",status="499"} 1.0' in text
    assert 'route="/api/v1/models/{name}/predict",status="400"' not in text
