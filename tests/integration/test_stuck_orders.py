"""What operations watch (``commerce/operations.py``, ``emporium stuck-orders``): work past its
deadline, orders whose row and workflow disagree, and the backlog gauges the worker publishes
-- against a real checkout, a real Temporal dev server and rows a crash could leave behind."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from cli import stuck
from commerce import operations
from commerce.aftersales.disputes import open_dispute
from core.clock import FixedClock
from core.metrics import REGISTRY
from models import MailOutbox, Order, Payment, Shipment
from tests.order_harness import Platform, platform
from workflows.contracts.orders import OrderStatus, order_workflow_id

pytestmark = pytest.mark.slow


@pytest.fixture
async def p(
    fresh_database_url: str, temporal_env: WorkflowEnvironment, temporal_address: str
) -> AsyncIterator[Platform]:
    async with platform(fresh_database_url, temporal_env.client, temporal_address) as built:
        yield built


async def _orphan(p: Platform, *, status: OrderStatus, placed: datetime) -> uuid.UUID:
    """An order row as a crash between the API's commit and the workflow start leaves it."""
    order_id = uuid.uuid4()
    async with p.sessionmaker.begin() as session:
        session.add(
            Order(
                id=order_id,
                customer_id=None,
                idempotency_key=f"key-{order_id.hex}",
                request_hash=hashlib.sha256(order_id.bytes).hexdigest(),
                status=status,
                currency="EUR",
                prices_include_tax=True,
                items_subtotal=1000,
                discount_total=0,
                shipping_total=0,
                tax_total=0,
                grand_total=1000,
                contact_email=None,
                shipping_address={"name": "Ada", "line1": "1 Main St", "country": "DE"},
                payment_provider="test",
                workflow_id=order_workflow_id(str(order_id)),
                created_at=placed,
            )
        )
    return order_id


