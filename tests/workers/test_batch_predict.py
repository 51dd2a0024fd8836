"""Batch inference jobs end to end: upload, submit, workers, output equal to the model
server's answers for the same rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import Platform, bearer
from tests.serving.conftest import release
from tests.workers.helpers import dataset, decode, drain, encode, get_job, submit, upload_dataset


async def _served(platform: Platform, token: str, x: np.ndarray, **params: int) -> dict[str, list]:  # type: ignore[type-arg]
    response = await platform.client.post(
        "/api/v1/models/churn/predict",
        json={"data": x.tolist(), "return_probabilities": True},
        params=params,
        headers=bearer(token),
    )
    assert response.status_code == 200, response.text
    body: dict[str, list] = response.json()  # type: ignore[type-arg]
    return body


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
async def test_output_equals_the_model_servers_answers(
    platform: Platform, admin_token: str, model_files: dict[str, Path], fmt: str
) -> None:
    await release(platform, admin_token, "churn", [model_files["xgboost"]])
    ids, x = dataset(230, seed=3)
    uploaded = await upload_dataset(platform, admin_token, encode(ids, x, fmt), f"Data.{fmt}")
    assert uploaded["uri"].startswith("datasets/") and uploaded["format"] == fmt
    job = await submit(
        platform,
        admin_token,
        model="churn",
        input=uploaded["uri"],
        options={"return_probabilities": True, "shard_rows": 50},
    )
    assert job["status"] == "queued" and job["version"] == 1 and job["alias"] == "production"
    await drain(platform)
    done = await get_job(platform, admin_token, job["id"])
    assert done["status"] == "succeeded", done
    assert (done["rows_done"], done["rows_total"]) == (230, 230)
    assert (done["shards_done"], done["shards_total"]) == (5, 5)
    response = await platform.client.get(done["download"], headers=bearer(admin_token))
    assert response.status_code == 200
    table = decode(response.content, fmt)
    assert table.column_names == ["id", "prediction", "probability_0", "probability_1"]
    assert table.column("id").to_pylist() == ids
    served = await _served(platform, admin_token, x)
    assert table.column("prediction").to_pylist() == served["predictions"]
    probabilities = np.column_stack(
        [table.column("probability_0").to_numpy(), table.column("probability_1").to_numpy()]
    )
    np.testing.assert_allclose(probabilities, np.array(served["probabilities"]), rtol=1e-6)
