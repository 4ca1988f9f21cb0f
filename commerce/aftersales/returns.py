"""Returns (RMAs): delivered lines going back to their vendor, then refunded.

The database is the arbiter of a return's state: every move is a conditional ``UPDATE ...
WHERE status = :expected``, so the vendor deciding and the automatic approval at the deadline,
or the shopper withdrawing and the vendor receiving, can race and exactly one wins. The
``ReturnWorkflow`` (id ``return:{id}``) is the timer and the orchestrator: it approves at the
deadline when the vendor has not answered, and once the parcel is received it has the refund
created and carried out. The emails of each step are queued in the transaction of the move
that causes them, so each is sent once whoever makes the move.

A shopper may ask to return units of a vendor's lines once that vendor's shipment is
delivered and for ``vendors.return_window_days`` after; never more units than were bought,
less those cancelled and those in other returns that are not rejected or withdrawn.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.aftersales import refunds
from commerce.errors import Conflict, DomainError, NotFound
from commerce.notifications.mail import EmailMessage, compose, queue_mail
from commerce.orders import orders
from commerce.orders.order_mail import vendor_recipients
from core import pagination
from core.money import format_money
from models import (
    Order,
    OrderLine,
    Refund,
    RefundSource,
    RefundStatus,
    ReturnLine,
    ReturnRequest,
    ReturnStatus,
    Shipment,
    ShipmentStatus,
    Vendor,
)

MAX_REASON = 500
MAX_LINES = 100

#: Returns that hold their units: everything but the rejected and the withdrawn.
OPEN_OR_DONE: tuple[ReturnStatus, ...] = (
    ReturnStatus.REQUESTED,
    ReturnStatus.APPROVED,
    ReturnStatus.RECEIVED,
    ReturnStatus.REFUNDED,
)
#: A return's workflow ends in these.
FINAL: frozenset[ReturnStatus] = frozenset(
    {ReturnStatus.REJECTED, ReturnStatus.CANCELLED, ReturnStatus.REFUNDED}
)


# --- errors ------------------------------------------------------------------------------------


class ReturnNotFound(NotFound):
    code, title = "return_not_found", "Return not found"


class InvalidReturn(DomainError):
    status, code, title = 422, "invalid_return", "The return request is not valid"


class ReturnLinesOfAnotherVendor(InvalidReturn):
    code, title = "return_lines_other_vendor", "A return goes to one vendor, with its own lines"


class ReturnNotDelivered(Conflict):
    code, title = "return_not_delivered", "These items have not been delivered yet"


class ReturnWindowClosed(Conflict):
    code, title = "return_window_closed", "The return window of these items is over"


class ReturnQuantityExceeded(Conflict):
    code, title = (
        "return_quantity_exceeded",
        "More units than are left to return on an order line",
    )


class ReturnAlreadyDecided(Conflict):
    code, title = "return_already_decided", "The return has already been decided"


class ReturnResponseWindowOver(Conflict):
    code, title = (
        "return_response_window_over",
        "The time to answer this return is over: it is approved automatically",
    )


class ReturnNotApproved(Conflict):
    code, title = "return_not_approved", "Only an approved return can be received"


class ReturnNotCancellable(Conflict):
    code, title = "return_not_cancellable", "The return can no longer be withdrawn"


class ReturnNotRefundable(Conflict):
    code, title = "return_not_refundable", "The return cannot be refunded"


# --- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReturnedLine:
    line: ReturnLine
    order_line: OrderLine


@dataclass(frozen=True)
class ReturnDetail:
    request: ReturnRequest
    lines: Sequence[ReturnedLine]
    refund: Refund | None


def short(some_id: uuid.UUID) -> str:
    """The first group of an id, as people read it in emails."""
    return str(some_id).split("-")[0].upper()


async def get_return(
    session: AsyncSession, *, return_id: uuid.UUID, for_update: bool = False
) -> ReturnRequest:
    query = select(ReturnRequest).where(ReturnRequest.id == return_id)
    if for_update:
        query = query.with_for_update()
    found = await session.scalar(query.execution_options(populate_existing=True))
    if found is None:
        raise ReturnNotFound(f"No return {return_id}.")
    return found


async def customer_return(
    session: AsyncSession, *, order_id: uuid.UUID, return_id: uuid.UUID, customer_id: uuid.UUID
) -> ReturnRequest:
    """A return of the customer's own order; anyone else's is "not found" (no IDOR)."""
    found = await session.scalar(
        select(ReturnRequest)
        .join(Order, Order.id == ReturnRequest.order_id)
        .where(
            ReturnRequest.id == return_id,
            ReturnRequest.order_id == order_id,
            Order.customer_id == customer_id,
        )
        .execution_options(populate_existing=True)
    )
    if found is None:
        raise ReturnNotFound(f"No return {return_id}.")
    return found


async def vendor_return(
    session: AsyncSession, *, vendor_id: uuid.UUID, return_id: uuid.UUID
) -> ReturnRequest:
    """A return to this vendor; another vendor's is "not found"."""
    found = await session.scalar(
        select(ReturnRequest)
        .where(ReturnRequest.id == return_id, ReturnRequest.vendor_id == vendor_id)
        .execution_options(populate_existing=True)
    )
    if found is None:
        raise ReturnNotFound(f"No return {return_id}.")
    return found


