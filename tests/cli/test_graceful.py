"""The server's shutdown writes the access lines still queued: uvicorn re-raises SIGTERM
right after it, and a process ended by a signal runs no atexit handler (the drain drill,
tests/serving/test_live.py, found lines missing)."""

from __future__ import annotations

import asyncio
import io
import logging
import time

import pytest
import uvicorn
from fastapi import FastAPI

from mlops.cli.graceful import GracefulServer
from mlops.observability import access_log
from tests.throwaway import free_port


async def test_shutdown_writes_the_queued_access_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    # A writer that would wait an hour before writing on its own.
    writer = access_log.AccessLogWriter(
        logging.StreamHandler(stream), json_lines=False, flush_seconds=3600
    )
    monkeypatch.setattr(access_log, "_writer", writer)
    app = FastAPI()
    config = uvicorn.Config(app, port=free_port(), lifespan="off", log_config=None)
    server = GracefulServer(config, app, delay=0)
    serving = asyncio.create_task(server.serve())
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and not serving.done(), "it did not start"
            await asyncio.sleep(0.01)
        line = (time.time(), "last-one", "POST", "/api/v1/models/predict", "/p", 200, 0.001, "c")
        writer.record(line)
        server.should_exit = True  # what SIGTERM sets, once the delay is over
        await serving
        assert "request last-one)" in stream.getvalue()
    finally:
        server.should_exit = True
        await serving
        writer.close()
