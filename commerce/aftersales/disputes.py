"""Disputes (chargebacks): opened by a provider's webhook, decided by the bank, recorded here.

A dispute is one row per (provider, provider dispute id), ``open`` until its outcome is known.
While it is open every ledger entry of its order is frozen (``commerce.finance.ledger`` leaves them
out of what is payable); a lost dispute debits the order's vendors (``record_dispute_lost``),
a won one debits nobody. The ``DisputeWorkflow`` (``dispute:{id}``) tells the vendors and
operations, reminds operations at the evidence deadline and records the outcome.

How a dispute moves:

* ``open_dispute_from_webhook`` - a verified webhook whose normalised status is ``disputed``:
  the dispute is stored once (a redelivery finds it), **committed**, then its workflow is
  started (a start that failed is made by the redelivery, or by ``reconcile_disputes``).
* ``record_outcome`` - ``open`` -> ``won``/``lost`` by a conditional update (the first outcome
  wins; a second is ``DisputeClosed``, 409). ``tell_workflow`` then signals the workflow
  (or starts it, with the outcome, if it never was), after the caller committed.
* The workflow's steps: ``announce`` (order event ``dispute_opened``, emails), ``remind``
  (once, at the deadline), ``settle`` (ledger, order event ``dispute_won``/``dispute_lost``,
  emails). Each runs any number of times and acts once (order events keyed by dispute id).

Providers: every one normalises a new dispute (Stripe ``charge.dispute.created``, PayPal
``CUSTOMER.DISPUTE.CREATED``, the test provider's ``payment.disputed``) but none normalises
its outcome yet, so outcomes come from operations (``POST /admin/disputes/{id}/outcome``);
``close_dispute_from_webhook`` is there for a provider that will. A ``WebhookEvent`` carries no
dispute id of its own, so the event id stands for it.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import String, cast, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import SearchAttributePair

from commerce.errors import Conflict, DomainError, NotFound
from commerce.finance import ledger
from commerce.notifications.mail import EmailMessage, compose, queue_mail
from commerce.orders import orders
from commerce.orders.order_mail import vendor_recipients
from commerce.orders.order_saga import timings
from commerce.payments.provider import WebhookEvent
from core import metrics, pagination, temporal
from core.money import format_money
from core.settings import Settings
from models import (
    Dispute,
    DisputeStatus,
    LedgerEntry,
    LedgerKind,
    OrderEvent,
    OrderVendorPart,
    Payment,
    PaymentStatus,
    PlatformRole,
    User,
    UserStatus,
    Vendor,
)
from workflows.contracts.disputes import (
    DISPUTE_WORKFLOW,
    OUTCOME_SIGNAL,
    DisputeOutcome,
    DisputeWorkflowInput,
    dispute_workflow_id,
)
from workflows.contracts.search_attributes import ORDER_ID

log = logging.getLogger("emporium.disputes")

#: After the evidence deadline the workflow looks at the stored status this often (a seventh
#: of the evidence window: a day by default), for an outcome whose signal never arrived.
RECHECKS_PER_WINDOW = 7
OUTCOMES = (DisputeStatus.WON, DisputeStatus.LOST)

OPENED_EVENT = "dispute_opened"
DEADLINE_EVENT = "dispute_evidence_due"


def closed_event(status: DisputeStatus) -> str:
    return f"dispute_{status.value}"


# --- errors --------------------------------------------------------------------------------


class DisputeNotFound(NotFound):
    code, title = "dispute_not_found", "No such dispute"


class DisputeClosed(Conflict):
    code, title = "dispute_closed", "The dispute is already closed"


class InvalidDisputeOutcome(DomainError):
    status, code, title = 422, "invalid_dispute_outcome", "A dispute is either won or lost"


class DisputeWorkflowUnavailable(DomainError):
    """Stored, but its workflow could not be started now: deliver the webhook again later."""

    status, code, title = 503, "workflow_unavailable", "Dispute processing is unavailable"
    headers = {"Retry-After": "30"}


def as_outcome(outcome: DisputeStatus | str) -> DisputeStatus:
    try:
        status = DisputeStatus(outcome)
    except ValueError:
        status = DisputeStatus.OPEN
    if status not in OUTCOMES:
        raise InvalidDisputeOutcome(f"Outcome {outcome!r}: use won or lost.")
    return status


# --- opening -------------------------------------------------------------------------------


async def payment_for_event(
    session: AsyncSession, *, provider: str, payment_id: str
) -> Payment | None:
    """The payment a webhook names, by the id we capture or the one it refers by (as
    ``commerce.payments.webhooks`` matches them); a captured one first."""
    return await session.scalar(
        select(Payment)
        .where(
            Payment.provider == provider,
            or_(
                Payment.provider_payment_id == payment_id, Payment.provider_reference == payment_id
            ),
        )
        .order_by((Payment.status == PaymentStatus.CAPTURED).desc(), Payment.created_at.desc())
        .limit(1)
    )


async def open_dispute(
    session: AsyncSession,
    *,
    payment: Payment,
    provider_dispute_id: str,
    amount: int | None,
    evidence_due_at: datetime,
    now: datetime,
    reason: str | None = None,
) -> tuple[Dispute, bool]:
    """Store the dispute once per (provider, provider dispute id); ``(dispute, created)``.

    The amount is what the provider disputes, else what was captured, never more than was
    captured (a chargeback cannot take back more than was paid). From now on the order's
    ledger entries are frozen.
    """
    taken = payment.captured_amount or payment.amount
    disputed = amount if amount is not None and amount > 0 else taken
    disputed = min(disputed, taken)
    inserted = await session.scalar(
        pg_insert(Dispute)
        .values(
            id=uuid.uuid4(),
            order_id=payment.order_id,
            payment_id=payment.id,
            provider=payment.provider,
            provider_dispute_id=provider_dispute_id,
            amount=disputed,
            currency=payment.currency,
            reason=reason[:200] if reason else None,
            status=DisputeStatus.OPEN,
            evidence_due_at=evidence_due_at,
            created_at=now,  # the reconciler's "stored more than N seconds ago" reads it
        )
        .on_conflict_do_nothing(index_elements=[Dispute.provider, Dispute.provider_dispute_id])
        .returning(Dispute.id)
    )
    # ON CONFLICT waited for a concurrent first delivery to commit: the row is visible now.
    dispute = await session.scalar(
        select(Dispute)
        .where(
            Dispute.provider == payment.provider,
            Dispute.provider_dispute_id == provider_dispute_id,
        )
        .execution_options(populate_existing=True)
    )
    assert dispute is not None
    if inserted is not None:
        metrics.count_on_commit(session, metrics.DISPUTES_OPENED.labels(payment.provider))
    return dispute, inserted is not None


async def open_dispute_from_webhook(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    *,
    provider: str,
    event: WebhookEvent,
    reason: str | None = None,
    now: datetime,
) -> Dispute | None:
    """Open the dispute a verified ``disputed`` webhook announces, and start its workflow.

    Call it for every delivery of such an event, duplicates included: the dispute is stored
    once, and a redelivery starts the workflow if an earlier start failed. **Commits** (the
    workflow reads the row) before starting the workflow ``dispute:{id}``. ``None`` when the
    event is not a dispute or its payment is unknown here (logged; nothing to freeze).
    Raises ``DisputeWorkflowUnavailable`` (503) when Temporal cannot be reached: the dispute
    is stored and frozen, and the provider's redelivery starts the workflow.
    """
    if event.status != "disputed" or not event.payment_id:
        return None
    payment = await payment_for_event(session, provider=provider, payment_id=event.payment_id)
    if payment is None:
        log.warning(
            "dispute webhook for an unknown payment",
            extra={"provider": provider, "provider_event_id": event.provider_event_id},
        )
        return None
    dispute, created = await open_dispute(
        session,
        payment=payment,
        provider_dispute_id=event.provider_event_id,
        amount=event.amount,
        evidence_due_at=now + timedelta(seconds=settings.dispute_evidence_within_s),
        now=now,
        reason=reason,
    )
    await session.commit()
    log.info(
        "dispute opened" if created else "dispute webhook redelivered",
        extra={"dispute_id": str(dispute.id), "order_id": str(dispute.order_id)},
    )
    await start_dispute_workflow(client, settings, dispute=dispute, now=now)
    return dispute


def describe(dispute: Dispute) -> str:
    money = format_money(dispute.amount, dispute.currency)
    return f"Dispute of {money} on order {dispute.order_id} ({dispute.provider})"


def workflow_input(settings: Settings, dispute: Dispute, *, now: datetime) -> DisputeWorkflowInput:
    remaining = (dispute.evidence_due_at - now).total_seconds()
    return DisputeWorkflowInput(
        dispute_id=str(dispute.id),
        order_id=str(dispute.order_id),
        evidence_within_s=max(0.0, remaining),
        recheck_s=settings.dispute_evidence_within_s / RECHECKS_PER_WINDOW,
        timings=timings(settings),
    )


async def start_dispute_workflow(
    client: Client,
    settings: Settings,
    *,
    dispute: Dispute,
    outcome: DisputeOutcome | None = None,
    now: datetime,
) -> bool:
    """Start ``dispute:{id}`` (ids are never reused: a dispute has one workflow). With
    ``outcome``, signal it as well (signal-with-start: a running workflow just gets the
    signal). True if this call started it (with ``outcome``: started or signalled it); False
    when it had been started (with ``outcome``: had ended) already. Raises
    ``DisputeWorkflowUnavailable`` when Temporal cannot be reached."""
    try:
        return await temporal.start_workflow(
            client,
            DISPUTE_WORKFLOW,
            workflow_input(settings, dispute, now=now),
            id=dispute_workflow_id(str(dispute.id)),
            task_queue=settings.temporal_task_queue,
            search_attributes=[SearchAttributePair(ORDER_ID, str(dispute.order_id))],
            summary=describe(dispute),
            signal=OUTCOME_SIGNAL if outcome is not None else None,
            signal_args=[outcome] if outcome is not None else [],
        )
    except temporal.WorkflowStartFailed as error:
        raise DisputeWorkflowUnavailable(
            "The dispute is stored but its processing could not be started; retry.",
            dispute_id=str(dispute.id),
        ) from error


# --- outcomes ------------------------------------------------------------------------------


async def record_outcome(
    session: AsyncSession, *, dispute_id: uuid.UUID, outcome: DisputeStatus | str, now: datetime
) -> Dispute:
    """``open`` -> ``won``/``lost`` (conditional update: the first outcome wins). The freeze
    ends when this commits. ``DisputeClosed`` (409) when it was decided already."""
    status = as_outcome(outcome)
    closed = await session.scalar(
        update(Dispute)
        .where(Dispute.id == dispute_id, Dispute.status == DisputeStatus.OPEN)
        .values(status=status, closed_at=now)
        .returning(Dispute)
        .execution_options(populate_existing=True)
    )
    if closed is not None:
        return closed
    dispute = await get_dispute(session, dispute_id=dispute_id)
    raise DisputeClosed(
        f"The dispute was {dispute.status.value} already.", outcome=dispute.status.value
    )


async def tell_workflow(
    client: Client,
    settings: Settings,
    *,
    dispute: Dispute,
    now: datetime,
    source: str = "operations",
) -> bool:
    """After an outcome was stored and committed: signal the dispute's workflow, or start it
    with the outcome if it never was. True if the workflow was reached. Never raises for
    Temporal: a running workflow finds the stored outcome by itself later (it re-reads it
    after the evidence deadline), and ``reconcile_disputes`` starts one that is missing."""
    outcome = DisputeOutcome(outcome=dispute.status.value, source=source)
    try:
        await start_dispute_workflow(client, settings, dispute=dispute, outcome=outcome, now=now)
    except DisputeWorkflowUnavailable:
        return False
    return True


async def close_dispute_from_webhook(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    *,
    provider: str,
    event: WebhookEvent,
    outcome: DisputeStatus | str,
    now: datetime,
) -> Dispute | None:
    """A provider says how the dispute on the event's payment ended (no provider normalises
    this yet: for one that will, e.g. Stripe ``charge.dispute.closed`` with status won/lost).

    Records the outcome on the payment's open dispute, **commits**, tells the workflow.
    ``None`` when the payment is unknown or has no dispute; a dispute closed already (a
    redelivery, or operations were first) is returned as it is.
    """
    status = as_outcome(outcome)
    if not event.payment_id:
        return None
    payment = await payment_for_event(session, provider=provider, payment_id=event.payment_id)
    if payment is None:
        return None
    dispute = await session.scalar(
        select(Dispute)
        .where(Dispute.payment_id == payment.id)
        .order_by((Dispute.status == DisputeStatus.OPEN).desc(), Dispute.created_at.desc())
        .limit(1)
    )
    if dispute is None:
        log.warning(
            "dispute outcome for a payment without a dispute",
            extra={"provider": provider, "provider_event_id": event.provider_event_id},
        )
        return None
    if dispute.status == DisputeStatus.OPEN:
        try:
            dispute = await record_outcome(session, dispute_id=dispute.id, outcome=status, now=now)
        except DisputeClosed:
            # Operations recorded one meanwhile: theirs stands.
            dispute = await get_dispute(session, dispute_id=dispute.id)
    await session.commit()
    await tell_workflow(client, settings, dispute=dispute, now=now, source="webhook")
    return dispute


# --- reading -------------------------------------------------------------------------------


async def get_dispute(session: AsyncSession, *, dispute_id: uuid.UUID) -> Dispute:
    dispute = await session.get(Dispute, dispute_id, populate_existing=True)
    if dispute is None:
        raise DisputeNotFound()
    return dispute


def _on_vendor_orders(vendor_id: uuid.UUID) -> Any:
    return exists().where(
        OrderVendorPart.order_id == Dispute.order_id, OrderVendorPart.vendor_id == vendor_id
    )


async def list_disputes(
    session: AsyncSession,
    *,
    status: DisputeStatus | None = None,
    vendor_id: uuid.UUID | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> pagination.Page[Dispute]:
    """Newest first, a page at a time; ``vendor_id``: only disputes on orders with a part of
    that vendor."""
    query = select(Dispute)
    if status is not None:
        query = query.where(Dispute.status == status)
    if vendor_id is not None:
        query = query.where(_on_vendor_orders(vendor_id))
    return await pagination.newest_first(
        session,
        query,
        created_at=Dispute.created_at,
        id=Dispute.id,
        scope="disputes",
        cursor=cursor,
        limit=limit,
    )


async def debits(
    session: AsyncSession, *, dispute_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[uuid.UUID, int]]:
    """What lost disputes took from each vendor: dispute -> vendor -> amount (negative)."""
    if not dispute_ids:
        return {}
    rows = await session.execute(
        select(LedgerEntry.dispute_id, LedgerEntry.vendor_id, func.sum(LedgerEntry.amount))
        .where(
            LedgerEntry.dispute_id.in_(list(dispute_ids)),
            LedgerEntry.kind == LedgerKind.DISPUTE,
        )
        .group_by(LedgerEntry.dispute_id, LedgerEntry.vendor_id)
    )
    found: dict[uuid.UUID, dict[uuid.UUID, int]] = {}
    for dispute_id, vendor_id, amount in rows.all():
        if dispute_id is not None:  # the query selects by dispute: never None here
            found.setdefault(dispute_id, {})[vendor_id] = int(amount)
    return found


async def vendor_dispute(
    session: AsyncSession, *, vendor_id: uuid.UUID, dispute_id: uuid.UUID
) -> Dispute:
    """A dispute on one of the vendor's orders; another vendor's is not found."""
    dispute = await session.scalar(
        select(Dispute).where(Dispute.id == dispute_id, _on_vendor_orders(vendor_id))
    )
    if dispute is None:
        raise DisputeNotFound()
    return dispute


# --- the workflow's steps ------------------------------------------------------------------


async def _has_event(session: AsyncSession, dispute: Dispute, type: str) -> bool:
    found = await session.scalar(
        select(OrderEvent.id)
        .where(
            OrderEvent.order_id == dispute.order_id,
            OrderEvent.type == type,
            OrderEvent.data["dispute_id"].astext == str(dispute.id),
        )
        .limit(1)
    )
    return found is not None


async def _vendors(session: AsyncSession, *, order_id: uuid.UUID) -> list[Vendor]:
    found = await session.scalars(
        select(Vendor)
        .join(OrderVendorPart, OrderVendorPart.vendor_id == Vendor.id)
        .where(OrderVendorPart.order_id == order_id)
        .order_by(Vendor.id)
    )
    return list(found.all())


async def operations_recipients(session: AsyncSession) -> list[str]:
    """Every active admin and operations user."""
    found = await session.scalars(
        select(User.email)
        .where(
            User.platform_role.in_([PlatformRole.ADMIN, PlatformRole.OPERATIONS]),
            User.status == UserStatus.ACTIVE,
        )
        .order_by(User.email)
    )
    return [email for email in found.all() if email]


def _data(dispute: Dispute) -> dict[str, Any]:
    return {
        "dispute_id": str(dispute.id),
        "amount": dispute.amount,
        "currency": dispute.currency,
        "status": dispute.status.value,
    }


async def announce(session: AsyncSession, *, dispute_id: uuid.UUID) -> tuple[DisputeStatus, int]:
    """Put the dispute on the order's timeline and tell the order's vendors and operations,
    once per dispute. Returns the dispute's status and the emails queued now. A dispute
    decided before its workflow got here is put on the timeline without emails."""
    dispute = await get_dispute(session, dispute_id=dispute_id)
    await orders.lock_order(session, order_id=dispute.order_id)
    dispute = await get_dispute(session, dispute_id=dispute_id)  # as of the lock
    if await _has_event(session, dispute, OPENED_EVENT):
        return dispute.status, 0
    money = format_money(dispute.amount, dispute.currency)
    await orders.add_event(
        session,
        order_id=dispute.order_id,
        type=OPENED_EVENT,
        detail=f"The payment of {money} is disputed with the card issuer or payment service.",
        data={**_data(dispute), "evidence_due_at": dispute.evidence_due_at.isoformat()},
    )
    if dispute.status != DisputeStatus.OPEN:
        return dispute.status, 0
    sent = 0
    for vendor in await _vendors(session, order_id=dispute.order_id):
        for to in await vendor_recipients(session, vendor=vendor):
            await queue_mail(session, vendor_dispute_opened(to=to, vendor=vendor, dispute=dispute))
            sent += 1
    for to in await operations_recipients(session):
        await queue_mail(session, operations_dispute_opened(to=to, dispute=dispute))
        sent += 1
    return dispute.status, sent


async def remind(session: AsyncSession, *, dispute_id: uuid.UUID) -> DisputeStatus:
    """At the evidence deadline of a dispute still open: tell operations, once. Returns the
    stored status (a decided one is not reminded of)."""
    dispute = await get_dispute(session, dispute_id=dispute_id)
    await orders.lock_order(session, order_id=dispute.order_id)
    dispute = await get_dispute(session, dispute_id=dispute_id)  # as of the lock
    if dispute.status != DisputeStatus.OPEN or await _has_event(session, dispute, DEADLINE_EVENT):
        return dispute.status
    await orders.add_event(
        session,
        order_id=dispute.order_id,
        type=DEADLINE_EVENT,
        detail="The payment dispute awaits the card issuer's decision.",
        data=_data(dispute),
    )
    for to in await operations_recipients(session):
        await queue_mail(session, operations_dispute_reminder(to=to, dispute=dispute))
    return dispute.status


@dataclass(frozen=True)
class Settlement:
    status: DisputeStatus
    ledger_entries: int
    recipients: int


async def settle(
    session: AsyncSession, *, dispute_id: uuid.UUID, outcome: DisputeStatus | str, now: datetime
) -> Settlement:
    """Close the dispute with ``outcome`` unless it is decided already (then its stored
    outcome counts), debit the vendors if it was lost (idempotent ledger entries), put it on
    the order's timeline and tell the vendors, once."""
    status = as_outcome(outcome)
    with contextlib.suppress(DisputeClosed):
        await record_outcome(session, dispute_id=dispute_id, outcome=status, now=now)
    dispute = await get_dispute(session, dispute_id=dispute_id)
    await orders.lock_order(session, order_id=dispute.order_id)
    written = 0
    if dispute.status == DisputeStatus.LOST:
        written = await ledger.record_dispute_lost(session, dispute_id=dispute.id, now=now)
    event = closed_event(dispute.status)
    if await _has_event(session, dispute, event):
        return Settlement(dispute.status, written, 0)
    money = format_money(dispute.amount, dispute.currency)
    await orders.add_event(
        session,
        order_id=dispute.order_id,
        type=event,
        detail=(
            f"The payment dispute was decided for the shop; the {money} stay paid."
            if dispute.status == DisputeStatus.WON
            else f"The payment dispute was decided for the payer: {money} went back to them."
        ),
        data=_data(dispute),
    )
    shares = (await debits(session, dispute_ids=[dispute.id])).get(dispute.id, {})
    sent = 0
    for vendor in await _vendors(session, order_id=dispute.order_id):
        for to in await vendor_recipients(session, vendor=vendor):
            await queue_mail(
                session,
                vendor_dispute_closed(
                    to=to, vendor=vendor, dispute=dispute, debit=shares.get(vendor.id, 0)
                ),
            )
            sent += 1
    return Settlement(dispute.status, written, sent)


