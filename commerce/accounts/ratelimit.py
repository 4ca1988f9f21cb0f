"""Abuse limits shared by every API process, kept in PostgreSQL.

Both limiters write in transactions of their own: a request that ends in 401/429 rolls its
own transaction back, and the evidence of the attempt must survive that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from commerce.errors import DomainError
from core.clock import SYSTEM_CLOCK, Clock
from models import LoginThrottle as ThrottleRow
from models import RateLimitCounter

MAX_LOCK = timedelta(hours=1)


class RateLimited(DomainError):
    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, retry_after_s: int, detail: str | None = None) -> None:
        super().__init__(detail or f"Too many attempts. Try again in {retry_after_s} s.")
        self.retry_after_s = retry_after_s
        self.headers = {"Retry-After": str(retry_after_s)}


@dataclass(frozen=True)
class Limit:
    """At most ``count`` hits per ``window_s`` seconds for one key."""

    name: str
    count: int
    window_s: int


class RateLimiter:
    """Fixed-window counters: one upsert per hit, atomic across processes."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        scale: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
    ):
        self._sessionmaker = sessionmaker
        self._scale = scale
        self._clock = clock

    async def hit(self, limit: Limit, key: str, *, now: datetime | None = None) -> None:
        """Count one attempt; raise ``RateLimited`` when the window's budget is spent."""
        now = now if now is not None else self._clock.now()
        epoch = int(now.timestamp())
        window_start = datetime.fromtimestamp(epoch - epoch % limit.window_s, UTC)
        statement = (
            insert(RateLimitCounter)
            .values(key=f"{limit.name}:{key}", window_start=window_start, count=1)
            .on_conflict_do_update(
                index_elements=[RateLimitCounter.key, RateLimitCounter.window_start],
                set_={"count": RateLimitCounter.count + 1},
            )
            .returning(RateLimitCounter.count)
        )
        async with self._sessionmaker.begin() as session:
            count = await session.scalar(statement)
        allowed = max(1, math.floor(limit.count * self._scale))
        if count is not None and count > allowed:
            retry_after = int(
                (window_start + timedelta(seconds=limit.window_s) - now).total_seconds()
            )
            raise RateLimited(max(1, retry_after))


class LoginGuard:
    """Locks an account key after repeated failures, doubling the lock each further failure.

    Keyed by the normalised email whether or not such an account exists, so the answer never
    tells an attacker which accounts exist.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        threshold: int,
        base_lock: timedelta,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._threshold = threshold
        self._base_lock = base_lock

    async def check(self, key: str) -> None:
        async with self._sessionmaker() as session:
            locked_until = await session.scalar(
                select(ThrottleRow.locked_until).where(ThrottleRow.key == key)
            )
        now = self._clock.now()
        if locked_until is not None and locked_until > now:
            raise RateLimited(
                math.ceil((locked_until - now).total_seconds()),
                "Too many failed sign-ins. Try again later or reset your password.",
            )

    async def failure(self, key: str) -> None:
        now = self._clock.now()
        async with self._sessionmaker.begin() as session:
            failures = await session.scalar(
                insert(ThrottleRow)
                .values(key=key, failures=1)
                .on_conflict_do_update(
                    index_elements=[ThrottleRow.key],
                    set_={"failures": ThrottleRow.failures + 1, "updated_at": now},
                )
                .returning(ThrottleRow.failures)
            )
            if failures is not None and failures >= self._threshold:
                lock = min(self._base_lock * 2 ** (failures - self._threshold), MAX_LOCK)
                await session.execute(
                    update(ThrottleRow)
                    .where(ThrottleRow.key == key)
                    .values(locked_until=now + lock)
                )

    async def success(self, key: str) -> None:
        async with self._sessionmaker.begin() as session:
            await session.execute(delete(ThrottleRow).where(ThrottleRow.key == key))
