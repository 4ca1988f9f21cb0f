"""Request and response schemas of ``api/routes/shipments.py``."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, Field

from api.schemas.pagination import Page
from commerce.fulfilment import shipments
from commerce.fulfilment.carriers import TrackingStatus
from workflows.contracts.shipments import ShipmentStatus


class TrackingEventRead(BaseModel):
    status: ShipmentStatus = Field(description="What the part became at this moment")
    detail: str | None
    location: str | None
    at: datetime


class ShipmentRead(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    vendor_id: uuid.UUID
    status: ShipmentStatus
    accept_by: datetime
    carrier: str | None
    tracking_number: str | None
    label_url: str | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    estimated_delivery_earliest: date | None
    estimated_delivery_latest: date | None
    timeline: list[TrackingEventRead]

    @classmethod
    def build(cls, tracking: shipments.Tracking, *, with_label: bool) -> ShipmentRead:
        s = tracking.shipment
        return cls(
            id=s.id,
            order_id=s.order_id,
            vendor_id=s.vendor_id,
            status=s.status.value,
            accept_by=s.accept_by,
            carrier=s.carrier,
            tracking_number=s.tracking_number,
            label_url=s.label_url if with_label else None,
            shipped_at=s.shipped_at,
            delivered_at=s.delivered_at,
            estimated_delivery_earliest=s.estimated_delivery_earliest,
            estimated_delivery_latest=s.estimated_delivery_latest,
            timeline=[
                TrackingEventRead(
                    status=e.status, detail=e.detail, location=e.location, at=e.occurred_at
                )
                for e in tracking.events
            ],
        )


class TrackingNumberSet(BaseModel):
    carrier: str = Field(min_length=2, max_length=40, pattern=r"^[a-z0-9_-]+$")
    tracking_number: str = Field(min_length=5, max_length=60)


class LineCancel(BaseModel):
    order_line_id: uuid.UUID
    quantity: int = Field(ge=1, le=999)


class LinesCancel(BaseModel):
    lines: list[LineCancel] = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=300)


class LinesCancelled(BaseModel):
    cancelled: list[LineCancel]
    refund_ids: list[uuid.UUID]


class TrackingReceived(BaseModel):
    received: bool
    duplicate: bool


class CarrierTrackingEvent(BaseModel):
    """The body a carrier POSTs to ``/webhooks/carriers/{carrier}`` (documentation: the route
    reads the raw bytes, since the signature is over them)."""

    id: str = Field(description="The carrier's event id: a redelivery of it is a no-op")
    tracking_number: str
    status: TrackingStatus
    occurred_at: datetime
    detail: str | None = None
    location: str | None = None
    estimated_delivery: date | None = None


class ShipmentList(Page[ShipmentRead]):
    """Comes whole: `next_cursor` is always null."""


class ShipmentPage(Page[ShipmentRead]):
    pass
