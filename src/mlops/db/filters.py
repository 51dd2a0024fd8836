"""Query helpers shared by the features' list endpoints."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement


def starts_with(column: Any, prefix: str) -> ColumnElement[bool]:
    """``column LIKE 'prefix%'`` with ``%``, ``_`` and ``\\`` in ``prefix`` taken literally."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    condition: ColumnElement[bool] = column.like(f"{escaped}%", escape="\\")
    return condition
