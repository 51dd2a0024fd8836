"""Per-request authentication with no database query on the hot path.

The database is the source of truth; the key-value store caches what each
request must check:

- ``user:<id>``: the user's token version, role and disabled flag. Tokens carry
  the version they were issued with; a password or role change, or disabling the
  user, bumps the version and so ends every older token at once.
- ``tok:<jti>``: whether a token was logged out.
- ``key:<prefix>``: an API key's row.

Cache fills use set-if-absent and changes overwrite after commit, so a fill that
read the database before a change cannot hide that change.

While Redis is unreachable, a request answers on what this process last read of
those keys, for at most ``outage_grace`` seconds after reading it, and otherwise
reads the database (503 if that is down too). Changes made meanwhile are in the
database; when Redis is back the store drops every cached entry before serving
again, so none can say "not revoked" about a credential revoked in between.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mlops.auth.models import ApiKey, RevokedToken, User
from mlops.auth.principal import Principal
from mlops.auth.roles import Role, lowest
from mlops.auth.tokens import TokenSigner, parse_api_key, secret_matches
from mlops.bounded import BoundedDict
from mlops.db.failures import unavailable_on_outage
from mlops.errors import Unauthorized
from mlops.kv import KeyValueStore, KeyValueUnavailable

log = logging.getLogger("mlops.auth")
USER_STATE_TTL = 3600.0
DEFAULT_OUTAGE_GRACE = 30.0
CACHED_PREFIXES = ("tok:", "user:", "key:")
KEY_CACHE_TTL = 300.0
_INVALID_KEY = "Invalid, expired or revoked API key."
_ENDED_TOKEN = "This token has been revoked; log in again at POST /api/v1/auth/login."


@dataclass(frozen=True, slots=True)
class UserState:
    token_version: int
    role: str
    disabled: bool
    username: str

    def encode(self) -> str:
        return f"{self.token_version}|{self.role}|{int(self.disabled)}|{self.username}"

    @classmethod
    def decode(cls, raw: str) -> UserState:
        version, role, disabled, username = raw.split("|", 3)
        return cls(int(version), role, disabled == "1", username)

    @classmethod
    def of(cls, user: User) -> UserState:
        return cls(user.token_version, user.role, user.disabled, user.username)


@dataclass(frozen=True, slots=True)
class KeyState:
    id: int
    secret_hash: str
    owner_id: int
    role: str
    expires_at: float | None
    revoked: bool


class AccessGate:
    """Turns a bearer credential into a ``Principal``, or raises ``Unauthorized``."""

    def __init__(
        self,
        *,
        kv: KeyValueStore,
        sessions: async_sessionmaker[AsyncSession],
        signer: TokenSigner,
        outage_grace: float = DEFAULT_OUTAGE_GRACE,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._kv = kv
        self._sessions = sessions
        self._signer = signer
        self._outage_grace = outage_grace
        self._clock = clock
        # What "now" is for API key expiry (seconds since 1970); a test moves it instead
        # of waiting for a key to expire.
        self.wall_clock = wall_clock
        # Each cached key's value as this process last read it, and when (monotonic):
        # what requests answer on while Redis is unreachable. Only for a shared store;
        # the in-process one cannot become unreachable.
        self._known: BoundedDict[str, tuple[str, float]] | None = (
            BoundedDict(50_000) if kv.shared else None
        )
        kv.on_recovery(self._forget_cached)
        # The principal built for a token, with the cached user state it came from:
        # a client sends the same token on every request, and rebuilding the principal
        # was a tenth of a prediction's cost. Revocation and user state are still read
        # from the key-value store on every request; a changed state rebuilds it.
        self._principals: BoundedDict[str, tuple[str, Principal]] = BoundedDict(10_000)

    async def authenticate(self, credential: str) -> Principal:
        if parse_api_key(credential) is not None:
            return await self._authenticate_key(credential)
        return await self._authenticate_token(credential)

    async def _authenticate_token(self, token: str) -> Principal:
        claims = self._signer.decode(token)
        revoked_raw, state_raw = await self._read([f"tok:{claims.jti}", f"user:{claims.user_id}"])
        if revoked_raw is None:
            revoked_raw = await self._fill_token(claims.jti, claims.expires_at)
        if revoked_raw == "1":
            raise Unauthorized(_ENDED_TOKEN, code="token_revoked")
        if state_raw:
            known = self._principals.get(token)
            if known is not None and known[0] == state_raw:
                return known[1]
        state = UserState.decode(state_raw) if state_raw else await self._fill_user(claims.user_id)
        if state is None or state.disabled or state.token_version != claims.token_version:
            raise Unauthorized(_ENDED_TOKEN, code="token_revoked")
        principal = Principal(
            user_id=claims.user_id,
            username=state.username,
            role=Role(state.role),
            via="token",
            token_jti=claims.jti,
            token_expires_at=claims.expires_at,
        )
        if state_raw:
            self._principals[token] = (state_raw, principal)
        return principal

    async def _authenticate_key(self, key: str) -> Principal:
        parsed = parse_api_key(key)
        assert parsed is not None
        prefix, secret = parsed
        (raw,) = await self._read([f"key:{prefix}"])
        key_state = KeyState(**json.loads(raw)) if raw else await self._fill_key(prefix)
        if key_state is None or not secret_matches(secret, key_state.secret_hash):
            raise Unauthorized(_INVALID_KEY, code="invalid_api_key")
        if key_state.revoked or (
            key_state.expires_at is not None and key_state.expires_at <= self.wall_clock()
        ):
            raise Unauthorized(_INVALID_KEY, code="invalid_api_key")
        (state_raw,) = await self._read([f"user:{key_state.owner_id}"])
        state = (
            UserState.decode(state_raw) if state_raw else await self._fill_user(key_state.owner_id)
        )
        if state is None or state.disabled:
            raise Unauthorized(_INVALID_KEY, code="invalid_api_key")
        # A key never does more than its owner can do now, even after a demotion.
        role = lowest(Role(key_state.role), Role(state.role))
        return Principal(
            user_id=key_state.owner_id,
            username=state.username,
            role=role,
            via="api_key",
            api_key_id=key_state.id,
        )

    async def _fill_token(self, jti: str, expires_at: float) -> str:
        with unavailable_on_outage():
            async with self._sessions() as session:
                revoked = await session.get(RevokedToken, jti) is not None
        value = "1" if revoked else "0"
        await self._fill(f"tok:{jti}", value, ttl=max(1.0, expires_at - time.time()))
        return value

    async def _fill_user(self, user_id: int) -> UserState | None:
        with unavailable_on_outage():
            async with self._sessions() as session:
                user = await session.get(User, user_id)
        if user is None:
            return None
        state = UserState.of(user)
        await self._fill(f"user:{user_id}", state.encode(), ttl=USER_STATE_TTL)
        return state

    async def _fill_key(self, prefix: str) -> KeyState | None:
        with unavailable_on_outage():
            async with self._sessions() as session:
                row = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
        if row is None:
            return None
        state = key_state_of(row)
        await self._fill(f"key:{prefix}", json.dumps(asdict(state)), ttl=KEY_CACHE_TTL)
        return state

    # The key-value store, and what this process knows when it is unreachable.

    async def _read(self, keys: Sequence[str]) -> list[str | None]:
        try:
            values = await self._kv.get_many(keys)
        except KeyValueUnavailable:
            return self._recall(keys)
        known = self._known
        if known is not None:
            now = self._clock()
            for key, value in zip(keys, values, strict=True):
                if value is not None:
                    known[key] = (value, now)
        return values

    def _recall(self, keys: Sequence[str]) -> list[str | None]:
        """Values read within the grace period; ``None`` sends the caller to the database."""
        known: dict[str, tuple[str, float]] = self._known or {}
        oldest = self._clock() - self._outage_grace
        values: list[str | None] = []
        for key in keys:
            entry = known.get(key)
            values.append(entry[0] if entry is not None and entry[1] >= oldest else None)
        return values

    def _remember(self, key: str, value: str) -> None:
        if self._known is not None:
            self._known[key] = (value, self._clock())

    async def _fill(self, key: str, value: str, *, ttl: float) -> None:
        self._remember(key, value)
        try:
            await self._kv.set_if_absent(key, value, ttl=ttl)
        except KeyValueUnavailable:
            pass  # read from the database: good for this request; cached once Redis is back

    async def _publish(self, key: str, value: str, *, ttl: float) -> None:
        self._remember(key, value)
        try:
            await self._kv.set(key, value, ttl=ttl)
        except KeyValueUnavailable:
            # The change is in the database. Other processes re-read it there once their
            # copy is older than the grace period, and when Redis is back every cached
            # entry is dropped before it serves again (_forget_cached).
            log.warning(
                "Redis is unreachable: a credential change is saved and takes effect in "
                "this process now, in others within MLOPS_REDIS_OUTAGE_GRACE_SECONDS",
                extra={"key": key.split(":", 1)[0]},
            )

    async def _forget_cached(self, store: KeyValueStore) -> None:
        # Runs before Redis serves again: an entry cached before the outage may say "not
        # revoked" about a token revoked during it (the writer could not update it).
        for prefix in CACHED_PREFIXES:
            await store.delete_matching(prefix)

    # Writers call these after their transaction committed.

    async def publish_user(self, user: User) -> None:
        await self._publish(f"user:{user.id}", UserState.of(user).encode(), ttl=USER_STATE_TTL)

    async def publish_token_revoked(self, jti: str, expires_at: float) -> None:
        await self._publish(f"tok:{jti}", "1", ttl=max(1.0, expires_at - time.time()))

    async def publish_key(self, key: ApiKey) -> None:
        state = key_state_of(key)
        await self._publish(f"key:{key.prefix}", json.dumps(asdict(state)), ttl=KEY_CACHE_TTL)


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def key_state_of(key: ApiKey) -> KeyState:
    return KeyState(
        id=key.id,
        secret_hash=key.secret_hash,
        owner_id=key.owner_id,
        role=key.role,
        expires_at=_ts(key.expires_at),
        revoked=key.revoked_at is not None,
    )
