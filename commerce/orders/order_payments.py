"""An order's payment attempts as stored: one ``payments`` row per attempt.

The provider is the truth about money; these rows are our record of what it said, written by
the order workflow's activities. Every write is conditional or an upsert, so a retried
activity stores the same thing again, never something older.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.payments.provider import Authorization
from models import Payment, PaymentStatus

#: A payment row may move from a status to those listed, never back.
_FORWARD: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.PENDING: frozenset(
        {
            PaymentStatus.REQUIRES_ACTION,
            PaymentStatus.AUTHORIZED,
            PaymentStatus.DECLINED,
            PaymentStatus.FAILED,
            PaymentStatus.VOIDED,
        }
    ),
    PaymentStatus.REQUIRES_ACTION: frozenset(
        {PaymentStatus.AUTHORIZED, PaymentStatus.DECLINED, PaymentStatus.VOIDED}
    ),
    PaymentStatus.AUTHORIZED: frozenset({PaymentStatus.CAPTURED, PaymentStatus.VOIDED}),
    PaymentStatus.CAPTURED: frozenset(),
    PaymentStatus.VOIDED: frozenset(),
    PaymentStatus.DECLINED: frozenset(),
    PaymentStatus.FAILED: frozenset(),
}


def idempotency_key(order_id: uuid.UUID | str, attempt: int, operation: str) -> str:
    """The provider idempotency key of one operation of one attempt: stable across retries."""
    return f"emporium:{order_id}:{attempt}:{operation}"


async def start_attempt(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    attempt: int,
    provider: str,
    amount: int,
    currency: str,
) -> Payment:
    """The row of this attempt, created once (a retried activity finds it)."""
    await session.execute(
        insert(Payment)
        .values(
            id=uuid.uuid4(),
            order_id=order_id,
            attempt=attempt,
            provider=provider,
            amount=amount,
            currency=currency,
            status=PaymentStatus.PENDING,
        )
        .on_conflict_do_nothing(index_elements=["order_id", "attempt"])
    )
    return await get_attempt(session, order_id=order_id, attempt=attempt)


async def get_attempt(session: AsyncSession, *, order_id: uuid.UUID, attempt: int) -> Payment:
    payment = await session.scalar(
        select(Payment)
        .where(Payment.order_id == order_id, Payment.attempt == attempt)
        .execution_options(populate_existing=True)
    )
    if payment is None:
        raise LookupError(f"order {order_id} has no payment attempt {attempt}")
    return payment


async def _move(
    session: AsyncSession, payment: Payment, to: PaymentStatus, **values: object
) -> bool:
    allowed = [status for status, targets in _FORWARD.items() if to in targets]
    moved = await session.scalar(
        update(Payment)
        .where(Payment.id == payment.id, Payment.status.in_(allowed))
        .values(status=to, **values)
        .returning(Payment.id)
        .execution_options(synchronize_session=False)
    )
    return moved is not None


async def record_authorization(
    session: AsyncSession, *, payment: Payment, authorization: Authorization
) -> None:
    status = {
        "authorized": PaymentStatus.AUTHORIZED,
        "requires_action": PaymentStatus.REQUIRES_ACTION,
        "declined": PaymentStatus.DECLINED,
    }[authorization.status]
    values: dict[str, object] = {"decline_code": authorization.decline_code}
    if authorization.provider_payment_id is not None:
        values["provider_payment_id"] = authorization.provider_payment_id
        if payment.provider_reference is None:
            # What webhooks name it by: for PayPal the order id, which later gives way to
            # the authorization id as provider_payment_id.
            values["provider_reference"] = authorization.provider_payment_id
    if payment.status == status:
        await session.execute(
            update(Payment)
            .where(Payment.id == payment.id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return
    await _move(session, payment, status, **values)


async def record_declined(
    session: AsyncSession, *, payment: Payment, decline_code: str | None
) -> None:
    await _move(session, payment, PaymentStatus.DECLINED, decline_code=decline_code)


async def record_failed(session: AsyncSession, *, payment: Payment, reason: str) -> None:
    await _move(session, payment, PaymentStatus.FAILED, decline_code=reason[:100])


async def record_capture(session: AsyncSession, *, payment: Payment, amount: int) -> None:
    await _move(session, payment, PaymentStatus.CAPTURED, captured_amount=amount)


async def record_void(session: AsyncSession, *, payment: Payment) -> None:
    await _move(session, payment, PaymentStatus.VOIDED)
