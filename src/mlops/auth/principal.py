"""Who is calling: the result of authenticating a request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mlops.auth.roles import Role


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    username: str
    role: Role
    via: Literal["token", "api_key"]
    token_jti: str | None = None
    token_expires_at: float | None = None
    api_key_id: int | None = None
