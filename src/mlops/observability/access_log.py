"""The access log: one line per HTTP request, formatted and written off the event loop.

Through ``logging``, each line cost a ``LogRecord``, python-json-logger's formatting
and a write and flush on the event loop: as much CPU as the rest of a single-row
prediction (docs/performance.md). Here a request only appends a tuple to a queue; a
background thread wakes every ``FLUSH_SECONDS`` (sooner when ``BATCH_LINES`` are
waiting), formats the lines and writes them to the log handler's stream
in one call, under the handler's lock so they never interleave with other log lines.
Lines keep the fields, order and JSON shape of the other log lines; they may reach
the stream up to ``FLUSH_SECONDS`` after the request (each carries its own time).

``configure_logging`` installs the writer. Without it (an embedding application,
tests), or once its handler is no longer the root logger's, lines go through the
``mlops.access`` logger as before.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from json.encoder import encode_basestring_ascii as _json_str
from typing import Any

from mlops.observability.logs import request_id_var

FLUSH_SECONDS = 0.25
BATCH_LINES = 512
# Lines held while the stream does not keep up (nobody reads the pipe); then dropped,
# counted, and the count written when the stream takes lines again.
MAX_PENDING = 100_000
LOGGER_NAME = "mlops.access"

logger = logging.getLogger(LOGGER_NAME)
_Line = tuple[float, str | None, str, str, str, int, float, str]


class AccessLogWriter:
    """Buffers access lines and writes them from its own thread to ``handler.stream``."""

    def __init__(
        self,
        handler: logging.StreamHandler[Any],
        *,
        json_lines: bool,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self.handler = handler
        self._json = json_lines
        self._flush_seconds = flush_seconds
        self._pending: deque[_Line] = deque()
        self._dropped = 0
        self._wake = threading.Event()
        self._closing = False
        self._write_lock = threading.Lock()  # one drain at a time: lines stay in order
        self._clock_second = -1
        self._clock_text = ""
        self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self._thread.start()

    def record(self, line: _Line) -> None:
        """Queue one line (called on the event loop: keep it to an append)."""
        pending = self._pending
        if len(pending) >= MAX_PENDING:
            self._dropped += 1
            return
        pending.append(line)
        if len(pending) == BATCH_LINES:
            self._wake.set()

    def flush(self) -> None:
        """Write every queued line now."""
        with self._write_lock:
            lines = self._take()
            if lines:
                self._write(lines)

    def close(self) -> None:
        """Write what is queued and stop the thread (at exit, or when replaced)."""
        self._closing = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self.flush()

    def _run(self) -> None:
        while not self._closing:
            self._wake.wait(self._flush_seconds)
            self._wake.clear()
            self.flush()

    def _take(self) -> list[str]:
        pending = self._pending
        formatted: list[str] = []
        format_line = self._format_json if self._json else self._format_text
        while True:
            try:
                line = pending.popleft()
            except IndexError:
                break
            formatted.append(format_line(line))
        if self._dropped:
            dropped, self._dropped = self._dropped, 0
            formatted.append(self._format_notice(dropped))
        return formatted

    def _write(self, lines: list[str]) -> None:
        text = "\n".join(lines) + "\n"
        self.handler.acquire()
        try:
            self.handler.stream.write(text)
            self.handler.stream.flush()
        except (OSError, ValueError):
            # The stream is gone (closed pipe or file): an access log must not take the
            # server down. The lines are lost; the next successful write says how many.
            self._dropped += len(lines)
        finally:
            self.handler.release()

    def _asctime(self, when: float) -> str:
        """``logging``'s default time format (local time, milliseconds)."""
        second = int(when)
        if second != self._clock_second:
            self._clock_second = second
            self._clock_text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._clock_text},{int((when - second) * 1000):03d}"

    def _format_json(self, line: _Line) -> str:
        # Byte for byte what python-json-logger writes for the other lines (json.dumps's
        # separators, ASCII escapes), so one parser or grep reads the whole log.
        when, request_id, method, path, route, status, elapsed, client = line
        rid = "null" if request_id is None else _json_str(request_id)
        return (
            f'{{"time": "{self._asctime(when)}", "level": "INFO", "logger": "{LOGGER_NAME}", '
            f'"message": "request", "request_id": {rid}, "method": {_json_str(method)}, '
            f'"path": {_json_str(path)}, "route": {_json_str(route)}, "status": {status:d}, '
            f'"duration_ms": {round(elapsed * 1000, 3)!r}, "client": {_json_str(client)}}}'
        )

    def _format_text(self, line: _Line) -> str:
        when, request_id, method, path, route, status, elapsed, client = line
        return (
            f"{self._asctime(when)} INFO    {LOGGER_NAME}: {method} {path!r} {status} "
            f"{elapsed * 1000:.1f} ms (route {route}, client {client}, request {request_id})"
        )

    def _format_notice(self, dropped: int) -> str:
        message = f"{dropped} access log lines dropped: the log stream did not keep up"
        when = time.time()
        if not self._json:
            return f"{self._asctime(when)} WARNING {LOGGER_NAME}: {message}"
        return (
            f'{{"time": "{self._asctime(when)}", "level": "WARNING", "logger": "{LOGGER_NAME}", '
            f'"message": {_json_str(message)}, "request_id": null}}'
        )


_writer: AccessLogWriter | None = None


def install(handler: logging.StreamHandler[Any], *, json_lines: bool) -> AccessLogWriter:
    """Write access lines to ``handler``'s stream from a background thread (replaces, and
    flushes, the previous writer)."""
    global _writer
    uninstall()
    _writer = AccessLogWriter(handler, json_lines=json_lines)
    atexit.register(_writer.close)
    return _writer


def uninstall() -> None:
    global _writer
    writer, _writer = _writer, None
    if writer is not None:
        atexit.unregister(writer.close)
        writer.close()


def flush() -> None:
    """Write every queued access line now (tests; shutdown does it by itself)."""
    if _writer is not None:
        _writer.flush()


def log_request(
    method: str, path: str, route: str, status: int, elapsed: float, client: str
) -> None:
    """One access line for a finished request (``elapsed`` in seconds)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    writer = _writer
    # Only while its handler is still the root logger's: a reconfigured logging (a test,
    # an embedding application) gets its lines through logging again.
    if writer is not None and writer.handler in logging.root.handlers:
        writer.record(
            (time.time(), request_id_var.get(), method, path, route, status, elapsed, client)
        )
        return
    logger.info(
        "request",
        extra={
            "method": method,
            "path": path,
            "route": route,
            "status": status,
            "duration_ms": round(elapsed * 1000, 3),
            "client": client,
        },
    )
