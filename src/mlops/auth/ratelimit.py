"""Throttling of password guesses, as OWASP's authentication cheat sheet recommends.

Failures from one address never lock out another address:

- **Pair** (username, client address): after ``failures_per_pair`` wrong passwords the
  pair must wait 1 s, then 2 s, 4 s... (each failure doubles it, up to the window).
- **Client** (address, over all usernames): after ``failures_per_client`` the address
  waits likewise, which stops a spray of one password over many usernames.
- **Username ceiling** (over all addresses): at ``failures_per_user`` the username is
  under attack, and an address that fails for it waits the whole window. An address
  that has not failed still gets its answer at once, so the rightful user logs in.

A waiting attempt gets 429 with ``Retry-After`` before any password hash is computed.
At most ``concurrency`` attempts per process are between their last check and the
recording of their result, so a burst of parallel guesses cannot slip past the counts.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from mlops.config import Settings
from mlops.errors import PlatformError, TooManyRequests
from mlops.kv import KeyValueStore

FIRST_DELAY_SECONDS = 1.0
# The errors that mean "wrong password"; anything else (a weak new password, say) is no guess.
GUESS_FAILURES = frozenset({"invalid_credentials", "wrong_password"})


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    failures_per_pair: int
    failures_per_client: int
    failures_per_user: int
    window_seconds: int

    @classmethod
    def of(cls, settings: Settings) -> LoginPolicy:
        return cls(
            failures_per_pair=settings.login_failures_per_pair,
            failures_per_client=settings.login_failures_per_client,
            failures_per_user=settings.login_failures_per_user,
            window_seconds=settings.login_window_seconds,
        )

    def delay(self, failures: int, limit: int) -> float:
        """Seconds to wait after the ``failures``-th failure: none below ``limit``, then
        1 s at the limit, doubling with each failure beyond it, at most the window."""
        if failures < limit:
            return 0.0
        # A capped exponent: nobody needs 2**1000 seconds computed.
        doubling = float(2 ** min(failures - limit, 40))
        return min(float(self.window_seconds), FIRST_DELAY_SECONDS * doubling)


class LoginLimiter:
    """Counts wrong passwords in the key-value store (shared when Redis is configured).

    ``clock`` gives the wall time of wait deadlines; tests pass their own.
    """

    def __init__(
        self,
        kv: KeyValueStore,
        policy: LoginPolicy,
        *,
        concurrency: int = 2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._kv = kv
        self._policy = policy
        self._clock = clock
        self._turns = asyncio.Semaphore(concurrency)

    @staticmethod
    def _pair(username: str, client: str) -> str:
        return f"login:pair:{client}|{username.lower()}"

    @staticmethod
    def _client(client: str) -> str:
        return f"login:client:{client}"

    @staticmethod
    def _user(username: str) -> str:
        return f"login:user:{username.lower()}"

    async def check(self, username: str, client: str) -> None:
        """Raise 429 with ``Retry-After`` while this pair or this address must wait."""
        pair, address = self._pair(username, client), self._client(client)
        waits = await self._kv.get_many([f"wait:{pair}", f"wait:{address}"])
        deadlines = [float(value) for value in waits if value is not None]
        if not deadlines:
            return
        retry_after = math.ceil(max(deadlines) - self._clock())
        if retry_after > 0:
            raise TooManyRequests(
                f"Too many wrong passwords from your address; try again in {retry_after} s.",
                code="login_locked",
                retry_after=retry_after,
            )

    @asynccontextmanager
    async def attempt(self, username: str, client: str) -> AsyncIterator[None]:
        """Guard one password check: 429 while waiting; a wrong-password error raised
        inside counts as a failure, a normal exit as a success."""
        # Checked once before queueing (a waiting guess costs no hash and no turn) and
        # once more with a turn, so failures recorded while this one queued are seen.
        await self.check(username, client)
        async with self._turns:
            await self.check(username, client)
            try:
                yield
            except PlatformError as exc:
                if exc.code in GUESS_FAILURES:
                    await self.record_failure(username, client)
                raise
        await self.record_success(username, client)

    async def record_failure(self, username: str, client: str) -> None:
        policy, window = self._policy, float(self._policy.window_seconds)
        pair, address, user = (
            self._pair(username, client),
            self._client(client),
            self._user(username),
        )
        pair_count, _ = await self._kv.increment(pair, ttl=window)
        client_count, _ = await self._kv.increment(address, ttl=window)
        user_count, _ = await self._kv.increment(user, ttl=window)
        pair_delay = policy.delay(pair_count, policy.failures_per_pair)
        if user_count >= policy.failures_per_user:
            # The username is under attack: each failing address gets one guess a window.
            pair_delay = window
        now = self._clock()
        for key, delay in (
            (pair, pair_delay),
            (address, policy.delay(client_count, policy.failures_per_client)),
        ):
            if delay > 0:
                # The deadline decides; the expiry only clears the key away later.
                await self._kv.set(f"wait:{key}", repr(now + delay), ttl=window)

    async def record_success(self, username: str, client: str) -> None:
        """A right password clears its pair; the address and username counts stay, so one
        account an attacker owns cannot reset a spray's count."""
        pair = self._pair(username, client)
        await self._kv.delete(pair, f"wait:{pair}")
