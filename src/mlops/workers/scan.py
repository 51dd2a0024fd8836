"""Plain-Python scans of line-based inputs (CSV, JSONL): headers, where each shard's
bytes start, and the first bad row of a shard that pyarrow refused, named by its row
number and what was expected."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import orjson

from mlops.workers.errors import InputError

_BLANK = b" \t\r\n"


class _Bad(Exception):
    pass


def csv_header(line: bytes) -> list[str]:
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("the CSV header is not UTF-8 text") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or not rows[0]:
        raise InputError("the CSV file has no header line naming its columns")
    return [name.strip() for name in rows[0]]


def jsonl_first(line: bytes) -> tuple[list[str], str | None]:
    """The first JSON line's keys and the JSON type of its ``id``."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"row 1 is not valid JSON: {exc}") from None
    if not isinstance(record, dict):
        raise InputError('row 1 is not a JSON object like {"f0": 1.5, ...}')
    value = record.get("id")
    id_type = None if value is None else type(value).__name__
    return list(record), id_type


def _content_end(path: Path) -> int:
    """Just past the last byte that is not blank: trailing blank lines are no rows."""
    size = path.stat().st_size
    with path.open("rb") as f:
        end = size
        while end > 0:
            start = max(0, end - 65536)
            f.seek(start)
            stripped = f.read(end - start).rstrip(_BLANK)
            if stripped:
                return start + len(stripped)
            end = start
    return 0


def line_offsets(
    path: Path, start: int, shard_rows: int, chunk: int
) -> tuple[int, list[tuple[int, int]]]:
    """(rows from ``start`` on, one row per line; each shard's (first byte, end byte))."""
    end = _content_end(path)
    if end <= start:
        return 0, []
    boundaries = [start]
    newlines = 0
    next_cut = shard_rows
    with path.open("rb") as f:
        f.seek(start)
        position = start
        while position < end:
            data = f.read(min(chunk, end - position))
            if not data:
                break
            count = data.count(b"\n")
            if newlines + count >= next_cut:
                found = -1
                for _ in range(count):
                    found = data.index(b"\n", found + 1)
                    newlines += 1
                    if newlines == next_cut:
                        boundaries.append(position + found + 1)
                        next_cut += shard_rows
            else:
                newlines += count
            position += len(data)
    rows = newlines + 1  # the last line has no newline before ``end``
    if boundaries[-1] >= end:
        boundaries.pop()
    edges = [*boundaries, end]
    return rows, list(zip(edges[:-1], edges[1:], strict=True))


def first_problem(
    data: bytes,
    fmt: str,
    *,
    header: list[str] | None,
    features: list[str],
    allow_missing: bool,
    first_row: int,
) -> str | None:
    """What is wrong with the first bad row of ``data`` (rows numbered from 1)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n")
        return f"row {first_row + line + 1} is not UTF-8 text"
    lines = text.splitlines()
    for offset, text_line in enumerate(lines):
        row = first_row + offset + 1
        where = f"row {row} (line {row + 1})" if fmt == "csv" else f"row {row}"
        try:
            if fmt == "csv":
                assert header is not None
                _check_csv(text_line, header, features, allow_missing)
            else:
                _check_json(text_line, features, allow_missing)
        except _Bad as exc:
            return f"{where}: {exc}"
    return None


def _check_value(name: str, value: Any, allow_missing: bool) -> None:
    if value is None:
        if not allow_missing:
            raise _Bad(
                f"column {name!r} is missing; this model takes no missing values "
                "(only XGBoost and LightGBM models do)"
            )
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(f"column {name!r} is {value!r}; expected a number")
    if not math.isfinite(value):
        raise _Bad(f"column {name!r} is {value}; NaN and infinity are refused")


def _check_csv(line: str, header: list[str], features: list[str], allow_missing: bool) -> None:
    if not line.strip():
        raise _Bad("the line is blank; expected one row per line")
    values = next(csv.reader([line]))
    if len(values) != len(header):
        raise _Bad(f"expected {len(header)} columns ({', '.join(header)}), got {len(values)}")
    row = dict(zip(header, values, strict=True))
    for name in features:
        raw = row[name].strip()
        number: Any = None
        if raw:
            try:
                number = float(raw)
            except ValueError:
                number = raw
        _check_value(name, number, allow_missing)


def _check_json(line: str, features: list[str], allow_missing: bool) -> None:
    if not line.strip():
        raise _Bad("the line is blank; expected one JSON object per line")
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise _Bad(f"not valid JSON: {exc}") from None
    if not isinstance(record, dict):
        raise _Bad('not a JSON object like {"f0": 1.5, ...}')
    missing = [f for f in features if f not in record]
    unknown = sorted(set(record) - set(features) - {"id"})
    if missing or unknown:
        raise _Bad(f"missing {missing}, unknown {unknown}; expected the features {features}")
    for name in features:
        _check_value(name, record[name], allow_missing)
