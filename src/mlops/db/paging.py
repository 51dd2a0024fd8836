"""One page of a query's rows, with the total the client needs to ask for the next."""

from __future__ import annotations

from typing import Any, TypeVarTuple

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

Columns = TypeVarTuple("Columns")


async def count_rows(session: AsyncSession, query: Select[*Columns]) -> int:
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    return int(total or 0)


async def fetch_page(
    session: AsyncSession, query: Select[*Columns], *, limit: int, offset: int
) -> tuple[list[Any], int]:
    """(rows of ``query`` from ``offset``, at most ``limit``; how many there are in all).
    ``query`` must be ordered, so that pages neither overlap nor skip."""
    total = await count_rows(session, query)
    rows = (await session.execute(query.limit(limit).offset(offset))).all()
    return list(rows), total
