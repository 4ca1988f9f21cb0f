"""Signed-in sessions: a short-lived access token plus a rotating, single-use refresh token.

Each session is a family of refresh tokens. Using a refresh token replaces it; presenting one
that was already replaced means it was stolen (or the client is broken), so the whole family
is revoked and both holders must sign in again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.accounts.context import AccountsContext
from commerce.accounts.tokens import digest, random_token
from commerce.errors import Unauthorized
from models import AuthSession, PlatformRole, RefreshToken, User, UserStatus

CUSTOMER_SCOPES = ("profile", "orders", "carts")
ROLE_SCOPES = {PlatformRole.ADMIN: ("admin",), PlatformRole.OPERATIONS: ("operations",)}


class InvalidRefreshToken(Unauthorized):
    code, title = "invalid_refresh_token", "The refresh token is not valid"


class RefreshTokenReused(Unauthorized):
    code, title = "refresh_token_reused", "The refresh token was already used"
    # The family's revocation must be stored even though the request fails.
    commit = True


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: uuid.UUID
    token_type: str = "Bearer"  # noqa: S105 - the scheme name


def scopes_for(user: User) -> tuple[str, ...]:
    if user.platform_role is None:
        return CUSTOMER_SCOPES
    return CUSTOMER_SCOPES + ROLE_SCOPES.get(user.platform_role, ())


async def _issue_refresh(
    session: AsyncSession, ctx: AccountsContext, session_id: uuid.UUID, *, now: datetime
) -> str:
    token = random_token()
    session.add(
        RefreshToken(
            session_id=session_id,
            token_hash=digest(token),
            expires_at=now + timedelta(days=ctx.settings.refresh_token_ttl_days),
        )
    )
    await session.flush()
    return token


def _access(ctx: AccountsContext, user: User, auth_session: AuthSession) -> str:
    return ctx.signer.issue_access(
        user_id=user.id,
        session_id=auth_session.id,
        scopes=scopes_for(user),
        method=auth_session.method,
    )


async def start_session(
    session: AsyncSession,
    *,
    ctx: AccountsContext,
    user: User,
    method: str,
    user_agent: str | None,
    now: datetime,
) -> TokenPair:
    """Sign a user in on one device: a new session family and its first tokens."""
    auth_session = AuthSession(
        id=uuid.uuid4(), user_id=user.id, method=method, user_agent=(user_agent or "")[:300] or None
    )
    session.add(auth_session)
    await session.flush()
    refresh = await _issue_refresh(session, ctx, auth_session.id, now=now)
    return TokenPair(
        access_token=_access(ctx, user, auth_session),
        refresh_token=refresh,
        expires_in=ctx.signer.access_ttl_s,
        session_id=auth_session.id,
    )


async def refresh_session(
    session: AsyncSession,
    *,
    ctx: AccountsContext,
    refresh_token: str,
    now: datetime,
) -> TokenPair:
    """Trade a refresh token for a new pair; a replayed token revokes its whole family."""
    row = (
        await session.execute(
            select(RefreshToken, AuthSession, User)
            .join(AuthSession, AuthSession.id == RefreshToken.session_id)
            .join(User, User.id == AuthSession.user_id)
            .where(RefreshToken.token_hash == digest(refresh_token))
            .with_for_update(of=RefreshToken)
        )
    ).first()
    if row is None:
        raise InvalidRefreshToken("Sign in again.")
    token, auth_session, user = row
    if token.used_at is not None:
        await revoke_session(session, session_id=auth_session.id, reason="refresh_reuse", now=now)
        raise RefreshTokenReused(
            "This refresh token was already used; the session has been ended everywhere. "
            "Sign in again."
        )
    if (
        auth_session.revoked_at is not None
        or token.expires_at <= now
        or user.status != UserStatus.ACTIVE
    ):
        raise InvalidRefreshToken("Sign in again.")
    token.used_at = now
    auth_session.last_used_at = now
    refresh = await _issue_refresh(session, ctx, auth_session.id, now=now)
    return TokenPair(
        access_token=_access(ctx, user, auth_session),
        refresh_token=refresh,
        expires_in=ctx.signer.access_ttl_s,
        session_id=auth_session.id,
    )


async def revoke_session(
    session: AsyncSession, *, session_id: uuid.UUID, reason: str, now: datetime
) -> None:
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )


async def revoke_all_sessions(
    session: AsyncSession,
    *,
    user: User,
    reason: str,
    keep: uuid.UUID | None = None,
    now: datetime,
) -> None:
    """End every session of the user, except ``keep`` (the one asking, e.g. on a password
    change). Without ``keep``, access tokens already issued die at once too."""
    statement = (
        update(AuthSession)
        .where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
    if keep is not None:
        statement = statement.where(AuthSession.id != keep)
    else:
        user.sessions_revoked_at = now
    await session.execute(statement)


async def list_sessions(session: AsyncSession, *, user_id: uuid.UUID) -> list[AuthSession]:
    return list(
        (
            await session.scalars(
                select(AuthSession)
                .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
                .order_by(AuthSession.last_used_at.desc())
            )
        ).all()
    )
