"""JSON log lines carrying the current request id.

The request id lives in a context variable set by the request-id middleware, so
every log line written while serving a request, from any module, carries it.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def configure_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    """Route the root logger, uvicorn's and ours to stderr, one JSON object per line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    formatter: logging.Formatter
    if json_lines:
        formatter = JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Access lines are written by our middleware with the request id and route, off the
    # event loop (access_log.py).
    logging.getLogger("uvicorn.access").disabled = True
    from mlops.observability import access_log

    access_log.install(handler, json_lines=json_lines)


def uvicorn_log_config() -> dict[str, Any]:
    """Stop uvicorn from installing its own handlers over ours."""
    return {"version": 1, "disable_existing_loggers": False}