async def details(
    session: AsyncSession, *, requests: Sequence[ReturnRequest]
) -> list[ReturnDetail]:
    """Each return with its lines (as bought) and its refund, in two queries."""
    ids = [request.id for request in requests]
    lines: dict[uuid.UUID, list[ReturnedLine]] = {return_id: [] for return_id in ids}
    if ids:
        rows = await session.execute(
            select(ReturnLine, OrderLine)
            .join(OrderLine, OrderLine.id == ReturnLine.order_line_id)
            .where(ReturnLine.return_id.in_(ids))
            .order_by(ReturnLine.return_id, OrderLine.sku, OrderLine.id)
        )
        for line, order_line in rows.all():
            lines[line.return_id].append(ReturnedLine(line, order_line))
    refund_ids = [request.refund_id for request in requests if request.refund_id is not None]
    found: dict[uuid.UUID, Refund] = {}
    if refund_ids:
        rows_refunds = await session.scalars(
            select(Refund)
            .where(Refund.id.in_(refund_ids))
            .execution_options(populate_existing=True)
        )
        found = {refund.id: refund for refund in rows_refunds.all()}
    return [
        ReturnDetail(
            request=request,
            lines=lines[request.id],
            refund=found.get(request.refund_id) if request.refund_id else None,
        )
        for request in requests
    ]


async def detail(session: AsyncSession, *, request: ReturnRequest) -> ReturnDetail:
    return (await details(session, requests=[request]))[0]


async def list_for_order(session: AsyncSession, *, order_id: uuid.UUID) -> list[ReturnRequest]:
    """The order's returns, oldest first."""
    rows = await session.scalars(
        select(ReturnRequest)
        .where(ReturnRequest.order_id == order_id)
        .order_by(ReturnRequest.created_at, ReturnRequest.id)
        .execution_options(populate_existing=True)
    )
    return list(rows.all())


async def list_for_vendor(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    status: ReturnStatus | None = None,
    limit: int,
    cursor: str | None = None,
) -> pagination.Page[ReturnRequest]:
    """The vendor's returns, newest first, maybe of one status, a page at a time."""
    query = select(ReturnRequest).where(ReturnRequest.vendor_id == vendor_id)
    if status is not None:
        query = query.where(ReturnRequest.status == status)
    return await pagination.newest_first(
        session,
        query.execution_options(populate_existing=True),
        created_at=ReturnRequest.created_at,
        id=ReturnRequest.id,
        scope="returns",
        cursor=cursor,
        limit=limit,
    )


# --- asking for a return -----------------------------------------------------------------------


async def _delivered_shipment(
    session: AsyncSession, *, order_id: uuid.UUID, vendor: Vendor, now: datetime
) -> Shipment:
    shipment = await session.scalar(
        select(Shipment)
        .where(Shipment.order_id == order_id, Shipment.vendor_id == vendor.id)
        .execution_options(populate_existing=True)
    )
    if (
        shipment is None
        or shipment.status != ShipmentStatus.DELIVERED
        or shipment.delivered_at is None
    ):
        raise ReturnNotDelivered(
            "Items can be returned once they have been delivered.",
            shipment_status=shipment.status.value if shipment is not None else None,
        )
    closes_at = shipment.delivered_at + timedelta(days=vendor.return_window_days)
    if now > closes_at:
        raise ReturnWindowClosed(
            f"{vendor.name} takes items back for {vendor.return_window_days} day(s) after "
            "delivery; that time is over.",
            window_closed_at=closes_at.isoformat(),
        )
    return shipment


