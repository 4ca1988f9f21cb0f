"""Shipments: each vendor's part of a paid order, from acceptance to delivery, and the order's
status as the sum of its parts. Written by the shipment workflow's activities with
conditional updates, so a retried step never moves a shipment (or its order) backwards."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.errors import Conflict, DomainError, NotFound
from commerce.fulfilment.shipping import TrackingEvent
from commerce.orders import orders
from core.pagination import Page, newest_first
from models import (
    DeliveredPurchase,
    Order,
    OrderLine,
    OrderStatus,
    OrderVendorPart,
    Shipment,
    ShipmentEvent,
    ShipmentStatus,
    Vendor,
)

#: A shipment moves along this line (``exception`` may come anywhere before delivery and
#: is left by any later news; ``cancelled`` ends it before it is shipped).
PROGRESSION: tuple[ShipmentStatus, ...] = (
    ShipmentStatus.AWAITING_ACCEPTANCE,
    ShipmentStatus.ACCEPTED,
    ShipmentStatus.LABEL_CREATED,
    ShipmentStatus.IN_TRANSIT,
    ShipmentStatus.OUT_FOR_DELIVERY,
    ShipmentStatus.DELIVERED,
)
SHIPPED: frozenset[ShipmentStatus] = frozenset(
    {
        ShipmentStatus.LABEL_CREATED,
        ShipmentStatus.IN_TRANSIT,
        ShipmentStatus.OUT_FOR_DELIVERY,
        ShipmentStatus.EXCEPTION,
        ShipmentStatus.DELIVERED,
    }
)


class ShipmentNotFound(NotFound):
    code, title = "shipment_not_found", "Shipment not found"


class InvalidTrackingNumber(DomainError):
    status, code, title = 422, "invalid_tracking_number", "The tracking number is not valid"


class TrackingNumberTaken(Conflict):
    code, title = "tracking_number_taken", "Another shipment has this tracking number"


@dataclass(frozen=True)
class Tracking:
    shipment: Shipment
    events: Sequence[ShipmentEvent]


async def open_shipment(
    session: AsyncSession, *, order_id: uuid.UUID, vendor_id: uuid.UUID, accept_by: datetime
) -> Shipment:
    """The shipment of one vendor's part, created once (a retry finds it)."""
    part = await session.get(OrderVendorPart, (order_id, vendor_id))
    await session.execute(
        insert(Shipment)
        .values(
            id=uuid.uuid4(),
            order_id=order_id,
            vendor_id=vendor_id,
            status=ShipmentStatus.AWAITING_ACCEPTANCE,
            accept_by=accept_by,
            estimated_delivery_earliest=part.estimated_delivery_earliest if part else None,
            estimated_delivery_latest=part.estimated_delivery_latest if part else None,
        )
        .on_conflict_do_nothing(index_elements=["order_id", "vendor_id"])
    )
    return await get_shipment(session, order_id=order_id, vendor_id=vendor_id)


async def get_shipment(
    session: AsyncSession, *, order_id: uuid.UUID, vendor_id: uuid.UUID
) -> Shipment:
    shipment = await session.scalar(
        select(Shipment)
        .where(Shipment.order_id == order_id, Shipment.vendor_id == vendor_id)
        .execution_options(populate_existing=True)
    )
    if shipment is None:
        raise ShipmentNotFound(f"No shipment of vendor {vendor_id} in order {order_id}.")
    return shipment


async def add_event(
    session: AsyncSession,
    *,
    shipment: Shipment,
    status: str,
    occurred_at: datetime,
    detail: str | None = None,
    location: str | None = None,
    carrier: str | None = None,
    carrier_event_id: str | None = None,
) -> bool:
    """Add a timeline step; a carrier event already stored is not added again (False)."""
    added = await session.scalar(
        insert(ShipmentEvent)
        .values(
            shipment_id=shipment.id,
            status=status,
            detail=detail,
            location=location,
            carrier=carrier,
            carrier_event_id=carrier_event_id,
            occurred_at=occurred_at,
        )
        .on_conflict_do_nothing(index_elements=["carrier", "carrier_event_id"])
        .returning(ShipmentEvent.id)
    )
    return added is not None


