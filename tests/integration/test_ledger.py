"""The vendor ledger and payouts: entries on real PostgreSQL, the payout run as a real workflow
on a real worker, the schedule on the real Temporal dev server, the routes over HTTP.

Orders are inserted as rows (exact amounts make the rounding checkable by hand); the saga
that confirms them has its own tests.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool
from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleHandle,
    WorkflowExecutionStatus,
)
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from commerce.finance import ledger
from commerce.finance.payout_schedule import ensure_payout_schedule
from core.settings import Settings
from models import (
    Dispute,
    DisputeStatus,
    LedgerEntry,
    LedgerKind,
    Order,
    OrderLine,
    OrderStatus,
    OrderVendorPart,
    Payment,
    PaymentStatus,
    Payout,
    PayoutStatus,
    PlatformRole,
    Refund,
    RefundLine,
    RefundSource,
    RefundStatus,
    User,
    Vendor,
    VendorMembership,
    VendorRole,
)
from tests.catalog_factories import make_vendor
from tests.conftest import _client_for, make_settings
from tests.factories import sign_up
from workers.registry import WORKFLOWS, Dependencies, activities
from workflows.contracts.payouts import PAYOUT_WORKFLOW, PayoutWorkflowInput, RunPayoutsOutput
from workflows.payouts import PayoutWorkflow

BP = 1000  # 10%
# Relative to the real clock: the ledger rows sit beside others the app stamped with it.
NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)


# --- factories -----------------------------------------------------------------------------


@dataclass
class PlacedOrder:
    order: Order
    payment: Payment
    lines: dict[uuid.UUID, list[OrderLine]]  # by vendor


async def make_order(
    session: AsyncSession,
    parts: dict[Vendor, Sequence[int]],
    *,
    currency: str = "EUR",
    confirmed: bool = True,
    confirmed_at: datetime | None = None,
) -> PlacedOrder:
    """A paid order: per vendor, lines of these totals (tax and shipping 0, so a part's
    total is the sum of its lines)."""
    totals = {vendor: sum(lines) for vendor, lines in parts.items()}
    grand = sum(totals.values())
    order_id = uuid.uuid4()
    order = Order(
        id=order_id,
        customer_id=None,
        idempotency_key=f"ledger-{order_id}",
        request_hash="0" * 64,
        status=OrderStatus.CONFIRMED if confirmed else OrderStatus.AWAITING_PAYMENT,
        currency=currency,
        prices_include_tax=False,
        items_subtotal=grand,
        discount_total=0,
        shipping_total=0,
        tax_total=0,
        grand_total=grand,
        shipping_address={},
        payment_provider="test",
        workflow_id=f"order:{order_id}",
        confirmed_at=(confirmed_at or datetime.now(UTC)) if confirmed else None,
    )
    if confirmed_at is not None:
        order.created_at = confirmed_at  # placed then, too
    session.add(order)
    await session.flush()
    lines: dict[uuid.UUID, list[OrderLine]] = {}
    for vendor, amounts in parts.items():
        session.add(
            OrderVendorPart(
                order_id=order_id,
                vendor_id=vendor.id,
                shipping_method_code="standard",
                shipping_method_name="Standard",
                shipping_amount=0,
                shipping_tax=0,
                items_subtotal=totals[vendor],
                discount=0,
                tax=0,
                total=totals[vendor],
            )
        )
        lines[vendor.id] = [
            OrderLine(
                order_id=order_id,
                vendor_id=vendor.id,
                sku=f"SKU-{n}",
                title=f"Item {n}",
                quantity=1,
                unit_price=amount,
                subtotal=amount,
                discount=0,
                tax=0,
                tax_rate_bp=0,
                total=amount,
            )
            for n, amount in enumerate(amounts)
        ]
        session.add_all(lines[vendor.id])
    payment = Payment(
        order_id=order_id,
        attempt=1,
        provider="test",
        status=PaymentStatus.CAPTURED,
        amount=grand,
        currency=currency,
        captured_amount=grand,
    )
    session.add(payment)
    await session.flush()
    return PlacedOrder(order, payment, lines)


async def make_refund(
    session: AsyncSession,
    placed: PlacedOrder,
    amount: int,
    *,
    vendor: Vendor | None = None,
    lines: Sequence[tuple[OrderLine, int]] = (),
    status: RefundStatus = RefundStatus.SUCCEEDED,
) -> Refund:
    refund = Refund(
        order_id=placed.order.id,
        payment_id=placed.payment.id,
        vendor_id=vendor.id if vendor else None,
        amount=amount,
        currency=placed.order.currency,
        status=status,
        source=RefundSource.GOODWILL if not lines else RefundSource.RETURN,
        reason="test",
    )
    session.add(refund)
    await session.flush()
    session.add_all(
        RefundLine(refund_id=refund.id, order_line_id=line.id, quantity=1, amount=line_amount)
        for line, line_amount in lines
    )
    await session.flush()
    return refund


async def make_dispute(
    session: AsyncSession,
    placed: PlacedOrder,
    amount: int,
    status: DisputeStatus = DisputeStatus.OPEN,
) -> Dispute:
    dispute = Dispute(
        order_id=placed.order.id,
        payment_id=placed.payment.id,
        provider="test",
        provider_dispute_id=f"dp_{uuid.uuid4().hex}",
        amount=amount,
        currency=placed.order.currency,
        status=status,
        evidence_due_at=NOW + 7 * DAY,
    )
    session.add(dispute)
    await session.flush()
    return dispute


async def vendor_entries(
    session: AsyncSession, vendor: Vendor, *, order: Order | None = None
) -> list[tuple[LedgerKind, int]]:
    query = select(LedgerEntry.kind, LedgerEntry.amount).where(LedgerEntry.vendor_id == vendor.id)
    if order is not None:
        query = query.where(LedgerEntry.order_id == order.id)
    return [
        (kind, amount) for kind, amount in (await session.execute(query.order_by(LedgerEntry.id)))
    ]


async def assert_books_balance(session: AsyncSession, vendor: Vendor) -> None:
    """sum(entries) == balance; sale - commission - refunds + commission refunds - disputes
    - payouts == balance; and each paid payout is the sum of the entries it settled."""
    balance = await ledger.balance(session, vendor_id=vendor.id)
    rows = (
        await session.execute(
            select(LedgerEntry.currency, LedgerEntry.kind, func.sum(LedgerEntry.amount))
            .where(LedgerEntry.vendor_id == vendor.id)
            .group_by(LedgerEntry.currency, LedgerEntry.kind)
        )
    ).all()
    sums: dict[str, dict[LedgerKind, int]] = {}
    for currency, kind, amount in rows:
        sums.setdefault(currency, {})[kind] = int(amount)
    assert set(sums) == set(balance)
    for currency, by_kind in sums.items():
        assert sum(by_kind.values()) == balance[currency]
        k = {kind: by_kind.get(kind, 0) for kind in LedgerKind}
        assert k[LedgerKind.SALE] >= 0
        assert k[LedgerKind.COMMISSION] <= 0
        assert k[LedgerKind.REFUND] <= 0
        assert k[LedgerKind.COMMISSION_REFUND] >= 0
        assert k[LedgerKind.DISPUTE] <= 0
        sale, commission, refunds = (
            k[LedgerKind.SALE],
            -k[LedgerKind.COMMISSION],
            -k[LedgerKind.REFUND],
        )
        commission_refunds, disputes, payouts = (
            k[LedgerKind.COMMISSION_REFUND],
            -k[LedgerKind.DISPUTE],
            -k[LedgerKind.PAYOUT],
        )
        assert (
            sale - commission - refunds + commission_refunds - disputes - payouts
            == balance[currency]
        )
    paid = await session.scalars(
        select(Payout).where(Payout.vendor_id == vendor.id, Payout.status == PayoutStatus.PAID)
    )
    for payout in paid:
        settled = await session.scalar(
            select(func.sum(LedgerEntry.amount)).where(
                LedgerEntry.payout_id == payout.id, LedgerEntry.entry_key != f"payout:{payout.id}"
            )
        )
        assert settled == payout.amount


def mine(payouts: Sequence[Payout], *vendors: Vendor) -> list[Payout]:
    """Only this test's vendors: the shared database may hold others' committed entries."""
    ids = {vendor.id for vendor in vendors}
    return [payout for payout in payouts if payout.vendor_id in ids]


def run_key() -> str:
    return f"test:{uuid.uuid4().hex}"


# --- recording -----------------------------------------------------------------------------


async def test_record_sale_credits_each_part_less_commission_half_up_once(
    db_session: AsyncSession,
) -> None:
    north, south = await make_vendor(db_session), await make_vendor(db_session)
    south.return_window_days = 14
    # 10% of 10.05 is 1.005 -> 1.01 (half up); of 29.94 it is 2.994 -> 2.99; of 0.15, 0.015 -> 0.02.
    placed = await make_order(db_session, {north: [1000, 5], south: [2994]})
    small = await make_order(db_session, {north: [15]})

    assert (
        await ledger.record_sale(db_session, order_id=placed.order.id, commission_bp=BP, now=NOW)
        == 4
    )
    assert (
        await ledger.record_sale(db_session, order_id=placed.order.id, commission_bp=BP, now=NOW)
        == 0
    )
    assert (
        await ledger.record_sale(db_session, order_id=small.order.id, commission_bp=BP, now=NOW)
        == 2
    )

    assert await vendor_entries(db_session, north, order=placed.order) == [
        (LedgerKind.SALE, 1005),
        (LedgerKind.COMMISSION, -101),
    ]
    assert await vendor_entries(db_session, south) == [
        (LedgerKind.SALE, 2994),
        (LedgerKind.COMMISSION, -299),
    ]
    assert await vendor_entries(db_session, north, order=small.order) == [
        (LedgerKind.SALE, 15),
        (LedgerKind.COMMISSION, -2),
    ]
    assert await ledger.balance(db_session, vendor_id=north.id) == {"EUR": 1005 - 101 + 15 - 2}
    assert await ledger.balance(db_session, vendor_id=south.id) == {"EUR": 2994 - 299}
    # Available after each vendor's return window.
    available = dict(
        (
            await db_session.execute(
                select(LedgerEntry.vendor_id, LedgerEntry.available_at).where(
                    LedgerEntry.order_id == placed.order.id, LedgerEntry.kind == LedgerKind.SALE
                )
            )
        ).all()
    )
    assert available == {north.id: NOW + 30 * DAY, south.id: NOW + 14 * DAY}
    for vendor in (north, south):
        await assert_books_balance(db_session, vendor)


async def test_record_sale_refuses_an_unpaid_order(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    placed = await make_order(db_session, {vendor: [1000]}, confirmed=False)
    with pytest.raises(ledger.OrderNotConfirmed):
        await ledger.record_sale(db_session, order_id=placed.order.id, commission_bp=BP, now=NOW)
    with pytest.raises(ledger.OrderNotFound):
        await ledger.record_sale(db_session, order_id=uuid.uuid4(), commission_bp=BP, now=NOW)


async def test_record_refund_by_vendor_by_lines_and_in_proportion(
    db_session: AsyncSession,
) -> None:
    north, south = await make_vendor(db_session), await make_vendor(db_session)
    placed = await make_order(db_session, {north: [1000, 5], south: [2994]})
    await ledger.record_sale(db_session, order_id=placed.order.id, commission_bp=BP, now=NOW)

    # The vendor's: all of it.
    by_vendor = await make_refund(db_session, placed, 500, vendor=south)
    assert (
        await ledger.record_refund(db_session, refund_id=by_vendor.id, commission_bp=BP, now=NOW)
        == 2
    )
    assert (
        await ledger.record_refund(db_session, refund_id=by_vendor.id, commission_bp=BP, now=NOW)
        == 0
    )
    refund_entries = select(LedgerEntry.vendor_id, LedgerEntry.kind, LedgerEntry.amount)
    rows = await db_session.execute(
        refund_entries.where(LedgerEntry.refund_id == by_vendor.id).order_by(LedgerEntry.id)
    )
    assert rows.all() == [
        (south.id, LedgerKind.REFUND, -500),
        (south.id, LedgerKind.COMMISSION_REFUND, 50),
    ]

    # By lines: each line's vendor gives back that line's amount.
    north_line = placed.lines[north.id][1]  # 0.05
    south_line = placed.lines[south.id][0]
    by_lines = await make_refund(
        db_session, placed, 5 + 333, lines=[(north_line, 5), (south_line, 333)]
    )
    assert (
        await ledger.record_refund(db_session, refund_id=by_lines.id, commission_bp=BP, now=NOW)
        == 4
    )
    rows = await db_session.execute(
        refund_entries.where(
            LedgerEntry.refund_id == by_lines.id, LedgerEntry.kind == LedgerKind.REFUND
        )
    )
    assert sorted(rows.all()) == sorted(
        [(north.id, LedgerKind.REFUND, -5), (south.id, LedgerKind.REFUND, -333)]
    )

    # Neither: in proportion to the parts (10.05 : 29.94), largest remainder.
    # 1000 * 1005 / 3999 = 251.31..., 1000 * 2994 / 3999 = 748.68...: the missing unit goes south.
    spread = await make_refund(db_session, placed, 1000)
    assert (
        await ledger.record_refund(db_session, refund_id=spread.id, commission_bp=BP, now=NOW) == 4
    )
    rows = await db_session.execute(
        refund_entries.where(
            LedgerEntry.refund_id == spread.id, LedgerEntry.kind == LedgerKind.REFUND
        )
    )
    shares = {vendor_id: -amount for vendor_id, _, amount in rows.all()}
    assert shares == {north.id: 251, south.id: 749}
    assert sum(shares.values()) == spread.amount

    pending = await make_refund(db_session, placed, 10, status=RefundStatus.PENDING)
    with pytest.raises(ledger.RefundNotSucceeded):
        await ledger.record_refund(db_session, refund_id=pending.id, commission_bp=BP, now=NOW)
    for vendor in (north, south):
        await assert_books_balance(db_session, vendor)


async def test_refunding_a_part_in_pieces_gives_back_exactly_its_commission(
    db_session: AsyncSession,
) -> None:
    vendor = await make_vendor(db_session)
    placed = await make_order(db_session, {vendor: [15]})  # commission 1.5 -> 2
    await ledger.record_sale(db_session, order_id=placed.order.id, commission_bp=BP, now=NOW)
    given_back = []
    for _ in range(3):
        refund = await make_refund(db_session, placed, 5, vendor=vendor)
        await ledger.record_refund(db_session, refund_id=refund.id, commission_bp=BP, now=NOW)
        given_back.append(
            await db_session.scalar(
                select(LedgerEntry.amount).where(
                    LedgerEntry.refund_id == refund.id,
                    LedgerEntry.kind == LedgerKind.COMMISSION_REFUND,
                )
            )
        )
    # Cumulative: 0.5 -> 1, 1.0 -> 1, 1.5 -> 2 (never more than the 2 taken).
    assert given_back == [1, 0, 1]
    assert await ledger.balance(db_session, vendor_id=vendor.id) == {"EUR": 0}
    await assert_books_balance(db_session, vendor)


async def test_a_lost_dispute_is_split_over_the_vendors(db_session: AsyncSession) -> None:
    north, south = await make_vendor(db_session), await make_vendor(db_session)
    placed = await make_order(db_session, {north: [1000], south: [3000]})
    await ledger.record_sale(db_session, order_id=placed.order.id, commission_bp=BP, now=NOW)
    dispute = await make_dispute(db_session, placed, 1001)
    with pytest.raises(ledger.DisputeNotLost):
        await ledger.record_dispute_lost(db_session, dispute_id=dispute.id, now=NOW)
    dispute.status = DisputeStatus.LOST
    await db_session.flush()
    assert await ledger.record_dispute_lost(db_session, dispute_id=dispute.id, now=NOW) == 2
    assert await ledger.record_dispute_lost(db_session, dispute_id=dispute.id, now=NOW) == 0
    # 1001 * 1/4 = 250.25, * 3/4 = 750.75: the missing unit goes south.
    assert (await vendor_entries(db_session, north))[-1] == (LedgerKind.DISPUTE, -250)
    assert (await vendor_entries(db_session, south))[-1] == (LedgerKind.DISPUTE, -751)
    for vendor in (north, south):
        await assert_books_balance(db_session, vendor)


# --- payable and the dispute freeze --------------------------------------------------------


async def test_an_open_dispute_freezes_the_orders_entries_until_won(
    db_session: AsyncSession,
) -> None:
    vendor = await make_vendor(db_session)
    disputed = await make_order(db_session, {vendor: [2000]})
    other = await make_order(db_session, {vendor: [1000]})
    past = NOW - 40 * DAY  # window of 30 days: available 10 days ago
    for placed in (disputed, other):
        await ledger.record_sale(db_session, order_id=placed.order.id, commission_bp=BP, now=past)
    refund = await make_refund(db_session, disputed, 100, vendor=vendor)
    await ledger.record_refund(db_session, refund_id=refund.id, commission_bp=BP, now=past)
    assert await ledger.payable(db_session, vendor_id=vendor.id, now=NOW) == {
        "EUR": 1800 + 900 - 100 + 10
    }

    dispute = await make_dispute(db_session, disputed, 2000)
    # Every entry of the disputed order is held back, its refund too.
    assert await ledger.payable(db_session, vendor_id=vendor.id, now=NOW) == {"EUR": 900}
    assert await ledger.frozen(db_session, vendor_id=vendor.id) == {"EUR": 1800 - 100 + 10}
    paid = mine(await ledger.run_payouts(db_session, run_key=run_key(), now=NOW), vendor)
    assert [(p.amount, p.status) for p in paid] == [(900, PayoutStatus.PAID)]

    dispute.status = DisputeStatus.WON
    await db_session.flush()
    assert await ledger.frozen(db_session, vendor_id=vendor.id) == {}
    assert await ledger.payable(db_session, vendor_id=vendor.id, now=NOW) == {"EUR": 1710}
    paid = mine(await ledger.run_payouts(db_session, run_key=run_key(), now=NOW), vendor)
    assert [p.amount for p in paid] == [1710]
    assert await ledger.balance(db_session, vendor_id=vendor.id) == {"EUR": 0}
    await assert_books_balance(db_session, vendor)


async def test_a_lost_dispute_unfreezes_with_the_chargeback_deducted(
    db_session: AsyncSession,
) -> None:
    vendor = await make_vendor(db_session)
    placed = await make_order(db_session, {vendor: [2000]})
    await ledger.record_sale(
        db_session, order_id=placed.order.id, commission_bp=BP, now=NOW - 40 * DAY
    )
    dispute = await make_dispute(db_session, placed, 500)
    assert await ledger.payable(db_session, vendor_id=vendor.id, now=NOW) == {}
    dispute.status = DisputeStatus.LOST
    await db_session.flush()
    await ledger.record_dispute_lost(db_session, dispute_id=dispute.id, now=NOW)
    assert await ledger.payable(db_session, vendor_id=vendor.id, now=NOW) == {"EUR": 1800 - 500}
    await assert_books_balance(db_session, vendor)


# --- payout runs ---------------------------------------------------------------------------


async def test_a_run_pays_only_what_is_past_its_window_and_never_twice(
    db_session: AsyncSession,
) -> None:
    north, south = await make_vendor(db_session), await make_vendor(db_session)
    old = await make_order(db_session, {north: [1005], south: [2000]})
    new = await make_order(db_session, {north: [3000]})
    await ledger.record_sale(
        db_session, order_id=old.order.id, commission_bp=BP, now=NOW - 31 * DAY
    )
    await ledger.record_sale(db_session, order_id=new.order.id, commission_bp=BP, now=NOW - 5 * DAY)

    key = run_key()
    first = mine(await ledger.run_payouts(db_session, run_key=key, now=NOW), north, south)
    assert sorted((p.vendor_id, p.amount, p.currency) for p in first) == sorted(
        [(north.id, 1005 - 101, "EUR"), (south.id, 2000 - 200, "EUR")]
    )
    for payout in first:
        assert payout.status == PayoutStatus.PAID
        assert (payout.provider_reference or "").startswith("tr_test_")
        assert payout.paid_at is not None
        assert payout.run_key == f"{key}:EUR"
    # The old order's entries point at the payout; the new one's wait.
    settled = dict(
        (
            await db_session.execute(
                select(LedgerEntry.order_id, func.count(LedgerEntry.payout_id))
                .where(LedgerEntry.vendor_id == north.id, LedgerEntry.order_id.is_not(None))
                .group_by(LedgerEntry.order_id)
            )
        ).all()
    )
    assert settled == {old.order.id: 2, new.order.id: 0}
    assert await ledger.balance(db_session, vendor_id=north.id) == {"EUR": 3000 - 300}
    assert await ledger.balance(db_session, vendor_id=south.id) == {"EUR": 0}

    # The same run again (a retried activity): the same payouts, nothing new.
    again = mine(await ledger.run_payouts(db_session, run_key=key, now=NOW), north, south)
    assert sorted(p.id for p in again) == sorted(p.id for p in first)
    count = (
        select(func.count()).select_from(Payout).where(Payout.vendor_id.in_([north.id, south.id]))
    )
    assert await db_session.scalar(count) == 2
    # Another run at the same time finds nothing left to pay.
    assert (
        mine(await ledger.run_payouts(db_session, run_key=run_key(), now=NOW), north, south) == []
    )
    # Once the new order's window has passed, it is paid.
    later = mine(
        await ledger.run_payouts(db_session, run_key=run_key(), now=NOW + 26 * DAY), north, south
    )
    assert [(p.vendor_id, p.amount) for p in later] == [(north.id, 2700)]
    assert await ledger.balance(db_session, vendor_id=north.id) == {"EUR": 0}
    for vendor in (north, south):
        await assert_books_balance(db_session, vendor)
    listed = await ledger.payouts(db_session, vendor_id=north.id, limit=1)
    assert [p.amount for p in listed.items] == [2700]
    assert listed.next_cursor is not None
    older = await ledger.payouts(db_session, vendor_id=north.id, limit=5, cursor=listed.next_cursor)
    assert [p.amount for p in older.items] == [904]
    assert older.next_cursor is None


async def test_debits_net_against_the_next_payout_and_never_pay_negative(
    db_session: AsyncSession,
) -> None:
    vendor = await make_vendor(db_session)
    paid_out = await make_order(db_session, {vendor: [1000]})
    await ledger.record_sale(
        db_session, order_id=paid_out.order.id, commission_bp=BP, now=NOW - 40 * DAY
    )
    assert [
        p.amount
        for p in mine(await ledger.run_payouts(db_session, run_key=run_key(), now=NOW), vendor)
    ] == [900]
    # Refunded after it was paid out: the vendor owes 9.00, nothing is paid.
    refund = await make_refund(db_session, paid_out, 1000, vendor=vendor)
    await ledger.record_refund(db_session, refund_id=refund.id, commission_bp=BP, now=NOW)
    assert await ledger.payable(db_session, vendor_id=vendor.id, now=NOW) == {"EUR": -900}
    assert mine(await ledger.run_payouts(db_session, run_key=run_key(), now=NOW), vendor) == []
    # The next sale pays what is left after the debt.
    next_sale = await make_order(db_session, {vendor: [2000]})
    await ledger.record_sale(
        db_session, order_id=next_sale.order.id, commission_bp=BP, now=NOW - 40 * DAY
    )
    paid = mine(await ledger.run_payouts(db_session, run_key=run_key(), now=NOW), vendor)
    assert [p.amount for p in paid] == [1800 - 900]
    assert await ledger.balance(db_session, vendor_id=vendor.id) == {"EUR": 0}
    await assert_books_balance(db_session, vendor)


async def test_a_refused_transfer_puts_the_money_back_for_the_next_run(
    db_session: AsyncSession,
) -> None:
    vendor = await make_vendor(db_session)
    placed = await make_order(db_session, {vendor: [1000]}, currency="USD")
    await ledger.record_sale(
        db_session, order_id=placed.order.id, commission_bp=BP, now=NOW - 40 * DAY
    )
    refusing = ledger.TestPayoutProvider(refuse={vendor.id})
    failed = mine(
        await ledger.run_payouts(db_session, run_key=run_key(), now=NOW, provider=refusing), vendor
    )
    assert [(p.status, p.amount, p.currency) for p in failed] == [(PayoutStatus.FAILED, 900, "USD")]
    assert await ledger.balance(db_session, vendor_id=vendor.id) == {"USD": 900}
    assert await ledger.payable(db_session, vendor_id=vendor.id, now=NOW) == {"USD": 900}
    provider = ledger.TestPayoutProvider()
    paid = mine(
        await ledger.run_payouts(db_session, run_key=run_key(), now=NOW, provider=provider), vendor
    )
    assert [(p.status, p.amount) for p in paid] == [(PayoutStatus.PAID, 900)]
    assert [(t.amount, t.currency) for t in provider.transfers.values()] == [(900, "USD")]
    assert await ledger.balance(db_session, vendor_id=vendor.id) == {"USD": 0}
    await assert_books_balance(db_session, vendor)


async def test_the_books_balance_after_everything_at_once(db_session: AsyncSession) -> None:
    north, south = await make_vendor(db_session), await make_vendor(db_session)
    past = NOW - 40 * DAY
    orders = [
        await make_order(db_session, {north: [1234, 567], south: [891]}),
        await make_order(db_session, {north: [999]}, currency="GBP"),
        await make_order(db_session, {south: [4321, 1]}),
    ]
    for placed in orders:
        await ledger.record_sale(db_session, order_id=placed.order.id, commission_bp=BP, now=past)
    refunds = [
        await make_refund(db_session, orders[0], 777),
        await make_refund(db_session, orders[0], 567, lines=[(orders[0].lines[north.id][1], 567)]),
        await make_refund(db_session, orders[1], 333, vendor=north),
    ]
    for refund in refunds:
        await ledger.record_refund(db_session, refund_id=refund.id, commission_bp=BP, now=past)
    lost = await make_dispute(db_session, orders[2], 1000, status=DisputeStatus.LOST)
    await ledger.record_dispute_lost(db_session, dispute_id=lost.id, now=past)
    await make_dispute(db_session, orders[0], 50)  # open: order 0 frozen
    mine(await ledger.run_payouts(db_session, run_key=run_key(), now=NOW), north, south)
    for vendor in (north, south):
        await assert_books_balance(db_session, vendor)
    # What stays is exactly what is frozen (order 0) per currency.
    for vendor in (north, south):
        balance = await ledger.balance(db_session, vendor_id=vendor.id)
        frozen = await ledger.frozen(db_session, vendor_id=vendor.id)
        assert {c: a for c, a in balance.items() if a} == frozen


# --- the workflow, the schedule and the routes ---------------------------------------------


@pytest.fixture
async def committed(fresh_database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A database of the test's own whose writes commit, as the worker's do."""
    engine = create_async_engine(fresh_database_url, poolclass=NullPool)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


