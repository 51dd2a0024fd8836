"""The platform's error types.

Every error a client can see is a ``PlatformError``: it carries a stable,
machine-readable ``code``, a message a person can act on, and the HTTP status
it maps to. One exception handler renders all of them as
``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any


class PlatformError(Exception):
    """Base class: ``code`` is stable API, ``message`` is for people."""

    status_code: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.headers = headers or {}
        self.details = details


class Invalid(PlatformError):
    """The request is well-formed but its content is not acceptable."""

    status_code = 422
    code = "invalid"


class BadRequest(PlatformError):
    status_code = 400
    code = "bad_request"


class Unauthorized(PlatformError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str = "Authentication required.", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class Forbidden(PlatformError):
    status_code = 403
    code = "forbidden"


class NotFound(PlatformError):
    status_code = 404
    code = "not_found"


class Conflict(PlatformError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(PlatformError):
    status_code = 413
    code = "payload_too_large"


class TooManyRequests(PlatformError):
    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": str(max(1, retry_after))})
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class Unavailable(PlatformError):
    status_code = 503
    code = "unavailable"


# Work to run again once a dependency is back (cache updates and events after a commit).
Replayable = Callable[[], Awaitable[None]]


class TemporarilyUnavailable(Unavailable):
    """A dependency (the database, Redis) cannot answer now; retry after ``retry_after`` s.

    ``replay_later``, when the dependency offers it, takes work that failed on it after
    a commit and runs it again once the dependency is back.
    """

    code = "temporarily_unavailable"

    def __init__(
        self,
        message: str,
        *,
        retry_after: int,
        replay_later: Callable[[Replayable], None] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("headers", {"Retry-After": str(max(1, retry_after))})
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.replay_later = replay_later


class ConfigError(Exception):
    """Raised at start-up when settings are missing or unsafe; names the setting."""
