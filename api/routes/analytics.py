"""Analytics for vendors (README, "Analytics")."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query

from api.access import VendorManager
from api.deps import NowDep, SessionDep, TemporalDep
from api.problems import Problem
from api.schemas.analytics import (
    CurrencyProductsRead,
    SalesReportRead,
    TopProductsRead,
    VendorOverviewRead,
)
from commerce.analytics import overview, products, sales
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
    report = await sales.vendor_sales(
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
