"""Refunds: money going back to the shopper, from an order's captured payment.

A refund is created ``pending`` with its amount already counted in the payment's
``refunded_amount``, by a conditional ``UPDATE`` the database's check constraint backs up, so
two refunds racing for the last euro cannot both pass. The ``RefundWorkflow`` then asks the
provider (idempotency key from the refund id), marks it ``succeeded`` or, if the provider
refuses for good, ``failed``, which gives the amount back exactly once.

A refund is either of order lines (units of what was bought; the amount is their share of the
lines' totals, exact to the cent) or of an explicit amount (goodwill). A line is never refunded
for more units than were bought, counting every refund that has not failed.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.checkout.pricing import split_by_weight
from commerce.errors import Conflict, DomainError, NotFound
from commerce.notifications.mail import EmailMessage, compose, queue_mail
from commerce.orders import orders
from core import metrics
from core.locks import advisory_lock
from core.money import format_money
from models import (
    Order,
    OrderEvent,
    OrderLine,
    OrderVendorPart,
    Payment,
    PaymentStatus,
    Refund,
    RefundLine,
    RefundSource,
    RefundStatus,
)

MAX_REASON = 500
MAX_REQUEST_KEY = 200


class RefundExceedsRemaining(Conflict):
    code, title = "refund_exceeds_remaining", "The refund is more than what is left to refund"


class RefundLinesExceedRemaining(Conflict):
    code, title = (
        "refund_lines_exceed_remaining",
        "More units than are left to refund on an order line",
    )


class OrderNotRefundable(Conflict):
    code, title = "order_not_refundable", "The order has no captured payment to refund"


class InvalidRefund(DomainError):
    status, code, title = 422, "invalid_refund", "The refund request is not valid"


class RefundNotFound(NotFound):
    code, title = "refund_not_found", "Refund not found"


# --- reading -----------------------------------------------------------------------------------


async def get_refund(session: AsyncSession, *, refund_id: uuid.UUID) -> Refund:
    refund = await session.get(Refund, refund_id, populate_existing=True)
    if refund is None:
        raise RefundNotFound(f"No refund {refund_id}.")
    return refund


async def list_for_order(session: AsyncSession, *, order_id: uuid.UUID) -> list[Refund]:
    """The order's refunds, oldest first."""
    rows = await session.scalars(
        select(Refund).where(Refund.order_id == order_id).order_by(Refund.created_at, Refund.id)
    )
    return list(rows.all())


async def lines_of(
    session: AsyncSession, *, refund_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[RefundLine]]:
    """The lines of each refund (a refund of an amount has none)."""
    found: dict[uuid.UUID, list[RefundLine]] = {refund_id: [] for refund_id in refund_ids}
    if not refund_ids:
        return found
    rows = await session.scalars(
        select(RefundLine)
        .where(RefundLine.refund_id.in_(list(refund_ids)))
        .order_by(RefundLine.refund_id, RefundLine.order_line_id)
    )
    for line in rows.all():
        found[line.refund_id].append(line)
    return found


