"""Steady load on real servers, every answer recorded with its times.

Each loop repeats one call until the traffic stops; a call that gets no HTTP answer
(refused, reset, timed out) is recorded too, with the error, so a drill can assert on
every single request rather than on a sample.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

DEADLINE_S = 60.0  # bounds a wait for an event on a stalled machine; never a pass criterion


@dataclass(frozen=True)
class Answer:
    what: str
    started: float  # time.monotonic()
    finished: float
    status: int | None  # None: no HTTP answer
    error: str | None = None
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        outcome = self.status if self.status is not None else self.error
        return f"{self.what} at {self.started:.3f}-{self.finished:.3f}: {outcome} {self.body[:300]}"

    def json(self) -> Any:
        return json.loads(self.body)


class Traffic:
    """Calls through one client; ``loop`` repeats a call until ``stop``."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.answers: list[Answer] = []
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def call(self, what: str, method: str, url: str, **kwargs: Any) -> Answer:
        started = time.monotonic()
        try:
            response = await self.client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            answer = Answer(what, started, time.monotonic(), None, f"{type(exc).__name__}: {exc}")
        else:
            answer = Answer(
                what,
                started,
                time.monotonic(),
                response.status_code,
                body=response.text,
                headers=dict(response.headers),
            )
        self.answers.append(answer)
        return answer

    def loop(self, make_call: Callable[[int], Awaitable[Answer]], *, pause: float = 0.01) -> None:
        """Call ``make_call(n)`` for n = 0, 1, 2, ... until ``stop``."""

        async def run() -> None:
            n = 0
            while not self._stopping.is_set():
                await make_call(n)
                n += 1
                await asyncio.sleep(pause)

        self._tasks.append(asyncio.create_task(run()))

    async def stop(self) -> None:
        self._stopping.set()
        await asyncio.gather(*self._tasks)

    def of(self, prefix: str) -> list[Answer]:
        return [a for a in self.answers if a.what.startswith(prefix)]


def assert_every(answers: Iterable[Answer], ok: Callable[[Answer], bool], what: str) -> None:
    """Fail listing every answer that is not ``ok``."""
    bad = [str(a) for a in answers if not ok(a)]
    assert not bad, f"{len(bad)} answers are not {what}:\n" + "\n".join(bad[:50])


async def until(check: Callable[[], Awaitable[bool]], what: str) -> float:
    """Wait for an event (polled); the time it was seen. Fails past ``DEADLINE_S``."""
    deadline = time.monotonic() + DEADLINE_S
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE_S} s: {what}")
        await asyncio.sleep(0.05)
    return time.monotonic()
