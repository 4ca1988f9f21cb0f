"""The hourly sales rollup: what the sales reports read for every hour before
``rolled_until``, so a year of a big vendor's (or the whole platform's) sales is a few
thousand rows, not millions (``models/analytics.py``).

The worker rolls up, every ``EMPORIUM_ANALYTICS_ROLLUP_INTERVAL_S``, the hours closed for at
least ``SETTLE`` (a Temporal Schedule, ``commerce/analytics/rollup_schedule.py``). The
figures of an hour are those ``commerce/analytics/sales.py`` computes live, by the same rules:
a sale and its commission count in the hour its order was confirmed, a refund and a lost
dispute in the hour they were booked. Every writer books with the time it commits at (an
activity's clock, read within its 30 s timeout), so an hour closed for ``SETTLE`` gets nothing
new; ``rebuild`` recomputes everything (after a correction by hand).

Reports read the rollup before ``rolled_until`` and the live tables after it, so they are
exact up to now. Time zones whose offset is not a whole number of hours (India, Nepal...)
cannot be cut into UTC hours: their reports are computed live.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.locks import advisory_lock
from models import Order, RollupState, SalesHour

#: The scope of the whole platform's rows.
PLATFORM = uuid.UUID(int=0)
#: How long an hour must be closed before it is rolled up.
SETTLE = timedelta(hours=1)
#: The most one transaction rolls up (a first rollup of years of sales goes a chunk at a time).
CHUNK = timedelta(days=31)
STATE = "sales"

_ROLL_UP = text(
    """
    INSERT INTO sales_hours
        (scope, currency, hour, orders, units, gross, commission, refunds, disputes)
    SELECT scope, currency, hour, sum(orders), sum(units), sum(gross), sum(commission),
           sum(refunds), sum(disputes)
    FROM (
        SELECT p.vendor_id AS scope, o.currency, date_trunc('hour', o.confirmed_at, 'UTC') AS hour,
               count(*) AS orders, 0 AS units, 0 AS gross, 0 AS commission, 0 AS refunds,
               0 AS disputes
        FROM orders o JOIN order_vendor_parts p ON p.order_id = o.id
        WHERE o.confirmed_at >= :since AND o.confirmed_at < :until
        GROUP BY 1, 2, 3
        UNION ALL
        SELECT :platform, o.currency, date_trunc('hour', o.confirmed_at, 'UTC'), count(*),
               0, 0, 0, 0, 0
        FROM orders o
        WHERE o.confirmed_at >= :since AND o.confirmed_at < :until
          AND EXISTS (SELECT 1 FROM order_vendor_parts p WHERE p.order_id = o.id)
        GROUP BY 2, 3
        UNION ALL
        SELECT scope_of, currency, hour, 0, sum(quantity), 0, 0, 0, 0
        FROM (
            SELECT l.vendor_id AS scope, o.currency,
                   date_trunc('hour', o.confirmed_at, 'UTC') AS hour, l.quantity
            FROM orders o JOIN order_lines l ON l.order_id = o.id
            WHERE o.confirmed_at >= :since AND o.confirmed_at < :until
        ) AS lines, LATERAL (VALUES (scope), (:platform)) AS scopes (scope_of)
        GROUP BY scope_of, currency, hour
        UNION ALL
        SELECT scope_of, currency, hour, 0, 0,
               coalesce(sum(amount) FILTER (WHERE kind = 'sale'), 0),
               -coalesce(sum(amount) FILTER (WHERE kind IN ('commission', 'commission_refund')), 0),
               -coalesce(sum(amount) FILTER (WHERE kind = 'refund'), 0),
               -coalesce(sum(amount) FILTER (WHERE kind = 'dispute'), 0)
        FROM (
            SELECT e.vendor_id, e.currency, e.kind, e.amount,
                   date_trunc('hour', o.confirmed_at, 'UTC') AS hour
            FROM ledger_entries e JOIN orders o ON o.id = e.order_id
            WHERE e.kind IN ('sale', 'commission')
              AND o.confirmed_at >= :since AND o.confirmed_at < :until
            UNION ALL
            SELECT e.vendor_id, e.currency, e.kind, e.amount,
                   date_trunc('hour', e.available_at, 'UTC')
            FROM ledger_entries e
            WHERE e.kind IN ('refund', 'commission_refund', 'dispute')
              AND e.available_at >= :since AND e.available_at < :until
        ) AS entries, LATERAL (VALUES (vendor_id), (:platform)) AS scopes (scope_of)
        GROUP BY scope_of, currency, hour
    ) AS parts
    GROUP BY scope, currency, hour
    """
)


@dataclass(frozen=True)
class Rolled:
    since: datetime | None  # None: there was nothing new to roll up
    until: datetime
    rows: int


def hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


async def rolled_until(session: AsyncSession) -> datetime | None:
    """Every hour before this is in the rollup; ``None``: nothing is."""
    found: datetime | None = await session.scalar(
        select(RollupState.rolled_until).where(RollupState.name == STATE)
    )
    return found


async def _first_sale(session: AsyncSession) -> datetime | None:
    first: datetime | None = await session.scalar(select(func.min(Order.confirmed_at)))
    return first


async def roll_up_chunk(session: AsyncSession, *, now: datetime) -> Rolled:
    """Roll up the next hours (at most ``CHUNK``) closed for ``SETTLE`` at ``now``, and move
    ``rolled_until`` past them, in the caller's transaction (one roller at a time: an advisory
    lock). Returns what it did; ``since`` None when nothing was left to do."""
    await advisory_lock(session, "analytics-rollup")
    target = hour_floor(now - SETTLE)
    since = await rolled_until(session)
    if since is None:
        first = await _first_sale(session)
        if first is None:
            return Rolled(None, target, 0)
        since = hour_floor(first)
    if since >= target:
        return Rolled(None, since, 0)
    until = min(target, since + CHUNK)
    # An hour rolled before (a rebuild over it) is replaced, not added to.
    await session.execute(delete(SalesHour).where(SalesHour.hour >= since, SalesHour.hour < until))
    result = await session.execute(_ROLL_UP, {"since": since, "until": until, "platform": PLATFORM})
    await session.execute(
        pg_insert(RollupState)
        .values(name=STATE, rolled_until=until)
        .on_conflict_do_update(index_elements=[RollupState.name], set_={"rolled_until": until})
    )
    return Rolled(since, until, int(getattr(result, "rowcount", 0) or 0))


async def rebuild(session: AsyncSession) -> None:
    """Forget the rollup: the next ``roll_up_chunk`` calls start again from the first sale."""
    await advisory_lock(session, "analytics-rollup")
    await session.execute(delete(SalesHour))
    await session.execute(delete(RollupState).where(RollupState.name == STATE))
