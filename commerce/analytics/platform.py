"""Platform-wide figures for operators: the vendors ranked by sales, and how payments fare
per provider. Days are those of ``EMPORIUM_ANALYTICS_TIME_ZONE``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.analytics.sales import Bucket, bucket_starts, in_zone
from models import (
    Category,
    Dispute,
    LedgerEntry,
    LedgerKind,
    Order,
    OrderLine,
    OrderVendorPart,
    Payment,
    Product,
    User,
    Vendor,
)
from workflows.contracts.disputes import DisputeStatus
from workflows.contracts.orders import PaymentStatus

MAX_VENDORS = 100
#: The name of the lines whose product has no category (or no longer exists).
UNCATEGORIZED = "Uncategorized"
#: A payment attempt that got the money held, whatever happened to it after.
SUCCEEDED = (
    PaymentStatus.AUTHORIZED,
    PaymentStatus.CAPTURED,
    PaymentStatus.VOIDED,
)
#: Still waiting for the shopper or the provider.
OPEN = (PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION)


def _window(first: date, last: date, time_zone: str) -> tuple[datetime, datetime]:
    bucket_starts(first, last, "month")  # the reports' range rules
    zone = ZoneInfo(time_zone)
    return (
        datetime.combine(first, time.min, zone),
        datetime.combine(last + timedelta(days=1), time.min, zone),
    )


@dataclass(frozen=True)
class VendorSales:
    vendor_id: uuid.UUID
    name: str
    orders: int
    gross: int
    commission: int  # net of commission refunded: the platform's take


@dataclass(frozen=True)
class CurrencyVendors:
    currency: str
    vendors: list[VendorSales]


async def vendor_ranking(
    session: AsyncSession, *, first: date, last: date, time_zone: str, top: int = 20
) -> list[CurrencyVendors]:
    """Per currency, the ``top`` vendors by gross sales of orders confirmed in the range (the
    sales and commission their ledgers were credited with, so the figures add up to the
    platform's sales report)."""
    since, until = _window(first, last, time_zone)
    confirmed = (Order.confirmed_at >= since, Order.confirmed_at < until)
    kinds = [LedgerKind.SALE, LedgerKind.COMMISSION]
    gross = func.sum(LedgerEntry.amount).filter(LedgerEntry.kind == LedgerKind.SALE)
    taken = func.sum(LedgerEntry.amount).filter(LedgerEntry.kind == LedgerKind.COMMISSION)
    orders = (
        select(OrderVendorPart.vendor_id, Order.currency, func.count().label("orders"))
        .join(Order, Order.id == OrderVendorPart.order_id)
        .where(*confirmed)
        .group_by(OrderVendorPart.vendor_id, Order.currency)
        .subquery()
    )
    money = (
        select(
            LedgerEntry.vendor_id,
            LedgerEntry.currency,
            gross.label("gross"),
            (-taken).label("commission"),
        )
        .join(Order, Order.id == LedgerEntry.order_id)
        .where(LedgerEntry.kind.in_(kinds), *confirmed)
        .group_by(LedgerEntry.vendor_id, LedgerEntry.currency)
        .subquery()
    )
    rank = func.row_number().over(
        partition_by=money.c.currency, order_by=(money.c.gross.desc(), Vendor.name)
    )
    ranked = (
        select(
            money.c.vendor_id,
            Vendor.name,
            money.c.currency,
            func.coalesce(orders.c.orders, 0).label("orders"),
            money.c.gross,
            money.c.commission,
            rank.label("rank"),
        )
        .join(Vendor, Vendor.id == money.c.vendor_id)
        .outerjoin(
            orders,
            (orders.c.vendor_id == money.c.vendor_id) & (orders.c.currency == money.c.currency),
        )
        .subquery()
    )
    rows = await session.execute(
        select(ranked).where(ranked.c.rank <= top).order_by(ranked.c.currency, ranked.c.rank)
    )
    found: dict[str, list[VendorSales]] = {}
    for row in rows:
        found.setdefault(row.currency, []).append(
            VendorSales(
                row.vendor_id, row.name, int(row.orders), int(row.gross), int(row.commission or 0)
            )
        )
    return [CurrencyVendors(currency, vendors) for currency, vendors in sorted(found.items())]


@dataclass(frozen=True)
class ProviderPayments:
    provider: str
    attempts: int
    succeeded: int  # authorized (captured, voided later or not)
    declined: int
    failed: int  # refused for another reason, or given up after retries
    open: int  # waiting for the shopper (3-D Secure, approval) or the provider
    decline_codes: dict[str, int] = field(default_factory=dict)  # the most frequent first

    @property
    def decline_rate_bp(self) -> int:
        """Declined among the attempts that ended, in basis points (0 when none ended)."""
        ended = self.attempts - self.open
        return (self.declined * 10_000 + ended // 2) // ended if ended else 0


async def payment_rates(
    session: AsyncSession, *, first: date, last: date, time_zone: str, codes: int = 5
) -> list[ProviderPayments]:
    """Per provider, the payment attempts of orders placed in the range and how they ended,
    with the ``codes`` most frequent decline codes."""
    since, until = _window(first, last, time_zone)
    placed = (Order.created_at >= since, Order.created_at < until)
    count: Any = func.count()
    rows = await session.execute(
        select(
            Payment.provider,
            count,
            count.filter(Payment.status.in_(SUCCEEDED)),
            count.filter(Payment.status == PaymentStatus.DECLINED),
            count.filter(Payment.status == PaymentStatus.FAILED),
            count.filter(Payment.status.in_(OPEN)),
        )
        .join(Order, Order.id == Payment.order_id)
        .where(*placed)
        .group_by(Payment.provider)
        .order_by(Payment.provider)
    )
    found = {row[0]: [int(value) for value in row[1:]] for row in rows}
    declines = await session.execute(
        select(Payment.provider, func.coalesce(Payment.decline_code, "unknown"), count)
        .join(Order, Order.id == Payment.order_id)
        .where(*placed, Payment.status == PaymentStatus.DECLINED)
        .group_by(Payment.provider, Payment.decline_code)
        .order_by(Payment.provider, count.desc(), func.coalesce(Payment.decline_code, "unknown"))
    )
    by_code: dict[str, dict[str, int]] = {}
    for provider, code, n in declines:
        top = by_code.setdefault(provider, {})
        if len(top) < codes:
            top[code] = int(n)
    return [
        ProviderPayments(
            provider,
            attempts=attempts,
            succeeded=succeeded,
            declined=declined,
            failed=failed,
            open=waiting,
            decline_codes=by_code.get(provider, {}),
        )
        for provider, (attempts, succeeded, declined, failed, waiting) in found.items()
    ]


@dataclass(frozen=True)
class CategorySales:
    category_id: uuid.UUID | None  # None: no category, or the product was deleted
    name: str
    units: int
    gross: int  # the lines' totals: after discounts, with tax, without shipping


@dataclass(frozen=True)
class CurrencyCategories:
    currency: str
    categories: list[CategorySales]


async def category_sales(
    session: AsyncSession, *, first: date, last: date, time_zone: str
) -> list[CurrencyCategories]:
    """Per currency, what the lines of orders confirmed in the range sold for, by the
    category their product is in now; all of them together are every line of the range."""
    since, until = _window(first, last, time_zone)
    gross = func.sum(OrderLine.total)
    rows = await session.execute(
        select(
            Order.currency,
            Category.id,
            func.coalesce(Category.name, UNCATEGORIZED),
            func.sum(OrderLine.quantity),
            gross,
        )
        .select_from(OrderLine)
        .join(Order, Order.id == OrderLine.order_id)
        .outerjoin(Product, Product.id == OrderLine.product_id)
        .outerjoin(Category, Category.id == Product.category_id)
        .where(Order.confirmed_at >= since, Order.confirmed_at < until)
        .group_by(Order.currency, Category.id, Category.name)
        .order_by(Order.currency, gross.desc(), func.coalesce(Category.name, UNCATEGORIZED))
    )
    found: dict[str, list[CategorySales]] = {}
    for currency, category_id, name, units, total in rows:
        found.setdefault(currency, []).append(
            CategorySales(category_id, name, int(units), int(total))
        )
    return [CurrencyCategories(currency, items) for currency, items in sorted(found.items())]


@dataclass(frozen=True)
class CustomerPoint:
    start: date
    customers: int  # who had an order confirmed in the bucket
    new: int  # of them, whose first confirmed order ever it was

    @property
    def returning(self) -> int:
        return self.customers - self.new


async def customer_counts(
    session: AsyncSession, *, first: date, last: date, bucket: Bucket, time_zone: str
) -> list[CustomerPoint]:
    """Per bucket, the customers with an order confirmed in it, and how many of them were new
    (their first confirmed order ever falls in the bucket). Guest orders and erased accounts
    are not customers here."""
    starts = bucket_starts(first, last, bucket)
    since, until = _window(first, last, time_zone)
    firsts = (
        select(
            Order.customer_id,
            Order.confirmed_at,
            func.min(Order.confirmed_at).over(partition_by=Order.customer_id).label("first_at"),
        )
        .where(Order.customer_id.is_not(None), Order.confirmed_at.is_not(None))
        .subquery()
    )
    day = in_zone(firsts.c.confirmed_at, time_zone, bucket)
    first_day = in_zone(firsts.c.first_at, time_zone, bucket)
    rows = await session.execute(
        select(
            day,
            func.count(func.distinct(firsts.c.customer_id)),
            func.count(func.distinct(firsts.c.customer_id)).filter(first_day == day),
        )
        .where(firsts.c.confirmed_at >= since, firsts.c.confirmed_at < until)
        .group_by(day)
    )
    counts = {start: (int(customers), int(new)) for start, customers, new in rows}
    return [CustomerPoint(start, *counts.get(start, (0, 0))) for start in starts]


@dataclass(frozen=True)
class Disputes:
    open: int
    next_evidence_due_at: datetime | None


async def open_disputes(session: AsyncSession) -> Disputes:
    """How many disputes are open, and the nearest evidence deadline among them."""
    count, due = (
        await session.execute(
            select(func.count(), func.min(Dispute.evidence_due_at)).where(
                Dispute.status == DisputeStatus.OPEN
            )
        )
    ).one()
    return Disputes(int(count), due)


@dataclass(frozen=True)
class SignupPoint:
    start: date
    signups: int  # accounts created in the bucket
    verified: int  # of them, with their email address verified by now

    @property
    def verification_rate_bp(self) -> int:
        """Verified among the sign-ups, in basis points (0 without sign-ups)."""
        if not self.signups:
            return 0
        return (self.verified * 10_000 + self.signups // 2) // self.signups


async def signups(
    session: AsyncSession, *, first: date, last: date, bucket: Bucket, time_zone: str
) -> list[SignupPoint]:
    """Per bucket, the accounts created in it (the database's clock stamps them) and how many
    of them have verified their email address since."""
    starts = bucket_starts(first, last, bucket)
    since, until = _window(first, last, time_zone)
    day = in_zone(User.created_at, time_zone, bucket)
    rows = await session.execute(
        select(day, func.count(), func.count().filter(User.email_verified_at.is_not(None)))
        .where(User.created_at >= since, User.created_at < until)
        .group_by(day)
    )
    counts = {start: (int(total), int(verified)) for start, total, verified in rows}
    return [SignupPoint(start, *counts.get(start, (0, 0))) for start in starts]
