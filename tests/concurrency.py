"""Helpers for tests that race real transactions against each other."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def wait_for_lock_waiters(engine: AsyncEngine, count: int, *, timeout_s: float = 10) -> None:
    """Return once ``count`` sessions of this database are blocked on a lock."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        # A new connection each time: pg_stat_activity is a snapshot per transaction.
        async with engine.connect() as connection:
            waiting = await connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        if waiting >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"expected {count} sessions waiting on a lock")
