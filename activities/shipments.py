"""Steps of ``ShipmentWorkflow``: open the shipment, read its state, cancel an unaccepted part
(with its refund, in the same transaction), schedule the order's completion."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from commerce.aftersales import refunds
from commerce.fulfilment import shipments
from commerce.orders import orders
from core.clock import SYSTEM_CLOCK, Clock
from models import Refund, Shipment, Vendor
from workflows.contracts import shipments as contract
from workflows.contracts.orders import OrderStatus
from workflows.contracts.refunds import RefundSource
from workflows.contracts.shipments import (
    CompletionInput,
    CompletionOutput,
    OpenShipmentInput,
    ShipmentRef,
    ShipmentState,
    ShipmentStatus,
    UnacceptedOutput,
)


class ShipmentActivities(contract.ShipmentActivities):
    """Steps of ``ShipmentWorkflow`` and the order's end, built once per worker."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock

    @activity.defn
    async def open_shipment(self, params: OpenShipmentInput) -> ShipmentState:
        """Create the shipment once, with its acceptance deadline."""
        now = self._clock.now()
        async with self._sessionmaker.begin() as session:
            shipment = await shipments.open_shipment(
                session,
                order_id=uuid.UUID(params.order_id),
                vendor_id=uuid.UUID(params.vendor_id),
                accept_by=now + timedelta(seconds=params.accept_within_s),
            )
            return _state(shipment, now=now)

    @activity.defn
    async def shipment_state(self, ref: ShipmentRef) -> ShipmentState:
        async with self._sessionmaker() as session:
            shipment = await shipments.get_shipment(
                session, order_id=uuid.UUID(ref.order_id), vendor_id=uuid.UUID(ref.vendor_id)
            )
            return _state(shipment, now=self._clock.now())

    @activity.defn
    async def cancel_unaccepted(self, ref: ShipmentRef) -> UnacceptedOutput:
        """The deadline passed: cancel the part and create its refund (restocking), in one
        transaction; a vendor who accepted in the same instant wins or loses by the row."""
        order_id, vendor_id = uuid.UUID(ref.order_id), uuid.UUID(ref.vendor_id)
        key = f"unaccepted:{order_id}:{vendor_id}"
        now = self._clock.now()
        async with self._sessionmaker.begin() as session:
            existing = await session.scalar(select(Refund.id).where(Refund.request_key == key))
            if existing is not None:
                return UnacceptedOutput(cancelled=True, refund_id=str(existing))
            shipment = await shipments.get_shipment(session, order_id=order_id, vendor_id=vendor_id)
            lines = await shipments.cancel_unaccepted(session, shipment=shipment, now=now)
            if not lines:
                await session.refresh(shipment)
                return UnacceptedOutput(
                    cancelled=shipment.status == ShipmentStatus.CANCELLED, refund_id=None
                )
            refund = await refunds.create_refund(
                session,
                order_id=order_id,
                source=RefundSource.UNACCEPTED,
                reason="The seller did not accept the order in time.",
                lines=lines,
                vendor_id=vendor_id,
                restock=True,
                request_key=key,
                include_shipping=True,
                now=now,
            )
            return UnacceptedOutput(cancelled=True, refund_id=str(refund.id))

    @activity.defn
    async def cancel_unshipped_parts(self, params: CompletionInput) -> bool:
        """Before a paid order is cancelled: every part cancelled, unless one has shipped."""
        async with self._sessionmaker.begin() as session:
            return await shipments.cancel_unshipped_parts(
                session, order_id=uuid.UUID(params.order_id)
            )

    @activity.defn
    async def completion_date(self, params: CompletionInput) -> CompletionOutput:
        """When the order is complete: the last delivery plus its vendor's return window."""
        async with self._sessionmaker() as session:
            rows = (
                await session.execute(
                    select(Shipment.delivered_at, Vendor.return_window_days)
                    .join(Vendor, Vendor.id == Shipment.vendor_id)
                    .where(
                        Shipment.order_id == uuid.UUID(params.order_id),
                        Shipment.status == ShipmentStatus.DELIVERED,
                    )
                )
            ).all()
        ends = [delivered + timedelta(days=days) for delivered, days in rows if delivered]
        if not ends:
            return CompletionOutput(None)
        complete_at = max(ends)
        return CompletionOutput(
            complete_at.isoformat(), (complete_at - self._clock.now()).total_seconds()
        )

    @activity.defn
    async def complete_order(self, params: CompletionInput) -> bool:
        async with self._sessionmaker.begin() as session:
            return await orders.transition(
                session,
                order_id=uuid.UUID(params.order_id),
                to=OrderStatus.COMPLETED,
                allowed_from=[OrderStatus.DELIVERED],
                event="completed",
                detail="The return window has closed.",
            )


def _state(shipment: Shipment, *, now: datetime) -> ShipmentState:
    return ShipmentState(
        status=shipment.status.value,
        accept_by=shipment.accept_by.isoformat(),
        shipped=shipment.status in shipments.SHIPPED,
        accept_in_s=(shipment.accept_by - now).total_seconds(),
    )
