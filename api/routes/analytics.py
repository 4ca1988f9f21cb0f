"""Analytics for vendors and operators (README, "Analytics")."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query

from api.access import OperationsUser, VendorManager
from api.deps import NowDep, SessionDep, SettingsDep, TemporalDep
from api.problems import Problem
from api.schemas.analytics import (
    CategoryReportRead,
    CurrencyCategoriesRead,
    CurrencyProductsRead,
    CurrencyVendorsRead,
    CustomerPointRead,
    CustomerReportRead,
    OperationsRead,
    PaymentRatesRead,
    ProviderPaymentsRead,
    RatingPointRead,
    RatingTrendRead,
    SalesReportRead,
    SignupPointRead,
    SignupReportRead,
    StuckRead,
    TopProductsRead,
    VendorOverviewRead,
    VendorRankingRead,
)
from commerce import operations
from commerce.analytics import overview, platform, products, reviews, sales
from commerce.catalog.vendors import get_vendor
from commerce.finance.payout_schedule import next_payout_at

router = APIRouter(tags=["analytics"])

RANGE_REFUSED: dict[int | str, dict[str, Any]] = {
    422: {"model": Problem, "description": "`invalid_range`: backwards or too long"}
}
First = Annotated[
    date | None,
    Query(alias="from", description="First day, included; default: 29 days before `to`"),
]
Last = Annotated[date | None, Query(alias="to", description="Last day, included; default: today")]
BucketQuery = Annotated[sales.Bucket, Query(description="day, week (from Monday) or month")]


@dataclass(frozen=True)
class Period:
    """The days a report covers, in the time zone whose days they are."""

    time_zone: str
    first: date
    last: date
    vendor_id: uuid.UUID | None = None  # None: the platform


def _period(zone: str, first: date | None, last: date | None, now: datetime) -> tuple[date, date]:
    last = last or now.astimezone(ZoneInfo(zone)).date()
    return first or sales.thirty_days_to(last), last


async def vendor_period(
    manager: VendorManager, session: SessionDep, now: NowDep, first: First = None, last: Last = None
) -> Period:
    """The vendor's days (its time zone), the last 30 unless asked otherwise."""
    vendor = await get_vendor(session, vendor_id=manager.vendor_id)
    start, end = _period(vendor.time_zone, first, last, now)
    return Period(vendor.time_zone, start, end, vendor.id)


async def platform_period(
    settings: SettingsDep, now: NowDep, first: First = None, last: Last = None
) -> Period:
    """The platform's days (`EMPORIUM_ANALYTICS_TIME_ZONE`), the last 30 unless asked."""
    start, end = _period(settings.analytics_time_zone, first, last, now)
    return Period(settings.analytics_time_zone, start, end)


VendorPeriod = Annotated[Period, Depends(vendor_period)]
PlatformPeriod = Annotated[Period, Depends(platform_period)]


async def _sales(session: SessionDep, period: Period, bucket: sales.Bucket) -> SalesReportRead:
    report = await sales.sales_report(
        session,
        vendor_id=period.vendor_id,
        first=period.first,
        last=period.last,
        bucket=bucket,
        time_zone=period.time_zone,
    )
    return SalesReportRead.build(report)


# --- vendors ------------------------------------------------------------------------------------


@router.get("/vendors/{vendor_id}/analytics/sales", responses=RANGE_REFUSED)
async def vendor_sales(
    _: VendorManager, session: SessionDep, period: VendorPeriod, bucket: BucketQuery = "day"
) -> SalesReportRead:
    """The vendor's sales, commission, refunds and net per day, week or month of its own time
    zone, per currency; every figure is read from its ledger and orders (managers and owners)."""
    return await _sales(session, period, bucket)


@router.get("/vendors/{vendor_id}/analytics/products", responses=RANGE_REFUSED)
async def vendor_top_products(
    _: VendorManager,
    session: SessionDep,
    period: VendorPeriod,
    by: Annotated[products.Ranking, Query(description="Rank by units or by gross")] = "units",
    top: Annotated[
        int, Query(ge=1, le=products.MAX_ITEMS, description="How many variants per currency")
    ] = 10,
) -> TopProductsRead:
    """The vendor's best-selling variants over the range, per currency (managers and owners):
    units bought, returned and cancelled, and what they sold for."""
    assert period.vendor_id is not None
    found = await products.top_products(
        session,
        vendor_id=period.vendor_id,
        first=period.first,
        last=period.last,
        time_zone=period.time_zone,
        ranking=by,
        limit=top,
    )
    return TopProductsRead(
        time_zone=period.time_zone,
        first=period.first,
        last=period.last,
        ranking=by,
        currencies=[CurrencyProductsRead.build(each) for each in found],
    )


@router.get("/vendors/{vendor_id}/analytics/ratings", responses=RANGE_REFUSED)
async def vendor_ratings(
    _: VendorManager, session: SessionDep, period: VendorPeriod, bucket: BucketQuery = "week"
) -> RatingTrendRead:
    """The vendor's rating over time: per bucket, the visible reviews written and their
    average, and its rating as it stood at the bucket's end (managers and owners)."""
    assert period.vendor_id is not None
    series = await reviews.rating_trend(
        session,
        vendor_id=period.vendor_id,
        first=period.first,
        last=period.last,
        bucket=bucket,
        time_zone=period.time_zone,
    )
    return RatingTrendRead(
        time_zone=period.time_zone,
        bucket=bucket,
        first=period.first,
        last=period.last,
        series=[RatingPointRead.model_validate(point) for point in series],
    )


