"""A vendor's best sellers over a range of its days: per variant, units bought, returned and
cancelled, and what they sold for, from the lines of its confirmed orders."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.analytics.sales import bucket_starts
from models import Order, OrderLine

Ranking = Literal["units", "gross"]
MAX_ITEMS = 50


@dataclass(frozen=True)
class ProductSales:
    product_id: uuid.UUID | None  # None: the product was deleted since
    variant_id: uuid.UUID | None
    sku: str
    title: str  # as last sold
    units: int
    returned: int
    cancelled: int
    gross: int  # the lines' totals: after discounts, with tax, without shipping


@dataclass(frozen=True)
class CurrencyProducts:
    currency: str
    items: list[ProductSales]


async def top_products(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    first: date,
    last: date,
    time_zone: str,
    ranking: Ranking = "units",
    limit: int = 10,
) -> list[CurrencyProducts]:
    """Per currency sold in, the ``limit`` variants that sold the most units (or gross) in
    orders confirmed from ``first`` to ``last`` (the vendor's days, both included); ties go to
    the SKU that sorts first."""
    bucket_starts(first, last, "month")  # the same range rules as the sales report
    zone = ZoneInfo(time_zone)
    since = datetime.combine(first, time.min, zone)
    until = datetime.combine(last + timedelta(days=1), time.min, zone)
    units = func.sum(OrderLine.quantity)
    gross = func.sum(OrderLine.total)
    rank = func.row_number().over(
        partition_by=Order.currency,
        order_by=((units if ranking == "units" else gross).desc(), OrderLine.sku),
    )
    grouped = (
        select(
            Order.currency,
            OrderLine.product_id,
            OrderLine.variant_id,
            OrderLine.sku,
            func.max(OrderLine.title).label("title"),
            units.label("units"),
            func.sum(OrderLine.returned_quantity).label("returned"),
            func.sum(OrderLine.cancelled_quantity).label("cancelled"),
            gross.label("gross"),
            rank.label("rank"),
        )
        .join(Order, Order.id == OrderLine.order_id)
        .where(
            OrderLine.vendor_id == vendor_id,
            Order.confirmed_at >= since,
            Order.confirmed_at < until,
        )
        .group_by(Order.currency, OrderLine.product_id, OrderLine.variant_id, OrderLine.sku)
        .subquery()
    )
    rows = await session.execute(
        select(grouped).where(grouped.c.rank <= limit).order_by(grouped.c.currency, grouped.c.rank)
    )
    found: dict[str, list[ProductSales]] = {}
    for row in rows:
        found.setdefault(row.currency, []).append(
            ProductSales(
                product_id=row.product_id,
                variant_id=row.variant_id,
                sku=row.sku,
                title=row.title,
                units=int(row.units),
                returned=int(row.returned),
                cancelled=int(row.cancelled),
                gross=int(row.gross),
            )
        )
    return [CurrencyProducts(currency, items) for currency, items in sorted(found.items())]