def _gauges() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client import generate_latest

    found = {}
    for family in text_string_to_metric_families(generate_latest(REGISTRY).decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_late_work_and_disagreeing_workflows_are_found_with_their_links(
    p: Platform,
) -> None:
    settings = p.settings
    # A real order, paid and confirmed: its two parts wait for their vendors.
    account = await p.shopper()
    await p.add(account, p.shop.tee, 1)
    await p.add(account, p.shop.mug, 1)
    confirmed = (await p.checkout(account)).json()["order_id"]
    await p.wait_for(confirmed, "confirmed")

    async def shipments() -> list[Shipment]:
        async with p.sessionmaker() as session:
            rows = await session.scalars(
                select(Shipment).where(Shipment.order_id == uuid.UUID(confirmed))
            )
            return list(rows)

    async def both_parts() -> bool:  # each part's workflow stores it as it starts
        return len(await shipments()) == 2

    await p.eventually(both_parts)
    parts = await shipments()
    async with p.sessionmaker() as session:
        payment = await session.scalar(
            select(Payment).where(Payment.order_id == uuid.UUID(confirmed))
        )
    assert payment is not None
    # Looked at after both vendors' acceptance deadline (plus the grace) went by.
    grace = timedelta(seconds=settings.stuck_grace_s)
    now = max(part.accept_by for part in parts) + grace + timedelta(minutes=1)
    window = timedelta(seconds=settings.checkout_payment_window_s)

    # An order left pending, with no workflow, placed long before the payment window ended.
    orphan = await _orphan(
        p, status=OrderStatus.PENDING, placed=now - window - grace - timedelta(days=5)
    )
    # One placed just now is not late yet.
    await _orphan(p, status=OrderStatus.PENDING, placed=now - timedelta(seconds=5))
    # A cancelled order whose workflow still runs (started on a queue no worker polls).
    ended = await _orphan(p, status=OrderStatus.CANCELLED, placed=now - window * 2)
    await p.temporal.start_workflow(
        "OrderWorkflow", None, id=order_workflow_id(str(ended)), task_queue="nobody-polls"
    )
    # A dispute whose evidence is due tomorrow.
    async with p.sessionmaker.begin() as session:
        payment = await session.get(Payment, payment.id)
        assert payment is not None
        await open_dispute(
            session,
            payment=payment,
            provider_dispute_id=f"dp_{uuid.uuid4().hex}",
            amount=None,
            evidence_due_at=now + timedelta(days=1),
            now=now,
        )

    async with p.sessionmaker() as session:
        late = await operations.past_deadline(session, settings, now=now)
    assert sorted((f.kind, f.status, str(f.order_id)) for f in late) == sorted(
        [("order", "pending", str(orphan))] + [("part", "awaiting_acceptance", confirmed)] * 2
    )
    assert {f.workflow_id for f in late if f.kind == "part"} == {
        f"shipment:{confirmed}:{part.vendor_id}" for part in parts
    }

    async def disagreeing() -> list[operations.Finding]:
        async with p.sessionmaker() as session:
            return await operations.disagreements(session, p.temporal, settings, now=now)

    async def both_seen() -> bool:  # visibility (the list of running workflows) lags a little
        return len(await disagreeing()) == 2

    await p.eventually(both_seen)
    assert sorted((f.problem, f.order_id) for f in await disagreeing()) == sorted(
        [("workflow_missing", orphan), ("workflow_still_running", ended)]
    )

    # Operations terminate the confirmed order's workflow by hand: now it disagrees too.
    handle = p.temporal.get_workflow_handle(order_workflow_id(confirmed))
    await handle.terminate("test: a workflow killed by hand")
    assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED
    closed = [f for f in await disagreeing() if f.problem == "workflow_closed"]
    assert [(str(f.order_id), f.status) for f in closed] == [(confirmed, "confirmed")]
    assert "terminated" in closed[0].detail

    # Only one open order looked up (the oldest, the orphan): Temporal's visibility still
    # finds the workflow that ended without a final OrderStatus.
    async def few() -> list[tuple[str, str]]:
        async with p.sessionmaker() as session:
            found = await operations.disagreements(session, p.temporal, settings, now=now, limit=1)
        return sorted((f.problem, str(f.order_id)) for f in found)

    async def ended_seen() -> bool:
        return ("workflow_closed", confirmed) in await few()

    await p.eventually(ended_seen)
    assert await few() == sorted(
        [
            ("workflow_closed", confirmed),
            ("workflow_missing", str(orphan)),
            ("workflow_still_running", str(ended)),
        ]
    )

    # The command prints them all, each with its Temporal UI link, and exits 1.
    findings = await stuck.find(settings, limit=100, clock=FixedClock(now))
    await p.temporal.get_workflow_handle(order_workflow_id(str(ended))).terminate("done")
    text = stuck.render(findings, settings, as_json=False)
    link = f"{settings.temporal_ui_url}/namespaces/default/workflows/order%3A{confirmed}"
    assert link in text
    assert f"shipment%3A{confirmed}%3A" in text
    assert text.endswith(
        "6 found: 3 past_deadline, 1 workflow_closed, 1 workflow_missing, 1 workflow_still_running"
    )
    rows = json.loads(stuck.render(findings, settings, as_json=True))
    assert {row["problem"] for row in rows} == {
        "past_deadline", "workflow_missing", "workflow_still_running", "workflow_closed"
    }  # fmt: skip
    assert all(row["link"].startswith(settings.temporal_ui_url) for row in rows)
    assert stuck.render([], settings, as_json=False).startswith("nothing stuck")

    # The worker's snapshot counts the same, and publishes it as gauges.
    taken = await operations.take_snapshot(p.sessionmaker, settings, now=now)
    assert taken.stuck[("order", "pending")] == 1
    assert taken.stuck[("order", "awaiting_payment")] == 0
    assert taken.stuck[("part", "awaiting_acceptance")] == 2
    assert taken.stuck[("return", "requested")] == 0
    assert taken.evidence_due == 1
    async with p.sessionmaker() as session:
        unsent = await session.scalar(
            select(func.count()).select_from(MailOutbox).where(MailOutbox.sent_at.is_(None))
        )
    # This platform runs no mail dispatcher: the confirmation mails wait.
    assert unsent
    assert taken.mail_pending == unsent
    assert taken.mail_oldest_s > 0
    gauges = _gauges()
    assert gauges[("emporium_stuck", (("kind", "part"), ("status", "awaiting_acceptance")))] == 2
    assert gauges[("emporium_stuck", (("kind", "order"), ("status", "pending")))] == 1
    assert gauges[("emporium_disputes_evidence_due", ())] == 1
    assert gauges[("emporium_mail_outbox_pending", ())] == unsent
    assert gauges[("emporium_snapshot_timestamp_seconds", ())] == now.timestamp()
