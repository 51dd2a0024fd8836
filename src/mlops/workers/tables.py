"""Reading a job's input and writing its output with pyarrow, in bounded memory.

A shard is a range of rows: for Parquet it is read from the row groups it overlaps,
a batch at a time; for CSV and JSONL (one row per line) the plan records the byte
offsets where each shard starts, so a shard reads its own bytes only. pyarrow parses
fast but says little about where a file is wrong; when it refuses a shard, the shard is
scanned again in Python to name the first bad row and what was expected.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq

from mlops.modelformats import Signature
from mlops.workers import scan
from mlops.workers.errors import InputError

ID_COLUMN = "id"
SCAN_CHUNK = 8 << 20
# Tree boosters take missing values (as the model server does for JSON null).
MISSING_OK_FORMATS = frozenset({"xgboost", "lightgbm"})


@dataclass(frozen=True, slots=True)
class ShardRange:
    row_start: int
    row_end: int
    byte_start: int | None = None
    byte_end: int | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    rows: int
    shards: list[ShardRange]
    has_id: bool
    id_type: str | None  # JSONL: the id's JSON type on the first row


@dataclass(frozen=True, slots=True)
class Layout:
    """How to read the input's columns for one model."""

    fmt: str
    features: list[str]
    has_id: bool
    id_type: str | None
    allow_missing: bool
    input_dtype: str


def feature_columns(signature: Signature) -> list[str]:
    """The model's feature names, or ``f0``..``f{n-1}`` when it has none."""
    return list(signature.feature_names or [f"f{i}" for i in range(signature.n_features)])


def check_columns(columns: list[str], features: list[str]) -> bool:
    """Whether there is an ``id`` column; InputError unless the columns are the features."""
    seen = set(columns)
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    missing = [f for f in features if f not in seen]
    unknown = sorted(seen - set(features) - {ID_COLUMN})
    if duplicated or missing or unknown:
        problems = []
        if missing:
            problems.append(f"missing {missing}")
        if unknown:
            problems.append(f"unknown {unknown}")
        if duplicated:
            problems.append(f"repeated {duplicated}")
        raise InputError(
            f"the input's columns do not match the model: {'; '.join(problems)}; expected "
            f"the features {features} and optionally an '{ID_COLUMN}' column"
        )
    return ID_COLUMN in seen


def _group_ranges(groups: list[int], shard_rows: int) -> list[ShardRange]:
    """Parquet shards are whole row groups, merged up to ``shard_rows``: a row group is
    decoded whole, so a shard that took part of one would decode the rest for nothing."""
    shards: list[ShardRange] = []
    start = rows = 0
    for size in groups:
        if rows and rows + size > shard_rows:
            shards.append(ShardRange(start, start + rows))
            start, rows = start + rows, 0
        rows += size
    if rows:
        shards.append(ShardRange(start, start + rows))
    return shards


def plan_input(path: Path, fmt: str, features: list[str], shard_rows: int) -> Plan:
    if fmt == "parquet":
        try:
            parquet = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"the input is not a readable Parquet file: {exc}") from None
        has_id = check_columns(parquet.schema_arrow.names, features)
        groups = [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]
        return Plan(sum(groups), _group_ranges(groups, shard_rows), has_id, None)
    with path.open("rb") as f:
        first = f.readline()
        header_end = f.tell()
    if fmt == "csv":
        header = scan.csv_header(first)
        has_id = check_columns(header, features)
        id_type = None
        body_start = header_end
    else:
        columns, id_type = scan.jsonl_first(first)
        has_id = check_columns(columns, features)
        body_start = 0
    rows, offsets = scan.line_offsets(path, body_start, shard_rows, SCAN_CHUNK)
    shards = [
        ShardRange(i * shard_rows, min((i + 1) * shard_rows, rows), start, end)
        for i, (start, end) in enumerate(offsets)
    ]
    return Plan(rows, shards, has_id, id_type)


def _csv_types(layout: Layout) -> dict[str, pa.DataType]:
    types: dict[str, pa.DataType] = dict.fromkeys(layout.features, pa.float64())
    if layout.has_id:
        types[ID_COLUMN] = pa.string()  # carried through as written (leading zeros...)
    return types


_JSON_ID_TYPES = {"int": pa.int64(), "float": pa.float64(), "str": pa.string()}


