"""Password hashing (argon2id) and the password policy.

argon2 is costly by design: each hash takes tens of milliseconds and ~19 MiB. To
keep logins from becoming a denial of service, hashes run on a small dedicated
thread pool (argon2-cffi releases the GIL), so at most ``concurrency`` of them
run at once, memory stays bounded, and the event loop keeps serving other requests.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from mlops.errors import Invalid

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256


@functools.cache
def _common_passwords() -> frozenset[str]:
    # zxcvbn ships a 30,000-entry list of the most common leaked passwords; read on the
    # first password check, not at every process start.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def check_password_policy(password: str, *, username: str | None = None) -> None:
    """Raise ``Invalid`` with a reason when ``password`` breaks the policy."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(
            f"password must be at least {MIN_PASSWORD_LENGTH} characters long",
            code="weak_password",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise Invalid(
            f"password must be at most {MAX_PASSWORD_LENGTH} characters long",
            code="weak_password",
        )
    lowered = password.lower()
    if lowered in _common_passwords():
        raise Invalid("password is on a list of common passwords", code="weak_password")
    if username and lowered == username.lower():
        raise Invalid("password must differ from the username", code="weak_password")
    if len(set(password)) < 4:
        raise Invalid("password must use at least 4 different characters", code="weak_password")


def generate_password() -> str:
    return secrets.token_urlsafe(18)


class PasswordHasherPool:
    """argon2id hashing and verification with bounded concurrency."""

    def __init__(self, *, memory_kib: int, time_cost: int, concurrency: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=1, type=Type.ID
        )
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="argon2")
        # Equalises timing for unknown users: they are checked against this hash.
        self._dummy_hash = self._hasher.hash(secrets.token_hex(16))

    def hash_sync(self, password: str) -> str:
        return self._hasher.hash(password)

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._hasher.hash, password)

    def _verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._dummy_hash, password) and bool(
                stored_hash
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; ``None`` (no such user) costs the same and is False."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._verify, stored_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