async def move(
    session: AsyncSession,
    *,
    shipment: Shipment,
    to: ShipmentStatus,
    values: dict[str, object] | None = None,
) -> bool:
    """Move forward along the progression (or to ``exception`` before delivery); a retried or
    late step finds it moved and changes nothing."""
    allowed: list[ShipmentStatus]
    if to == ShipmentStatus.EXCEPTION:
        allowed = [s for s in PROGRESSION if s != ShipmentStatus.DELIVERED]
    elif to == ShipmentStatus.CANCELLED:
        allowed = [ShipmentStatus.AWAITING_ACCEPTANCE, ShipmentStatus.ACCEPTED]
    elif to in (ShipmentStatus.ACCEPTED, ShipmentStatus.LABEL_CREATED):
        allowed = list(PROGRESSION[: PROGRESSION.index(to)])
    else:
        allowed = [*PROGRESSION[: PROGRESSION.index(to)], ShipmentStatus.EXCEPTION]
    moved = await session.scalar(
        update(Shipment)
        .where(Shipment.id == shipment.id, Shipment.status.in_(allowed))
        .values(status=to, **(values or {}))
        .returning(Shipment.id)
        .execution_options(synchronize_session=False)
    )
    return moved is not None


def check_tracking_number(value: str) -> str:
    number = value.strip().upper().replace(" ", "")
    if not 5 <= len(number) <= 40 or not number.isascii() or not number.isalnum():
        raise InvalidTrackingNumber("A tracking number is 5 to 40 letters and digits.")
    return number


async def find_by_tracking(
    session: AsyncSession, *, carrier: str, tracking_number: str
) -> Shipment | None:
    return await session.scalar(
        select(Shipment).where(
            Shipment.carrier == carrier, Shipment.tracking_number == tracking_number
        )
    )


async def record_delivery(
    session: AsyncSession, *, shipment: Shipment, delivered_at: datetime
) -> int:
    """The lines of a delivered shipment become delivered purchases (what lets the shopper
    review the products), delivered at ``delivered_at``. Once per line."""
    order = await session.get(Order, shipment.order_id)
    if order is None or order.customer_id is None:
        return 0
    lines = await session.scalars(
        select(OrderLine).where(
            OrderLine.order_id == shipment.order_id,
            OrderLine.vendor_id == shipment.vendor_id,
            OrderLine.product_id.is_not(None),
            OrderLine.quantity > OrderLine.cancelled_quantity,
        )
    )
    written = 0
    for line in lines.all():
        added = await session.scalar(
            insert(DeliveredPurchase)
            .values(
                id=uuid.uuid4(),
                user_id=order.customer_id,
                product_id=line.product_id,
                variant_id=line.variant_id,
                order_id=order.id,
                order_line_id=line.id,
                delivered_at=delivered_at,
            )
            .on_conflict_do_nothing(index_elements=["order_line_id"])
            .returning(DeliveredPurchase.id)
        )
        written += added is not None
    return written


async def aggregate_order_status(session: AsyncSession, *, order_id: uuid.UUID) -> OrderStatus:
    """The order's status from its shipments, moved forward only (never back)."""
    statuses = list(
        (await session.scalars(select(Shipment.status).where(Shipment.order_id == order_id))).all()
    )
    live = [status for status in statuses if status != ShipmentStatus.CANCELLED]
    order = await orders.get_order(session, order_id=order_id)
    target: OrderStatus | None = None
    if live and all(status == ShipmentStatus.DELIVERED for status in live):
        target = OrderStatus.DELIVERED
    elif live and all(status in SHIPPED for status in live):
        target = OrderStatus.SHIPPED
    elif any(status in SHIPPED for status in live):
        target = OrderStatus.PARTIALLY_SHIPPED
    if target is not None and order.status in orders.before(target):
        await orders.transition(
            session,
            order_id=order_id,
            to=target,
            allowed_from=orders.before(target),
            event=target.value,
            detail={
                OrderStatus.PARTIALLY_SHIPPED: "Part of the order is on its way.",
                OrderStatus.SHIPPED: "Everything is on its way.",
                OrderStatus.DELIVERED: "Everything has been delivered.",
            }[target],
        )
        return target
    return order.status


