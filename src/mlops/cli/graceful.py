"""uvicorn's server with a drain period on SIGTERM (imported only by server commands)."""

from __future__ import annotations

import socket
import threading
from types import FrameType

import uvicorn
from fastapi import FastAPI

from mlops.observability import access_log


class GracefulServer(uvicorn.Server):
    """On SIGTERM, readiness turns 503 at once; after ``delay`` seconds (time for load
    balancers to notice) uvicorn stops accepting and lets in-flight requests finish."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, delay: float) -> None:
        super().__init__(config)
        self._app = app
        self._delay = delay
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._app.state.shutting_down = True
        if self._delay > 0 and not self._draining:
            self._draining = True
            threading.Timer(self._delay, super().handle_exit, (sig, frame)).start()
            return
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        # uvicorn re-raises SIGTERM next, and a process ended by a signal runs no atexit
        # handler: the access log's last batch (the drain's final requests) would be lost.
        access_log.flush()
