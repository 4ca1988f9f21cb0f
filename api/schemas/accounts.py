"""Request and response bodies of the account routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.pagination import Page
from commerce.accounts.sessions import TokenPair
from models import AuthSession, User

Password = Field(min_length=1, max_length=1024)


class SignUp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=100)
    email: str = Field(min_length=3, max_length=320, json_schema_extra={"format": "email"})
    password: str = Password
    name: str | None = Field(default=None, max_length=200)


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=1, max_length=320, json_schema_extra={"format": "email"})
    password: str = Password


class MfaLogin(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mfa_token: str = Field(min_length=1, max_length=4096)
    code: str | None = Field(default=None, min_length=6, max_length=8)
    recovery_code: str | None = Field(default=None, min_length=6, max_length=32)


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: str = Field(min_length=1, max_length=200)


class TokenRequest(BaseModel):
    """A single-use token from an email link."""

    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=200)


class PasswordResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=1, max_length=320)


class PasswordReset(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=200)
    new_password: str = Password


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str | None = Field(default=None, max_length=1024)
    new_password: str = Password


class TokenPairRead(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme name
    expires_in: int = Field(description="Seconds until the access token expires")

    @classmethod
    def from_domain(cls, pair: TokenPair) -> TokenPairRead:
        return cls(
            access_token=pair.access_token,
            refresh_token=pair.refresh_token,
            expires_in=pair.expires_in,
        )


class MfaRequired(BaseModel):
    mfa_required: Literal[True] = True
    mfa_token: str = Field(description="Send it with a code to POST /auth/login/mfa")
    expires_in: int


class UserRead(BaseModel):
    id: uuid.UUID
    username: str
    email: str
    email_verified: bool
    name: str | None
    phone: str | None
    roles: list[str]
    mfa_enabled: bool
    has_password: bool
    created_at: datetime
    links: dict[str, str]

    @classmethod
    def from_domain(cls, user: User) -> UserRead:
        roles = ["customer"] + ([user.platform_role.value] if user.platform_role else [])
        return cls(
            id=user.id,
            username=user.username,
            email=user.email,
            email_verified=user.email_verified_at is not None,
            name=user.name,
            phone=user.phone,
            roles=roles,
            mfa_enabled=user.totp_enabled_at is not None,
            has_password=user.password_hash is not None,
            created_at=user.created_at,
            links={"orders": "/orders", "addresses": "/me/addresses"},
        )


class ProfileUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9 ()-]{6,31}$")
    email: str | None = Field(
        default=None,
        max_length=320,
        description="Takes effect once the new address is verified",
        json_schema_extra={"format": "email"},
    )


class AccountDeletion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str | None = Field(default=None, max_length=1024)


class SessionRead(BaseModel):
    id: uuid.UUID
    method: str
    user_agent: str | None
    created_at: datetime
    last_used_at: datetime
    current: bool

    @classmethod
    def from_domain(cls, auth_session: AuthSession, *, current: uuid.UUID) -> SessionRead:
        return cls(
            id=auth_session.id,
            method=auth_session.method,
            user_agent=auth_session.user_agent,
            created_at=auth_session.created_at,
            last_used_at=auth_session.last_used_at,
            current=auth_session.id == current,
        )


class TotpEnrolment(BaseModel):
    secret: str
    otpauth_uri: str


class TotpCode(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=6, max_length=8, pattern=r"^[0-9]+$")


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="Shown once: store them somewhere safe")


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    detail: str


class SessionList(Page[SessionRead]):
    """Comes whole: `next_cursor` is always null."""
