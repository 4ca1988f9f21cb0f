"""Shipments: vendors accept, ship (a bought label or a tracking number of their own) and
cancel lines they cannot fulfil; shoppers follow their parcels and cancel unshipped lines;
carriers report progress through signed webhooks."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from api.access import CurrentUser, Public, VendorManager, VendorStaff
from api.deps import NowDep, SessionDep, SettingsDep, TemporalDep
from api.problems import Problem
from api.routes.webhooks import count_webhook, observe_lag, read_webhook_body
from api.schemas.pagination import PageCursor, PageLimit
from api.schemas.shipments import (
    CarrierTrackingEvent,
    LineCancel,
    LinesCancel,
    LinesCancelled,
    ShipmentList,
    ShipmentPage,
    ShipmentRead,
    TrackingNumberSet,
    TrackingReceived,
)
from commerce.aftersales import refunds
from commerce.aftersales.refund_saga import start_refund_workflow
from commerce.errors import NotFound
from commerce.fulfilment import shipments
from commerce.fulfilment.carriers import SIGNATURE_HEADER, SimulatedCarrier
from commerce.fulfilment.shipping import LabelRequest
from commerce.orders import orders
from core import metrics
from core.settings import Settings
from models import Order, RefundSource, Shipment, ShipmentStatus
from workflows.contracts.shipments import shipment_workflow_id

log = logging.getLogger("emporium.shipments")

router = APIRouter(tags=["shipments"])


class UnknownCarrier(NotFound):
    code, title = "unknown_carrier", "No such carrier is configured"


def carriers(settings: Settings) -> dict[str, SimulatedCarrier]:
    return {
        SimulatedCarrier.name: SimulatedCarrier(
            webhook_secret=settings.carrier_webhook_secret.get_secret_value()
        )
    }


async def _nudge(temporal: Client, shipment: Shipment) -> None:
    """Tell the shipment's workflow to look at the database now. Best effort: the workflow
    re-reads on its own every ``tracking_recheck_s``."""
    try:
        await temporal.get_workflow_handle(
            shipment_workflow_id(str(shipment.order_id), str(shipment.vendor_id))
        ).signal("nudge")
    except RPCError as error:
        log.warning(
            "could not nudge a shipment workflow",
            extra={"shipment_id": str(shipment.id), "error": error.message},
        )


async def _tracking(session: AsyncSession, shipment: Shipment) -> shipments.Tracking:
    found = await shipments.tracking_for_order(session, order_id=shipment.order_id)
    return next(t for t in found if t.shipment.id == shipment.id)


# --- vendors -----------------------------------------------------------------------------------


@router.get("/vendors/{vendor_id}/shipments")
async def list_vendor_shipments(
    vendor_id: uuid.UUID,
    _: VendorStaff,
    session: SessionDep,
    status: ShipmentStatus | None = None,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> ShipmentPage:
    """The vendor's shipments, newest first, with their tracking timelines."""
    page = await shipments.tracking_for_vendor(
        session, vendor_id=vendor_id, status=status, limit=limit, cursor=cursor
    )
    return ShipmentPage(
        items=[ShipmentRead.build(t, with_label=True) for t in page.items],
        next_cursor=page.next_cursor,
    )


@router.post("/vendors/{vendor_id}/shipments/{shipment_id}/accept")
async def accept_shipment(
    vendor_id: uuid.UUID,
    shipment_id: uuid.UUID,
    _: VendorStaff,
    session: SessionDep,
    temporal: TemporalDep,
    now: NowDep,
) -> ShipmentRead:
    """Accept the part before its deadline (409 ``shipment_not_acceptable`` after it)."""
    shipment = await shipments.vendor_shipment(
        session, vendor_id=vendor_id, shipment_id=shipment_id
    )
    shipment = await shipments.accept(session, shipment=shipment, now=now)
    read = ShipmentRead.build(await _tracking(session, shipment), with_label=True)
    await session.commit()
    await _nudge(temporal, shipment)
    return read


