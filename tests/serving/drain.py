"""Traffic across a server's drain window (SIGTERM, the shutdown delay, the listener
closing, in-flight requests finishing), for tests against a live process.

Senders post predictions back to back on keep-alive connections, each with its own
``X-Request-ID``, until a connection is refused. A request racing the close may get no
answer without the server ever having read it (its connection still waiting to be
accepted, or an idle keep-alive connection closed under it): every HTTP client meets
that at every server's close, which is why load balancers stop sending first. The
server's access log tells such a request from one the server took and lost.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

WAIT_S = 60.0  # bounds waits for events on a stalled machine
# The text access log's line: "... POST '/api/v1/models/predict' 200 3.1 ms (route ...,
# client ..., request <id>)".
_ACCESS_LINE = re.compile(r" (?:GET|POST) '([^']+)' (\d{3}) .*, request ([^)\s]+)\)$")


@dataclass(frozen=True)
class Sent:
    request_id: str
    started: float  # time.monotonic()
    finished: float
    status: int | None  # None: no HTTP answer
    error: str | None
    rows: int  # predictions in the answer

    def __str__(self) -> str:
        outcome = self.status if self.status is not None else self.error
        return f"{self.request_id} {self.started:.3f}-{self.finished:.3f}: {outcome}"


class DrainTraffic:
    """Predictions to ``url`` from ``senders`` threads until the listener closes."""

    def __init__(self, url: str, headers: dict[str, str], rows: int) -> None:
        self.url = url
        self.headers = {**headers, "Content-Type": "application/json"}
        self.rows = rows
        self.body = ('{"data": [' + ",".join(["[1, 2, 3, 4, 5]"] * rows) + "]}").encode()
        self.sent: list[Sent] = []
        self.closed = threading.Event()  # a new connection was refused
        self.closed_at = 0.0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def _record(self, sent: Sent) -> None:
        with self._lock:
            self.sent.append(sent)

    def _post(self, client: httpx.Client, request_id: str, content: object) -> Sent:
        started = time.monotonic()
        headers = {**self.headers, "X-Request-ID": request_id}
        try:
            response = client.post(self.url, content=content, headers=headers)  # type: ignore[arg-type]
        except httpx.TransportError as exc:
            sent = Sent(request_id, started, time.monotonic(), None, type(exc).__name__, 0)
        else:
            rows = len(response.json().get("predictions", [])) if response.is_success else 0
            sent = Sent(request_id, started, time.monotonic(), response.status_code, None, rows)
        self._record(sent)
        return sent

    def start_senders(self, count: int) -> None:
        def send(number: int) -> None:
            with httpx.Client(timeout=WAIT_S) as client:
                for n in range(1_000_000):
                    sent = self._post(client, f"drain-{number}-{n}", self.body)
                    if sent.error == "ConnectError":
                        return  # refused: the listener is closed

        for number in range(count):
            thread = threading.Thread(target=send, args=(number,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def start_straddling_request(self) -> None:
        """One request whose body is half sent now and finished only once the listener
        has closed: in flight across the close, by construction."""
        half = len(self.body) // 2

        def body() -> Iterator[bytes]:
            yield self.body[:half]
            self.closed.wait(WAIT_S)
            yield self.body[half:]

        def send() -> None:
            with httpx.Client(timeout=WAIT_S) as client:
                self._post(client, "drain-straddling", body())

        thread = threading.Thread(target=send, daemon=True)
        thread.start()
        self._threads.append(thread)

    def watch_listener(self, port: int) -> None:
        """Set ``closed`` when a new connection to ``port`` is refused."""

        def watch() -> None:
            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=5).close()
                except ConnectionRefusedError:
                    self.closed_at = time.monotonic()
                    self.closed.set()
                    return
                time.sleep(0.01)

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        self._threads.append(thread)

    def wait_answers(self, count: int) -> None:
        deadline = time.monotonic() + WAIT_S
        while sum(s.status == 200 for s in list(self.sent)) < count:
            assert time.monotonic() < deadline, "the senders got no answers"
            time.sleep(0.01)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(WAIT_S)
            assert not thread.is_alive(), "a sender never finished"


def access_log(log: Path, path: str) -> dict[str, int]:
    """Request id -> status of every request to ``path`` in a text access log."""
    seen: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines():
        match = _ACCESS_LINE.search(line)
        if match and match.group(1) == path:
            seen[match.group(3)] = int(match.group(2))
    return seen
