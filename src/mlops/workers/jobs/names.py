"""Job types and the storage keys of their files: what the API and the worker loop
need without importing the steps themselves (pyarrow, numpy), so that the API server
and the model server do not pay for them at start."""

from __future__ import annotations

BATCH_PREDICT = "batch_predict"
DRIFT = "drift"
OUTPUT_EXTENSIONS = {"csv": "csv", "parquet": "parquet", "jsonl": "jsonl"}


def shard_prefix(job_id: int) -> str:
    return f"jobs/{job_id}/shards/"


def shard_key(job_id: int, index: int) -> str:
    return f"{shard_prefix(job_id)}{index:06d}.parquet"


def default_output(job_id: int, fmt: str) -> str:
    return f"jobs/{job_id}/output.{OUTPUT_EXTENSIONS[fmt]}"
