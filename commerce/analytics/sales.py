"""Sales over a range of days, a vendor's or every vendor's, in buckets of days, weeks or months.

Every money figure is read from the vendor's ledger, the books payouts are made from, so the
figures reconcile with it exactly: ``gross`` is the sales credited (each order part's total:
items, shipping and tax), ``commission`` the platform's commission net of what refunds gave
back, ``refunds`` what went back to shoppers from the vendor's parts, ``disputes`` the
chargebacks lost, and ``net = gross - commission - refunds - disputes`` (payouts left out: they
move money, they do not earn it). A sale counts when its order was confirmed (paid); a refund
or a lost dispute when it happened. ``orders`` and ``units`` come from the confirmed orders'
parts and lines. Days are the vendor's (``vendors.time_zone``); weeks start on Monday.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Date, and_, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.analytics import rollup
from commerce.errors import DomainError
from models import LedgerEntry, LedgerKind, Order, OrderLine, OrderVendorPart, SalesHour

Bucket = Literal["day", "week", "month"]
BUCKETS: tuple[Bucket, ...] = ("day", "week", "month")
#: The most buckets one report holds (a year of days fits).
MAX_BUCKETS = 400
#: The days a report may start and end on.
EARLIEST, LATEST = date(2000, 1, 1), date(2999, 12, 31)


class InvalidRange(DomainError):
    status, code, title = 422, "invalid_range", "The range cannot be reported"


@dataclass(frozen=True)
class SalesFigures:
    orders: int = 0
    units: int = 0
    gross: int = 0
    commission: int = 0
    refunds: int = 0
    disputes: int = 0

    @property
    def net(self) -> int:
        return self.gross - self.commission - self.refunds - self.disputes

    @property
    def average_order_value(self) -> int:
        """Gross per order, rounded half up to a minor unit (0 without orders)."""
        if not self.orders:
            return 0
        exact = Decimal(self.gross) / Decimal(self.orders)
        return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))

    def __add__(self, other: SalesFigures) -> SalesFigures:
        return SalesFigures(
            orders=self.orders + other.orders,
            units=self.units + other.units,
            gross=self.gross + other.gross,
            commission=self.commission + other.commission,
            refunds=self.refunds + other.refunds,
            disputes=self.disputes + other.disputes,
        )


@dataclass(frozen=True)
class SalesPoint:
    start: date  # the bucket's first day (a Monday for weeks, the 1st for months)
    figures: SalesFigures


@dataclass(frozen=True)
class CurrencySales:
    currency: str
    totals: SalesFigures
    series: list[SalesPoint]


@dataclass(frozen=True)
class SalesReport:
    time_zone: str
    bucket: Bucket
    first: date
    last: date
    currencies: list[CurrencySales] = field(default_factory=list)


def bucket_start(day: date, bucket: Bucket) -> date:
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    return day


def _next(start: date, bucket: Bucket) -> date:
    if bucket == "day":
        return start + timedelta(days=1)
    if bucket == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def bucket_starts(first: date, last: date, bucket: Bucket) -> list[date]:
    """Every bucket from the one holding ``first`` to the one holding ``last``."""
    if first > last:
        raise InvalidRange("`from` must not be after `to`.")
    if not (first >= EARLIEST and last <= LATEST):
        raise InvalidRange(f"Days from {EARLIEST} to {LATEST} only.")
    starts: list[date] = []
    current = bucket_start(first, bucket)
    while current <= last:
        starts.append(current)
        if len(starts) > MAX_BUCKETS:
            raise InvalidRange(
                f"At most {MAX_BUCKETS} {bucket}s: a shorter range, or a longer bucket."
            )
        current = _next(current, bucket)
    return starts


def thirty_days_to(last: date) -> date:
    """The first day of the 30 days that end on ``last`` (``last`` itself near the dates'
    lower end, which the range check then refuses)."""
    return last - timedelta(days=29) if last >= EARLIEST else last


def _of(column: Any, vendor_id: uuid.UUID | None) -> tuple[Any, ...]:
    """The condition that rows belong to the vendor (none: every vendor's)."""
    return () if vendor_id is None else (column == vendor_id,)


def in_zone(column: Any, zone: str, bucket: Bucket) -> Any:
    """The first day of the bucket ``column`` (a timestamptz) falls in, in ``zone``."""
    return cast(func.date_trunc(bucket, func.timezone(zone, column)), Date)


async def sales_report(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID | None,
    first: date,
    last: date,
    bucket: Bucket,
    time_zone: str,
    use_rollup: bool = True,
) -> SalesReport:
    """The sales of a vendor (or of every vendor: ``None``) from ``first`` to ``last`` (both
    included, days of ``time_zone``), per currency sold in, each with every bucket of the
    range (zeros where nothing happened). An order with parts of two vendors is one order.
    The hours the worker rolled up are read from the rollup, the rest live (the figures are
    the same either way); ``use_rollup=False`` reads everything live."""
    starts = bucket_starts(first, last, bucket)
    zone = ZoneInfo(time_zone)
    since = datetime.combine(first, time.min, zone)
    until = datetime.combine(last + timedelta(days=1), time.min, zone)
    figures: dict[tuple[str, date], dict[str, int]] = {}

    def add(currency: str, start: date, **values: int) -> None:
        slot = figures.setdefault((currency, start), {})
        for name, value in values.items():
            slot[name] = slot.get(name, 0) + int(value)

    live_since = since
    if use_rollup and _whole_hours(zone, first, last):
        cutoff = await rollup.rolled_until(session)
        if cutoff is not None and cutoff > since:
            live_since = min(cutoff, until)
            await _rolled(session, vendor_id, since, live_since, bucket, time_zone, add)
    if live_since < until:
        await _live(session, vendor_id, live_since, until, bucket, time_zone, add)

    report = SalesReport(time_zone=time_zone, bucket=bucket, first=first, last=last)
    for currency in sorted({currency for currency, _ in figures}):
        series = [
            SalesPoint(start, SalesFigures(**figures.get((currency, start), {})))
            for start in starts
        ]
        totals = sum((point.figures for point in series), SalesFigures())
        report.currencies.append(CurrencySales(currency, totals, series))
    return report


Add = Callable[..., None]


async def _live(
    session: AsyncSession,
    vendor_id: uuid.UUID | None,
    since: datetime,
    until: datetime,
    bucket: Bucket,
    time_zone: str,
    add: Add,
) -> None:
    """The figures of ``[since, until)`` from the orders and the ledger themselves."""
    confirmed = and_(Order.confirmed_at >= since, Order.confirmed_at < until)
    day = in_zone(Order.confirmed_at, time_zone, bucket)
    orders = await session.execute(
        select(day, Order.currency, func.count(func.distinct(Order.id)))
        .select_from(OrderVendorPart)
        .join(Order, Order.id == OrderVendorPart.order_id)
        .where(*_of(OrderVendorPart.vendor_id, vendor_id), confirmed)
        .group_by(day, Order.currency)
    )
    for start, currency, count in orders:
        add(currency, start, orders=count)
    units = await session.execute(
        select(day, Order.currency, func.sum(OrderLine.quantity))
        .select_from(OrderLine)
        .join(Order, Order.id == OrderLine.order_id)
        .where(*_of(OrderLine.vendor_id, vendor_id), confirmed)
        .group_by(day, Order.currency)
    )
    for start, currency, quantity in units:
        add(currency, start, units=quantity or 0)

    # A sale and its commission happened when the order was confirmed; a refund, the
    # commission it gave back and a lost dispute when they were booked (available at once).
    sold = LedgerEntry.kind.in_([LedgerKind.SALE, LedgerKind.COMMISSION])
    happened = case((sold, Order.confirmed_at), else_=LedgerEntry.available_at)
    entry_day = in_zone(happened, time_zone, bucket)
    entries = await session.execute(
        select(entry_day, LedgerEntry.currency, LedgerEntry.kind, func.sum(LedgerEntry.amount))
        .select_from(LedgerEntry)
        .outerjoin(Order, Order.id == LedgerEntry.order_id)
        .where(
            *_of(LedgerEntry.vendor_id, vendor_id),
            LedgerEntry.kind != LedgerKind.PAYOUT,
            happened >= since,
            happened < until,
        )
        .group_by(entry_day, LedgerEntry.currency, LedgerEntry.kind)
    )
    for start, currency, kind, amount in entries:
        amount = int(amount)
        if kind == LedgerKind.SALE:
            add(currency, start, gross=amount)
        elif kind in (LedgerKind.COMMISSION, LedgerKind.COMMISSION_REFUND):
            add(currency, start, commission=-amount)
        elif kind == LedgerKind.REFUND:
            add(currency, start, refunds=-amount)
        elif kind == LedgerKind.DISPUTE:
            add(currency, start, disputes=-amount)


async def _rolled(
    session: AsyncSession,
    vendor_id: uuid.UUID | None,
    since: datetime,
    until: datetime,
    bucket: Bucket,
    time_zone: str,
    add: Add,
) -> None:
    """The figures of ``[since, until)`` (whole UTC hours) from the hourly rollup."""
    day = in_zone(SalesHour.hour, time_zone, bucket)
    rows = await session.execute(
        select(
            day,
            SalesHour.currency,
            func.sum(SalesHour.orders),
            func.sum(SalesHour.units),
            func.sum(SalesHour.gross),
            func.sum(SalesHour.commission),
            func.sum(SalesHour.refunds),
            func.sum(SalesHour.disputes),
        )
        .where(
            SalesHour.scope == (vendor_id or rollup.PLATFORM),
            SalesHour.hour >= since,
            SalesHour.hour < until,
        )
        .group_by(day, SalesHour.currency)
    )
    for start, currency, orders, units, gross, commission, refunds, disputes in rows:
        add(
            currency,
            start,
            orders=orders,
            units=units,
            gross=gross,
            commission=commission,
            refunds=refunds,
            disputes=disputes,
        )


def _whole_hours(zone: ZoneInfo, first: date, last: date) -> bool:
    """Whether every day of the range starts on a whole UTC hour in ``zone`` (checked at
    the start of each month and the range's ends: offsets change twice a year at most)."""
    days = {first, last + timedelta(days=1)}
    day = first.replace(day=1)
    while day <= last:
        days.add(day)
        day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    for each in days:
        offset = datetime.combine(each, time.min, zone).utcoffset()
        if offset is None or offset.total_seconds() % 3600:
            return False
    return True
