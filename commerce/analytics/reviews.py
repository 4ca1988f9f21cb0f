"""A vendor's rating over time: per bucket, the visible reviews written in it and their
average, and the vendor's rating as it stood at the bucket's end (every visible review so far).
A review's time is when it was stored (the database's clock, as for every review list)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.analytics.sales import Bucket, bucket_starts, in_zone
from models import Product, Review

CENT = Decimal("0.01")


def _average(total: int, count: int) -> Decimal | None:
    if not count:
        return None
    return (Decimal(total) / Decimal(count)).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class RatingPoint:
    start: date
    reviews: int  # visible reviews written in the bucket
    average: Decimal | None  # their average (None: none written)
    rating: Decimal | None  # every visible review up to the bucket's end
    rated_by: int  # how many that is


async def rating_trend(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    first: date,
    last: date,
    bucket: Bucket,
    time_zone: str,
) -> list[RatingPoint]:
    starts = bucket_starts(first, last, bucket)
    zone = ZoneInfo(time_zone)
    since = datetime.combine(first, time.min, zone)
    until = datetime.combine(last + timedelta(days=1), time.min, zone)
    visible = (Product.vendor_id == vendor_id, Review.is_hidden.is_(False))
    before = (
        await session.execute(
            select(func.coalesce(func.sum(Review.rating), 0), func.count())
            .join(Product, Product.id == Review.product_id)
            .where(*visible, Review.created_at < since)
        )
    ).one()
    day = in_zone(Review.created_at, time_zone, bucket)
    rows = await session.execute(
        select(day, func.sum(Review.rating), func.count())
        .join(Product, Product.id == Review.product_id)
        .where(*visible, Review.created_at >= since, Review.created_at < until)
        .group_by(day)
    )
    written = {start: (int(total), int(count)) for start, total, count in rows}
    running_total, running_count = int(before[0]), int(before[1])
    points = []
    for start in starts:
        total, count = written.get(start, (0, 0))
        running_total += total
        running_count += count
        points.append(
            RatingPoint(
                start=start,
                reviews=count,
                average=_average(total, count),
                rating=_average(running_total, running_count),
                rated_by=running_count,
            )
        )
    return points
