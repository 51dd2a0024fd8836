"""CPU per predict request through the whole ASGI app, in process (no network, no wrk).

A development tool for comparing two versions of the code on a noisy machine: it drives
``create_app`` directly with ASGI calls (the demo model, SQLite, in-process cache), so
what it measures is the platform's own work per request (front, authentication,
validation, batching, inference thread, metrics), not uvicorn's or the kernel's. Each
phase runs REPS times; the best (least disturbed) figure is printed. CPU time is the
process's, so the inference thread's work counts.

    taskset -c 0 .venv/bin/python bench/asgi_cpu.py
    PYTHONPATH=/tmp/other-checkout/src taskset -c 0 .venv/bin/python bench/asgi_cpu.py

Environment: ``REPS`` (5), ``MODES`` ("one batch"), ``ACCESS_LOG`` (``on``, the shipped
default, or ``off``). Phases: ``one``, 50 concurrent callers sending 1 row, 40 requests
each; ``batch``, 8 callers sending 100 rows, 100 each. Logging is configured as the
server configures it (JSON lines on stderr at INFO): send stderr to a file or /dev/null,
``2>/dev/null``, as a container runtime would take it.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import tempfile
import time
from typing import Any

import numpy as np

ROWS_ONE = np.random.default_rng(1).normal(size=(1, 5)).round(4).tolist()
ROWS_BATCH = np.random.default_rng(2).normal(size=(100, 5)).round(4).tolist()
PHASES = {"one": (ROWS_ONE, 50, 40), "batch": (ROWS_BATCH, 8, 100)}


async def call(
    app: Any, path: str, body: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # no disconnect during a request
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def main(data_dir: str) -> None:
    password = secrets.token_urlsafe(18)
    os.environ.update(
        MLOPS_DATA_DIR=data_dir,
        MLOPS_ADMIN_USERNAME="admin",
        MLOPS_ADMIN_PASSWORD=password,
        MLOPS_ACCESS_LOG={"on": "true", "off": "false"}[os.environ.get("ACCESS_LOG", "on")],
    )
    # Imported after the environment is set, as `mlops up` would read it.
    from mlops.api.app import create_app
    from mlops.bootstrap import ensure_first_admin
    from mlops.config import Settings
    from mlops.context import create_context
    from mlops.db.schema import upgrade_database
    from mlops.observability.logs import configure_logging
    from mlops.registry.demo import register_demo_model

    settings = Settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    upgrade_database(settings)
    ctx = create_context(settings)
    try:
        await ensure_first_admin(ctx)
        await register_demo_model(ctx)
    finally:
        await ctx.close()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        login = json.dumps({"username": "admin", "password": password}).encode()
        status, answer = await call(app, "/api/v1/auth/login", login, [])
        assert status == 200, answer
        auth = [(b"authorization", f"Bearer {json.loads(answer)['access_token']}".encode())]
        path = "/api/v1/models/predict"
        one = json.dumps({"data": ROWS_ONE}).encode()
        for _ in range(300):  # the demo model loads in the background
            status, answer = await call(app, path, one, auth)
            if status == 200:
                break
            await asyncio.sleep(0.1)
        assert status == 200, answer

        async def caller(body: bytes, requests: int) -> None:
            for _ in range(requests):
                status, answer = await call(app, path, body, auth)
                assert status == 200, answer

        for mode in os.environ.get("MODES", "one batch").split():
            rows, callers, requests = PHASES[mode]
            body = json.dumps({"data": rows}).encode()
            best = float("inf")
            for _ in range(int(os.environ.get("REPS", "5"))):
                start = time.process_time()
                await asyncio.gather(*(caller(body, requests) for _ in range(callers)))
                spent = time.process_time() - start
                best = min(best, spent / (callers * requests) * 1e6)
            print(f"{mode}: {len(rows)} row(s), {callers} callers: {best:.1f} µs CPU per request")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="asgi-cpu-") as data_dir:
        asyncio.run(main(data_dir))