async def tracking_for_order(session: AsyncSession, *, order_id: uuid.UUID) -> list[Tracking]:
    shipments = (
        await session.scalars(
            select(Shipment).where(Shipment.order_id == order_id).order_by(Shipment.vendor_id)
        )
    ).all()
    return await _with_events(session, shipments)


async def tracking_for_vendor(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    status: ShipmentStatus | None,
    limit: int,
    cursor: str | None = None,
) -> Page[Tracking]:
    """The vendor's shipments with their timelines, newest first, a page at a time."""
    query = select(Shipment).where(Shipment.vendor_id == vendor_id)
    if status is not None:
        query = query.where(Shipment.status == status)
    page = await newest_first(
        session,
        query,
        created_at=Shipment.created_at,
        id=Shipment.id,
        scope="vendor-shipments",
        cursor=cursor,
        limit=limit,
    )
    return Page(await _with_events(session, page.items), page.next_cursor)


async def vendor_shipment(
    session: AsyncSession, *, vendor_id: uuid.UUID, shipment_id: uuid.UUID
) -> Shipment:
    shipment = await session.scalar(
        select(Shipment).where(Shipment.id == shipment_id, Shipment.vendor_id == vendor_id)
    )
    if shipment is None:
        raise ShipmentNotFound(f"No shipment {shipment_id}.")
    return shipment


async def _with_events(session: AsyncSession, shipments: Sequence[Shipment]) -> list[Tracking]:
    if not shipments:
        return []
    rows = (
        await session.scalars(
            select(ShipmentEvent)
            .where(ShipmentEvent.shipment_id.in_([s.id for s in shipments]))
            .order_by(ShipmentEvent.id)
        )
    ).all()
    by_shipment: dict[uuid.UUID, list[ShipmentEvent]] = {}
    for row in rows:
        by_shipment.setdefault(row.shipment_id, []).append(row)
    return [Tracking(s, by_shipment.get(s.id, [])) for s in shipments]


def estimate_from(event: TrackingEvent) -> dict[str, date]:
    if event.estimated_delivery is None:
        return {}
    return {
        "estimated_delivery_earliest": event.estimated_delivery,
        "estimated_delivery_latest": event.estimated_delivery,
    }


class ShipmentNotAcceptable(Conflict):
    code, title = "shipment_not_acceptable", "The shipment is no longer waiting for acceptance"


class ShipmentNotShippable(Conflict):
    code, title = "shipment_not_shippable", "The shipment cannot be shipped now"


class LinesNotCancellable(Conflict):
    code, title = "lines_not_cancellable", "These lines can no longer be cancelled"


async def accept(session: AsyncSession, *, shipment: Shipment, now: datetime) -> Shipment:
    """The vendor will ship its part. Loses (409) against a deadline that cancelled it first:
    the conditional update decides, not who asked first."""
    moved = await move(
        session, shipment=shipment, to=ShipmentStatus.ACCEPTED, values={"accepted_at": now}
    )
    await session.refresh(shipment)
    if not moved:
        if shipment.status == ShipmentStatus.ACCEPTED:
            return shipment  # accepted already (a double click, a retry)
        raise ShipmentNotAcceptable(
            f"The shipment is {shipment.status.value}; it can no longer be accepted."
        )
    await add_event(session, shipment=shipment, status="accepted", occurred_at=now)
    await orders.add_event(
        session,
        order_id=shipment.order_id,
        type=f"shipment_accepted:{shipment.vendor_id}",
        detail="A seller accepted its part of the order.",
    )
    return shipment


async def ship(
    session: AsyncSession,
    *,
    shipment: Shipment,
    carrier: str,
    tracking_number: str,
    now: datetime,
    label_url: str | None = None,
) -> Shipment:
    """The parcel has a tracking number (a bought label or one entered by hand): shipped."""
    await session.refresh(shipment)
    if shipment.status in SHIPPED and shipment.tracking_number == tracking_number:
        return shipment  # a retry
    if shipment.status != ShipmentStatus.ACCEPTED:
        raise ShipmentNotShippable(
            f"The shipment is {shipment.status.value}; accept it before shipping."
        )
    taken = await find_by_tracking(session, carrier=carrier, tracking_number=tracking_number)
    if taken is not None and taken.id != shipment.id:
        raise TrackingNumberTaken(f"{carrier} {tracking_number} belongs to another shipment.")
    moved = await move(
        session,
        shipment=shipment,
        to=ShipmentStatus.LABEL_CREATED,
        values={
            "carrier": carrier,
            "tracking_number": tracking_number,
            "label_url": label_url,
            "shipped_at": now,
        },
    )
    await session.refresh(shipment)
    if moved:
        await add_event(
            session,
            shipment=shipment,
            status="label_created",
            occurred_at=now,
            detail=f"{carrier} {tracking_number}",
        )
        await aggregate_order_status(session, order_id=shipment.order_id)
        await _mail_shopper(session, shipment=shipment, kind="shipped")
    return shipment


