"""Provider webhooks as stored: each event once, linked to its order, marked when signalled.

``POST /webhooks/{provider}`` verifies a delivery, calls `record_event` and commits, signals the
order workflow, then calls `mark_signalled`. Storing comes first so that nothing the provider
told us is lost when Temporal is down; a redelivery of an event stored but never signalled is
signalled then (providers redeliver until they get a 2xx). Delivery to the workflow is
therefore *at least once*: the workflow ignores an ``event_id`` it has already seen.

An event may arrive before the order's payment row knows the provider's id for it (a shopper
completing 3-D Secure faster than the authorize activity stores its result). It is stored with
no order; the authorize activity, once it has written the payment's ids, calls
`attach_early_events` to link such events and hand them to the workflow in its result.

Both sides take a transaction-scoped advisory lock per (provider, payment id) before looking at
the other's rows, so the two cannot miss each other: either the webhook sees the payment row
(and signals), or the activity sees the event (and hands it over).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.payments.provider import PaymentEventStatus, WebhookEvent
from core.locks import advisory_locks
from models import Payment, PaymentEvent


@dataclass(frozen=True)
class RecordedEvent:
    """What storing a webhook event found.

    ``duplicate``: the event was stored by an earlier delivery. ``signalled``: it has already
    reached the order workflow (or been handed over by `attach_early_events`), so there is
    nothing left to do; a duplicate that is not ``signalled`` must be signalled now.
    """

    id: int
    order_id: uuid.UUID | None
    duplicate: bool
    signalled: bool


async def _lock_payment_ids(
    session: AsyncSession, provider: str, payment_ids: Iterable[str]
) -> None:
    """Serialise with the other side for these payment ids until the transaction ends.

    One fixed order (``advisory_locks``), so overlapping sets cannot deadlock.
    """
    await advisory_locks(session, [("payment-events", provider, p) for p in payment_ids])


async def _order_of(session: AsyncSession, *, provider: str, payment_id: str) -> uuid.UUID | None:
    """The order of the payment a webhook names, by the id we capture or the one it refers by."""
    return await session.scalar(
        select(Payment.order_id)
        .where(
            Payment.provider == provider,
            or_(
                Payment.provider_payment_id == payment_id, Payment.provider_reference == payment_id
            ),
        )
        .order_by(Payment.created_at.desc())
        .limit(1)
    )


async def record_event(
    session: AsyncSession, *, provider: str, event: WebhookEvent
) -> RecordedEvent:
    """Store a verified event once per (provider, provider event id) and find its order.

    The caller commits before signalling. A redelivery of an event first stored without an
    order (it came before the payment row knew its id) is linked now if the payment is known.
    """
    order_id: uuid.UUID | None = None
    if event.payment_id:
        await _lock_payment_ids(session, provider, [event.payment_id])
        order_id = await _order_of(session, provider=provider, payment_id=event.payment_id)
    inserted = await session.scalar(
        insert(PaymentEvent)
        .values(
            provider=provider,
            provider_event_id=event.provider_event_id,
            type=event.type,
            status=event.status,
            amount=event.amount,
            provider_payment_id=event.payment_id,
            order_id=order_id,
        )
        .on_conflict_do_nothing(index_elements=["provider", "provider_event_id"])
        .returning(PaymentEvent.id)
    )
    if inserted is not None:
        return RecordedEvent(id=inserted, order_id=order_id, duplicate=False, signalled=False)

    # ON CONFLICT waited for a concurrent first delivery to commit, so the row is visible now.
    stored = (
        await session.execute(
            select(PaymentEvent.id, PaymentEvent.order_id, PaymentEvent.signalled_at)
            .where(
                PaymentEvent.provider == provider,
                PaymentEvent.provider_event_id == event.provider_event_id,
            )
            .with_for_update()
        )
    ).one()
    stored_order = stored.order_id
    if stored_order is None and order_id is not None and stored.signalled_at is None:
        await session.execute(
            update(PaymentEvent).where(PaymentEvent.id == stored.id).values(order_id=order_id)
        )
        stored_order = order_id
    return RecordedEvent(
        id=stored.id,
        order_id=stored_order,
        duplicate=True,
        signalled=stored.signalled_at is not None,
    )


async def mark_signalled(session: AsyncSession, *, event_id: int, now: datetime) -> None:
    """Note that the event reached its order workflow (or that there was none left to reach)."""
    await session.execute(
        update(PaymentEvent)
        .where(PaymentEvent.id == event_id, PaymentEvent.signalled_at.is_(None))
        .values(signalled_at=now)
    )


async def attach_early_events(
    session: AsyncSession,
    *,
    provider: str,
    payment_ids: Sequence[str],
    order_id: uuid.UUID,
    now: datetime,
) -> list[WebhookEvent]:
    """Link events that came before the payment row knew its provider ids, and return them.

    Call it in the transaction that writes the payment's ``provider_payment_id`` /
    ``provider_reference``, or after that one committed. Events stored with no order and one of
    ``payment_ids`` are linked to ``order_id`` and marked signalled (the caller hands them to
    the workflow). Returns, oldest first, every event of these payment ids linked to this order
    whose type the platform acts on, so a retried activity gets the same list again (plus any
    that arrived since); the workflow drops event ids it has already seen.
    """
    ids = [payment_id for payment_id in dict.fromkeys(payment_ids) if payment_id]
    if not ids:
        return []
    await _lock_payment_ids(session, provider, ids)
    await session.execute(
        update(PaymentEvent)
        .where(
            PaymentEvent.provider == provider,
            PaymentEvent.provider_payment_id.in_(ids),
            PaymentEvent.order_id.is_(None),
        )
        .values(
            order_id=order_id,
            signalled_at=func.coalesce(PaymentEvent.signalled_at, now),
        )
    )
    rows = (
        await session.execute(
            select(
                PaymentEvent.provider_event_id,
                PaymentEvent.type,
                PaymentEvent.status,
                PaymentEvent.amount,
                PaymentEvent.provider_payment_id,
            )
            .where(
                PaymentEvent.provider == provider,
                PaymentEvent.provider_payment_id.in_(ids),
                PaymentEvent.order_id == order_id,
                PaymentEvent.status.is_not(None),
            )
            .order_by(PaymentEvent.received_at, PaymentEvent.id)
        )
    ).all()
    return [
        WebhookEvent(
            provider_event_id=row.provider_event_id,
            type=row.type,
            payment_id=row.provider_payment_id,
            status=cast(PaymentEventStatus, row.status),
            amount=row.amount,
        )
        for row in rows
    ]
