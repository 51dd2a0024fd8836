"""Batch inference jobs end to end: upload, submit, workers, output equal to the model
server's answers for the same rows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import update

from mlops.db.base import utcnow
from mlops.workers.models import Job
from tests.conftest import Platform, bearer, start_platform
from tests.seaweed import SeaweedFS
from tests.serving.conftest import release
from tests.workers.helpers import (
    dataset,
    decode,
    drain,
    encode,
    get_job,
    submit,
    upload_dataset,
    worker_of,
)


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


async def test_the_version_is_resolved_at_submission(
    platform: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    """Moving the alias, then archiving the version, while the job waits changes nothing:
    the job scores with version 1 throughout."""
    await release(platform, admin_token, "churn", [model_files["onnx"], model_files["skops"]])
    ids, x = dataset(120, seed=4)
    uri = (await upload_dataset(platform, admin_token, encode(ids, x, "csv"), "d.csv"))["uri"]
    job = await submit(platform, admin_token, model="churn", input=uri, options={"shard_rows": 40})
    assert job["version"] == 1
    served = await _served(platform, admin_token, x, version=1)  # before it is archived
    headers = bearer(admin_token)
    moved = await platform.client.put(
        "/api/v1/models/churn/aliases/production", json={"version": 2}, headers=headers
    )
    assert moved.status_code == 200
    archived = await platform.client.delete("/api/v1/models/churn/versions/1", headers=headers)
    assert archived.status_code == 204
    await drain(platform)
    done = await get_job(platform, admin_token, job["id"])
    assert done["status"] == "succeeded" and done["version"] == 1, done
    output = decode((await platform.client.get(done["download"], headers=headers)).content, "csv")
    assert output.column("prediction").to_pylist() == served["predictions"]


async def test_cancel_stops_claiming_shards(
    platform: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await release(platform, admin_token, "churn", [model_files["onnx"]])
    ids, x = dataset(100, seed=5)
    uri = (await upload_dataset(platform, admin_token, encode(ids, x, "csv"), "d.csv"))["uri"]
    job = await submit(platform, admin_token, model="churn", input=uri, options={"shard_rows": 10})
    async with worker_of(platform) as worker:
        assert await worker.worker.run_once()  # the plan: 10 shards queued
        assert await worker.worker.run_once()  # one shard
        headers = bearer(admin_token)
        cancelled = await platform.client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=headers)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert not await worker.worker.run_once()  # nothing left to claim
    done = await get_job(platform, admin_token, job["id"])
    assert done["status"] == "cancelled" and done["shards_done"] == 1 and done["download"] is None
    assert await platform.ctx.store.list_keys(f"jobs/{job['id']}/") == []
    again = await platform.client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "job_finished"
    output = await platform.client.get(f"/api/v1/jobs/{job['id']}/output", headers=headers)
    assert output.status_code == 409 and output.json()["error"]["code"] == "no_output"


async def test_s3_input_and_output(
    platform: Platform,
    admin_token: str,
    model_files: dict[str, Path],
    job_settings: Any,
    seaweedfs_server: SeaweedFS,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket = seaweedfs_server.create_bucket("jobs")
    for name, value in seaweedfs_server.aws_env().items():
        monkeypatch.setenv(name, value)
    s3 = seaweedfs_server.client()
    ids, x = dataset(90, seed=6)
    s3.put_object(Bucket=bucket, Key="in/Data Set.parquet", Body=encode(ids, x, "parquet"))
    settings = job_settings(job_s3_buckets=bucket, s3_endpoint_url=seaweedfs_server.endpoint_url)
    async for running in start_platform(settings):
        token = await running.login()
        await release(running, token, "churn", [model_files["lightgbm"]])
        job = await submit(
            running,
            token,
            model="churn",
            input=f"s3://{bucket}/in/Data Set.parquet",
            output=f"s3://{bucket}/out/scored.parquet",
            options={"shard_rows": 40},
        )
        await drain(running)
        done = await get_job(running, token, job["id"])
        assert done["status"] == "succeeded" and done["download"] is None, done
        body = s3.get_object(Bucket=bucket, Key="out/scored.parquet")["Body"].read()
        served = await _served(running, token, x)
        assert decode(body, "parquet").column("prediction").to_pylist() == served["predictions"]
        elsewhere = await running.client.get(
            f"/api/v1/jobs/{job['id']}/output", headers=bearer(token)
        )
        assert elsewhere.json()["error"]["code"] == "output_elsewhere"


async def test_metrics_and_listing(
    platform: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await release(platform, admin_token, "churn", [model_files["onnx"]])
    ids, x = dataset(60, seed=7)
    uri = (await upload_dataset(platform, admin_token, encode(ids, x, "jsonl"), "d.jsonl"))["uri"]
    first = await submit(
        platform, admin_token, model="churn", input=uri, options={"shard_rows": 25}
    )
    await drain(platform)
    second = await submit(platform, admin_token, model="churn", input=uri)
    await drain(platform, limit=0)  # no work: the queue depth is read
    viewer_password = await platform.create_user(admin_token, "vera", "viewer")
    viewer = bearer(await platform.login("vera", viewer_password))
    listed = await platform.client.get("/api/v1/jobs?status=succeeded", headers=viewer)
    assert [j["id"] for j in listed.json()["items"]] == [first["id"]]
    everything = await platform.client.get("/api/v1/jobs?model=churn&limit=1", headers=viewer)
    assert everything.json()["total"] == 2 and everything.json()["items"][0]["id"] == second["id"]
    text = (await platform.client.get("/metrics")).text
    assert 'mlops_jobs_total{status="succeeded",type="batch_predict"} 1.0' in text
    assert 'mlops_job_rows_total{type="batch_predict"} 60.0' in text
    assert "mlops_job_duration_seconds_count" in text
    assert 'mlops_queue_depth{type="batch_predict"} 1.0' in text


async def test_a_sweep_removes_shard_files_a_dead_worker_left(
    platform: Platform, admin_token: str, model_files: dict[str, Path], tmp_path: Path
) -> None:
    await release(platform, admin_token, "churn", [model_files["onnx"]])
    ids, x = dataset(30)
    uri = (await upload_dataset(platform, admin_token, encode(ids, x, "csv"), "d.csv"))["uri"]
    job = await submit(platform, admin_token, model="churn", input=uri)
    await drain(platform)
    # As if the worker died between marking the job done and deleting its shard files.
    leftover = tmp_path / "left.parquet"
    leftover.write_bytes(b"x")
    await platform.ctx.store.put_file(f"jobs/{job['id']}/shards/000000.parquet", leftover)
    async with platform.ctx.sessions() as session:
        await session.execute(
            update(Job)
            .where(Job.id == job["id"])
            .values(files_removed_at=None, finished_at=utcnow() - timedelta(hours=1))
        )
        await session.commit()
    async with worker_of(platform) as worker:
        assert await worker.worker.sweep() == 1
        assert await worker.worker.sweep() == 0
    assert await platform.ctx.store.list_keys(f"jobs/{job['id']}/shards/") == []
    assert await platform.ctx.store.exists(f"jobs/{job['id']}/output.csv")


async def test_a_job_of_one_shard_is_done_in_one_step(
    platform: Platform, admin_token: str, model_files: dict[str, Path]
) -> None:
    await release(platform, admin_token, "churn", [model_files["skops"]])
    ids, x = dataset(40, seed=15)
    uri = (await upload_dataset(platform, admin_token, encode(ids, x, "jsonl"), "d.jsonl"))["uri"]
    job = await submit(
        platform, admin_token, model="churn", input=uri, options={"return_probabilities": True}
    )
    assert await drain(platform) == 1  # the plan step scored and wrote everything
    done = await get_job(platform, admin_token, job["id"])
    assert done["status"] == "succeeded" and done["attempts"] == 1, done
    assert (done["rows_done"], done["rows_total"], done["shards_total"]) == (40, 40, 1)
    output = decode(
        (await platform.client.get(done["download"], headers=bearer(admin_token))).content, "jsonl"
    )
    served = await _served(platform, admin_token, x)
    assert output.column("id").to_pylist() == ids
    assert output.column("prediction").to_pylist() == served["predictions"]
    assert await platform.ctx.store.list_keys(f"jobs/{job['id']}/shards/") == []