async def apply_tracking_event(
    session: AsyncSession, *, event: TrackingEvent
) -> tuple[Shipment | None, bool]:
    """Store a carrier's event once and move its shipment (and order) forward.

    Returns the shipment (None for a tracking number we do not know) and whether the event
    was new. A duplicate delivery, or news older than what we know, changes nothing.
    """
    shipment = await find_by_tracking(
        session, carrier=event.carrier, tracking_number=event.tracking_number
    )
    if shipment is None:
        return None, False
    new = await add_event(
        session,
        shipment=shipment,
        status=event.status,
        occurred_at=event.occurred_at,
        detail=event.detail,
        location=event.location,
        carrier=event.carrier,
        carrier_event_id=event.event_id,
    )
    if not new:
        return shipment, False
    to = ShipmentStatus(event.status)
    values: dict[str, object] = dict(estimate_from(event))
    if to == ShipmentStatus.DELIVERED:
        values["delivered_at"] = event.occurred_at
    moved = await move(session, shipment=shipment, to=to, values=values)
    if not moved and values and to != ShipmentStatus.DELIVERED:
        # Old news still may carry a newer estimate.
        await session.execute(
            update(Shipment)
            .where(Shipment.id == shipment.id, Shipment.status != ShipmentStatus.DELIVERED)
            .values(**estimate_from(event))
        )
    await session.refresh(shipment)
    if moved and to == ShipmentStatus.DELIVERED:
        await record_delivery(session, shipment=shipment, delivered_at=event.occurred_at)
        await _mail_shopper(session, shipment=shipment, kind="delivered")
    if moved:
        await aggregate_order_status(session, order_id=shipment.order_id)
    return shipment, True


async def cancel_lines(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    vendor_id: uuid.UUID | None,
    lines: Sequence[tuple[uuid.UUID, int]],
) -> list[tuple[uuid.UUID, int, uuid.UUID]]:
    """Cancel units of lines whose shipment has not shipped: (line, quantity, vendor) cancelled.

    Each line's ``cancelled_quantity`` grows by a conditional update that keeps cancelled +
    returned within what was bought, so two cancellations of the last unit cannot both pass.
    A shipment whose every unit is cancelled is cancelled. ``vendor_id`` limits the lines to
    one vendor's (the vendor acting); the shopper passes None.
    """
    if not lines:
        raise LinesNotCancellable("Name at least one line to cancel.")
    done: list[tuple[uuid.UUID, int, uuid.UUID]] = []
    vendors: set[uuid.UUID] = set()
    for line_id, quantity in sorted(lines):
        line = await session.scalar(
            select(OrderLine).where(OrderLine.id == line_id, OrderLine.order_id == order_id)
        )
        if line is None or (vendor_id is not None and line.vendor_id != vendor_id):
            raise LinesNotCancellable(f"No line {line_id} in this order.")
        if quantity <= 0:
            raise LinesNotCancellable("Quantities to cancel are positive.")
        shipment = await session.scalar(
            select(Shipment)
            .where(Shipment.order_id == order_id, Shipment.vendor_id == line.vendor_id)
            .with_for_update()
        )
        if shipment is None or shipment.status not in (
            ShipmentStatus.AWAITING_ACCEPTANCE,
            ShipmentStatus.ACCEPTED,
        ):
            raise LinesNotCancellable("That part of the order has shipped or is being ended.")
        changed = await session.scalar(
            update(OrderLine)
            .where(
                OrderLine.id == line_id,
                OrderLine.cancelled_quantity + OrderLine.returned_quantity + quantity
                <= OrderLine.quantity,
            )
            .values(cancelled_quantity=OrderLine.cancelled_quantity + quantity)
            .returning(OrderLine.id)
            .execution_options(synchronize_session=False)
        )
        if changed is None:
            raise LinesNotCancellable(f"Fewer than {quantity} units of {line.sku} are left.")
        done.append((line_id, quantity, line.vendor_id))
        vendors.add(line.vendor_id)
    for vendor in vendors:
        left = await session.scalar(
            select(
                func.coalesce(func.sum(OrderLine.quantity - OrderLine.cancelled_quantity), 0)
            ).where(OrderLine.order_id == order_id, OrderLine.vendor_id == vendor)
        )
        if not left:
            shipment = await get_shipment(session, order_id=order_id, vendor_id=vendor)
            await move(
                session,
                shipment=shipment,
                to=ShipmentStatus.CANCELLED,
                values={"cancel_reason": "every line cancelled"},
            )
    await orders.add_event(
        session,
        order_id=order_id,
        type="lines_cancelled",
        detail=f"{sum(q for _, q, _ in done)} unit(s) cancelled before shipping.",
        data={"lines": [{"order_line_id": str(i), "quantity": q} for i, q, _ in done]},
    )
    return done


