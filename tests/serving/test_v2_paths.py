"""/v2 paths the errors test does not reach: server metadata, versioned metadata and
inference (answers compared with each library's own predictions, not with another
route of the same code), bad versions, unknown outputs; and REST's query and body
refusals that are about the same routing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlops import __version__
from tests.conftest import Platform, bearer
from tests.serving.conftest import release
from tests.serving.test_predict import ROWS, library_predictions
from tests.serving.test_v2_errors import assert_oip_error


def _infer_body(**extra: object) -> dict[str, object]:
    tensor = {"name": "input", "shape": list(ROWS.shape), "datatype": "FP64"}
    return {"inputs": [{**tensor, "data": ROWS.ravel().tolist()}], **extra}


async def test_server_metadata(serving: Platform) -> None:
    response = await serving.client.get("/v2")
    assert response.status_code == 200
    assert response.json() == {
        "name": "mlops-platform",
        "version": __version__,
        "extensions": ["binary_tensor_data"],
    }


async def test_versioned_metadata_and_inference_match_each_library(
    serving: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await release(serving, admin_token, "m", [model_files["onnx"], model_files["xgboost"]])
    auth = bearer(admin_token)
    for path, kind, version in (
        ("/v2/models/m", "onnx", 1),  # the alias's version
        ("/v2/models/m/versions/1", "onnx", 1),
        ("/v2/models/m/versions/2", "xgboost", 2),
    ):
        metadata = await serving.client.get(path, headers=auth)
        assert metadata.status_code == 200, metadata.text
        body = metadata.json()
        assert body["name"] == "m"
        assert body["versions"] == ["1", "2"]
        assert body["parameters"]["version"] == version
        assert body["inputs"][0]["shape"] == [-1, 5]
        answer = await serving.client.post(f"{path}/infer", json=_infer_body(id="r1"), headers=auth)
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["model_version"] == str(version)
        assert result["id"] == "r1"
        outputs = {o["name"]: o for o in result["outputs"]}
        assert outputs["predictions"]["shape"] == [len(ROWS)]
        expected = library_predictions(kind, model_files[kind])
        assert np.array_equal(np.asarray(outputs["predictions"]["data"]), expected), path
        # Loaded now (version 2 on its first request): ready in this process.
        ready = await serving.client.get(f"{path}/ready", headers=auth)
        assert ready.status_code == 200 and ready.json() == {"name": "m", "ready": True}


async def test_bad_versions_and_unknown_outputs_are_refused(
    serving: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await release(serving, admin_token, "m", [model_files["onnx"]])
    auth = bearer(admin_token)
    for version in ("abc", "0", "-1", "99999999999"):
        for suffix in ("", "/ready"):
            assert_oip_error(
                await serving.client.get(f"/v2/models/m/versions/{version}{suffix}", headers=auth),
                404,
                "version_not_found",
                "versions are 1, 2, 3",
            )
    assert_oip_error(
        await serving.client.get("/v2/models/m/versions/7", headers=auth),
        404,
        "version_not_found",
        "model 'm' has no servable version 7",
    )
    assert_oip_error(
        await serving.client.post(
            "/v2/models/m/infer", json=_infer_body(outputs=[{"name": "logits"}]), headers=auth
        ),
        422,
        "invalid_input",
        "unknown output 'logits'; this model has predictions, probabilities",
    )


async def test_rest_refuses_version_with_alias_and_a_non_boolean_flag(
    serving: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await release(serving, admin_token, "m", [model_files["onnx"]])
    auth = bearer(admin_token)
    both = await serving.client.post(
        "/api/v1/models/m/predict?version=1&alias=production",
        json={"data": ROWS[:1].tolist()},
        headers=auth,
    )
    assert both.status_code == 422
    assert both.json()["error"] == {
        "code": "invalid_input",
        "message": "give ?version or ?alias, not both",
    }
    for flag in ("yes", 1, None, [True]):
        response = await serving.client.post(
            "/api/v1/models/m/predict",
            json={"data": ROWS[:1].tolist(), "return_probabilities": flag},
            headers=auth,
        )
        assert response.status_code == 422, flag
        assert response.json()["error"] == {
            "code": "invalid_input",
            "message": "return_probabilities must be true or false",
        }
