"""Request and response schemas of ``api/routes/refunds.py``."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from api.schemas.money import Money
from api.schemas.pagination import Page
from commerce.aftersales import refunds
from models import Refund, RefundLine
from workflows.contracts.refunds import RefundSource, RefundStatus


class RefundLineCreate(BaseModel):
    order_line_id: uuid.UUID
    quantity: int = Field(ge=1, le=1_000_000)


class RefundCreate(BaseModel):
    """Either ``lines`` (units of what was bought: their share of the lines' totals is
    refunded, and ``restock`` puts them back in stock) or an ``amount`` in the order's
    currency."""

    reason: str = Field(min_length=1, max_length=refunds.MAX_REASON)
    lines: list[RefundLineCreate] = Field(default_factory=list, max_length=200)
    amount: Money | None = None
    restock: bool = False


class RefundLineRead(BaseModel):
    order_line_id: uuid.UUID
    quantity: int
    amount: Money


class RefundRead(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    vendor_id: uuid.UUID | None
    amount: Money
    status: RefundStatus
    source: RefundSource
    reason: str
    restock: bool
    failure_reason: str | None
    lines: list[RefundLineRead]
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def build(cls, refund: Refund, lines: list[RefundLine]) -> RefundRead:
        return cls(
            id=refund.id,
            order_id=refund.order_id,
            vendor_id=refund.vendor_id,
            amount=Money.of(refund.amount, refund.currency),
            status=refund.status.value,
            source=refund.source.value,
            reason=refund.reason,
            restock=refund.restock,
            failure_reason=refund.failure_reason,
            lines=[
                RefundLineRead(
                    order_line_id=line.order_line_id,
                    quantity=line.quantity,
                    amount=Money.of(line.amount, refund.currency),
                )
                for line in lines
            ],
            created_at=refund.created_at,
            completed_at=refund.completed_at,
        )


class AdminRefundRead(RefundRead):
    payment_id: uuid.UUID
    provider_refund_id: str | None
    requested_by: uuid.UUID | None
    request_key: str | None

    @classmethod
    def build(cls, refund: Refund, lines: list[RefundLine]) -> AdminRefundRead:
        return cls(
            **dict(RefundRead.build(refund, lines)),
            payment_id=refund.payment_id,
            provider_refund_id=refund.provider_refund_id,
            requested_by=refund.requested_by,
            request_key=refund.request_key,
        )


class RefundList(Page[RefundRead]):
    """The order's refunds, oldest first (comes whole), and what may still be refunded."""

    remaining: Money = Field(description="What may still be refunded")
