"""Disputes end to end: a captured order, the test provider's signed ``payment.disputed``
webhook, the real worker running ``DisputeWorkflow``, real Temporal, real PostgreSQL, the
admin and vendor routes over HTTP. Each test has a database and a task queue of its own."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from api.routes.webhooks import accept
from commerce.aftersales import disputes
from commerce.checkout.pricing import split_by_weight
from commerce.finance import ledger
from commerce.payments import WebhookEvent
from models import (
    Dispute,
    DisputeStatus,
    LedgerEntry,
    LedgerKind,
    OrderVendorPart,
    Payment,
    PlatformRole,
    User,
    Vendor,
    VendorMembership,
    VendorRole,
)
from tests.catalog_factories import make_vendor
from tests.factories import Account, sign_up
from tests.order_harness import Platform, platform
from workflows.contracts.disputes import DisputeSettled, DisputeView, dispute_workflow_id
from workflows.contracts.search_attributes import ORDER_ID
from workflows.disputes import DisputeWorkflow

HISTORIES = Path(__file__).resolve().parents[1] / "histories"

pytestmark = pytest.mark.slow

#: Past every return window: what a payout run could pay once nothing is frozen.
FAR = datetime.now(UTC) + timedelta(days=3650)


# --- the platform ------------------------------------------------------------------------------


@pytest.fixture
async def short_deadline(
    fresh_database_url: str, temporal_env: WorkflowEnvironment, temporal_address: str
) -> AsyncIterator[Platform]:
    """Evidence due two seconds after a dispute opens."""
    async with platform(
        fresh_database_url, temporal_env.client, temporal_address, dispute_evidence_within_s=2.0
    ) as p:
        yield p


@pytest.fixture
async def long_deadline(
    fresh_database_url: str, temporal_env: WorkflowEnvironment, temporal_address: str
) -> AsyncIterator[Platform]:
    """Evidence due in an hour: no reminder during the test."""
    async with platform(
        fresh_database_url, temporal_env.client, temporal_address, dispute_evidence_within_s=3600.0
    ) as p:
        yield p


# --- helpers -------------------------------------------------------------------------------


@dataclass
class PaidOrder:
    id: uuid.UUID
    payment_id: str  # the provider's
    total: int
    parts: dict[uuid.UUID, int]  # vendor -> part total
    earned: dict[uuid.UUID, int]  # vendor -> its entries of the order (sale less commission)


async def paid_order(p: Platform) -> PaidOrder:
    """A captured two-vendor order (North's tees, South's mug), credited to the ledger."""
    account = await p.shopper()
    await p.add(account, p.shop.tee, 2)
    await p.add(account, p.shop.mug, 1)
    answer = await p.checkout(account, "tok_ok")
    assert answer.status_code == 201, answer.text
    order_id = answer.json()["order_id"]
    order = await p.wait_for(order_id, "confirmed")
    [payment] = await p.payments(order_id)
    assert payment.provider_payment_id is not None
    assert payment.captured_amount == order.grand_total
    async with p.sessionmaker.begin() as session:
        await ledger.record_sale(
            session,
            order_id=order.id,
            commission_bp=p.settings.platform_commission_bp,
            now=datetime.now(UTC),
        )
        parts = await session.execute(
            select(OrderVendorPart.vendor_id, OrderVendorPart.total).where(
                OrderVendorPart.order_id == order.id
            )
        )
        totals = {vendor_id: int(total) for vendor_id, total in parts.all()}
        entries = await session.execute(
            select(LedgerEntry.vendor_id, func.sum(LedgerEntry.amount))
            .where(LedgerEntry.order_id == order.id)
            .group_by(LedgerEntry.vendor_id)
        )
        earned = {vendor_id: int(amount) for vendor_id, amount in entries.all()}
    assert set(earned) == set(totals)
    return PaidOrder(order.id, payment.provider_payment_id, order.grand_total, totals, earned)


async def deliver_dispute(
    p: Platform, order: PaidOrder, *, event_id: str, amount: int | None = None
) -> Dispute | None:
    """The provider's signed ``payment.disputed`` webhook, verified, stored and signalled as
    ``POST /webhooks/test`` does, then handed to ``open_dispute_from_webhook`` (as the route
    will)."""
    signed = p.provider.signed_webhook(
        WebhookEvent(event_id, "payment.disputed", order.payment_id, "disputed", amount)
    )
    event = p.provider.parse_webhook(signed.payload, signed.headers)
    async with p.sessionmaker() as session:
        await accept(session, p.temporal, provider="test", event=event, now=datetime.now(UTC))
        return await disputes.open_dispute_from_webhook(
            session, p.temporal, p.settings, provider="test", event=event, now=datetime.now(UTC)
        )


async def staff_user(p: Platform, *, role: PlatformRole | None = None) -> Account:
    async with p.sessionmaker() as session:
        account = await sign_up(p.client, session)
    if role is not None:
        async with p.sessionmaker.begin() as session:
            await session.execute(
                update(User).where(User.id == uuid.UUID(account.id)).values(platform_role=role)
            )
    return account


async def vendor_staff(p: Platform, vendor_id: uuid.UUID) -> Account:
    account = await staff_user(p)
    async with p.sessionmaker.begin() as session:
        session.add(
            VendorMembership(
                vendor_id=vendor_id, user_id=uuid.UUID(account.id), role=VendorRole.STAFF
            )
        )
    return account


async def templates(p: Platform, to: str) -> list[str]:
    """The dispute emails sent to ``to``, oldest first."""
    return [mail.template for mail in await p.mails(to) if mail.template.startswith("dispute_")]


async def dispute_entries(p: Platform, dispute_id: uuid.UUID) -> dict[uuid.UUID, int]:
    async with p.sessionmaker() as session:
        rows = await session.execute(
            select(LedgerEntry.vendor_id, LedgerEntry.amount).where(
                LedgerEntry.dispute_id == dispute_id, LedgerEntry.kind == LedgerKind.DISPUTE
            )
        )
        return {vendor_id: int(amount) for vendor_id, amount in rows.all()}


async def payable(p: Platform, vendor: Vendor) -> dict[str, int]:
    async with p.sessionmaker() as session:
        return await ledger.payable(session, vendor_id=vendor.id, now=FAR)


def earned(p: Platform, order: PaidOrder, vendor: Vendor) -> int:
    """The vendor's part less the platform's commission, as credited."""
    return order.earned[vendor.id]


async def settled(p: Platform, dispute_id: uuid.UUID, *, within: float = 30.0) -> DisputeSettled:
    handle = p.temporal.get_workflow_handle(
        dispute_workflow_id(str(dispute_id)), result_type=DisputeSettled
    )
    return await asyncio.wait_for(handle.result(), timeout=within)


async def dispute_count(p: Platform) -> int:
    async with p.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Dispute)) or 0)


# --- tests ---------------------------------------------------------------------------------


async def test_a_lost_dispute_freezes_reminds_then_debits_the_vendors(
    short_deadline: Platform,
) -> None:
    p = short_deadline
    north, south = p.shop.north, p.shop.south
    ops = await staff_user(p, role=PlatformRole.OPERATIONS)
    order = await paid_order(p)
    assert await payable(p, north) == {"EUR": earned(p, order, north)}

    dispute = await deliver_dispute(p, order, event_id="evt_dispute_1", amount=3000)
    assert dispute is not None
    assert (dispute.status, dispute.amount, dispute.currency) == (DisputeStatus.OPEN, 3000, "EUR")
    assert dispute.order_id == order.id
    assert dispute.provider_dispute_id == "evt_dispute_1"
    # A redelivery is the same dispute.
    again = await deliver_dispute(p, order, event_id="evt_dispute_1", amount=3000)
    assert again is not None
    assert again.id == dispute.id
    assert await dispute_count(p) == 1

    # The workflow runs, findable by its order; vendors and operations are told, once.
    handle = p.temporal.get_workflow_handle(dispute_workflow_id(str(dispute.id)))
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
    assert description.typed_search_attributes.get(ORDER_ID) == str(order.id)
    assert "30.00 EUR" in (await description.static_summary() or "")

    async def announced() -> bool:
        return "dispute_opened" in await p.events(str(order.id))

    await p.eventually(announced)
    for vendor in (north, south):
        assert await templates(p, vendor.contact_email or "") == [
            "dispute_opened_vendor",
        ]
    assert await templates(p, ops.email) == ["dispute_opened_operations"]

    # The order's entries are frozen while the dispute is open.
    assert await payable(p, north) == {}
    assert await payable(p, south) == {}
    async with p.sessionmaker() as session:
        assert await ledger.frozen(session, vendor_id=north.id) == {"EUR": earned(p, order, north)}

    # At the deadline operations are reminded once; the workflow goes on waiting.
    async def reminded() -> bool:
        return "dispute_reminder_operations" in await templates(p, ops.email)

    await p.eventually(reminded)
    view = await handle.query(DisputeWorkflow.status)
    assert isinstance(view, DisputeView)
    assert (view.phase, view.reminded, view.outcome) == ("awaiting_outcome", True, None)
    await asyncio.sleep(1.0)
    assert await templates(p, ops.email) == [
        "dispute_opened_operations",
        "dispute_reminder_operations",
    ]
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

    # Reading: operations see it, vendors see theirs, nobody else does.
    listed = await p.client.get("/admin/disputes?status=open", headers=ops.headers)
    assert listed.status_code == 200, listed.text
    assert [item["id"] for item in listed.json()["items"]] == [str(dispute.id)]
    closed = await p.client.get("/admin/disputes?status=lost", headers=ops.headers)
    assert closed.json()["items"] == []
    shopper = await staff_user(p)
    assert (await p.client.get("/admin/disputes", headers=shopper.headers)).status_code == 403
    north_staff = await vendor_staff(p, north.id)
    seen = await p.client.get(f"/vendors/{north.id}/disputes", headers=north_staff.headers)
    assert seen.status_code == 200, seen.text
    assert [(i["id"], i["status"]) for i in seen.json()["items"]] == [(str(dispute.id), "open")]
    other = await p.client.get(f"/vendors/{south.id}/disputes", headers=north_staff.headers)
    assert other.status_code == 404
    async with p.sessionmaker.begin() as session:
        third = await make_vendor(session, name="Third")
    third_staff = await vendor_staff(p, third.id)
    unrelated = await p.client.get(f"/vendors/{third.id}/disputes", headers=third_staff.headers)
    assert unrelated.status_code == 200
    assert unrelated.json()["items"] == []

    # Lost: the vendors pay the chargeback, in proportion to their parts; the freeze ends.
    answer = await p.client.post(
        f"/admin/disputes/{dispute.id}/outcome", headers=ops.headers, json={"outcome": "lost"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "lost"
    result = await settled(p, dispute.id)
    assert (result.status, result.ledger_entries, result.recipients) == ("lost", 2, 2)
    shares = split_by_weight(3000, order.parts)
    entries = await dispute_entries(p, dispute.id)
    assert entries == {vendor_id: -share for vendor_id, share in shares.items()}
    assert sum(entries.values()) == -3000
    assert await payable(p, north) == {"EUR": earned(p, order, north) - shares[north.id]}
    assert await payable(p, south) == {"EUR": earned(p, order, south) - shares[south.id]}
    async with p.sessionmaker() as session:
        assert await ledger.frozen(session, vendor_id=north.id) == {}
    for vendor in (north, south):
        assert await templates(p, vendor.contact_email or "") == [
            "dispute_opened_vendor",
            "dispute_lost_vendor",
        ]
    assert "dispute_lost" in await p.events(str(order.id))

    # A second outcome is refused; what was lost shows in both views.
    twice = await p.client.post(
        f"/admin/disputes/{dispute.id}/outcome", headers=ops.headers, json={"outcome": "won"}
    )
    assert twice.status_code == 409
    assert twice.json()["code"] == "dispute_closed"
    assert twice.json()["outcome"] == "lost"
    detail = (await p.client.get(f"/admin/disputes/{dispute.id}", headers=ops.headers)).json()
    assert detail["status"] == "lost"
    assert detail["closed_at"] is not None
    assert sorted(d["amount"]["amount"] for d in detail["debits"]) == sorted(entries.values())
    seen = await p.client.get(f"/vendors/{north.id}/disputes", headers=north_staff.headers)
    assert seen.json()["items"][0]["debit"] == {"amount": -shares[north.id], "currency": "EUR"}

    # The history replays: the workflow is deterministic (and is kept for the replay test).
    history = await handle.fetch_history()
    await Replayer(workflows=[DisputeWorkflow]).replay_workflow(history)
    if os.environ.get("RECORD_WORKFLOW_HISTORIES") == "1":
        (HISTORIES / "dispute_lost.json").write_text(history.to_json() + "\n")


async def test_a_won_dispute_debits_nobody_and_releases_the_freeze(
    long_deadline: Platform,
) -> None:
    p = long_deadline
    north, south = p.shop.north, p.shop.south
    ops = await staff_user(p, role=PlatformRole.ADMIN)
    order = await paid_order(p)

    # No amount in the event: the captured amount is disputed.
    dispute = await deliver_dispute(p, order, event_id="evt_dispute_won")
    assert dispute is not None
    assert dispute.amount == order.total

    async def announced() -> bool:
        return "dispute_opened_operations" in await templates(p, ops.email)

    await p.eventually(announced)
    assert await payable(p, north) == {}

    answer = await p.client.post(
        f"/admin/disputes/{dispute.id}/outcome", headers=ops.headers, json={"outcome": "won"}
    )
    assert answer.status_code == 200, answer.text
    result = await settled(p, dispute.id)
    assert (result.status, result.ledger_entries) == ("won", 0)
    assert await dispute_entries(p, dispute.id) == {}
    assert await payable(p, north) == {"EUR": earned(p, order, north)}
    assert await payable(p, south) == {"EUR": earned(p, order, south)}
    for vendor in (north, south):
        assert (await templates(p, vendor.contact_email or ""))[-1] == "dispute_won_vendor"
    # Decided before the deadline: no reminder.
    assert "dispute_reminder_operations" not in await templates(p, ops.email)

    lost_too = await p.client.post(
        f"/admin/disputes/{dispute.id}/outcome", headers=ops.headers, json={"outcome": "lost"}
    )
    assert lost_too.status_code == 409
    # The webhook again, after the outcome: still the one dispute, still won.
    again = await deliver_dispute(p, order, event_id="evt_dispute_won")
    assert again is not None
    assert (again.id, again.status) == (dispute.id, DisputeStatus.WON)
    assert await dispute_count(p) == 1
    missing = await p.client.get(f"/admin/disputes/{uuid.uuid4()}", headers=ops.headers)
    assert missing.status_code == 404
    assert missing.json()["code"] == "dispute_not_found"
    bad = await p.client.post(
        f"/admin/disputes/{dispute.id}/outcome", headers=ops.headers, json={"outcome": "open"}
    )
    assert bad.status_code == 422


async def test_an_outcome_from_the_provider_closes_the_dispute(long_deadline: Platform) -> None:
    p = long_deadline
    order = await paid_order(p)
    dispute = await deliver_dispute(p, order, event_id="evt_dispute_hook", amount=1000)
    assert dispute is not None
    closing = WebhookEvent(
        "evt_dispute_hook_closed", "payment.dispute_closed", order.payment_id, None
    )
    async with p.sessionmaker() as session:
        closed = await disputes.close_dispute_from_webhook(
            session,
            p.temporal,
            p.settings,
            provider="test",
            event=closing,
            outcome="lost",
            now=datetime.now(UTC),
        )
    assert closed is not None
    assert (closed.id, closed.status) == (dispute.id, DisputeStatus.LOST)
    result = await settled(p, dispute.id)
    assert (result.status, result.ledger_entries) == ("lost", 2)
    assert sum((await dispute_entries(p, dispute.id)).values()) == -1000
    # Its redelivery changes nothing.
    async with p.sessionmaker() as session:
        again = await disputes.close_dispute_from_webhook(
            session,
            p.temporal,
            p.settings,
            provider="test",
            event=closing,
            outcome="won",
            now=datetime.now(UTC),
        )
    assert again is not None
    assert again.status == DisputeStatus.LOST


async def test_an_outcome_whose_signal_was_lost_is_found_after_the_deadline(
    short_deadline: Platform,
) -> None:
    p = short_deadline
    order = await paid_order(p)
    dispute = await deliver_dispute(p, order, event_id="evt_dispute_quiet", amount=500)
    assert dispute is not None
    # Stored, but the workflow is never told (Temporal was unreachable at that moment).
    async with p.sessionmaker.begin() as session:
        await disputes.record_outcome(
            session, dispute_id=dispute.id, outcome="won", now=datetime.now(UTC)
        )
    result = await settled(p, dispute.id)
    assert (result.status, result.ledger_entries) == ("won", 0)
    assert "dispute_won" in await p.events(str(order.id))


async def test_the_reconciler_starts_a_dispute_whose_workflow_never_started(
    long_deadline: Platform,
) -> None:
    p = long_deadline
    order = await paid_order(p)
    async with p.sessionmaker.begin() as session:
        payment = await session.scalar(
            select(Payment).where(Payment.provider_payment_id == order.payment_id)
        )
        assert payment is not None
        # Stored by a webhook whose workflow start failed; then decided by operations.
        dispute, created = await disputes.open_dispute(
            session,
            payment=payment,
            provider_dispute_id="evt_dispute_orphan",
            amount=None,
            evidence_due_at=datetime.now(UTC) + timedelta(hours=1),
            now=datetime.now(UTC),
        )
        assert created
    later = datetime.now(UTC) + timedelta(seconds=p.settings.order_reconcile_after_s + 1)
    assert (
        await disputes.reconcile_disputes(
            p.sessionmaker, p.temporal, p.settings, now=datetime.now(UTC)
        )
        == 0
    )
    assert await disputes.reconcile_disputes(p.sessionmaker, p.temporal, p.settings, now=later) == 1

    async def announced() -> bool:
        return "dispute_opened" in await p.events(str(order.id))

    await p.eventually(announced)
    # Started once: a second pass finds it announced.
    assert await disputes.reconcile_disputes(p.sessionmaker, p.temporal, p.settings, now=later) == 0
    async with p.sessionmaker.begin() as session:
        await disputes.record_outcome(
            session, dispute_id=dispute.id, outcome="lost", now=datetime.now(UTC)
        )
    async with p.sessionmaker() as session:
        stored = await disputes.get_dispute(session, dispute_id=dispute.id)
    assert await disputes.tell_workflow(
        p.temporal, p.settings, dispute=stored, now=datetime.now(UTC)
    )
    result = await settled(p, dispute.id)
    assert (result.status, result.ledger_entries) == ("lost", 2)