async def cancel_unaccepted(
    session: AsyncSession, *, shipment: Shipment, now: datetime
) -> list[tuple[uuid.UUID, int]]:
    """The vendor missed its deadline: the shipment is cancelled (if it still waits; the
    conditional update decides against a late acceptance) and its open units too. Returns
    the units to refund, empty if the vendor accepted after all."""
    moved = await move(
        session,
        shipment=shipment,
        to=ShipmentStatus.CANCELLED,
        values={"cancel_reason": "not accepted in time"},
    )
    await session.refresh(shipment)
    if not moved or shipment.cancel_reason != "not accepted in time":
        return []
    lines = (
        await session.scalars(
            select(OrderLine).where(
                OrderLine.order_id == shipment.order_id,
                OrderLine.vendor_id == shipment.vendor_id,
                OrderLine.quantity > OrderLine.cancelled_quantity + OrderLine.returned_quantity,
            )
        )
    ).all()
    cancelled: list[tuple[uuid.UUID, int]] = []
    for line in lines:
        open_units = line.quantity - line.cancelled_quantity - line.returned_quantity
        await session.execute(
            update(OrderLine)
            .where(OrderLine.id == line.id)
            .values(cancelled_quantity=OrderLine.cancelled_quantity + open_units)
            .execution_options(synchronize_session=False)
        )
        cancelled.append((line.id, open_units))
    await add_event(
        session,
        shipment=shipment,
        status="cancelled",
        occurred_at=now,
        detail="The seller did not accept the order in time.",
    )
    await orders.add_event(
        session,
        order_id=shipment.order_id,
        type=f"shipment_unaccepted:{shipment.vendor_id}",
        detail="A seller did not accept its part in time; it is cancelled and refunded.",
    )
    await _mail_shopper(session, shipment=shipment, kind="unaccepted")
    return cancelled


async def _mail_shopper(session: AsyncSession, *, shipment: Shipment, kind: str) -> None:
    from commerce.orders import order_mail  # it imports orders: a cycle at import time

    order = await session.get(Order, shipment.order_id)
    if order is None or not order.contact_email:
        return
    vendor = await session.get(Vendor, shipment.vendor_id)
    await order_mail.queue_shipment_mail(
        session, to=order.contact_email, order=order, shipment=shipment, vendor=vendor, kind=kind
    )


async def cancel_unshipped_parts(session: AsyncSession, *, order_id: uuid.UUID) -> bool:
    """For cancelling a whole paid order: if no part has shipped, cancel every part (so no
    vendor can ship one afterwards) and return True; if one has, change nothing, False.
    The parts' rows are locked, so a vendor shipping at the same moment is either before
    (and the order is not cancelled) or after (and finds its part cancelled)."""
    parts = (
        await session.scalars(
            select(Shipment).where(Shipment.order_id == order_id).with_for_update()
        )
    ).all()
    if any(part.status in SHIPPED for part in parts):
        return False
    for part in parts:
        await move(
            session,
            shipment=part,
            to=ShipmentStatus.CANCELLED,
            values={"cancel_reason": "order cancelled"},
        )
    return True
