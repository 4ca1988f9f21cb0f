"""Request and response schemas of ``api/routes/returns.py``."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from api.schemas.money import Money
from api.schemas.pagination import Page
from commerce.aftersales import returns
from workflows.contracts.refunds import RefundStatus
from workflows.contracts.returns import ReturnStatus


class ReturnLineCreate(BaseModel):
    order_line_id: uuid.UUID
    quantity: int = Field(ge=1, le=10_000)


class ReturnCreate(BaseModel):
    """Send units of one vendor's delivered lines back to that vendor."""

    vendor_id: uuid.UUID
    reason: str = Field(min_length=1, max_length=returns.MAX_REASON)
    lines: list[ReturnLineCreate] = Field(min_length=1, max_length=returns.MAX_LINES)


class ReturnReject(BaseModel):
    reason: str = Field(min_length=1, max_length=returns.MAX_REASON)


class ReturnReceive(BaseModel):
    inspection_note: str = Field(min_length=1, max_length=returns.MAX_REASON)


class ReturnLineRead(BaseModel):
    order_line_id: uuid.UUID
    sku: str
    title: str
    quantity: int


class ReturnRefundRead(BaseModel):
    id: uuid.UUID
    status: RefundStatus
    amount: Money


class ReturnRead(BaseModel):
    """A return as both the shopper and the vendor see it."""

    id: uuid.UUID
    order_id: uuid.UUID
    vendor_id: uuid.UUID
    status: ReturnStatus
    reason: str
    respond_by: datetime = Field(description="Approved automatically if not answered by then")
    decided_at: datetime | None = None
    auto_approved: bool
    rejection_reason: str | None = None
    received_at: datetime | None = None
    inspection_note: str | None = None
    lines: list[ReturnLineRead]
    refund: ReturnRefundRead | None = None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, found: returns.ReturnDetail) -> ReturnRead:
        request, refund = found.request, found.refund
        return cls(
            id=request.id,
            order_id=request.order_id,
            vendor_id=request.vendor_id,
            status=request.status.value,
            reason=request.reason,
            respond_by=request.respond_by,
            decided_at=request.decided_at,
            auto_approved=request.auto_approved,
            rejection_reason=request.rejection_reason,
            received_at=request.received_at,
            inspection_note=request.inspection_note,
            lines=[
                ReturnLineRead(
                    order_line_id=item.line.order_line_id,
                    sku=item.order_line.sku,
                    title=item.order_line.title,
                    quantity=item.line.quantity,
                )
                for item in found.lines
            ],
            refund=(
                ReturnRefundRead(
                    id=refund.id,
                    status=refund.status.value,
                    amount=Money.of(refund.amount, refund.currency),
                )
                if refund is not None
                else None
            ),
            created_at=request.created_at,
            updated_at=request.updated_at,
        )


class ReturnList(Page[ReturnRead]):
    pass


class ReturnPage(Page[ReturnRead]):
    pass