@router.get("/vendors/{vendor_id}/analytics/overview")
async def vendor_overview(
    manager: VendorManager, session: SessionDep, temporal: TemporalDep, now: NowDep
) -> VendorOverviewRead:
    """What waits for the vendor now (parts to accept and ship, returns to decide, variants
    low or out of stock) and its money: owed, payable at the next payout run, held back by
    disputes, pending in return windows, and when the next run is (managers and owners)."""
    found = await overview.vendor_overview(session, vendor_id=manager.vendor_id, now=now)
    return VendorOverviewRead.build(found, await next_payout_at(temporal))


# --- operators ----------------------------------------------------------------------------------


@router.get("/admin/analytics/sales", tags=["admin"], responses=RANGE_REFUSED)
async def platform_sales(
    _: OperationsUser, session: SessionDep, period: PlatformPeriod, bucket: BucketQuery = "day"
) -> SalesReportRead:
    """Every vendor's sales together, per day, week or month of the platform's time zone
    (`EMPORIUM_ANALYTICS_TIME_ZONE`): `commission` is the platform's revenue, `net` what the
    vendors earned; an order with parts of two vendors is one order."""
    return await _sales(session, period, bucket)


@router.get("/admin/analytics/vendors", tags=["admin"], responses=RANGE_REFUSED)
async def vendor_ranking(
    _: OperationsUser,
    session: SessionDep,
    period: PlatformPeriod,
    top: Annotated[int, Query(ge=1, le=platform.MAX_VENDORS)] = 20,
) -> VendorRankingRead:
    """The vendors that sold the most in the range, per currency, with the commission taken."""
    found = await platform.vendor_ranking(
        session, first=period.first, last=period.last, time_zone=period.time_zone, top=top
    )
    return VendorRankingRead(
        time_zone=period.time_zone,
        first=period.first,
        last=period.last,
        currencies=[CurrencyVendorsRead.build(each) for each in found],
    )


@router.get("/admin/analytics/payments", tags=["admin"], responses=RANGE_REFUSED)
async def payment_rates(
    _: OperationsUser, session: SessionDep, period: PlatformPeriod
) -> PaymentRatesRead:
    """Per payment provider, the attempts of orders placed in the range and how they ended:
    succeeded, declined (with the most frequent codes), failed or still open."""
    found = await platform.payment_rates(
        session, first=period.first, last=period.last, time_zone=period.time_zone
    )
    return PaymentRatesRead(
        time_zone=period.time_zone,
        first=period.first,
        last=period.last,
        providers=[ProviderPaymentsRead.model_validate(each) for each in found],
    )


@router.get("/admin/analytics/categories", tags=["admin"], responses=RANGE_REFUSED)
async def category_sales(
    _: OperationsUser, session: SessionDep, period: PlatformPeriod
) -> CategoryReportRead:
    """What sold in the range, per currency, by the category each product is in now."""
    found = await platform.category_sales(
        session, first=period.first, last=period.last, time_zone=period.time_zone
    )
    return CategoryReportRead(
        time_zone=period.time_zone,
        first=period.first,
        last=period.last,
        currencies=[CurrencyCategoriesRead.build(each) for each in found],
    )


@router.get("/admin/analytics/customers", tags=["admin"], responses=RANGE_REFUSED)
async def customers(
    _: OperationsUser, session: SessionDep, period: PlatformPeriod, bucket: BucketQuery = "day"
) -> CustomerReportRead:
    """Per bucket, the customers with an order confirmed in it, new and returning."""
    series = await platform.customer_counts(
        session, first=period.first, last=period.last, bucket=bucket, time_zone=period.time_zone
    )
    return CustomerReportRead(
        time_zone=period.time_zone,
        bucket=bucket,
        first=period.first,
        last=period.last,
        series=[CustomerPointRead.model_validate(point) for point in series],
    )


@router.get("/admin/analytics/signups", tags=["admin"], responses=RANGE_REFUSED)
async def signups(
    _: OperationsUser, session: SessionDep, period: PlatformPeriod, bucket: BucketQuery = "day"
) -> SignupReportRead:
    """Per bucket, the accounts created and how many have verified their email address."""
    series = await platform.signups(
        session, first=period.first, last=period.last, bucket=bucket, time_zone=period.time_zone
    )
    return SignupReportRead(
        time_zone=period.time_zone,
        bucket=bucket,
        first=period.first,
        last=period.last,
        series=[SignupPointRead.model_validate(point) for point in series],
    )


@router.get("/admin/analytics/operations", tags=["admin"])
async def operations_now(
    _: OperationsUser, session: SessionDep, settings: SettingsDep, now: NowDep
) -> OperationsRead:
    """What needs operations now: work past its deadline (`emporium stuck-orders` lists it),
    the outboxes' backlog, open disputes and their evidence deadlines."""
    taken = await operations.snapshot(session, settings, now=now)
    disputes = await platform.open_disputes(session)
    return OperationsRead(
        stuck=[
            StuckRead(kind=kind, status=status, count=count)
            for (kind, status), count in sorted(taken.stuck.items())
        ],
        mail_pending=taken.mail_pending,
        mail_oldest_s=taken.mail_oldest_s,
        search_pending=taken.search_pending,
        disputes_open=disputes.open,
        disputes_evidence_due=taken.evidence_due,
        next_evidence_due_at=disputes.next_evidence_due_at,
    )