async def stored_status(session: AsyncSession, *, dispute_id: uuid.UUID) -> DisputeStatus:
    return (await get_dispute(session, dispute_id=dispute_id)).status


# --- emails --------------------------------------------------------------------------------


def _short(order_id: uuid.UUID) -> str:
    return str(order_id).split("-")[0].upper()


def _due(dispute: Dispute) -> str:
    return dispute.evidence_due_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def vendor_dispute_opened(*, to: str, vendor: Vendor, dispute: Dispute) -> EmailMessage:
    """The payer disputed an order the vendor sold into: its payout of it is on hold."""
    return compose(
        "dispute_opened_vendor", to=to, vendor=vendor, dispute=dispute, due=_due(dispute)
    )


def operations_dispute_opened(*, to: str, dispute: Dispute) -> EmailMessage:
    return compose("dispute_opened_operations", to=to, dispute=dispute, due=_due(dispute))


def operations_dispute_reminder(*, to: str, dispute: Dispute) -> EmailMessage:
    return compose("dispute_reminder_operations", to=to, dispute=dispute, due=_due(dispute))


def vendor_dispute_closed(*, to: str, vendor: Vendor, dispute: Dispute, debit: int) -> EmailMessage:
    """How the dispute ended for the vendor: released, or what was deducted."""
    outcome = "won" if dispute.status == DisputeStatus.WON else "lost"
    return compose(f"dispute_{outcome}_vendor", to=to, vendor=vendor, dispute=dispute, debit=debit)


