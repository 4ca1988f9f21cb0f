from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.housekeeping import prune
from models import (
    AuthSession,
    Cart,
    LoginThrottle,
    OAuthLoginAttempt,
    RateLimitCounter,
    RefreshToken,
    User,
)


async def _keys(session: AsyncSession, column: Any, tag: str) -> set[str]:
    return set((await session.scalars(select(column).where(column.contains(tag)))).all())


async def _count(session: AsyncSession, model: type) -> int:
    return await session.scalar(select(func.count()).select_from(model)) or 0


async def test_prune_deletes_only_what_has_expired(db_session: AsyncSession) -> None:
    now = datetime.now(UTC)
    # Other tests share the database: count only this test's rows (by a key of its own).
    tag = uuid.uuid4().hex[:8]
    user = User(
        id=uuid.uuid4(),
        username="hk",
        username_key=f"hk-{uuid.uuid4().hex[:8]}",
        email="hk@example.com",
        email_key=f"hk-{uuid.uuid4().hex}@example.com",
    )
    db_session.add(user)
    await db_session.flush()
    old_session = AuthSession(
        user_id=user.id, method="pwd", revoked_at=now - timedelta(days=91), revoked_reason="x"
    )
    live_session = AuthSession(user_id=user.id, method="pwd")
    db_session.add_all(
        [
            RateLimitCounter(key=f"old-{tag}", window_start=now - timedelta(days=2), count=3),
            RateLimitCounter(key=f"new-{tag}", window_start=now, count=3),
            LoginThrottle(key=f"old-{tag}@x", failures=2, updated_at=now - timedelta(days=2)),
            LoginThrottle(
                key=f"locked-{tag}@x",
                failures=9,
                updated_at=now - timedelta(days=2),
                locked_until=now + timedelta(hours=1),
            ),
            OAuthLoginAttempt(
                provider=f"p-{tag}",
                state_hash=uuid.uuid4().hex,
                nonce="n",
                code_verifier="v",
                redirect_uri="https://x",
                expires_at=now - timedelta(days=2),
            ),
            old_session,
            live_session,
            Cart(guest_token_hash=uuid.uuid4().hex, expires_at=now - timedelta(days=3)),
            Cart(guest_token_hash=uuid.uuid4().hex, expires_at=now + timedelta(days=3)),
            Cart(user_id=user.id),
        ]
    )
    await db_session.flush()
    db_session.add(
        RefreshToken(session_id=old_session.id, token_hash=uuid.uuid4().hex, expires_at=now)
    )
    await db_session.flush()

    carts_before = await _count(db_session, Cart)
    counts = await prune(db_session, now=now)

    assert counts["rate_limit_counters"] >= 1
    assert counts["auth_sessions"] >= 1
    assert counts["carts"] >= 1
    assert await _count(db_session, Cart) == carts_before - counts["carts"]
    assert (
        await db_session.scalar(
            select(func.count()).select_from(Cart).where(Cart.user_id == user.id)
        )
        == 1
    )
    assert await _keys(db_session, RateLimitCounter.key, tag) == {f"new-{tag}"}
    assert await _keys(db_session, LoginThrottle.key, tag) == {f"locked-{tag}@x"}  # still locked
    assert await _keys(db_session, OAuthLoginAttempt.provider, tag) == set()
    assert await db_session.get(AuthSession, live_session.id) is not None
    remaining = await db_session.scalar(
        select(func.count())
        .select_from(RefreshToken)
        .where(RefreshToken.session_id == old_session.id)
    )
    assert remaining == 0
