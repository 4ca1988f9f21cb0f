"""Analytics for vendors and operators (README, "Analytics")."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query

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
    SalesReportRead,
    StuckRead,
    TopProductsRead,
    VendorOverviewRead,
    VendorRankingRead,
)
from commerce import operations
from commerce.analytics import overview, platform, products, sales
from commerce.catalog.vendors import get_vendor
from commerce.finance.payout_schedule import next_payout_at

router = APIRouter(tags=["analytics"])


@router.get(
    "/vendors/{vendor_id}/analytics/sales",
    responses={422: {"model": Problem, "description": "`invalid_range`: backwards or too long"}},
)
async def vendor_sales(
    manager: VendorManager,
    session: SessionDep,
    now: NowDep,
    first: Annotated[
        date | None,
        Query(alias="from", description="First day (the vendor's); default: 29 days before `to`"),
    ] = None,
    last: Annotated[
        date | None, Query(alias="to", description="Last day, included; default: today")
    ] = None,
    bucket: Annotated[sales.Bucket, Query(description="day, week (from Monday) or month")] = "day",
) -> SalesReportRead:
    """The vendor's sales, commission, refunds and net per day, week or month of its own time
    zone, per currency; every figure is read from its ledger and orders (managers and owners)."""
    vendor = await get_vendor(session, vendor_id=manager.vendor_id)
    today = now.astimezone(ZoneInfo(vendor.time_zone)).date()
    last = last or today
    first = first or sales.thirty_days_to(last)
    report = await sales.sales_report(
        session,
        vendor_id=vendor.id,
        first=first,
        last=last,
        bucket=bucket,
        time_zone=vendor.time_zone,
    )
    return SalesReportRead.build(report)


@router.get(
    "/vendors/{vendor_id}/analytics/products",
    responses={422: {"model": Problem, "description": "`invalid_range`: backwards or too long"}},
)
async def vendor_top_products(
    manager: VendorManager,
    session: SessionDep,
    now: NowDep,
    first: Annotated[
        date | None,
        Query(alias="from", description="First day (the vendor's); default: 29 days before `to`"),
    ] = None,
    last: Annotated[
        date | None, Query(alias="to", description="Last day, included; default: today")
    ] = None,
    by: Annotated[products.Ranking, Query(description="Rank by units or by gross")] = "units",
    top: Annotated[
        int, Query(ge=1, le=products.MAX_ITEMS, description="How many variants per currency")
    ] = 10,
) -> TopProductsRead:
    """The vendor's best-selling variants over the range, per currency (managers and owners):
    units bought, returned and cancelled, and what they sold for."""
    vendor = await get_vendor(session, vendor_id=manager.vendor_id)
    last = last or now.astimezone(ZoneInfo(vendor.time_zone)).date()
    first = first or sales.thirty_days_to(last)
    found = await products.top_products(
        session,
        vendor_id=vendor.id,
        first=first,
        last=last,
        time_zone=vendor.time_zone,
        ranking=by,
        limit=top,
    )
    return TopProductsRead(
        time_zone=vendor.time_zone,
        first=first,
        last=last,
        ranking=by,
        currencies=[CurrencyProductsRead.build(each) for each in found],
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

First = Annotated[
    date | None,
    Query(alias="from", description="First day (the platform's); default: 29 days before `to`"),
]
Last = Annotated[date | None, Query(alias="to", description="Last day, included; default: today")]
RANGE_REFUSED: dict[int | str, dict[str, Any]] = {
    422: {"model": Problem, "description": "`invalid_range`: backwards or too long"}
}


def _range(first: date | None, last: date | None, zone: str, now: datetime) -> tuple[date, date]:
    last = last or now.astimezone(ZoneInfo(zone)).date()
    return first or sales.thirty_days_to(last), last


@router.get("/admin/analytics/sales", tags=["admin"], responses=RANGE_REFUSED)
async def platform_sales(
    _: OperationsUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    first: First = None,
    last: Last = None,
    bucket: Annotated[sales.Bucket, Query(description="day, week (from Monday) or month")] = "day",
) -> SalesReportRead:
    """Every vendor's sales together, per day, week or month of the platform's time zone
    (`EMPORIUM_ANALYTICS_TIME_ZONE`): `commission` is the platform's revenue, `net` what the
    vendors earned; an order with parts of two vendors is one order."""
    zone = settings.analytics_time_zone
    first, last = _range(first, last, zone, now)
    report = await sales.sales_report(
        session, vendor_id=None, first=first, last=last, bucket=bucket, time_zone=zone
    )
    return SalesReportRead.build(report)


@router.get("/admin/analytics/vendors", tags=["admin"], responses=RANGE_REFUSED)
async def vendor_ranking(
    _: OperationsUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    first: First = None,
    last: Last = None,
    top: Annotated[int, Query(ge=1, le=platform.MAX_VENDORS)] = 20,
) -> VendorRankingRead:
    """The vendors that sold the most in the range, per currency, with the commission taken."""
    zone = settings.analytics_time_zone
    first, last = _range(first, last, zone, now)
    found = await platform.vendor_ranking(session, first=first, last=last, time_zone=zone, top=top)
    return VendorRankingRead(
        time_zone=zone,
        first=first,
        last=last,
        currencies=[CurrencyVendorsRead.build(each) for each in found],
    )


@router.get("/admin/analytics/payments", tags=["admin"], responses=RANGE_REFUSED)
async def payment_rates(
    _: OperationsUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    first: First = None,
    last: Last = None,
) -> PaymentRatesRead:
    """Per payment provider, the attempts of orders placed in the range and how they ended:
    succeeded, declined (with the most frequent codes), failed or still open."""
    zone = settings.analytics_time_zone
    first, last = _range(first, last, zone, now)
    found = await platform.payment_rates(session, first=first, last=last, time_zone=zone)
    return PaymentRatesRead(
        time_zone=zone,
        first=first,
        last=last,
        providers=[ProviderPaymentsRead.build(each) for each in found],
    )


@router.get("/admin/analytics/categories", tags=["admin"], responses=RANGE_REFUSED)
async def category_sales(
    _: OperationsUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    first: First = None,
    last: Last = None,
) -> CategoryReportRead:
    """What sold in the range, per currency, by the category each product is in now."""
    zone = settings.analytics_time_zone
    first, last = _range(first, last, zone, now)
    found = await platform.category_sales(session, first=first, last=last, time_zone=zone)
    return CategoryReportRead(
        time_zone=zone,
        first=first,
        last=last,
        currencies=[CurrencyCategoriesRead.build(each) for each in found],
    )


@router.get("/admin/analytics/customers", tags=["admin"], responses=RANGE_REFUSED)
async def customers(
    _: OperationsUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    first: First = None,
    last: Last = None,
    bucket: Annotated[sales.Bucket, Query(description="day, week (from Monday) or month")] = "day",
) -> CustomerReportRead:
    """Per bucket, the customers with an order confirmed in it, new and returning."""
    zone = settings.analytics_time_zone
    first, last = _range(first, last, zone, now)
    series = await platform.customer_counts(
        session, first=first, last=last, bucket=bucket, time_zone=zone
    )
    return CustomerReportRead(
        time_zone=zone,
        bucket=bucket,
        first=first,
        last=last,
        series=[
            CustomerPointRead(
                start=point.start,
                customers=point.customers,
                new=point.new,
                returning=point.returning,
            )
            for point in series
        ],
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
