"""The access log writer: every line, in order, in the log's JSON shape, written off
the request's path; a stream that fails or lags loses lines only with a notice."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator

import pytest

from mlops.observability import access_log
from mlops.observability.logs import configure_logging, request_id_var

DEADLINE_S = 30.0


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Logging configured as a server does it, into a string instead of stderr."""
    out = io.StringIO()
    configure_logging("INFO", json_lines=True)
    handler = logging.root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(out)
    try:
        yield out
    finally:
        access_log.uninstall()
        logging.root.handlers.clear()


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _request(n: int) -> None:
    token = request_id_var.set(f"rid-{n}")
    try:
        access_log.log_request("POST", f"/p/{n}", "/p/{n}", 200, 0.0012345, "10.0.0.1")
    finally:
        request_id_var.reset(token)


def test_lines_keep_every_field_and_their_order(stream: io.StringIO) -> None:
    for n in range(1000):
        _request(n)
    access_log.flush()
    lines = _lines(stream)
    assert [line["request_id"] for line in lines] == [f"rid-{n}" for n in range(1000)]
    first = lines[0]
    assert list(first) == [
        "time",
        "level",
        "logger",
        "message",
        "request_id",
        "method",
        "path",
        "route",
        "status",
        "duration_ms",
        "client",
    ]
    assert first["logger"] == "mlops.access" and first["level"] == "INFO"
    assert (first["path"], first["route"], first["status"]) == ("/p/0", "/p/{n}", 200)
    assert first["duration_ms"] == 1.234 and first["client"] == "10.0.0.1"
    # The same time format as every other log line.
    logging.getLogger("mlops.test").info("other")
    other = _lines(stream)[-1]
    assert len(str(other["time"])) == len(str(first["time"]))


def test_lines_are_written_without_a_flush(stream: io.StringIO) -> None:
    _request(1)
    deadline = time.monotonic() + DEADLINE_S
    while "rid-1" not in stream.getvalue():
        assert time.monotonic() < deadline, "the writer thread never wrote the line"
        time.sleep(0.05)


def test_plain_text_lines_say_what_happened() -> None:
    out = io.StringIO()
    configure_logging("INFO", json_lines=False)
    handler = logging.root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(out)
    try:
        _request(7)
        access_log.flush()
    finally:
        access_log.uninstall()
        logging.root.handlers.clear()
    line = out.getvalue().strip()
    assert "mlops.access: POST '/p/7' 200 1.2 ms" in line
    assert "request rid-7" in line


def test_nothing_is_written_below_info(stream: io.StringIO) -> None:
    logging.root.setLevel("WARNING")
    _request(1)
    access_log.flush()
    assert stream.getvalue() == ""


def test_a_lagging_stream_loses_lines_with_a_notice(
    stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(access_log, "MAX_PENDING", 10)
    writer = access_log._writer
    assert writer is not None
    with writer._write_lock:  # the writer is busy: lines pile up
        for n in range(25):
            _request(n)
    access_log.flush()
    lines = _lines(stream)
    assert [line["request_id"] for line in lines[:10]] == [f"rid-{n}" for n in range(10)]
    assert lines[-1]["level"] == "WARNING"
    assert lines[-1]["message"] == ("15 access log lines dropped: the log stream did not keep up")


def test_a_closed_stream_does_not_raise_and_is_reported_later(stream: io.StringIO) -> None:
    handler = logging.root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    broken = io.StringIO()
    broken.close()
    handler.setStream(broken)
    _request(1)
    access_log.flush()  # the write fails: no exception reaches the caller
    handler.setStream(stream)
    _request(2)
    access_log.flush()
    lines = _lines(stream)
    assert lines[0]["request_id"] == "rid-2"
    assert lines[1]["message"] == "1 access log lines dropped: the log stream did not keep up"


def test_reconfigured_logging_gets_the_lines_through_logging(
    stream: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    platform_handler = logging.root.handlers[0]
    logging.root.removeHandler(platform_handler)  # an application replaced it
    with caplog.at_level(logging.INFO, logger="mlops.access"):
        _request(3)
    records = [r for r in caplog.records if r.name == "mlops.access"]
    assert len(records) == 1
    assert records[0].__dict__["route"] == "/p/{n}"
    access_log.flush()
    assert stream.getvalue() == ""


def test_json_lines_are_byte_for_byte_those_of_the_other_log_lines(stream: io.StringIO) -> None:
    """One parser, or one grep, reads the whole log (python-json-logger's separators and
    ASCII escapes)."""
    token = request_id_var.set("rid-\u00e9")
    try:
        access_log.log_request("GET", '/caf\u00e9/"q"', "/x", 404, 0.5, "::1")
        logging.getLogger("mlops.access").info(
            "request",
            extra={
                "method": "GET",
                "path": '/caf\u00e9/"q"',
                "route": "/x",
                "status": 404,
                "duration_ms": 500.0,
                "client": "::1",
            },
        )
    finally:
        request_id_var.reset(token)
    access_log.flush()
    # Through logging first (written at once), then the writer's (written at the flush).
    through_logging, written = stream.getvalue().splitlines()
    tail = through_logging[through_logging.index('"level"') :]
    assert written[written.index('"level"') :] == tail


def test_a_hostile_path_cannot_forge_a_log_line() -> None:
    for json_lines in (True, False):
        out = io.StringIO()
        configure_logging("INFO", json_lines=json_lines)
        handler = logging.root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(out)
        try:
            access_log.log_request("GET", '/x\n{"level": "ERROR"}\r\n', "unmatched", 404, 0.0, "c")
            access_log.flush()
        finally:
            access_log.uninstall()
            logging.root.handlers.clear()
        assert len(out.getvalue().splitlines()) == 1, out.getvalue()
