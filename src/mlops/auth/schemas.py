"""Request and response bodies of the auth endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mlops.api.paging import PagedList
from mlops.auth.roles import Role
from mlops.isotime import IsoDatetime

USERNAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,62}$"


class _Strict(BaseModel):
    # Unknown fields are an error, never silently ignored.
    model_config = ConfigDict(extra="forbid")


class LoginRequest(_Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the token expires.")


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    role: Role
    disabled: bool
    created_at: datetime


class UserList(PagedList):
    items: list[UserRead]


class Me(BaseModel):
    id: int
    username: str
    role: Role
    authenticated_via: Literal["token", "api_key"]


class UserCreate(_Strict):
    username: str = Field(pattern=USERNAME_PATTERN, description="2-63 letters, digits, . _ -")
    password: str = Field(min_length=1, max_length=256)
    role: Role = Role.viewer


class UserUpdate(_Strict):
    role: Role | None = None
    disabled: bool | None = None


class PasswordChange(_Strict):
    old_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class ApiKeyCreate(_Strict):
    name: str = Field(min_length=1, max_length=100)
    role: Role | None = Field(None, description="Defaults to the creator's role; never above it.")
    expires_at: IsoDatetime | None = Field(None, description="ISO 8601 with a time zone.")


class ApiKeyRead(BaseModel):
    id: int
    name: str
    role: Role
    prefix: str
    owner: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The secret key. It is shown only this once.")


class ApiKeyList(PagedList):
    items: list[ApiKeyRead]
