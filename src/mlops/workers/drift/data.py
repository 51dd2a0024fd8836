"""Reading a reference data set's feature columns, and the live samples of a version."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq

from mlops.workers.errors import InputError

MAX_REFERENCE_ROWS = 100_000
BATCH_ROWS = 65_536


def _batches(path: Path, fmt: str, columns: list[str]) -> Iterator[pa.RecordBatch]:
    if fmt == "parquet":
        parquet = pq.ParquetFile(path)
        missing = [c for c in columns if c not in parquet.schema_arrow.names]
        if missing:
            raise InputError(f"the reference data set has no column(s) {missing}")
        yield from parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns)
        return
    try:
        if fmt == "csv":
            types = dict.fromkeys(columns, pa.float64())
            reader = pcsv.open_csv(
                path,
                convert_options=pcsv.ConvertOptions(column_types=types, include_columns=columns),
            )
            yield from reader
        else:
            yield from pjson.read_json(path).select(columns).to_batches(BATCH_ROWS)
    except (pa.ArrowInvalid, KeyError) as exc:
        raise InputError(
            f"the reference data set could not be read as {fmt} with the columns {columns}: {exc}"
        ) from None


def read_reference(path: Path, fmt: str, columns: list[str]) -> np.ndarray:
    """The first ``MAX_REFERENCE_ROWS`` rows of ``columns`` as a float64 matrix."""
    parts: list[np.ndarray] = []
    rows = 0
    for batch in _batches(path, fmt, columns):
        block = np.column_stack(
            [
                batch.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
                for name in columns
            ]
        )
        parts.append(block[: MAX_REFERENCE_ROWS - rows])
        rows += len(parts[-1])
        if rows >= MAX_REFERENCE_ROWS:
            break
    if not rows:
        raise InputError("the reference data set has no rows")
    return np.concatenate(parts)


def read_samples(paths: list[Path], columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(features, predictions) of sample files written by the model servers."""
    tables = [pq.read_table(path) for path in paths]
    tables = [t for t in tables if set(columns) <= set(t.column_names)]
    if not tables:
        return np.empty((0, len(columns))), np.empty(0)
    table = pa.concat_tables([t.select([*columns, "prediction"]) for t in tables])
    x = np.column_stack([table.column(c).to_numpy() for c in columns])
    return x, table.column("prediction").to_numpy(zero_copy_only=False)
