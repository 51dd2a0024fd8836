"""Every refusal of jobs and data sets: a clear error, the right status, nothing queued;
and a bad input file fails its job fast, naming the row, with no output visible."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import Platform, bearer
from tests.serving.conftest import release
from tests.workers.helpers import dataset, drain, encode, get_job, submit, upload_dataset


@pytest.fixture
async def ready(platform: Platform, admin_token: str, model_files: dict[str, Path]) -> str:
    """churn (ONNX, 5 unnamed features) released, and a valid CSV data set; its uri."""
    await release(platform, admin_token, "churn", [model_files["onnx"]])
    ids, x = dataset(20)
    return str((await upload_dataset(platform, admin_token, encode(ids, x, "csv"), "d.csv"))["uri"])


async def _refused(platform: Platform, token: str, body: dict[str, Any]) -> tuple[int, str, str]:
    response = await platform.client.post("/api/v1/jobs", json=body, headers=bearer(token))
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


async def test_submission_refusals(platform: Platform, admin_token: str, ready: str) -> None:
    base = {"model": "churn", "input": ready}
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({"input": "file:///etc/passwd"}, 403, "location_forbidden", "must not read"),
        ({"input": f"file://{platform.settings.data_dir}/mlops.db"}, 403, "location_forbidden", ""),
        ({"input": "s3://other-bucket/x.csv"}, 403, "location_forbidden", "MLOPS_JOB_S3_BUCKETS"),
        ({"input": "https://example.com/x.csv"}, 422, "invalid_location", "'https' scheme"),
        ({"input": "/etc/passwd"}, 422, "invalid_location", "not a valid platform path"),
        ({"input": "datasets/../mlops.db"}, 422, "invalid_location", ""),
        ({"input": "models/1/x.onnx"}, 422, "invalid_location", "must be under datasets/"),
        ({"input": "datasets/nothing/here.csv"}, 404, "input_not_found", "POST /api/v1/datasets"),
        ({"input": ready.replace(".csv", "")}, 422, "unknown_format", '"format"'),
        ({"output": ready}, 409, "output_exists", "never overwrite"),
        ({"output": "jobs/9/output.csv"}, 422, "invalid_location", "must be under datasets/"),
        ({"model": "nope"}, 404, "model_not_found", ""),
        ({"version": 7}, 404, "version_not_found", ""),
        ({"alias": "staging"}, 404, "alias_not_found", ""),
        ({"alias": "production", "version": 1}, 422, "validation_error", "not both"),
        ({"options": {"shard_rows": 0}}, 422, "validation_error", "shard_rows"),
        ({"options": {"speed": "max"}}, 422, "validation_error", "speed"),
        ({"type": "train"}, 422, "validation_error", "type"),
    ]
    for change, status, code, text in cases:
        got = await _refused(platform, admin_token, {**base, **change})
        assert got[:2] == (status, code), (change, got)
        assert text in got[2], (change, got)
    jobs = await platform.client.get("/api/v1/jobs", headers=bearer(admin_token))
    assert jobs.json()["total"] == 0


async def test_roles_and_archived_versions(
    platform: Platform, admin_token: str, ready: str
) -> None:
    password = await platform.create_user(admin_token, "vic", "viewer")
    viewer = await platform.login("vic", password)
    status, code, _ = await _refused(platform, viewer, {"model": "churn", "input": ready})
    assert (status, code) == (403, "forbidden")
    upload = await platform.client.post(
        "/api/v1/datasets", files={"file": ("d.csv", b"f0\n1\n")}, headers=bearer(viewer)
    )
    assert upload.status_code == 403
    job = await submit(platform, admin_token, model="churn", input=ready)
    cancel = await platform.client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=bearer(viewer))
    assert cancel.status_code == 403
    headers = bearer(admin_token)
    await platform.client.delete("/api/v1/models/churn/aliases/production", headers=headers)
    await platform.client.delete("/api/v1/models/churn/versions/1", headers=headers)
    status, code, message = await _refused(
        platform, admin_token, {"model": "churn", "version": 1, "input": ready}
    )
    assert (status, code) == (409, "version_not_ready") and "archived" in message
    missing = await platform.client.get("/api/v1/jobs/999", headers=headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "job_not_found"


async def test_dataset_refusals(platform: Platform, admin_token: str) -> None:
    headers = bearer(admin_token)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"files": {"file": ("model.pkl", b"x")}}, 422, "unsupported_dataset_format"),
        ({"files": {"file": ("empty.csv", b"")}}, 400, "empty_file"),
        ({"data": {"other": "x"}, "files": {"x": ("a.csv", b"1")}}, 400, "no_file"),
        ({"json": {"file": "x"}}, 400, "expected_multipart"),
    ]
    for kwargs, status, code in cases:
        response = await platform.client.post("/api/v1/datasets", headers=headers, **kwargs)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), kwargs
    assert await platform.ctx.store.list_keys("datasets/") == []


async def test_dataset_over_the_limit(job_settings: Any, model_files: dict[str, Path]) -> None:
    from tests.conftest import start_platform

    async for small in start_platform(job_settings(max_upload_bytes=2048)):
        token = await small.login()
        response = await small.client.post(
            "/api/v1/datasets",
            files={"file": ("big.csv", b"f0\n" + b"1\n" * 4096)},
            headers=bearer(token),
        )
        assert response.status_code == 413, response.text
        assert await small.ctx.store.list_keys("datasets/") == []


CSV_HEADER = "id,f0,f1,f2,f3,f4\n"
GOOD_ROW = "{i},0.1,0.2,0.3,0.4,0.5\n"


def _csv(bad_row: int, bad_line: str, rows: int = 30) -> bytes:
    lines = [GOOD_ROW.format(i=i) for i in range(1, rows + 1)]
    lines[bad_row - 1] = bad_line
    return (CSV_HEADER + "".join(lines)).encode()


def _parquet_with_text() -> bytes:
    import io

    table = pa.table({f"f{i}": [0.5, 1.5] for i in range(4)} | {"f4": ["1", "x"]})
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


BAD_INPUTS = [
    (
        "csv",
        _csv(17, "17,0.1,abc,0.3,0.4,0.5\n"),
        "row 17 (line 18): column 'f1' is 'abc'; expected a number",
    ),
    (
        "csv",
        _csv(23, "23,0.1,0.2\n"),
        "row 23 (line 24): expected 6 columns (id, f0, f1, f2, f3, f4), got 3",
    ),
    ("csv", _csv(5, "5,0.1,,0.3,0.4,0.5\n"), "row 5, column 'f1': the value is missing"),
    ("csv", _csv(9, "9,0.1,0.2,inf,0.4,0.5\n"), "row 9, column 'f2': inf is not accepted"),
    ("csv", b"id,f0,f1,zz,f3,f4\n1,1,1,1,1,1\n", "missing ['f2']; unknown ['zz']"),
    (
        "jsonl",
        b'{"f0":1,"f1":2,"f2":3,"f3":4,"f4":5}\n' * 3
        + b'{"f0":1,"f1":true,"f2":3,"f3":4,"f4":5}\n',
        "row 4: column 'f1' is True; expected a number",
    ),
    ("jsonl", b'{"f0":1,"f1":2,"f2":3,"f3":4,"f4":5}\n{"f0":1,\n', "row 2: not valid JSON"),
    ("parquet", _parquet_with_text(), "column 'f4' holds string values; expected numbers"),
]


@pytest.mark.parametrize(("fmt", "data", "message"), BAD_INPUTS)
async def test_a_bad_input_fails_fast_naming_the_row(
    platform: Platform, admin_token: str, ready: str, fmt: str, data: bytes, message: str
) -> None:
    uri = (await upload_dataset(platform, admin_token, data, f"bad.{fmt}"))["uri"]
    job = await submit(platform, admin_token, model="churn", input=uri, options={"shard_rows": 10})
    await drain(platform)
    done = await get_job(platform, admin_token, job["id"])
    assert done["status"] == "failed", done
    assert message in done["error"], done["error"]
    assert done["attempts"] <= 4  # the plan and the bad shard once each, no retries of it
    assert await platform.ctx.store.list_keys(f"jobs/{job['id']}/") == []


def test_int_models_refuse_fractions() -> None:
    from mlops.workers.errors import InputError
    from mlops.workers.tables import Layout, _features

    layout = Layout("csv", ["a"], False, None, False, "int64")
    batch = pa.RecordBatch.from_arrays([pa.array([1.0, 2.5])], names=["a"])
    with pytest.raises(InputError, match="row 12: this model takes integer features"):
        _features(batch, layout, 10)
    assert _features(
        pa.RecordBatch.from_arrays([pa.array([1.0, 2.0])], names=["a"]), layout, 0
    ).tolist() == [[1.0], [2.0]]
    assert np.isnan(
        _features(
            pa.RecordBatch.from_arrays([pa.array([None, 2.0])], names=["a"]),
            Layout("csv", ["a"], False, None, True, "float32"),
            0,
        )[0, 0]
    )


def test_parquet_shards_follow_row_groups(tmp_path: Path) -> None:
    from mlops.workers.tables import ShardRange, plan_input

    path = tmp_path / "d.parquet"
    path.write_bytes(encode(None, np.zeros((95, 5)), "parquet", row_group=10))
    plan = plan_input(path, "parquet", [f"f{i}" for i in range(5)], 25)
    assert plan.rows == 95 and not plan.has_id
    assert plan.shards == [ShardRange(s, min(s + 20, 95)) for s in range(0, 95, 20)]
    big = tmp_path / "big.parquet"
    big.write_bytes(encode(None, np.zeros((95, 5)), "parquet", row_group=40))
    shards = plan_input(big, "parquet", [f"f{i}" for i in range(5)], 25).shards
    assert [(s.row_start, s.row_end) for s in shards] == [(0, 40), (40, 80), (80, 95)]
