"""Writing record batches as CSV, Parquet or JSONL (pyarrow has no JSON writer)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import orjson
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq


class TableWriter(Protocol):
    def write_batch(self, batch: pa.RecordBatch) -> None: ...

    def write_table(self, table: pa.Table) -> None: ...

    def close(self) -> None: ...


class _JsonLines:
    def __init__(self, path: Path) -> None:
        self._file = path.open("wb")

    def write_batch(self, batch: pa.RecordBatch) -> None:
        self._file.write(b"".join(orjson.dumps(row) + b"\n" for row in batch.to_pylist()))

    def write_table(self, table: pa.Table) -> None:
        for batch in table.to_batches(65_536):
            self.write_batch(batch)

    def close(self) -> None:
        self._file.close()


def open_writer(path: Path, fmt: str, schema: pa.Schema) -> TableWriter:
    if fmt == "parquet":
        writer: TableWriter = pq.ParquetWriter(path, schema)
        return writer
    if fmt == "csv":
        csv_writer: TableWriter = pcsv.CSVWriter(path, schema)
        return csv_writer
    return _JsonLines(path)
