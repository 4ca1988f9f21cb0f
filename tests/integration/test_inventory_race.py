"""Reservations under real concurrency: many transactions at once on a database of the test's
own, each buyer in its own session and transaction, as concurrent checkouts would be.

No overselling, no deadlocks between multi-line reservations that list the same variants in
opposite orders, one reservation per key however many retries overlap, and a movement log
that still explains every level afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from commerce.catalog import inventory
from commerce.catalog.inventory import OutOfStock, Reservation
from models import InventoryReservation, MovementReason, ReservationStatus, Variant
from tests.catalog_factories import VariantSpec, make_product, make_vendor

BUYERS = 50
# Fewer connections than buyers, so some queue for the pool, but enough that dozens of
# transactions contend for the same rows at once. The server allows 100 and is shared.
POOL_SIZE = 20
MAX_OVERFLOW = 10


@pytest.fixture
async def race_engine(fresh_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(
        fresh_database_url,
        pool_size=POOL_SIZE,
        max_overflow=MAX_OVERFLOW,
        # A lost wake-up or a lock cycle fails the test quickly instead of hanging it.
        connect_args={"options": "-c statement_timeout=30000 -c lock_timeout=20000"},
    )
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(race_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(race_engine, expire_on_commit=False, autoflush=False)


async def _stock(
    sessions: async_sessionmaker[AsyncSession], units: Sequence[int]
) -> list[uuid.UUID]:
    """Committed variants with this many units each, put there by the service (logged)."""
    async with sessions.begin() as session:
        vendor = await make_vendor(session)
        specs = [VariantSpec(f"RACE-{i}", 1000, stock=0) for i in range(len(units))]
        product = await make_product(session, vendor=vendor, variants=specs)
        by_sku = dict(
            (
                await session.execute(
                    select(Variant.sku, Variant.id).where(Variant.product_id == product.id)
                )
            ).all()
        )
        ids = [by_sku[spec.sku] for spec in specs]
        for variant_id, count in zip(ids, units, strict=True):
            await inventory.adjust(
                session, variant_id=variant_id, delta=count, reason=MovementReason.RESTOCK
            )
    return ids


async def _buy(
    sessions: async_sessionmaker[AsyncSession], key: str, lines: list[tuple[uuid.UUID, int]]
) -> Reservation | OutOfStock:
    """One buyer: its own transaction, committed when the reservation succeeds."""
    try:
        async with sessions.begin() as session:
            return await inventory.reserve(session, reservation_key=key, lines=lines)
    except OutOfStock as error:
        return error


async def _assert_explained(
    sessions: async_sessionmaker[AsyncSession], *variant_ids: uuid.UUID
) -> list[inventory.LevelExplanation]:
    async with sessions() as session:
        found = [e for v in variant_ids for e in await inventory.explain(session, variant_id=v)]
    assert found
    assert all(e.explained for e in found), found
    return found


async def test_fifty_buyers_cannot_oversell_ten_units(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    [variant_id] = await _stock(sessions, [10])

    outcomes = await asyncio.gather(
        *(_buy(sessions, f"buyer-{i}", [(variant_id, 1)]) for i in range(BUYERS))
    )

    won = [o for o in outcomes if isinstance(o, Reservation)]
    lost = [o for o in outcomes if isinstance(o, OutOfStock)]
    assert (len(won), len(lost)) == (10, BUYERS - 10)
    assert all(o.shortages[0].available == 0 for o in lost)
    [level] = await _assert_explained(sessions, variant_id)
    assert (level.on_hand, level.reserved) == (10, 10)
    async with sessions() as session:
        held = await session.scalar(
            select(func.count()).where(
                InventoryReservation.variant_id == variant_id,
                InventoryReservation.status == ReservationStatus.RESERVED,
            )
        )
    assert held == 10


async def test_buyers_of_one_and_two_units_take_exactly_what_there_is(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    [variant_id] = await _stock(sessions, [10])
    wants = {f"buyer-{i}": 1 + i % 2 for i in range(BUYERS)}

    outcomes = await asyncio.gather(
        *(_buy(sessions, key, [(variant_id, units)]) for key, units in wants.items())
    )

    won = [o for o in outcomes if isinstance(o, Reservation)]
    reserved = sum(r.quantities[variant_id] for r in won)
    # 25 buyers want 1 unit: while one unit was left, none of them could have been refused,
    # so the ten units are all taken, never more.
    assert reserved == 10
    for outcome in outcomes:
        if isinstance(outcome, OutOfStock):
            [shortage] = outcome.shortages
            assert shortage.available < shortage.requested
    [level] = await _assert_explained(sessions, variant_id)
    assert level.reserved == 10 <= level.on_hand


async def test_opposite_line_orders_do_not_deadlock(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    left, right = await _stock(sessions, [1000, 1000])

    async def checkout(i: int) -> None:
        lines = [(left, 1), (right, 2)] if i % 2 else [(right, 2), (left, 1)]
        key = f"order-{i}"
        async with sessions.begin() as session:
            await inventory.reserve(session, reservation_key=key, lines=lines)
        # The saga's next steps run concurrently with other orders' reservations too.
        async with sessions.begin() as session:
            if i % 3:
                await inventory.commit(session, reservation_key=key, now=datetime.now(UTC))
            else:
                await inventory.release(session, reservation_key=key, now=datetime.now(UTC))

    # A deadlock would surface here as psycopg's DeadlockDetected (or a lock timeout).
    await asyncio.gather(*(checkout(i) for i in range(BUYERS)))

    committed = sum(1 for i in range(BUYERS) if i % 3)
    levels = {e.variant_id: e for e in await _assert_explained(sessions, left, right)}
    assert (levels[left].on_hand, levels[left].reserved) == (1000 - committed, 0)
    assert (levels[right].on_hand, levels[right].reserved) == (1000 - 2 * committed, 0)


async def test_overlapping_retries_of_one_key_reserve_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    [variant_id] = await _stock(sessions, [10])

    outcomes = await asyncio.gather(
        *(_buy(sessions, "order:retried", [(variant_id, 3)]) for _ in range(20))
    )

    assert all(isinstance(o, Reservation) for o in outcomes)
    assert sum(1 for o in outcomes if isinstance(o, Reservation) and o.changed) == 1
    [level] = await _assert_explained(sessions, variant_id)
    assert level.reserved == 3