# --- the reconciler ------------------------------------------------------------------------


async def reconcile_disputes(
    sessionmaker: async_sessionmaker[AsyncSession],
    client: Client,
    settings: Settings,
    *,
    now: datetime,
) -> int:
    """Start the workflow of every dispute stored more than ``order_reconcile_after_s`` ago
    that has none: its webhook's start failed and the provider gave up redelivering. Such a
    dispute has no ``dispute_opened`` event (the workflow's first step writes it); one
    decided meanwhile is settled at once. Returns how many were started."""
    cutoff = now - timedelta(seconds=settings.order_reconcile_after_s)
    async with sessionmaker() as session:
        announced = exists().where(
            OrderEvent.order_id == Dispute.order_id,
            OrderEvent.type == OPENED_EVENT,
            OrderEvent.data["dispute_id"].astext == cast(Dispute.id, String),
        )
        found = await session.scalars(
            select(Dispute)
            .where(Dispute.created_at < cutoff, ~announced)
            .order_by(Dispute.created_at)
            .limit(500)
        )
        stale = list(found.all())
    started = 0
    for dispute in stale:
        outcome = (
            DisputeOutcome(outcome=dispute.status.value, source="reconciler")
            if dispute.status != DisputeStatus.OPEN
            else None
        )
        if await start_dispute_workflow(
            client, settings, dispute=dispute, outcome=outcome, now=now
        ):
            log.warning(
                "started the workflow of an orphaned dispute",
                extra={"dispute_id": str(dispute.id)},
            )
            started += 1
    return started
