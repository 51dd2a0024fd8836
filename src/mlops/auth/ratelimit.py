"""Lock-out after repeated failed logins, per username and per client address.

Failures are counted in a window; reaching the limit locks the username (or the
address) for ``lockout_seconds``. Locked attempts are refused before any
password hash is computed, so a lock-out also sheds the hashing cost.
"""

from __future__ import annotations

import math
import time

from mlops.errors import TooManyRequests
from mlops.kv import KeyValueStore


class LoginLimiter:
    def __init__(
        self,
        kv: KeyValueStore,
        *,
        max_per_user: int,
        max_per_client: int,
        lockout_seconds: int,
    ) -> None:
        self._kv = kv
        self._max_per_user = max_per_user
        self._max_per_client = max_per_client
        self._lockout = lockout_seconds

    @staticmethod
    def _keys(username: str, client: str) -> tuple[str, str]:
        return f"login:user:{username.lower()}", f"login:client:{client}"

    async def check(self, username: str, client: str) -> None:
        """Raise 429 with Retry-After while either the username or the client is locked."""
        user_key, client_key = self._keys(username, client)
        locks = await self._kv.get_many([f"lock:{user_key}", f"lock:{client_key}"])
        deadlines = [float(value) for value in locks if value is not None]
        if deadlines:
            retry_after = math.ceil(max(deadlines) - time.time())
            if retry_after > 0:
                raise TooManyRequests(
                    "Too many failed logins; try again later.",
                    code="login_locked",
                    retry_after=retry_after,
                )

    async def record_failure(self, username: str, client: str) -> None:
        user_key, client_key = self._keys(username, client)
        for key, limit in ((user_key, self._max_per_user), (client_key, self._max_per_client)):
            count, _ = await self._kv.increment(key, ttl=self._lockout)
            if count >= limit:
                deadline = time.time() + self._lockout
                await self._kv.set(f"lock:{key}", str(deadline), ttl=self._lockout)
                await self._kv.delete(key)

    async def record_success(self, username: str) -> None:
        user_key, _ = self._keys(username, "")
        await self._kv.delete(user_key)