async def captured_payment(session: AsyncSession, *, order_id: uuid.UUID) -> Payment | None:
    """The order's captured payment attempt (there is at most one), or None."""
    return await session.scalar(
        select(Payment)
        .where(Payment.order_id == order_id, Payment.status == PaymentStatus.CAPTURED)
        .order_by(Payment.attempt.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    )


async def remaining(session: AsyncSession, *, order_id: uuid.UUID) -> int:
    """What may still be refunded: captured minus refunded (pending refunds count), or 0 for
    an order with no captured payment."""
    payment = await captured_payment(session, order_id=order_id)
    return 0 if payment is None else payment.captured_amount - payment.refunded_amount


@dataclass(frozen=True)
class RefundedUnits:
    """How much of one order line refunds that have not failed take back."""

    quantity: int
    amount: int


async def refunded_units(
    session: AsyncSession, *, order_line_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, RefundedUnits]:
    """Per order line, the units and money of its refunds that have not failed."""
    if not order_line_ids:
        return {}
    rows = await session.execute(
        select(
            RefundLine.order_line_id,
            func.coalesce(func.sum(RefundLine.quantity), 0),
            func.coalesce(func.sum(RefundLine.amount), 0),
        )
        .join(Refund, Refund.id == RefundLine.refund_id)
        .where(
            RefundLine.order_line_id.in_(list(order_line_ids)),
            Refund.status != RefundStatus.FAILED,
        )
        .group_by(RefundLine.order_line_id)
    )
    return {
        line_id: RefundedUnits(int(quantity), int(amount)) for line_id, quantity, amount in rows
    }


async def refundable_units(session: AsyncSession, *, order_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """Per order line of the order, the units that may still be refunded."""
    lines = (
        await session.execute(
            select(OrderLine.id, OrderLine.quantity).where(OrderLine.order_id == order_id)
        )
    ).all()
    taken = await refunded_units(session, order_line_ids=[line_id for line_id, _ in lines])
    return {
        line_id: quantity - taken.get(line_id, RefundedUnits(0, 0)).quantity
        for line_id, quantity in lines
    }


async def stale_pending(
    session: AsyncSession,
    *,
    older_than: datetime,
    sources: Sequence[RefundSource],
    limit: int = 100,
) -> list[Refund]:
    """Refunds of ``sources`` still pending since before ``older_than``, oldest first."""
    rows = await session.scalars(
        select(Refund)
        .where(
            Refund.status == RefundStatus.PENDING,
            Refund.source.in_(list(sources)),
            Refund.created_at < older_than,
        )
        .order_by(Refund.created_at)
        .limit(limit)
    )
    return list(rows.all())


# --- creating ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LineShare:
    line: OrderLine
    quantity: int
    amount: int


def _round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def _shares(
    wanted: Sequence[tuple[OrderLine, int]], taken: dict[uuid.UUID, RefundedUnits]
) -> list[_LineShare]:
    """Each line's share of its total for the units refunded.

    The units that complete a line take exactly what is left of its total, so a line refunded
    in several goes adds up to its total to the cent. Other shares are exact fractions, rounded
    together by largest remainder: the refund is their exact sum, rounded half up.
    """
    fixed: dict[uuid.UUID, int] = {}
    exact: dict[uuid.UUID, Fraction] = {}
    room: dict[uuid.UUID, int] = {}
    for line, quantity in wanted:
        before = taken.get(line.id, RefundedUnits(0, 0))
        room[line.id] = max(0, line.total - before.amount)
        if before.quantity + quantity == line.quantity:
            fixed[line.id] = room[line.id]
        else:
            exact[line.id] = Fraction(line.total * quantity, line.quantity)
    floors = {line_id: min(math.floor(value), room[line_id]) for line_id, value in exact.items()}
    extra = _round_half_up(sum(exact.values(), Fraction(0))) - sum(floors.values())
    for line_id in sorted(exact, key=lambda i: exact[i] - math.floor(exact[i]), reverse=True):
        if extra <= 0:
            break
        if floors[line_id] < room[line_id]:
            floors[line_id] += 1
            extra -= 1
    return [
        _LineShare(line, quantity, fixed.get(line.id, floors.get(line.id, 0)))
        for line, quantity in wanted
    ]


async def _wanted_lines(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    lines: Sequence[tuple[uuid.UUID, int]],
    vendor_id: uuid.UUID | None,
) -> list[tuple[OrderLine, int]]:
    ids = [line_id for line_id, _ in lines]
    if len(set(ids)) != len(ids):
        raise InvalidRefund("Name each order line once.")
    for line_id, quantity in lines:
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            raise InvalidRefund(
                "Each line's quantity must be a positive whole number.",
                order_line_id=str(line_id),
            )
    found = {
        line.id: line
        for line in (
            await session.scalars(
                select(OrderLine).where(OrderLine.order_id == order_id, OrderLine.id.in_(ids))
            )
        ).all()
    }
    missing = [str(line_id) for line_id in ids if line_id not in found]
    if missing:
        raise InvalidRefund("These lines are not lines of this order.", order_line_ids=missing)
    if vendor_id is not None:
        others = [str(line_id) for line_id in ids if found[line_id].vendor_id != vendor_id]
        if others:
            raise InvalidRefund(
                "These lines belong to another vendor than the refund's.", order_line_ids=others
            )
    return [(found[line_id], quantity) for line_id, quantity in lines]


async def create_refund(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    source: RefundSource,
    reason: str,
    lines: Sequence[tuple[uuid.UUID, int]] = (),
    amount: int | None = None,
    currency: str | None = None,
    vendor_id: uuid.UUID | None = None,
    restock: bool = False,
    requested_by: uuid.UUID | None = None,
    request_key: str | None = None,
    include_shipping: bool = False,
    now: datetime,
) -> Refund:
    """A ``pending`` refund of ``lines`` ((order_line_id, quantity): their share of the lines'
    totals) or of ``amount`` (minor units; in ``currency`` when given, which must be the
    order's), counted at once in the payment's refunded amount.

    More than what is left of the captured payment is ``RefundExceedsRemaining``; more units of
    a line than were bought and not yet refunded is ``RefundLinesExceedRemaining``; an order
    with no captured payment is ``OrderNotRefundable``. The same ``request_key`` returns the
    refund it created first, whatever else is passed. The caller starts its workflow.
    ``include_shipping`` (with ``vendor_id``): the vendor's whole part is off, so its shipping
    and the tax on it go back too (once per part: a second such refund adds none).
    """
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidRefund(f"A reason of 1 to {MAX_REASON} characters is required.")
    if bool(lines) == (amount is not None):
        raise InvalidRefund("Refund either order lines or an amount.")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)):
        raise InvalidRefund("The amount must be a whole number of minor units.")
    if amount is not None and amount <= 0:
        raise InvalidRefund("The amount must be positive.")
    if restock and not lines:
        raise InvalidRefund("Only a refund of order lines can put units back in stock.")
    if request_key is not None:
        if not 1 <= len(request_key) <= MAX_REQUEST_KEY:
            raise InvalidRefund(f"A request key has 1 to {MAX_REQUEST_KEY} characters.")
        await advisory_lock(session, "refund", request_key)
        existing = await session.scalar(select(Refund).where(Refund.request_key == request_key))
        if existing is not None:
            return existing

    # The payment row's lock serialises every refund of the order from here to the commit, so
    # the units and money counted below are not counted by anyone else meanwhile.
    payment = await session.scalar(
        select(Payment)
        .where(Payment.order_id == order_id, Payment.status == PaymentStatus.CAPTURED)
        .order_by(Payment.attempt.desc())
        .limit(1)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if payment is None:
        await orders.get_order(session, order_id=order_id)  # an unknown order is a 404
        raise OrderNotRefundable("The order has no captured payment to refund.")
    if currency is not None and currency != payment.currency:
        raise InvalidRefund(f"The amount must be in the order's currency, {payment.currency}.")

    shares: list[_LineShare] = []
    if lines:
        wanted = await _wanted_lines(session, order_id=order_id, lines=lines, vendor_id=vendor_id)
        taken = await refunded_units(session, order_line_ids=[line.id for line, _ in wanted])
        over = [
            {
                "order_line_id": str(line.id),
                "requested": quantity,
                "remaining": line.quantity - taken.get(line.id, RefundedUnits(0, 0)).quantity,
            }
            for line, quantity in wanted
            if quantity > line.quantity - taken.get(line.id, RefundedUnits(0, 0)).quantity
        ]
        if over:
            raise RefundLinesExceedRemaining(
                "More units than are left to refund on these lines.", lines=over
            )
        shares = _shares(wanted, taken)
        amount = sum(share.amount for share in shares)
        if include_shipping and vendor_id is not None:
            amount += await _unrefunded_shipping(session, order_id=order_id, vendor_id=vendor_id)
        if amount <= 0:
            raise InvalidRefund("These lines cost nothing: there is nothing to refund.")
    assert amount is not None

    counted = await session.scalar(
        update(Payment)
        .where(
            Payment.id == payment.id,
            Payment.status == PaymentStatus.CAPTURED,
            Payment.refunded_amount + amount <= Payment.captured_amount,
        )
        .values(refunded_amount=Payment.refunded_amount + amount)
        .returning(Payment.id)
        .execution_options(synchronize_session=False)
    )
    if counted is None:
        left = payment.captured_amount - payment.refunded_amount
        raise RefundExceedsRemaining(
            f"{format_money(amount, payment.currency)} is more than the "
            f"{format_money(left, payment.currency)} left to refund.",
            requested=amount,
            remaining=left,
            currency=payment.currency,
        )
    shipping_back = include_shipping and bool(lines) and vendor_id is not None
    refund = Refund(
        id=uuid.uuid4(),
        order_id=order_id,
        payment_id=payment.id,
        vendor_id=vendor_id,
        amount=amount,
        currency=payment.currency.upper(),
        status=RefundStatus.PENDING,
        source=source,
        reason=reason,
        restock=restock,
        requested_by=requested_by,
        request_key=request_key,
        created_at=now,  # the reconciler's "pending for too long" reads it
    )
    session.add(refund)
    await session.flush()
    metrics.count_on_commit(session, metrics.REFUNDS_OPENED.labels(source.value))
    for share in shares:
        session.add(
            RefundLine(
                refund_id=refund.id,
                order_line_id=share.line.id,
                quantity=share.quantity,
                amount=share.amount,
            )
        )
    await orders.add_event(
        session,
        order_id=order_id,
        type="refund_requested",
        detail=f"Refund of {format_money(amount, refund.currency)} requested "
        f"({source.value.replace('_', ' ')}).",
        data={
            "refund_id": str(refund.id),
            "amount": amount,
            "source": source.value,
            **({"shipping_of_vendor": str(vendor_id)} if shipping_back else {}),
        },
    )
    return refund


async def _unrefunded_shipping(
    session: AsyncSession, *, order_id: uuid.UUID, vendor_id: uuid.UUID
) -> int:
    """The vendor part's shipping and its tax, unless an earlier refund gave them back."""
    part = await session.get(OrderVendorPart, (order_id, vendor_id))
    if part is None:
        return 0
    given_back = await session.scalar(
        select(OrderEvent.id).where(
            OrderEvent.order_id == order_id,
            OrderEvent.type == "refund_requested",
            OrderEvent.data["shipping_of_vendor"].astext == str(vendor_id),
        )
    )
    if given_back is not None:
        return 0
    return part.shipping_amount + part.shipping_tax


# --- outcomes ----------------------------------------------------------------------------------


async def mark_succeeded(
    session: AsyncSession, *, refund_id: uuid.UUID, provider_refund_id: str | None, now: datetime
) -> bool:
    """The provider refunded it: ``pending`` -> ``succeeded``; a retry changes nothing."""
    moved = (
        await session.execute(
            update(Refund)
            .where(Refund.id == refund_id, Refund.status == RefundStatus.PENDING)
            .values(
                status=RefundStatus.SUCCEEDED,
                provider_refund_id=provider_refund_id,
                completed_at=now,
            )
            .returning(Refund.order_id, Refund.amount, Refund.currency)
            .execution_options(synchronize_session=False)
        )
    ).first()
    if moved is None:
        return False
    order_id, amount, currency = moved
    await orders.add_event(
        session,
        order_id=order_id,
        type="refunded",
        detail=f"{format_money(amount, currency)} refunded.",
        data={"refund_id": str(refund_id), "provider_refund_id": provider_refund_id},
    )
    return True


async def mark_failed(
    session: AsyncSession, *, refund_id: uuid.UUID, reason: str, now: datetime
) -> bool:
    """The provider refused for good: ``pending`` -> ``failed``, and its amount is available
    again. Both in one transaction behind one conditional update, so the amount is given back
    exactly once however often this runs."""
    moved = (
        await session.execute(
            update(Refund)
            .where(Refund.id == refund_id, Refund.status == RefundStatus.PENDING)
            .values(
                status=RefundStatus.FAILED,
                failure_reason=reason[:200],
                completed_at=now,
            )
            .returning(Refund.order_id, Refund.payment_id, Refund.amount, Refund.currency)
            .execution_options(synchronize_session=False)
        )
    ).first()
    if moved is None:
        return False
    order_id, payment_id, amount, currency = moved
    await session.execute(
        update(Payment)
        .where(Payment.id == payment_id)
        .values(refunded_amount=Payment.refunded_amount - amount)
        .execution_options(synchronize_session=False)
    )
    await orders.add_event(
        session,
        order_id=order_id,
        type="refund_failed",
        detail=f"The refund of {format_money(amount, currency)} was refused ({reason}).",
        data={"refund_id": str(refund_id), "reason": reason[:200]},
    )
    return True


# --- telling the shopper -----------------------------------------------------------------------


def describe(refund: Refund) -> str:
    """One line for people: the Temporal UI's summary, logs."""
    return (
        f"Refund {format_money(refund.amount, refund.currency)} of order {refund.order_id} "
        f"({refund.source.value.replace('_', ' ')})"
    )


def refund_issued(
    *,
    to: str,
    order: Order,
    refund: Refund,
    lines: Sequence[tuple[RefundLine, OrderLine]],
    storefront_url: str,
) -> EmailMessage:
    """Tell the shopper money is on its way back, and for what."""
    return compose(
        "refund_issued",
        to=to,
        order=order,
        refund=refund,
        lines=lines,
        order_url=f"{storefront_url.rstrip('/')}/account/orders/{order.id}",
    )


async def queue_refund_issued(
    session: AsyncSession, *, refund_id: uuid.UUID, storefront_url: str
) -> bool:
    """Queue the "refund issued" email of a succeeded refund, once (True if queued now)."""
    refund = await get_refund(session, refund_id=refund_id)
    if refund.status != RefundStatus.SUCCEEDED:
        return False
    await orders.lock_order(session, order_id=refund.order_id)
    event = f"refund_mailed:{refund.id}"
    if await orders.has_event(session, order_id=refund.order_id, type=event):
        return False
    order = await orders.get_order(session, order_id=refund.order_id)
    if order.contact_email:
        rows = (
            await session.execute(
                select(RefundLine, OrderLine)
                .join(OrderLine, OrderLine.id == RefundLine.order_line_id)
                .where(RefundLine.refund_id == refund.id)
                .order_by(OrderLine.vendor_id, OrderLine.sku)
            )
        ).all()
        await queue_mail(
            session,
            refund_issued(
                to=order.contact_email,
                order=order,
                refund=refund,
                lines=[(refunded, line) for refunded, line in rows],
                storefront_url=storefront_url,
            ),
        )
    await orders.add_event(
        session, order_id=refund.order_id, type=event, detail="The shopper was told.", data={}
    )
    return True


async def vendor_shares(session: AsyncSession, refund: Refund) -> dict[uuid.UUID, int]:
    """Who gives ``refund`` back, and how much, for the ledger and the credit notes alike:
    its vendor; else the vendors of its lines (in proportion to the lines' amounts); else
    every vendor of the order in proportion to their part's total."""
    if refund.vendor_id is not None:
        return {refund.vendor_id: refund.amount}
    by_line = (
        await session.execute(
            select(OrderLine.vendor_id, func.sum(RefundLine.amount))
            .join(OrderLine, OrderLine.id == RefundLine.order_line_id)
            .where(RefundLine.refund_id == refund.id)
            .group_by(OrderLine.vendor_id)
        )
    ).all()
    if by_line:
        weights = {vendor_id: int(amount) for vendor_id, amount in by_line}
        return split_by_weight(refund.amount, weights)
    parts = await session.scalars(
        select(OrderVendorPart)
        .where(OrderVendorPart.order_id == refund.order_id)
        .order_by(OrderVendorPart.vendor_id)
    )
    return split_by_weight(refund.amount, {part.vendor_id: part.total for part in parts.all()})
