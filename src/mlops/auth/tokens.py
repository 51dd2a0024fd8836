"""Signed access tokens (JWT, HS256 only) and API key strings.

Tokens are signed with the current key and verified against it and then the
verify-only keys of a rotation (MLOPS_SECRET_KEY_PREVIOUS), so a new key ends no
session before its token expires.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from mlops.auth.roles import Role
from mlops.bounded import BoundedDict
from mlops.errors import Unauthorized

ALGORITHM = "HS256"
LEEWAY_SECONDS = 5
ISSUER = "mlops-platform"
API_KEY_PREFIX = "mlops_"
_INVALID_TOKEN = "Invalid or expired token; log in again at POST /api/v1/auth/login."


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    username: str
    role: Role
    token_version: int
    jti: str
    expires_at: float


class TokenSigner:
    """Signs with ``secret_key``; verifies with it, then with each of ``previous_keys``."""

    def __init__(
        self,
        secret_key: str,
        ttl_seconds: int,
        *,
        previous_keys: Sequence[str] = (),
        cache_size: int = 10_000,
    ) -> None:
        self._key = secret_key
        self._verify_keys = (secret_key, *previous_keys)
        self.ttl_seconds = ttl_seconds
        # Tokens already verified, by their exact text: a client sends the same token on
        # every request, and re-verifying it was ~10% of a request's cost. Expiry is still
        # checked on every use; revocation is checked by the caller, not cached here.
        self._verified: BoundedDict[str, TokenClaims] = BoundedDict(cache_size)

    def issue(self, *, user_id: int, username: str, role: Role, token_version: int) -> str:
        now = int(time.time())
        payload = {
            "iss": ISSUER,
            "sub": str(user_id),
            "name": username,
            "role": role.value,
            "ver": token_version,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(payload, self._key, algorithm=ALGORITHM)

    def derive(self, purpose: str, value: str) -> str:
        """A MAC of ``value`` under the signing key, for one ``purpose`` (CSRF tokens)."""
        return _mac(self._key, purpose, value)

    def derived_matches(self, purpose: str, value: str, sent: str) -> bool:
        """Whether ``sent`` is ``derive(purpose, value)`` under any key this signer verifies
        with: a page loaded before a rotation keeps its CSRF token."""
        matches = [
            hmac.compare_digest(sent.encode(), _mac(key, purpose, value).encode())
            for key in self._verify_keys
        ]
        return any(matches)

    def decode(self, token: str) -> TokenClaims:
        """Verify signature, algorithm, issuer and expiry; anything wrong is a 401."""
        cached = self._verified.get(token)
        if cached is not None:
            if cached.expires_at + LEEWAY_SECONDS > time.time():
                return cached
            self._verified.pop(token, None)
        claims = self._verify(token)
        self._verified[token] = claims
        return claims

    def _verify(self, token: str) -> TokenClaims:
        for key in self._verify_keys:
            try:
                payload = jwt.decode(
                    token,
                    key,
                    algorithms=[ALGORITHM],
                    issuer=ISSUER,
                    options={"require": ["exp", "iat", "sub", "jti", "iss"]},
                    leeway=LEEWAY_SECONDS,
                )
            except jwt.InvalidSignatureError:
                continue  # the signature is checked before the claims: try the next key
            except jwt.PyJWTError:
                raise Unauthorized(_INVALID_TOKEN, code="invalid_token") from None
            return _claims(payload)
        raise Unauthorized(_INVALID_TOKEN, code="invalid_token")


def _mac(key: str, purpose: str, value: str) -> str:
    return hmac.new(key.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def _claims(payload: dict[str, Any]) -> TokenClaims:
    try:
        return TokenClaims(
            user_id=int(payload["sub"]),
            username=str(payload["name"]),
            role=Role(payload["role"]),
            token_version=int(payload["ver"]),
            jti=str(payload["jti"]),
            expires_at=float(payload["exp"]),
        )
    except (KeyError, ValueError, TypeError):
        raise Unauthorized(_INVALID_TOKEN, code="invalid_token") from None


@dataclass(frozen=True, slots=True)
class NewApiKey:
    key: str  # shown to the user once
    prefix: str  # stored, finds the row
    secret_hash: str  # stored


def new_api_key() -> NewApiKey:
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewApiKey(
        key=f"{API_KEY_PREFIX}{prefix}_{secret}", prefix=prefix, secret_hash=hash_secret(secret)
    )


def hash_secret(secret: str) -> str:
    # The secret is 256 random bits, so a fast hash is safe: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_api_key(key: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed key, else None."""
    if not key.startswith(API_KEY_PREFIX):
        return None
    prefix, sep, secret = key[len(API_KEY_PREFIX) :].partition("_")
    if not sep or len(prefix) != 12 or not secret or len(secret) > 100:
        return None
    return prefix, secret


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def parse_bearer(header: str | None) -> str:
    """The credential of an ``Authorization: Bearer <token or API key>`` header, or 401."""
    if not header:
        raise Unauthorized("missing Authorization header; send 'Authorization: Bearer <token>'")
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential or len(credential) > 4096:
        raise Unauthorized("expected 'Authorization: Bearer <token or API key>'")
    return credential
