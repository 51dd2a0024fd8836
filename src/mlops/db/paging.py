"""One page of a query's rows, with the total the client needs to ask for the next."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar, TypeVarTuple

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

Columns = TypeVarTuple("Columns")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    offset: int

    def answer(self, total: int) -> dict[str, int]:
        """The paging fields of a list answer, beside its items."""
        return {"total": total, "limit": self.limit, "offset": self.offset}


# The operator CLI lists every row at once.
ALL_ROWS = Page(limit=1_000_000, offset=0)


async def fetch_page(
    session: AsyncSession, query: Select[*Columns], page: Page
) -> tuple[list[Any], int]:
    """(the page's rows of ``query``; how many there are in all). ``query`` must be
    ordered, so that pages neither overlap nor skip."""
    counted = select(func.count()).select_from(query.order_by(None).subquery())
    total = int(await session.scalar(counted) or 0)
    rows = (await session.execute(query.limit(page.limit).offset(page.offset))).all()
    return list(rows), total


async def fetch_object_page(
    session: AsyncSession, query: Select[T], page: Page
) -> tuple[list[T], int]:
    """``fetch_page`` of a one-column query (ORM objects), as the objects themselves."""
    rows, total = await fetch_page(session, query, page)
    return [row[0] for row in rows], total