def payout_settings(database_url: str, temporal_address: str, task_queue: str) -> Settings:
    return make_settings(
        database_url,
        temporal_address,
        temporal_task_queue=task_queue,
        activity_retry_initial_s=0.05,
        activity_retry_max_s=0.5,
        activity_timeout_s=10.0,
        payout_interval_s=3600,
    )


def payout_worker(
    temporal_env: WorkflowEnvironment,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    task_queue: str,
    deps: Dependencies,
) -> Worker:
    """The real worker: every workflow and activity of the registry."""
    return Worker(
        temporal_env.client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=activities(deps),
    )


async def _payable_shop(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> tuple[Vendor, Vendor]:
    async with sessionmaker.begin() as session:
        north, south = await make_vendor(session), await make_vendor(session)
        placed = await make_order(session, {north: [1005], south: [2000, 99]})
        await ledger.record_sale(
            session,
            order_id=placed.order.id,
            commission_bp=BP,
            now=datetime.now(UTC) - 40 * DAY,
        )
    return north, south


async def test_the_schedule_is_created_then_updated_and_its_runs_pay(
    temporal_env: WorkflowEnvironment,
    temporal_address: str,
    fresh_database_url: str,
    committed: async_sessionmaker[AsyncSession],
    task_queue: str,
) -> None:
    client = temporal_env.client
    settings = payout_settings(fresh_database_url, temporal_address, task_queue)
    schedule_id = f"payouts-test-{uuid.uuid4().hex[:8]}"
    await ensure_payout_schedule(client, settings, schedule_id=schedule_id)
    handle = client.get_schedule_handle(schedule_id)
    try:
        described = await handle.describe()
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == PAYOUT_WORKFLOW
        assert action.task_queue == task_queue
        assert [i.every for i in described.schedule.spec.intervals] == [timedelta(hours=1)]
        with pytest.raises(ScheduleAlreadyRunningError):
            await client.create_schedule(schedule_id, described.schedule)

        # Run again with other settings (a redeploy): updated, an operator's pause kept.
        await handle.pause(note="paused by operations")
        faster = payout_settings(fresh_database_url, temporal_address, task_queue)
        faster = faster.model_copy(update={"payout_interval_s": 600.0})
        await ensure_payout_schedule(client, faster, schedule_id=schedule_id)
        described = await handle.describe()
        assert [i.every for i in described.schedule.spec.intervals] == [timedelta(minutes=10)]
        assert described.schedule.state.paused
        await handle.unpause()

        north, south = await _payable_shop(committed)
        deps = Dependencies.build(settings, committed)
        try:
            async with payout_worker(temporal_env, settings, committed, task_queue, deps):
                await handle.trigger()
                result = await _scheduled_result(client, handle)
        finally:
            await deps.aclose()
        assert (result.payouts, result.paid) == (2, 2)
        assert result.amounts == {"EUR": (1005 - 101) + (2099 - 210)}
        async with committed() as session:
            for vendor in (north, south):
                assert await ledger.balance(session, vendor_id=vendor.id) == {"EUR": 0}
                await assert_books_balance(session, vendor)
            runs = (await session.scalars(select(Payout.run_key).distinct())).all()
        # Keyed by the time the schedule was due, to the second.
        assert len(runs) == 1
        assert re.fullmatch(r"payouts:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ:EUR", runs[0])
    finally:
        await handle.delete()


async def _scheduled_result(client: Client, handle: ScheduleHandle) -> RunPayoutsOutput:
    """The outcome of the run the schedule started."""
    for _ in range(200):
        described = await handle.describe()
        if described.info.recent_actions:
            run = described.info.recent_actions[-1].action
            workflow = client.get_workflow_handle_for(
                PayoutWorkflow.run, run.workflow_id, run_id=run.first_execution_run_id
            )
            return await workflow.result()
        await asyncio.sleep(0.05)
    raise AssertionError("the schedule never started its workflow")


async def test_a_started_run_pays_and_a_second_start_of_it_pays_nothing(
    temporal_env: WorkflowEnvironment,
    temporal_address: str,
    fresh_database_url: str,
    committed: async_sessionmaker[AsyncSession],
    task_queue: str,
) -> None:
    settings = payout_settings(fresh_database_url, temporal_address, task_queue)
    north, south = await _payable_shop(committed)
    deps = Dependencies.build(settings, committed)
    key = run_key()
    try:
        async with payout_worker(temporal_env, settings, committed, task_queue, deps):
            outcomes = [
                await temporal_env.client.execute_workflow(
                    PayoutWorkflow.run,
                    PayoutWorkflowInput(run_key=key),
                    id=f"payouts-test-{uuid.uuid4().hex}",
                    task_queue=task_queue,
                )
                for _ in range(2)
            ]
    finally:
        await deps.aclose()
    assert [(o.payouts, o.paid) for o in outcomes] == [(2, 2), (2, 2)]
    async with committed() as session:
        paid = (await session.scalars(select(Payout))).all()
        assert sorted(p.amount for p in paid) == [904, 1889]
        for vendor in (north, south):
            await assert_books_balance(session, vendor)


async def test_routes_show_the_ledger_and_payouts_and_admins_run_payouts(
    temporal_env: WorkflowEnvironment,
    temporal_address: str,
    fresh_database_url: str,
    committed: async_sessionmaker[AsyncSession],
    task_queue: str,
) -> None:
    settings = payout_settings(fresh_database_url, temporal_address, task_queue)
    app = create_app(settings)
    north, south = await _payable_shop(committed)
    async with committed.begin() as session:
        frozen_order = await make_order(session, {north: [500]})
        await ledger.record_sale(
            session,
            order_id=frozen_order.order.id,
            commission_bp=BP,
            now=datetime.now(UTC) - 40 * DAY,
        )
        await make_dispute(session, frozen_order, 500)
    deps = Dependencies.build(settings, committed)
    try:
        async with payout_worker(temporal_env, settings, committed, task_queue, deps):
            async for http in _client_for(app):
                async with committed() as session:
                    manager = await sign_up(http, session)
                    outsider = await sign_up(http, session)
                    admin = await sign_up(http, session)
                async with committed.begin() as session:
                    session.add(
                        VendorMembership(
                            vendor_id=north.id,
                            user_id=uuid.UUID(manager.id),
                            role=VendorRole.MANAGER,
                        )
                    )
                    session.add(
                        VendorMembership(
                            vendor_id=south.id,
                            user_id=uuid.UUID(outsider.id),
                            role=VendorRole.MANAGER,
                        )
                    )
                    user = await session.get(User, uuid.UUID(admin.id))
                    assert user is not None
                    user.platform_role = PlatformRole.ADMIN

                response = await http.get(f"/vendors/{north.id}/ledger", headers=manager.headers)
                assert response.status_code == 200, response.text
                body = response.json()
                assert body["balances"] == [
                    {
                        "currency": "EUR",
                        "balance": {"amount": 904 + 450, "currency": "EUR"},
                        "payable": {"amount": 904, "currency": "EUR"},
                        "frozen": {"amount": 450, "currency": "EUR"},
                    }
                ]
                assert [e["kind"] for e in body["items"]] == [
                    "commission",
                    "sale",
                    "commission",
                    "sale",
                ]
                page = await http.get(
                    f"/vendors/{north.id}/ledger?limit=3", headers=manager.headers
                )
                older = await http.get(
                    f"/vendors/{north.id}/ledger",
                    params={"limit": 3, "cursor": page.json()["next_cursor"]},
                    headers=manager.headers,
                )
                assert [e["id"] for e in page.json()["items"] + older.json()["items"]] == [
                    e["id"] for e in body["items"]
                ]
                assert older.json()["next_cursor"] is None
                # Another vendor's manager: no such vendor.
                for path in (f"/vendors/{north.id}/ledger", f"/vendors/{north.id}/payouts"):
                    response = await http.get(path, headers=outsider.headers)
                    assert response.status_code == 404, response.text
                response = await http.post("/admin/payouts/run", headers=manager.headers)
                assert response.status_code == 403, response.text

                response = await http.post("/admin/payouts/run?wait=true", headers=admin.headers)
                assert response.status_code == 200, response.text
                run = response.json()
                assert run["finished"] is True
                assert run["amounts"] == [{"amount": 904 + 1889, "currency": "EUR"}]

                response = await http.get(f"/vendors/{north.id}/payouts", headers=manager.headers)
                assert response.status_code == 200, response.text
                payouts = response.json()
                assert [(p["amount"]["amount"], p["status"]) for p in payouts["items"]] == [
                    (904, "paid")
                ]
                assert payouts["next_cursor"] is None
                response = await http.get(f"/vendors/{north.id}/ledger", headers=manager.headers)
                assert response.json()["balances"] == [
                    {
                        "currency": "EUR",
                        "balance": {"amount": 450, "currency": "EUR"},
                        "payable": {"amount": 0, "currency": "EUR"},
                        "frozen": {"amount": 450, "currency": "EUR"},
                    }
                ]
                response = await http.post("/admin/payouts/run", headers=admin.headers)
                assert response.status_code == 202, response.text
                started = response.json()
                assert started["finished"] is False
                handle = temporal_env.client.get_workflow_handle(started["workflow_id"])
                await handle.result()
                assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    finally:
        await deps.aclose()


async def test_concurrent_runs_with_different_keys_pay_each_entry_once(
    committed: async_sessionmaker[AsyncSession],
) -> None:
    vendors = []
    async with committed.begin() as session:
        for _ in range(5):
            vendor = await make_vendor(session)
            vendors.append(vendor)
            for amount in (1000, 2000, 3000):
                placed = await make_order(session, {vendor: [amount]})
                await ledger.record_sale(
                    session, order_id=placed.order.id, commission_bp=BP, now=NOW - 40 * DAY
                )

    async def one_run() -> list[Payout]:
        async with committed.begin() as session:
            return await ledger.run_payouts(session, run_key=run_key(), now=NOW)

    runs = await asyncio.gather(*(one_run() for _ in range(4)))
    paid = [payout for run in runs for payout in run]
    assert sorted(p.vendor_id for p in paid) == sorted(v.id for v in vendors)
    assert {p.amount for p in paid} == {5400}
    async with committed() as session:
        for vendor in vendors:
            assert await ledger.balance(session, vendor_id=vendor.id) == {"EUR": 0}
            await assert_books_balance(session, vendor)