@router.post("/vendors/{vendor_id}/shipments/{shipment_id}/label")
async def buy_label(
    vendor_id: uuid.UUID,
    shipment_id: uuid.UUID,
    _: VendorStaff,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    now: NowDep,
) -> ShipmentRead:
    """Buy a label from the platform's carrier (the simulated one by default): the parcel is
    shipped with its tracking number. Buying again returns the same label."""
    shipment = await shipments.vendor_shipment(
        session, vendor_id=vendor_id, shipment_id=shipment_id
    )
    carrier = carriers(settings)[SimulatedCarrier.name]
    order = await session.get(Order, shipment.order_id)
    label = await carrier.create_label(
        LabelRequest(
            shipment_id=shipment.id,
            vendor_id=vendor_id,
            method_code="standard",
            destination=(order.shipping_address if order else {}),
            weight_grams=0,
        )
    )
    shipment = await shipments.ship(
        session,
        shipment=shipment,
        carrier=label.carrier,
        tracking_number=label.tracking_number,
        label_url=label.label_url,
        now=now,
    )
    read = ShipmentRead.build(await _tracking(session, shipment), with_label=True)
    await session.commit()
    await _nudge(temporal, shipment)
    return read


@router.post("/vendors/{vendor_id}/shipments/{shipment_id}/tracking")
async def set_tracking_number(
    vendor_id: uuid.UUID,
    shipment_id: uuid.UUID,
    body: TrackingNumberSet,
    _: VendorStaff,
    session: SessionDep,
    temporal: TemporalDep,
    now: NowDep,
) -> ShipmentRead:
    """Shipped with a carrier of the vendor's own choosing: enter its tracking number."""
    shipment = await shipments.vendor_shipment(
        session, vendor_id=vendor_id, shipment_id=shipment_id
    )
    shipment = await shipments.ship(
        session,
        shipment=shipment,
        carrier=body.carrier,
        tracking_number=shipments.check_tracking_number(body.tracking_number),
        now=now,
    )
    read = ShipmentRead.build(await _tracking(session, shipment), with_label=True)
    await session.commit()
    await _nudge(temporal, shipment)
    return read


async def _cancel_lines(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    *,
    order: Order,
    vendor_id: uuid.UUID | None,
    body: LinesCancel,
    now: datetime,
    source: RefundSource,
    actor: uuid.UUID,
) -> LinesCancelled:
    done = await shipments.cancel_lines(
        session,
        order_id=order.id,
        vendor_id=vendor_id,
        lines=[(line.order_line_id, line.quantity) for line in body.lines],
    )
    # One refund per vendor, created with the cancellation (one transaction: no cancelled
    # line without its refund), paid out by its workflow once committed.
    by_vendor: dict[uuid.UUID, list[tuple[uuid.UUID, int]]] = {}
    for line_id, quantity, line_vendor in done:
        by_vendor.setdefault(line_vendor, []).append((line_id, quantity))
    touched = [
        await shipments.get_shipment(session, order_id=order.id, vendor_id=v) for v in by_vendor
    ]
    ended = {s.vendor_id for s in touched if s.status == ShipmentStatus.CANCELLED}
    created = [
        await refunds.create_refund(
            session,
            order_id=order.id,
            source=source,
            reason=body.reason or "lines cancelled before shipping",
            lines=lines,
            vendor_id=line_vendor,
            restock=True,
            requested_by=actor,
            # The vendor's whole part is off: its shipping goes back too.
            include_shipping=line_vendor in ended,
            now=now,
        )
        for line_vendor, lines in sorted(by_vendor.items())
    ]
    await session.commit()
    for refund in created:
        await start_refund_workflow(temporal, settings, refund_id=refund.id, order_id=order.id)
    for shipment in touched:
        await _nudge(temporal, shipment)
    return LinesCancelled(
        cancelled=[LineCancel(order_line_id=i, quantity=q) for i, q, _ in done],
        refund_ids=[refund.id for refund in created],
    )


