"""Tell a database that cannot answer now from a request or code that is wrong.

Connection failures, a dropped connection, a full pool, a server shutting down or
busy (SQLite's "database is locked"): the request can succeed later, so it answers
503 with ``Retry-After`` rather than 500. Constraint violations and other errors
are not outages and keep their own handling.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from mlops.errors import TemporarilyUnavailable

RETRY_AFTER_SECONDS = 5


class DatabaseUnavailable(TemporarilyUnavailable):
    code = "database_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "The database is unreachable, so this request could not be completed; "
            f"retry in {RETRY_AFTER_SECONDS} s.",
            retry_after=RETRY_AFTER_SECONDS,
        )


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` means the database could not answer, not that the request failed."""
    if isinstance(exc, sa_exc.TimeoutError):  # no free connection in the pool in time
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        # OperationalError: connect refused or timed out, server shut down, lock timeouts;
        # InterfaceError: the connection is already closed.
        return exc.connection_invalidated or isinstance(
            exc, sa_exc.OperationalError | sa_exc.InterfaceError
        )
    return False


@contextmanager
def unavailable_on_outage() -> Iterator[None]:
    """Turn a database outage into ``DatabaseUnavailable`` (for code outside the API's
    error handlers, such as the predict fast path's authentication)."""
    try:
        yield
    except (sa_exc.DBAPIError, sa_exc.TimeoutError) as exc:
        if is_outage(exc):
            raise DatabaseUnavailable() from exc
        raise
