"""The ``limit``/``offset`` query parameters of the list endpoints, and the paging
fields of their answers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query
from pydantic import BaseModel

from mlops.db.paging import Page

MAX_PAGE = 500


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page.")] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip.")] = 0,
) -> Page:
    return Page(limit, offset)


PageDep = Annotated[Page, Depends(page_params)]


class PagedList(BaseModel):
    """Beside ``items``: how many there are in all, and which page this is."""

    total: int
    limit: int
    offset: int
