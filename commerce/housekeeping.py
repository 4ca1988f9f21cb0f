"""Deleting what has served its purpose: spent counters, expired attempts and tokens."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import CursorResult, delete, or_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import (
    AuthSession,
    Cart,
    EmailToken,
    LoginThrottle,
    OAuthLoginAttempt,
    RateLimitCounter,
    SearchOutbox,
)

log = logging.getLogger(__name__)

# Kept a while after they stop mattering, for investigating abuse.
COUNTERS_KEPT = timedelta(days=1)
ATTEMPTS_KEPT = timedelta(days=1)
EMAIL_TOKENS_KEPT = timedelta(days=30)
ENDED_SESSIONS_KEPT = timedelta(days=90)


async def prune(session: AsyncSession, *, now: datetime) -> dict[str, int]:
    """Delete expired rows; returns how many of each kind went."""
    statements = {
        "rate_limit_counters": delete(RateLimitCounter).where(
            RateLimitCounter.window_start < now - COUNTERS_KEPT
        ),
        "login_throttles": delete(LoginThrottle).where(
            LoginThrottle.updated_at < now - COUNTERS_KEPT,
            or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until < now),
        ),
        "oauth_login_attempts": delete(OAuthLoginAttempt).where(
            OAuthLoginAttempt.expires_at < now - ATTEMPTS_KEPT
        ),
        "email_tokens": delete(EmailToken).where(EmailToken.expires_at < now - EMAIL_TOKENS_KEPT),
        # Guest carts past their expiry (a user's cart never expires).
        "carts": delete(Cart).where(
            Cart.guest_token_hash.is_not(None), Cart.expires_at < now - COUNTERS_KEPT
        ),
        "search_outbox": delete(SearchOutbox).where(
            SearchOutbox.processed_at < now - COUNTERS_KEPT
        ),
        # Refresh tokens go with their session (ON DELETE CASCADE).
        "auth_sessions": delete(AuthSession).where(
            AuthSession.revoked_at < now - ENDED_SESSIONS_KEPT
        ),
    }
    counts: dict[str, int] = {}
    for name, statement in statements.items():
        result = await session.execute(statement)
        counts[name] = result.rowcount if isinstance(result, CursorResult) else 0
    return counts


async def prune_committed(
    sessionmaker: async_sessionmaker[AsyncSession], *, now: datetime
) -> dict[str, int]:
    """``prune`` in a transaction of its own (the worker runs it every so often)."""
    async with sessionmaker.begin() as session:
        counts = await prune(session, now=now)
    if any(counts.values()):
        log.info("housekeeping pruned rows", extra={"pruned": counts})
    return counts