def _read_lines(path: Path, layout: Layout, shard: ShardRange) -> pa.Table:
    assert shard.byte_start is not None and shard.byte_end is not None
    with path.open("rb") as f:
        header = f.readline() if layout.fmt == "csv" else b""
        f.seek(shard.byte_start)
        data = f.read(shard.byte_end - shard.byte_start)
    try:
        if layout.fmt == "csv":
            return pcsv.read_csv(
                io.BytesIO(header + data),
                convert_options=pcsv.ConvertOptions(column_types=_csv_types(layout)),
            )
        fields = [pa.field(name, pa.float64()) for name in layout.features]
        if layout.has_id:
            fields.append(
                pa.field(ID_COLUMN, _JSON_ID_TYPES.get(layout.id_type or "", pa.string()))
            )
        return pjson.read_json(
            io.BytesIO(data),
            parse_options=pjson.ParseOptions(
                explicit_schema=pa.schema(fields), unexpected_field_behavior="error"
            ),
        )
    except pa.ArrowInvalid as exc:
        problem = scan.first_problem(
            data,
            layout.fmt,
            header=scan.csv_header(header) if header else None,
            features=layout.features,
            allow_missing=layout.allow_missing,
            first_row=shard.row_start,
        )
        raise InputError(
            problem or f"the input could not be parsed near row {shard.row_start + 1}: {exc}"
        ) from None


def read_shard(
    path: Path, layout: Layout, shard: ShardRange, batch_rows: int
) -> Iterator[tuple[int, pa.Array | None, np.ndarray]]:
    """(first row number, ids or None, features as float64) a batch at a time."""
    if layout.fmt == "parquet":
        batches = _parquet_batches(path, layout, shard, batch_rows)
    else:
        batches = iter(_read_lines(path, layout, shard).to_batches(batch_rows))
    row = shard.row_start
    for batch in batches:
        if batch.num_rows == 0:
            continue
        x = _features(batch, layout, row)
        ids = batch.column(ID_COLUMN) if layout.has_id else None
        yield row, ids, x
        row += batch.num_rows
    if row != shard.row_end:
        raise InputError(
            f"rows {shard.row_start + 1}-{shard.row_end} should be "
            f"{shard.row_end - shard.row_start} rows but {row - shard.row_start} were read "
            "(blank lines in the file?)"
        )


def _parquet_batches(
    path: Path, layout: Layout, shard: ShardRange, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    parquet = pq.ParquetFile(path)
    columns = [*layout.features, *([ID_COLUMN] if layout.has_id else [])]
    groups, first = [], None
    start = 0
    for index in range(parquet.num_row_groups):
        end = start + parquet.metadata.row_group(index).num_rows
        if end > shard.row_start and start < shard.row_end:
            groups.append(index)
            first = start if first is None else first
        start = end
    if not groups or first is None:
        return
    position = first
    for batch in parquet.iter_batches(batch_size=batch_rows, row_groups=groups, columns=columns):
        lo = max(shard.row_start - position, 0)
        hi = min(shard.row_end - position, batch.num_rows)
        position += batch.num_rows
        if hi > lo:
            yield batch.slice(lo, hi - lo)
        if position >= shard.row_end:
            return


def _features(batch: pa.RecordBatch, layout: Layout, first_row: int) -> np.ndarray:
    columns = []
    for name in layout.features:
        column = batch.column(name)
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            raise InputError(f"column {name!r} holds {column.type} values; expected numbers")
        if column.null_count and not layout.allow_missing:
            row = first_row + int(pc.index(pc.is_null(column), True).as_py()) + 1
            raise InputError(
                f"row {row}, column {name!r}: the value is missing; this model takes no "
                "missing values (only XGBoost and LightGBM models do)"
            )
        columns.append(column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False))
    x = np.column_stack(columns)
    bad = np.isinf(x) if layout.allow_missing else ~np.isfinite(x)
    if bad.any():
        row_index, column_index = (int(i) for i in np.argwhere(bad)[0])
        raise InputError(
            f"row {first_row + row_index + 1}, column {layout.features[column_index]!r}: "
            f"{x[row_index, column_index]} is not accepted (NaN and infinity are refused)"
        )
    if layout.input_dtype == "int64" and not np.array_equal(x, np.round(x)):
        row_index = int(np.argwhere(x != np.round(x))[0][0])
        raise InputError(
            f"row {first_row + row_index + 1}: this model takes integer features; got "
            "fractional values"
        )
    return x


def output_batch(
    ids: pa.Array | None,
    values: np.ndarray,
    probabilities: np.ndarray | None,
    classes: list[Any] | None,
) -> pa.RecordBatch:
    arrays: list[pa.Array] = []
    names: list[str] = []
    if ids is not None:
        arrays.append(ids)
        names.append(ID_COLUMN)
    arrays.append(pa.array(values))
    names.append("prediction")
    if probabilities is not None and classes is not None:
        for i, label in enumerate(classes):
            arrays.append(pa.array(probabilities[:, i], type=pa.float64()))
            names.append(f"probability_{label}")
    return pa.RecordBatch.from_arrays(arrays, names=names)