@router.post("/vendors/{vendor_id}/orders/{order_id}/cancel-lines")
async def vendor_cancel_lines(
    vendor_id: uuid.UUID,
    order_id: uuid.UUID,
    body: LinesCancel,
    principal: VendorManager,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    now: NowDep,
) -> LinesCancelled:
    """Cancel lines the vendor cannot fulfil, before they ship: each vendor's cancelled units
    are refunded (a partial refund) and restocked."""
    shipment = await shipments.get_shipment(session, order_id=order_id, vendor_id=vendor_id)
    order = await orders.get_order(session, order_id=shipment.order_id)
    return await _cancel_lines(
        session,
        temporal,
        settings,
        order=order,
        vendor_id=vendor_id,
        body=body,
        source=RefundSource.VENDOR_CANCELLATION,
        actor=principal.user_id,
        now=now,
    )


# --- shoppers ----------------------------------------------------------------------------------


@router.get("/orders/{order_id}/tracking")
async def order_tracking(
    order_id: uuid.UUID, principal: CurrentUser, session: SessionDep
) -> ShipmentList:
    """Each vendor's parcel: carrier, tracking number, timeline and estimated delivery."""
    order = await orders.customer_order(session, order_id=order_id, customer_id=principal.user_id)
    found = await shipments.tracking_for_order(session, order_id=order.id)
    return ShipmentList.whole([ShipmentRead.build(t, with_label=False) for t in found])


@router.post("/orders/{order_id}/cancel-lines")
async def shopper_cancel_lines(
    order_id: uuid.UUID,
    body: LinesCancel,
    principal: CurrentUser,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    now: NowDep,
) -> LinesCancelled:
    """Cancel units of lines that have not shipped; each becomes a partial refund, restocked.
    409 ``lines_not_cancellable`` once that part has shipped."""
    order = await orders.customer_order(session, order_id=order_id, customer_id=principal.user_id)
    return await _cancel_lines(
        session,
        temporal,
        settings,
        order=order,
        vendor_id=None,
        body=body,
        source=RefundSource.CANCELLATION,
        actor=principal.user_id,
        now=now,
    )


# --- carriers ----------------------------------------------------------------------------------


@router.post(
    "/webhooks/carriers/{carrier}",
    dependencies=[Public],
    responses={
        400: {"model": Problem, "description": "The signature does not verify (nothing stored)"},
        404: {"model": Problem, "description": "No such carrier is configured"},
        413: {"model": Problem, "description": "The body is too large"},
    },
    openapi_extra={
        "parameters": [
            {
                "name": SIGNATURE_HEADER,
                "in": "header",
                "required": True,
                "schema": {"type": "string", "maxLength": 500},
                "description": "`t=<unix seconds>,v1=<hex>` where v1 is HMAC-SHA256 of "
                "`<t>.<raw body>` with the carrier's webhook secret "
                "(EMPORIUM_CARRIER_WEBHOOK_SECRET); refused more than 300 s from now.",
            }
        ],
        "requestBody": {
            "required": True,
            "description": "The carrier's event, exactly as it signed it",
            "content": {"application/json": {"schema": CarrierTrackingEvent.model_json_schema()}},
        },
    },
)
async def carrier_webhook(
    carrier: Annotated[str, Path(max_length=40)],
    request: Request,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    now: NowDep,
) -> TrackingReceived:
    """A carrier's tracking news, HMAC-signed: verified (400 otherwise, nothing stored),
    stored once per carrier event id (a redelivery is a no-op), applied to the shipment and
    its order, then its workflow is nudged. An unknown tracking number is acknowledged and
    ignored (the carrier would retry forever otherwise)."""
    implementation = carriers(settings).get(carrier)
    if implementation is None:
        metrics.WEBHOOKS.labels("unknown", "rejected").inc()
        raise UnknownCarrier(f"No carrier {carrier!r} is configured here.")
    source = f"carrier_{carrier}"
    with count_webhook(source) as counted:
        # Read with a limit, as payment webhooks are: a public route must not buffer any size.
        body = await read_webhook_body(request)
        event = implementation.parse_webhook(body, request.headers)
        observe_lag(source, event.occurred_at, now)
        shipment, new = await shipments.apply_tracking_event(session, event=event)
        await session.commit()
        if shipment is None:
            log.info("tracking for an unknown parcel ignored", extra={"carrier": carrier})
            return TrackingReceived(received=True, duplicate=False)
        if new:
            await _nudge(temporal, shipment)
        counted.duplicate = not new
    return TrackingReceived(received=True, duplicate=not new)