async def returnable_units(
    session: AsyncSession, *, order_line_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Per order line, the units that may still be asked back: bought, less cancelled, less
    those in returns that are not rejected or withdrawn (``returned_quantity`` only counts
    units of such returns, so it is not subtracted again)."""
    if not order_line_ids:
        return {}
    bought = (
        await session.execute(
            select(OrderLine.id, OrderLine.quantity, OrderLine.cancelled_quantity).where(
                OrderLine.id.in_(list(order_line_ids))
            )
        )
    ).all()
    held = dict(
        (
            await session.execute(
                select(ReturnLine.order_line_id, func.coalesce(func.sum(ReturnLine.quantity), 0))
                .join(ReturnRequest, ReturnRequest.id == ReturnLine.return_id)
                .where(
                    ReturnLine.order_line_id.in_(list(order_line_ids)),
                    ReturnRequest.status.in_(OPEN_OR_DONE),
                )
                .group_by(ReturnLine.order_line_id)
            )
        ).all()
    )
    return {
        line_id: quantity - cancelled - int(held.get(line_id, 0))
        for line_id, quantity, cancelled in bought
    }


async def request_return(
    session: AsyncSession,
    *,
    order: Order,
    vendor_id: uuid.UUID,
    reason: str,
    lines: Sequence[tuple[uuid.UUID, int]],
    now: datetime,
    respond_within_s: float,
) -> ReturnRequest:
    """Ask ``vendor_id`` to take back ``lines`` ((order_line_id, quantity)) of ``order``.

    The vendor's shipment of the order must be delivered (``ReturnNotDelivered``) within its
    return window (``ReturnWindowClosed``); every line must be in this order, named once
    (``InvalidReturn``), and the vendor's (``ReturnLinesOfAnotherVendor``); no line may go
    over what is left to return (``ReturnQuantityExceeded``). The order lines are locked
    until the commit, so two requests at once cannot both take the last unit. The vendor is
    emailed; it has until ``respond_by`` to answer. The caller commits, then starts the
    workflow.
    """
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidReturn(f"A reason of 1 to {MAX_REASON} characters is required.")
    if not lines or len(lines) > MAX_LINES:
        raise InvalidReturn(f"Name 1 to {MAX_LINES} order lines to return.")
    ids = [line_id for line_id, _ in lines]
    if len(set(ids)) != len(ids):
        raise InvalidReturn("Name each order line once.")
    for line_id, quantity in lines:
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            raise InvalidReturn(
                "Each line's quantity must be a positive whole number.",
                order_line_id=str(line_id),
            )
    vendor = await session.get(Vendor, vendor_id)
    found = {
        line.id: line
        for line in (
            await session.scalars(
                select(OrderLine)
                .where(OrderLine.order_id == order.id, OrderLine.id.in_(ids))
                .order_by(OrderLine.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).all()
    }
    missing = [str(line_id) for line_id in ids if line_id not in found]
    if missing:
        raise InvalidReturn("These are not lines of this order.", order_line_ids=missing)
    others = [str(line_id) for line_id in ids if found[line_id].vendor_id != vendor_id]
    if vendor is None or others:
        raise ReturnLinesOfAnotherVendor(
            "A return goes to one vendor: these lines are another vendor's.",
            order_line_ids=others or [str(line_id) for line_id in ids],
        )
    await _delivered_shipment(session, order_id=order.id, vendor=vendor, now=now)
    left = await returnable_units(session, order_line_ids=ids)
    over = [
        {"order_line_id": str(line_id), "requested": quantity, "remaining": max(0, left[line_id])}
        for line_id, quantity in lines
        if quantity > left[line_id]
    ]
    if over:
        raise ReturnQuantityExceeded("More units than are left to return.", lines=over)

    request = ReturnRequest(
        id=uuid.uuid4(),
        order_id=order.id,
        vendor_id=vendor_id,
        status=ReturnStatus.REQUESTED,
        reason=reason,
        respond_by=now + timedelta(seconds=respond_within_s),
    )
    session.add(request)
    await session.flush()
    returned = [
        ReturnedLine(
            ReturnLine(return_id=request.id, order_line_id=line_id, quantity=quantity),
            found[line_id],
        )
        for line_id, quantity in lines
    ]
    session.add_all(item.line for item in returned)
    await session.flush()
    units = sum(quantity for _, quantity in lines)
    await orders.add_event(
        session,
        order_id=order.id,
        type="return_requested",
        detail=f"Return of {units} unit(s) to {vendor.name} requested.",
        data={"return_id": str(request.id), "vendor_id": str(vendor_id), "units": units},
    )
    for to in await vendor_recipients(session, vendor=vendor):
        await queue_mail(
            session, vendor_return_requested(to=to, vendor=vendor, request=request, lines=returned)
        )
    return request


# --- the vendor's decision ---------------------------------------------------------------------


async def _move(
    session: AsyncSession,
    *,
    return_id: uuid.UUID,
    to: ReturnStatus,
    allowed_from: Sequence[ReturnStatus],
    where: Sequence[ColumnElement[bool]] = (),
    values: dict[str, object] | None = None,
) -> ReturnRequest | None:
    """The conditional update every move goes through; None if the return was not in
    ``allowed_from`` (someone else moved it first) or ``where`` did not hold."""
    moved = await session.scalar(
        update(ReturnRequest)
        .where(
            ReturnRequest.id == return_id,
            ReturnRequest.status.in_(list(allowed_from)),
            *where,
        )
        .values(status=to, **(values or {}))
        .returning(ReturnRequest.id)
        .execution_options(synchronize_session=False)
    )
    if moved is None:
        return None
    return await get_return(session, return_id=return_id)


async def approve(
    session: AsyncSession, *, vendor_id: uuid.UUID, return_id: uuid.UUID, now: datetime
) -> ReturnRequest:
    """The vendor takes the items back: ``requested`` -> ``approved``; the shopper is told.
    ``ReturnAlreadyDecided`` if it was decided (or approved at the deadline) before."""
    await vendor_return(session, vendor_id=vendor_id, return_id=return_id)
    moved = await _move(
        session,
        return_id=return_id,
        to=ReturnStatus.APPROVED,
        allowed_from=[ReturnStatus.REQUESTED],
        values={"decided_at": now},
    )
    if moved is None:
        current = await get_return(session, return_id=return_id)
        raise ReturnAlreadyDecided(
            f"The return is {current.status.value}.", current_status=current.status.value
        )
    await _approved(session, request=moved)
    return moved


async def auto_approve(session: AsyncSession, *, return_id: uuid.UUID, now: datetime) -> bool:
    """The vendor did not answer by ``respond_by`` (the workflow's timer says when): approved
    automatically, the shopper told. False if the vendor (or the shopper) moved it first:
    the database decides who wins."""
    moved = await _move(
        session,
        return_id=return_id,
        to=ReturnStatus.APPROVED,
        allowed_from=[ReturnStatus.REQUESTED],
        values={"decided_at": now, "auto_approved": True},
    )
    if moved is None:
        return False
    await _approved(session, request=moved)
    return True


async def _approved(session: AsyncSession, *, request: ReturnRequest) -> None:
    vendor = await session.get(Vendor, request.vendor_id)
    order = await orders.get_order(session, order_id=request.order_id)
    name = vendor.name if vendor is not None else "The seller"
    how = "automatically, as the seller did not answer in time" if request.auto_approved else ""
    await orders.add_event(
        session,
        order_id=request.order_id,
        type="return_approved",
        detail=f"Return to {name} approved{' ' + how if how else ''}.",
        data={"return_id": str(request.id), "auto_approved": request.auto_approved},
    )
    if order.contact_email:
        await queue_mail(
            session,
            return_approved(
                to=order.contact_email,
                request=request,
                vendor_name=name,
                lines=(await detail(session, request=request)).lines,
            ),
        )


async def reject(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    return_id: uuid.UUID,
    reason: str,
    now: datetime,
) -> ReturnRequest:
    """The vendor refuses the return (with its reason) before ``respond_by``: ``requested`` ->
    ``rejected``; the shopper is told. After the deadline the return is approved instead
    (``ReturnResponseWindowOver``)."""
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidReturn(f"A reason of 1 to {MAX_REASON} characters is required.")
    await vendor_return(session, vendor_id=vendor_id, return_id=return_id)
    moved = await _move(
        session,
        return_id=return_id,
        to=ReturnStatus.REJECTED,
        allowed_from=[ReturnStatus.REQUESTED],
        where=[ReturnRequest.respond_by > now],
        values={"decided_at": now, "rejection_reason": reason},
    )
    if moved is None:
        current = await get_return(session, return_id=return_id)
        if current.status == ReturnStatus.REQUESTED:
            raise ReturnResponseWindowOver(
                "The time to answer was over; the return is being approved automatically.",
                respond_by=current.respond_by.isoformat(),
            )
        raise ReturnAlreadyDecided(
            f"The return is {current.status.value}.", current_status=current.status.value
        )
    vendor = await session.get(Vendor, vendor_id)
    order = await orders.get_order(session, order_id=moved.order_id)
    name = vendor.name if vendor is not None else "The seller"
    await orders.add_event(
        session,
        order_id=moved.order_id,
        type="return_rejected",
        detail=f"Return to {name} rejected: {reason}",
        data={"return_id": str(moved.id)},
    )
    if order.contact_email:
        await queue_mail(
            session,
            return_rejected(to=order.contact_email, request=moved, vendor_name=name),
        )
    return moved


async def mark_received(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    return_id: uuid.UUID,
    inspection_note: str,
    now: datetime,
) -> ReturnRequest:
    """The vendor has the parcel and inspected it: ``approved`` -> ``received``, and the units
    count as returned on their order lines, in the same transaction (the move is what makes
    the count happen once). The workflow then refunds them."""
    note = (inspection_note or "").strip()
    if not note or len(note) > MAX_REASON:
        raise InvalidReturn(f"An inspection note of 1 to {MAX_REASON} characters is required.")
    await vendor_return(session, vendor_id=vendor_id, return_id=return_id)
    moved = await _move(
        session,
        return_id=return_id,
        to=ReturnStatus.RECEIVED,
        allowed_from=[ReturnStatus.APPROVED],
        values={"received_at": now, "inspection_note": note},
    )
    if moved is None:
        current = await get_return(session, return_id=return_id)
        raise ReturnNotApproved(
            f"The return is {current.status.value}.", current_status=current.status.value
        )
    found = await detail(session, request=moved)
    for returned in found.lines:
        counted = await session.scalar(
            update(OrderLine)
            .where(
                OrderLine.id == returned.line.order_line_id,
                OrderLine.cancelled_quantity + OrderLine.returned_quantity + returned.line.quantity
                <= OrderLine.quantity,
            )
            .values(returned_quantity=OrderLine.returned_quantity + returned.line.quantity)
            .returning(OrderLine.id)
            .execution_options(synchronize_session=False)
        )
        if counted is None:
            # Requests are bounded when made; this only guards the books against anything else.
            raise ReturnQuantityExceeded(
                "More units would be returned than were bought on a line.",
                order_line_id=str(returned.line.order_line_id),
            )
    units = sum(returned.line.quantity for returned in found.lines)
    await orders.add_event(
        session,
        order_id=moved.order_id,
        type="return_received",
        detail=f"{units} returned unit(s) received and inspected: {note}",
        data={"return_id": str(moved.id), "units": units},
    )
    return moved


async def withdraw(
    session: AsyncSession, *, order_id: uuid.UUID, return_id: uuid.UUID, customer_id: uuid.UUID
) -> ReturnRequest:
    """The shopper withdraws the return before it is received: -> ``cancelled``, its units may
    be asked back again. ``ReturnNotCancellable`` once received, rejected or withdrawn."""
    await customer_return(session, order_id=order_id, return_id=return_id, customer_id=customer_id)
    moved = await _move(
        session,
        return_id=return_id,
        to=ReturnStatus.CANCELLED,
        allowed_from=[ReturnStatus.REQUESTED, ReturnStatus.APPROVED],
    )
    if moved is None:
        current = await get_return(session, return_id=return_id)
        raise ReturnNotCancellable(
            f"The return is {current.status.value}.", current_status=current.status.value
        )
    await orders.add_event(
        session,
        order_id=order_id,
        type="return_cancelled",
        detail="Return withdrawn by the shopper.",
        data={"return_id": str(moved.id)},
    )
    return moved


async def abandon(session: AsyncSession, *, return_id: uuid.UUID, reason: str) -> bool:
    """Withdraw a return nobody can work on (its workflow could not be started): the shopper
    may ask again. False if it had moved on already."""
    moved = await _move(
        session,
        return_id=return_id,
        to=ReturnStatus.CANCELLED,
        allowed_from=[ReturnStatus.REQUESTED],
    )
    if moved is None:
        return False
    await orders.add_event(
        session,
        order_id=moved.order_id,
        type="return_cancelled",
        detail=reason,
        data={"return_id": str(return_id)},
    )
    return True


# --- the refund --------------------------------------------------------------------------------


async def create_return_refund(
    session: AsyncSession, *, return_id: uuid.UUID, now: datetime
) -> Refund:
    """The refund of a received return's lines (their share of the lines' totals), put back in
    stock when it succeeds, linked to the return. Once: the return's row lock and the request
    key ``return:{id}`` make a retry find the refund it made. ``ReturnNotRefundable`` if the
    return is not received, or the money or the units were refunded some other way."""
    request = await get_return(session, return_id=return_id, for_update=True)
    if request.refund_id is not None:
        return await refunds.get_refund(session, refund_id=request.refund_id)
    if request.status != ReturnStatus.RECEIVED:
        raise ReturnNotRefundable(
            f"The return is {request.status.value}, not received.",
            current_status=request.status.value,
        )
    found = await detail(session, request=request)
    try:
        refund = await refunds.create_refund(
            session,
            order_id=request.order_id,
            source=RefundSource.RETURN,
            reason=f"Return {short(request.id)}: {request.reason}"[: refunds.MAX_REASON],
            lines=[(item.line.order_line_id, item.line.quantity) for item in found.lines],
            vendor_id=request.vendor_id,
            restock=True,
            request_key=f"return:{request.id}",
            now=now,
        )
    except (
        refunds.RefundExceedsRemaining,
        refunds.RefundLinesExceedRemaining,
        refunds.OrderNotRefundable,
        refunds.InvalidRefund,
    ) as error:
        raise ReturnNotRefundable(error.detail, cause=error.code, **error.extra) from None
    await session.execute(
        update(ReturnRequest)
        .where(ReturnRequest.id == request.id)
        .values(refund_id=refund.id)
        .execution_options(synchronize_session=False)
    )
    return refund


async def complete(session: AsyncSession, *, return_id: uuid.UUID) -> ReturnRequest:
    """Once its refund succeeded: ``received`` -> ``refunded`` and the shopper is told. A return
    whose refund is pending or failed stays ``received`` (a failed one is on the timeline)."""
    request = await get_return(session, return_id=return_id, for_update=True)
    if request.refund_id is None or request.status != ReturnStatus.RECEIVED:
        return request
    refund = await refunds.get_refund(session, refund_id=request.refund_id)
    if refund.status == RefundStatus.FAILED:
        event = f"return_refund_failed:{request.id}"
        if not await orders.has_event(session, order_id=request.order_id, type=event):
            await orders.add_event(
                session,
                order_id=request.order_id,
                type=event,
                detail=f"The refund of return {short(request.id)} failed: "
                f"{refund.failure_reason or 'refused'}.",
                data={"return_id": str(request.id), "refund_id": str(refund.id)},
            )
        return request
    if refund.status != RefundStatus.SUCCEEDED:
        return request
    moved = await _move(
        session,
        return_id=return_id,
        to=ReturnStatus.REFUNDED,
        allowed_from=[ReturnStatus.RECEIVED],
    )
    assert moved is not None  # the row is locked and was received
    await orders.add_event(
        session,
        order_id=moved.order_id,
        type="return_refunded",
        detail=f"Return refunded: {format_money(refund.amount, refund.currency)}.",
        data={"return_id": str(moved.id), "refund_id": str(refund.id)},
    )
    order = await orders.get_order(session, order_id=moved.order_id)
    vendor = await session.get(Vendor, moved.vendor_id)
    if order.contact_email:
        await queue_mail(
            session,
            return_refunded(
                to=order.contact_email,
                request=moved,
                vendor_name=vendor.name if vendor is not None else "The seller",
                refund=refund,
            ),
        )
    return moved


def describe(request: ReturnRequest, *, units: int, vendor_name: str) -> str:
    """One line for people: the Temporal UI's summary, logs."""
    return f"Return {request.id} of order {request.order_id}: {units} unit(s) back to {vendor_name}"


# --- emails ------------------------------------------------------------------------------------


def vendor_return_requested(
    *, to: str, vendor: Vendor, request: ReturnRequest, lines: Sequence[ReturnedLine]
) -> EmailMessage:
    """Tell the vendor a shopper wants to send items back, and by when to answer."""
    return compose("vendor_return_requested", to=to, vendor=vendor, request=request, lines=lines)


def return_approved(
    *, to: str, request: ReturnRequest, vendor_name: str, lines: Sequence[ReturnedLine]
) -> EmailMessage:
    """Tell the shopper to send the items back."""
    return compose("return_approved", to=to, request=request, vendor_name=vendor_name, lines=lines)


def return_rejected(*, to: str, request: ReturnRequest, vendor_name: str) -> EmailMessage:
    return compose("return_rejected", to=to, request=request, vendor_name=vendor_name)


def return_refunded(
    *, to: str, request: ReturnRequest, vendor_name: str, refund: Refund
) -> EmailMessage:
    return compose(
        "return_refunded", to=to, request=request, vendor_name=vendor_name, refund=refund
    )
