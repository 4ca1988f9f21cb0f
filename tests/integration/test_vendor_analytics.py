"""Analytics (README, "Analytics"): a vendor's sales per day, week and month of its own time
zone, its best sellers and what waits for it; the platform's sales, vendors and payments for
operators; each reconciled with the ledger, orders and stock they come from."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool
from temporalio.client import ScheduleOverlapPolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from commerce.analytics import rollup
from commerce.analytics.rollup_schedule import ensure_rollup_schedule
from commerce.finance import ledger
from core.clock import FixedClock
from models import (
    Category,
    DeliveredPurchase,
    DisputeStatus,
    InventoryLevel,
    LedgerEntry,
    LedgerKind,
    MailOutbox,
    Order,
    OrderLine,
    OrderVendorPart,
    Payment,
    PaymentStatus,
    PlatformRole,
    Product,
    ReturnRequest,
    Review,
    SalesHour,
    Shipment,
    User,
    Variant,
    Vendor,
    VendorMembership,
    VendorRole,
)
from tests.catalog_factories import VariantSpec, make_product, make_vendor
from tests.conftest import _client_for, make_settings
from tests.factories import Account, sign_up
from tests.integration.test_ledger import make_dispute, make_order, make_refund
from workers.registry import WORKFLOWS, Dependencies, activities
from workflows.contracts.analytics import ROLLUP_WORKFLOW, RollUpOutput, SalesRollupInput
from workflows.contracts.shipments import ShipmentStatus

BP = 1000  # 10% commission
#: Berlin is UTC+1 in November: 23:30 UTC on the 2nd is already the 3rd there.
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class Shop:
    http: httpx.AsyncClient
    sessionmaker: async_sessionmaker[AsyncSession]
    north: Vendor
    south: Vendor
    manager: Account
    staff: Account
    outsider: Account
    operator: Account


@pytest.fixture
async def shop(fresh_database_url: str, temporal_address: str) -> AsyncIterator[Shop]:
    engine = create_async_engine(fresh_database_url, poolclass=NullPool)
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    async with sessionmaker.begin() as session:
        north = await make_vendor(session, name="North")
        south = await make_vendor(session, name="South")
        north.time_zone = "Europe/Berlin"
        sales = [
            # (parts, currency, confirmed at)
            ({north: [300]}, "EUR", "2026-10-31T23:30"),  # Berlin: Nov 1, 00:30
            ({north: [1000, 500]}, "EUR", "2026-11-02T23:30"),  # Berlin: Nov 3
            ({north: [2000], south: [700]}, "EUR", "2026-11-03T10:00"),
            ({north: [900]}, "USD", "2026-11-04T12:00"),
            ({north: [800]}, "EUR", "2026-11-05T12:00"),
            ({north: [400]}, "EUR", "2026-10-31T22:30"),  # Berlin: Oct 31, before the range
            ({north: [600]}, "EUR", "2026-11-07T23:30"),  # Berlin: Nov 8, after it
        ]
        placed = []
        for parts, currency, when in sales:
            order = await make_order(session, parts, currency=currency, confirmed_at=at(when))
            await ledger.record_sale(
                session, order_id=order.order.id, commission_bp=BP, now=at(when)
            )
            placed.append(order)
        order_ids = [each.order.id for each in placed]
        # Stock: one variant under its threshold, one out, one fine (threshold 5 each).
        await make_product(
            session,
            vendor=north,
            title="Lamp",
            variants=[
                VariantSpec("LAMP-LOW", 1000, stock=2),
                VariantSpec("LAMP-OUT", 1000, stock=0),
                VariantSpec("LAMP-OK", 1000, stock=50),
            ],
        )
        await session.flush()
        await session.execute(
            update(InventoryLevel)
            .where(
                InventoryLevel.variant_id.in_(
                    select(Variant.id).where(Variant.vendor_id == north.id)
                )
            )
            .values(low_stock_threshold=5)
        )
        # South's mug, in the Kitchen category, is the line of the two-vendor order.
        kitchen = Category(slug="kitchen", name="Kitchen", path="kitchen")
        session.add(kitchen)
        await session.flush()
        mug = await make_product(
            session, vendor=south, title="Mug", variants=[VariantSpec("MUG", 700)]
        )
        mug.category_id = kitchen.id
        placed[2].lines[south.id][0].product_id = mug.id
        # An open dispute whose evidence is due tomorrow.
        disputed = await make_dispute(session, placed[1], 100)
        disputed.evidence_due_at = NOW + timedelta(days=1)
        # Work waiting: a part to accept (a day late), one to ship, a return to decide.
        for order, status in (
            (placed[4], ShipmentStatus.AWAITING_ACCEPTANCE),
            (placed[1], ShipmentStatus.ACCEPTED),
        ):
            session.add(
                Shipment(
                    order_id=order.order.id,
                    vendor_id=north.id,
                    status=status,
                    accept_by=NOW - timedelta(days=1),
                )
            )
        session.add(
            ReturnRequest(
                order_id=placed[0].order.id, vendor_id=north.id, reason="too small", respond_by=NOW
            )
        )
        # Payment attempts besides each order's captured one: declines and one still open.
        for order, attempt, status, code in (
            (placed[1], 2, PaymentStatus.DECLINED, "card_declined"),
            (placed[2], 2, PaymentStatus.DECLINED, "card_declined"),
            (placed[2], 3, PaymentStatus.DECLINED, "insufficient_funds"),
            (placed[4], 2, PaymentStatus.REQUIRES_ACTION, None),
            (placed[5], 2, PaymentStatus.DECLINED, "card_declined"),  # placed Oct 31 in Berlin
        ):
            session.add(
                Payment(
                    order_id=order.order.id, attempt=attempt, provider="test", status=status,
                    amount=order.order.grand_total, currency=order.order.currency,
                    decline_code=code,
                )
            )  # fmt: skip
        # The 5.00 unit of Nov 3 came back.
        placed[1].lines[north.id][1].returned_quantity = 1
        # 5.00 of the Nov 3 two-vendor order refunded from North's part on Nov 6 (Berlin).
        refund = await make_refund(session, placed[2], 500, vendor=north)
        await ledger.record_refund(
            session, refund_id=refund.id, commission_bp=BP, now=at("2026-11-06T09:00")
        )
        # The Nov 5 order's chargeback lost on Nov 7.
        dispute = await make_dispute(session, placed[4], 800, status=DisputeStatus.LOST)
        await ledger.record_dispute_lost(session, dispute_id=dispute.id, now=at("2026-11-07T08:00"))
    settings = make_settings(
        fresh_database_url, temporal_address, analytics_time_zone="Europe/Berlin"
    )
    app = create_app(settings, clock=FixedClock(NOW))
    try:
        async for http in _client_for(app):
            async with sessionmaker() as session:
                manager = await sign_up(http, session)
                staff = await sign_up(http, session)
                outsider = await sign_up(http, session)
                operator = await sign_up(http, session)
            async with sessionmaker.begin() as session:
                for account, vendor, role in (
                    (manager, north, VendorRole.MANAGER),
                    (staff, north, VendorRole.STAFF),
                    (outsider, south, VendorRole.OWNER),
                ):
                    session.add(
                        VendorMembership(
                            vendor_id=vendor.id, user_id=uuid.UUID(account.id), role=role
                        )
                    )
                # Customers: staff ordered on Oct 31 and Nov 3; the outsider on Nov 1 and 5;
                # the operator on Nov 3 (the USD order is a guest's).
                for account, indexes in ((staff, (5, 1)), (outsider, (0, 4)), (operator, (2,))):
                    for index in indexes:
                        order = await session.get(Order, order_ids[index])
                        assert order is not None
                        order.customer_id = uuid.UUID(account.id)
                user = await session.get(User, uuid.UUID(operator.id))
                assert user is not None
                user.platform_role = PlatformRole.OPERATIONS
            yield Shop(http, sessionmaker, north, south, manager, staff, outsider, operator)
    finally:
        await engine.dispose()


def money(amount: int, currency: str = "EUR") -> dict[str, object]:
    return {"amount": amount, "currency": currency}


def figures(orders: int, units: int, gross: int, commission: int, refunds: int = 0,
            disputes: int = 0, currency: str = "EUR") -> dict[str, object]:  # fmt: skip
    net = gross - commission - refunds - disputes
    aov = round(gross / orders) if orders else 0
    return {
        "orders": orders,
        "units": units,
        "gross": money(gross, currency),
        "commission": money(commission, currency),
        "refunds": money(refunds, currency),
        "disputes": money(disputes, currency),
        "net": money(net, currency),
        "average_order_value": money(aov, currency),
    }


async def report(shop: Shop, query: str, who: Account | None = None) -> httpx.Response:
    return await shop.http.get(
        f"/vendors/{shop.north.id}/analytics/sales?{query}",
        headers=(who or shop.manager).headers,
    )


async def test_days_of_the_vendors_time_zone_reconcile_with_its_ledger(shop: Shop) -> None:
    answer = await report(shop, "from=2026-11-01&to=2026-11-07&bucket=day")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["time_zone"], body["bucket"], body["first"], body["last"]) == (
        "Europe/Berlin", "day", "2026-11-01", "2026-11-07"
    )  # fmt: skip
    eur, usd = body["currencies"]
    assert [point["start"] for point in eur["series"]] == [f"2026-11-0{d}" for d in range(1, 8)]
    by_day = {point.pop("start"): point for point in eur["series"]}
    assert by_day["2026-11-01"] == figures(1, 1, 300, 30)
    assert by_day["2026-11-02"] == figures(0, 0, 0, 0)
    # Two orders on the 3rd in Berlin: 10.00 + 5.00 (two units) and 20.00 of a two-vendor one.
    assert by_day["2026-11-03"] == figures(2, 3, 3500, 350)
    assert by_day["2026-11-05"] == figures(1, 1, 800, 80)
    # The refund gives back its commission on the day it happened.
    assert by_day["2026-11-06"] == figures(0, 0, 0, -50, refunds=500)
    assert by_day["2026-11-07"] == figures(0, 0, 0, 0, disputes=800)
    assert eur["totals"] == figures(4, 5, 4600, 410, refunds=500, disputes=800)
    assert usd["currency"] == "USD"
    assert usd["totals"] == figures(1, 1, 900, 90, currency="USD")

    # Reconciled with what they come from: the ledger's entries of the same moments...
    async with shop.sessionmaker() as session:
        booked = await session.scalar(
            select(func.sum(LedgerEntry.amount))
            .outerjoin(Order, Order.id == LedgerEntry.order_id)
            .where(
                LedgerEntry.vendor_id == shop.north.id,
                LedgerEntry.currency == "EUR",
                LedgerEntry.kind != LedgerKind.PAYOUT,
                Order.confirmed_at >= at("2026-10-31T23:00"),  # Nov 1, 00:00 in Berlin
                Order.confirmed_at < at("2026-11-07T23:00"),
            )
        )
        sold = await session.scalar(
            select(func.sum(OrderVendorPart.total))
            .join(Order, Order.id == OrderVendorPart.order_id)
            .where(
                OrderVendorPart.vendor_id == shop.north.id,
                Order.currency == "EUR",
                Order.confirmed_at >= at("2026-10-31T23:00"),
                Order.confirmed_at < at("2026-11-07T23:00"),
            )
        )
    # (every refund and dispute of the range belongs to an order confirmed in it)
    assert eur["totals"]["net"]["amount"] == booked
    assert eur["totals"]["gross"]["amount"] == sold


async def test_weeks_start_on_monday_and_months_on_the_first(shop: Shop) -> None:
    weeks = (await report(shop, "from=2026-11-01&to=2026-11-07&bucket=week")).json()
    eur = weeks["currencies"][0]
    # Sunday Nov 1 is in the week of Monday Oct 26; the rest in the week of Nov 2.
    assert [(p["start"], p["orders"]) for p in eur["series"]] == [
        ("2026-10-26", 1),
        ("2026-11-02", 3),
    ]
    months = (await report(shop, "from=2026-10-01&to=2026-11-30&bucket=month")).json()
    eur = months["currencies"][0]
    # October (Berlin) holds the sale of Oct 31, 23:30 Berlin; November the rest, Nov 8 too.
    assert [(p["start"], p["gross"]["amount"]) for p in eur["series"]] == [
        ("2026-10-01", 400),
        ("2026-11-01", 4600 + 600),
    ]


async def test_the_default_is_the_last_thirty_days_of_the_vendor(shop: Shop) -> None:
    body = (await report(shop, "")).json()
    # NOW is Nov 20, 10:00 in Berlin.
    assert (body["first"], body["last"], body["bucket"]) == ("2026-10-22", "2026-11-20", "day")
    assert len(body["currencies"][0]["series"]) == 30


async def test_ranges_that_cannot_be_reported_are_refused(shop: Shop) -> None:
    for query in (
        "from=2026-11-07&to=2026-11-01",  # backwards
        "from=2025-01-01&to=2026-11-01&bucket=day",  # more than 400 days
        "from=0001-01-01&to=0001-01-02",  # out of the reportable years
        "to=9999-12-31",
    ):
        answer = await report(shop, query)
        assert answer.status_code == 422, (query, answer.text)
        assert answer.json()["code"] == "invalid_range", query
    assert (await report(shop, "from=2025-01-01&to=2026-11-01&bucket=month")).status_code == 200
    answer = await report(shop, "bucket=year")
    assert answer.status_code == 422


async def test_only_the_vendors_managers_read_its_sales(shop: Shop) -> None:
    assert (await report(shop, "", who=shop.staff)).status_code == 403
    foreign = await report(shop, "", who=shop.outsider)
    assert foreign.status_code in (403, 404)
    anonymous = await shop.http.get(f"/vendors/{shop.north.id}/analytics/sales")
    assert anonymous.status_code == 401


async def test_a_vendor_sets_its_time_zone(shop: Shop) -> None:
    path = f"/vendors/{shop.south.id}"
    owner = shop.outsider.headers
    answer = await shop.http.patch(path, headers=owner, json={"time_zone": "Asia/Tokyo"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["time_zone"] == "Asia/Tokyo"
    refused = await shop.http.patch(path, headers=owner, json={"time_zone": "Mars/Olympus"})
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_time_zone"
    # In Tokyo (UTC+9) the two-vendor order of Nov 3, 10:00 UTC is on Nov 3 too, 19:00.
    body = (
        await shop.http.get(
            f"/vendors/{shop.south.id}/analytics/sales?from=2026-11-03&to=2026-11-03",
            headers=owner,
        )
    ).json()
    assert body["time_zone"] == "Asia/Tokyo"
    assert body["currencies"][0]["totals"] == figures(1, 1, 700, 70)


async def test_best_sellers_per_currency_add_up_to_the_lines_sold(shop: Shop) -> None:
    path = f"/vendors/{shop.north.id}/analytics/products?from=2026-11-01&to=2026-11-07"
    answer = await shop.http.get(path, headers=shop.manager.headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["ranking"], body["time_zone"]) == ("units", "Europe/Berlin")
    eur, usd = body["currencies"]
    # Every order's first line is SKU-0 in these orders; the Nov 3 one also sold SKU-1.
    assert [(i["sku"], i["units"], i["returned"], i["gross"]) for i in eur["items"]] == [
        ("SKU-0", 4, 0, money(300 + 1000 + 2000 + 800)),
        ("SKU-1", 1, 1, money(500)),
    ]
    assert [(i["sku"], i["gross"]) for i in usd["items"]] == [("SKU-0", money(900, "USD"))]
    # All of them together are the lines of the vendor's orders confirmed in the range.
    async with shop.sessionmaker() as session:
        sold = await session.scalar(
            select(func.sum(OrderLine.total))
            .join(Order, Order.id == OrderLine.order_id)
            .where(
                OrderLine.vendor_id == shop.north.id,
                Order.currency == "EUR",
                Order.confirmed_at >= at("2026-10-31T23:00"),
                Order.confirmed_at < at("2026-11-07T23:00"),
            )
        )
    assert sum(item["gross"]["amount"] for item in eur["items"]) == sold
    top = await shop.http.get(f"{path}&by=gross&top=1", headers=shop.manager.headers)
    assert [i["sku"] for i in top.json()["currencies"][0]["items"]] == ["SKU-0"]
    assert (await shop.http.get(f"{path}&top=0", headers=shop.manager.headers)).status_code == 422
    staff = await shop.http.get(path, headers=shop.staff.headers)
    assert staff.status_code == 403


async def test_the_overview_shows_what_waits_and_the_money(shop: Shop) -> None:
    answer = await shop.http.get(
        f"/vendors/{shop.north.id}/analytics/overview", headers=shop.manager.headers
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["parts_to_accept"], body["parts_to_ship"], body["returns_to_decide"]) == (1, 1, 1)
    assert (body["low_stock"], body["out_of_stock"]) == (1, 1)
    assert [(a["sku"], a["available"], a["status"]) for a in body["stock_alerts"]] == [
        ("LAMP-OUT", 0, "out_of_stock"),
        ("LAMP-LOW", 2, "low_stock"),
    ]
    eur, usd = body["money"]
    # On Nov 20 every sale is still in its 30-day return window; the refund (with the
    # commission it gave back) and the lost dispute are booked and net against them.
    sales_eur = 300 + 1500 + 2000 + 800 + 400 + 600
    pending = sales_eur - sales_eur // 10
    assert eur["pending"] == money(pending)
    assert eur["payable"] == money(-500 + 50 - 800)
    # The open dispute on the Nov 3 order holds its unpaid entries back.
    assert eur["frozen"] == money(1500 - 150)
    assert eur["balance"] == money(pending - 500 + 50 - 800)
    assert eur["next_available_at"] == "2026-11-30T22:30:00Z"  # Oct 31, 22:30 UTC + 30 days
    assert (usd["balance"], usd["pending"], usd["payable"]) == (
        money(810, "USD"), money(810, "USD"), money(0, "USD")
    )  # fmt: skip
    # The books it comes from: the balance is every entry not paid out.
    async with shop.sessionmaker() as session:
        owed = await session.scalar(
            select(func.sum(LedgerEntry.amount)).where(
                LedgerEntry.vendor_id == shop.north.id,
                LedgerEntry.currency == "EUR",
                LedgerEntry.payout_id.is_(None),
            )
        )
    assert eur["balance"]["amount"] == owed
    staff = await shop.http.get(
        f"/vendors/{shop.north.id}/analytics/overview", headers=shop.staff.headers
    )
    assert staff.status_code == 403


async def test_operators_see_every_vendor_together_and_apart(shop: Shop) -> None:
    week = "from=2026-11-01&to=2026-11-07"
    admin = shop.operator.headers
    body = (await shop.http.get(f"/admin/analytics/sales?{week}", headers=admin)).json()
    assert body["time_zone"] == "Europe/Berlin"
    eur = body["currencies"][0]
    # North's 4 orders and South's part of the two-vendor one: still 4 orders.
    assert eur["totals"] == figures(4, 6, 5300, 480, refunds=500, disputes=800)
    # The sum of the vendors' own reports, money by money.
    reports = [
        (await shop.http.get(
            f"/vendors/{vendor.id}/analytics/sales?{week}", headers=who.headers
        )).json()["currencies"][0]["totals"]
        for vendor, who in ((shop.north, shop.manager), (shop.south, shop.outsider))
    ]  # fmt: skip
    for name in ("gross", "commission", "refunds", "disputes", "net"):
        assert eur["totals"][name]["amount"] == sum(r[name]["amount"] for r in reports), name

    ranking = (await shop.http.get(f"/admin/analytics/vendors?{week}", headers=admin)).json()
    vendors = ranking["currencies"][0]["vendors"]
    assert [(v["name"], v["orders"], v["gross"], v["commission"]) for v in vendors] == [
        ("North", 4, money(4600), money(460)),
        ("South", 1, money(700), money(70)),
    ]
    top = (await shop.http.get(f"/admin/analytics/vendors?{week}&top=1", headers=admin)).json()
    assert [v["name"] for v in top["currencies"][0]["vendors"]] == ["North"]
    assert [v["gross"] for v in top["currencies"][1]["vendors"]] == [money(900, "USD")]


async def test_payment_rates_per_provider(shop: Shop) -> None:
    answer = await shop.http.get(
        "/admin/analytics/payments?from=2026-11-01&to=2026-11-07", headers=shop.operator.headers
    )
    assert answer.status_code == 200, answer.text
    (test,) = answer.json()["providers"]
    # Orders placed Nov 1-7 (Berlin): 5 captured, 3 declined, 1 waiting for 3-D Secure.
    assert test == {
        "provider": "test",
        "attempts": 9,
        "succeeded": 5,
        "declined": 3,
        "failed": 0,
        "open": 1,
        "decline_rate_bp": 3750,  # 3 of the 8 that ended
        "decline_codes": {"card_declined": 2, "insufficient_funds": 1},
    }


async def test_operator_analytics_are_for_operators(shop: Shop) -> None:
    backwards = "?from=2026-11-02&to=2026-11-01"
    for path in ("/admin/analytics/sales", "/admin/analytics/vendors", "/admin/analytics/payments"):
        assert (await shop.http.get(path, headers=shop.manager.headers)).status_code == 403
        assert (await shop.http.get(path)).status_code == 401
        refused = await shop.http.get(path + backwards, headers=shop.operator.headers)
        assert refused.json()["code"] == "invalid_range"


async def test_sales_by_category_add_up_to_every_line(shop: Shop) -> None:
    body = (
        await shop.http.get(
            "/admin/analytics/categories?from=2026-11-01&to=2026-11-07",
            headers=shop.operator.headers,
        )
    ).json()
    eur = body["currencies"][0]
    assert [(c["name"], c["units"], c["gross"]) for c in eur["categories"]] == [
        ("Uncategorized", 5, money(300 + 1500 + 2000 + 800)),
        ("Kitchen", 1, money(700)),
    ]
    # Every line of the range: the platform's gross (no shipping or tax in these orders).
    platform = (
        await shop.http.get(
            "/admin/analytics/sales?from=2026-11-01&to=2026-11-07", headers=shop.operator.headers
        )
    ).json()
    total = sum(c["gross"]["amount"] for c in eur["categories"])
    assert total == platform["currencies"][0]["totals"]["gross"]["amount"]


async def test_new_and_returning_customers(shop: Shop) -> None:
    async def series(bucket: str) -> list[tuple[str, int, int, int]]:
        body = (
            await shop.http.get(
                f"/admin/analytics/customers?from=2026-11-01&to=2026-11-07&bucket={bucket}",
                headers=shop.operator.headers,
            )
        ).json()
        return [(p["start"], p["customers"], p["new"], p["returning"]) for p in body["series"]]

    days = await series("day")
    assert [point for point in days if point[1]] == [
        ("2026-11-01", 1, 1, 0),  # the outsider's first order
        ("2026-11-03", 2, 1, 1),  # the operator's first; staff's second (first on Oct 31)
        ("2026-11-05", 1, 0, 1),  # the outsider again
    ]
    assert len(days) == 7
    assert await series("week") == [("2026-10-26", 1, 1, 0), ("2026-11-02", 3, 1, 2)]


async def test_operations_now(shop: Shop) -> None:
    body = (
        await shop.http.get("/admin/analytics/operations", headers=shop.operator.headers)
    ).json()
    stuck = {(s["kind"], s["status"]): s["count"] for s in body["stuck"]}
    # The part to accept is a day past accept_by (the grace is 15 minutes).
    assert stuck == {
        ("order", "awaiting_payment"): 0,
        ("order", "pending"): 0,
        ("part", "awaiting_acceptance"): 1,
        ("return", "requested"): 0,
    }
    assert (body["disputes_open"], body["disputes_evidence_due"]) == (1, 1)
    assert body["next_evidence_due_at"] == "2026-11-21T09:00:00Z"
    async with shop.sessionmaker() as session:
        unsent = await session.scalar(
            select(func.count()).select_from(MailOutbox).where(MailOutbox.sent_at.is_(None))
        )
    assert body["mail_pending"] == unsent
    staff = await shop.http.get("/admin/analytics/operations", headers=shop.manager.headers)
    assert staff.status_code == 403


async def test_the_hourly_rollup_gives_the_same_figures_as_the_live_tables(shop: Shop) -> None:
    queries = [
        (f"/vendors/{shop.north.id}/analytics/sales", shop.manager, bucket)
        for bucket in ("day", "week", "month")
    ] + [
        (f"/vendors/{shop.south.id}/analytics/sales", shop.outsider, "day"),
        ("/admin/analytics/sales", shop.operator, "day"),
        ("/admin/analytics/sales", shop.operator, "month"),
    ]

    async def answers() -> list[object]:
        found = []
        for path, who, bucket in queries:
            answer = await shop.http.get(
                f"{path}?from=2026-10-01&to=2026-11-30&bucket={bucket}", headers=who.headers
            )
            assert answer.status_code == 200, answer.text
            found.append(answer.json())
        return found

    live = await answers()
    # Roll up to three points: before any sale, the middle of Nov 3 (between two orders of
    # that Berlin day), and past everything; the answers never change.
    for cutoff in ("2026-10-01T00:00", "2026-11-03T12:00", "2026-12-01T00:00"):
        async with shop.sessionmaker.begin() as session:
            while (await rollup.roll_up_chunk(session, now=at(cutoff) + rollup.SETTLE)).since:
                pass
            # (nothing to roll up before the first sale: the rollup starts with it)
            expected = None if cutoff.startswith("2026-10-01") else at(cutoff)
            assert await rollup.rolled_until(session) == expected
        assert await answers() == live, cutoff
    async with shop.sessionmaker() as session:
        rows = await session.scalar(select(func.count()).select_from(SalesHour))
        platform_gross = await session.scalar(
            select(func.sum(SalesHour.gross)).where(
                SalesHour.scope == rollup.PLATFORM, SalesHour.currency == "EUR"
            )
        )
    assert rows
    assert platform_gross == 300 + 1500 + 2000 + 700 + 800 + 400 + 600
    # A rebuild starts again from the first sale and ends where it was.
    async with shop.sessionmaker.begin() as session:
        await rollup.rebuild(session)
        assert await rollup.rolled_until(session) is None
        while (await rollup.roll_up_chunk(session, now=at("2026-12-01T01:00"))).since:
            pass
    assert await answers() == live


def test_zones_off_the_hour_are_reported_live() -> None:
    from zoneinfo import ZoneInfo

    from commerce.analytics.sales import _whole_hours

    november = (datetime(2026, 11, 1).date(), datetime(2026, 11, 30).date())
    assert _whole_hours(ZoneInfo("Europe/Berlin"), *november)
    assert _whole_hours(ZoneInfo("America/New_York"), *november)
    assert not _whole_hours(ZoneInfo("Asia/Kolkata"), *november)
    assert not _whole_hours(ZoneInfo("Asia/Kathmandu"), *november)


async def test_the_worker_keeps_the_rollup_current_on_a_schedule(
    shop: Shop, fresh_database_url: str, temporal_env: WorkflowEnvironment, temporal_address: str
) -> None:
    settings = make_settings(fresh_database_url, temporal_address, analytics_rollup_interval_s=60)
    before = (
        await shop.http.get(
            "/admin/analytics/sales?from=2026-10-01&to=2026-11-30", headers=shop.operator.headers
        )
    ).json()
    # The worker's clock on Dec 1: every hour up to Nov 30, 23:00 UTC is closed and settled.
    deps = replace(
        Dependencies.build(settings, shop.sessionmaker), clock=FixedClock(at("2026-12-01T00:30"))
    )
    queue = f"rollup-{uuid.uuid4().hex}"
    try:
        async with Worker(
            temporal_env.client, task_queue=queue, workflows=WORKFLOWS, activities=activities(deps)
        ):
            done = await temporal_env.client.execute_workflow(
                ROLLUP_WORKFLOW,
                SalesRollupInput(),
                id=f"rollup-{uuid.uuid4().hex}",
                task_queue=queue,
                result_type=RollUpOutput,
            )
    finally:
        await deps.aclose()
    # From the first sale (Oct 31, 22:00 UTC) to Nov 30, 23:00: within one 31-day chunk.
    assert done == RollUpOutput(chunks=1, rolled_until="2026-11-30T23:00:00+00:00")
    after = (
        await shop.http.get(
            "/admin/analytics/sales?from=2026-10-01&to=2026-11-30", headers=shop.operator.headers
        )
    ).json()
    assert after == before
    # The schedule that starts it: created once, brought up to the settings after.
    schedule_id = f"analytics-rollup-{uuid.uuid4().hex}"
    await ensure_rollup_schedule(temporal_env.client, settings, schedule_id=schedule_id)
    await ensure_rollup_schedule(temporal_env.client, settings, schedule_id=schedule_id)
    handle = temporal_env.client.get_schedule_handle(schedule_id)
    try:
        described = await handle.describe()
        assert [i.every for i in described.schedule.spec.intervals] == [timedelta(seconds=60)]
        assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    finally:
        await handle.delete()


async def test_the_rating_trend_counts_visible_reviews_as_written(shop: Shop) -> None:
    async with shop.sessionmaker.begin() as session:
        lamp = await session.scalar(select(Product).where(Product.title == "Lamp"))
        assert lamp is not None
        for account, rating, written, hidden in (
            (shop.staff, 5, "2026-10-20T10:00", False),  # before the range
            (shop.outsider, 3, "2026-11-03T10:00", False),
            (shop.operator, 4, "2026-11-10T10:00", False),
            (shop.manager, 1, "2026-11-04T10:00", True),  # hidden by moderation
        ):
            purchase = DeliveredPurchase(
                user_id=uuid.UUID(account.id),
                product_id=lamp.id,
                order_id=uuid.uuid4(),
                order_line_id=uuid.uuid4(),
                delivered_at=at(written),
            )
            session.add(purchase)
            await session.flush()
            session.add(
                Review(
                    product_id=lamp.id,
                    user_id=uuid.UUID(account.id),
                    purchase_id=purchase.id,
                    rating=rating,
                    title="ok",
                    is_hidden=hidden,
                    created_at=at(written),
                )
            )
    answer = await shop.http.get(
        f"/vendors/{shop.north.id}/analytics/ratings?from=2026-11-01&to=2026-11-30",
        headers=shop.manager.headers,
    )
    assert answer.status_code == 200, answer.text
    series = [
        (p["start"], p["reviews"], p["average"], p["rating"], p["rated_by"])
        for p in answer.json()["series"]
    ]
    assert series == [
        ("2026-10-26", 0, None, "5.00", 1),  # the review of Oct 20 stands
        ("2026-11-02", 1, "3.00", "4.00", 2),
        ("2026-11-09", 1, "4.00", "4.00", 3),
        ("2026-11-16", 0, None, "4.00", 3),
        ("2026-11-23", 0, None, "4.00", 3),
        ("2026-11-30", 0, None, "4.00", 3),
    ]
    staff = await shop.http.get(
        f"/vendors/{shop.north.id}/analytics/ratings", headers=shop.staff.headers
    )
    assert staff.status_code == 403


async def test_signups_and_their_verification(shop: Shop) -> None:
    async with shop.sessionmaker.begin() as session:
        for account, created, verified in (
            (shop.staff, "2026-11-02T08:00", True),
            (shop.outsider, "2026-11-02T22:30", False),  # Nov 2, 23:30 in Berlin
            (shop.operator, "2026-11-02T23:30", True),  # Nov 3, 00:30 in Berlin
        ):
            user = await session.get(User, uuid.UUID(account.id))
            assert user is not None
            user.created_at = at(created)
            user.email_verified_at = at(created) if verified else None
    answer = await shop.http.get(
        "/admin/analytics/signups?from=2026-11-01&to=2026-11-07", headers=shop.operator.headers
    )
    assert answer.status_code == 200, answer.text
    series = {p["start"]: p for p in answer.json()["series"]}
    assert len(series) == 7
    assert (series["2026-11-02"]["signups"], series["2026-11-02"]["verified"]) == (2, 1)
    assert series["2026-11-02"]["verification_rate_bp"] == 5000
    assert (series["2026-11-03"]["signups"], series["2026-11-03"]["verification_rate_bp"]) == (
        1,
        10_000,
    )
    assert sum(p["signups"] for p in series.values()) == 3
