"""``IsoDatetime``: a date-time with a time zone, written as ISO 8601 and nothing else.

pydantic also reads a number as seconds since 1970, so ``?until=0.5`` or
``"expires_at": 5`` were taken as moments in January 1970, while the OpenAPI document
says ``date-time``. A number is refused here with what is expected.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AwareDatetime, BeforeValidator

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
EXPECTED = "expected an ISO 8601 date-time with a time zone, e.g. 2026-01-31T12:00:00Z"


def _not_a_number(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError(EXPECTED)
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError(f"{EXPECTED}, not a number")
    return value


IsoDatetime = Annotated[AwareDatetime, BeforeValidator(_not_a_number)]
