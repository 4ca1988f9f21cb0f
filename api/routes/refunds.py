"""Refunds: an admin's goodwill refund of an order, the shopper's view of their refunds,
an admin's view of one refund."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header
from pydantic import BaseModel, Field

from api.access import AdminUser, CurrentUser, OperationsUser
from api.deps import NowDep, SessionDep, SettingsDep, TemporalDep
from commerce import orders, refund_saga, refunds
from models import Refund, RefundLine, RefundSource

router = APIRouter()


class RefundLineCreate(BaseModel):
    order_line_id: uuid.UUID
    quantity: int = Field(ge=1, le=1_000_000)


class RefundCreate(BaseModel):
    """Either ``lines`` (units of what was bought: their share of the lines' totals is
    refunded, and ``restock`` puts them back in stock) or an ``amount`` in minor units."""

    reason: str = Field(min_length=1, max_length=refunds.MAX_REASON)
    lines: list[RefundLineCreate] = Field(default_factory=list, max_length=200)
    amount: int | None = Field(default=None, gt=0)
    restock: bool = False


class RefundLineRead(BaseModel):
    order_line_id: uuid.UUID
    quantity: int
    amount: int


class RefundRead(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    vendor_id: uuid.UUID | None
    amount: int
    currency: str
    status: str = Field(description="pending, succeeded or failed")
    source: str
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
            amount=refund.amount,
            currency=refund.currency,
            status=refund.status.value,
            source=refund.source.value,
            reason=refund.reason,
            restock=refund.restock,
            failure_reason=refund.failure_reason,
            lines=[RefundLineRead.model_validate(line, from_attributes=True) for line in lines],
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
            **RefundRead.build(refund, lines).model_dump(),
            payment_id=refund.payment_id,
            provider_refund_id=refund.provider_refund_id,
            requested_by=refund.requested_by,
            request_key=refund.request_key,
        )


class RefundList(BaseModel):
    items: list[RefundRead]
    remaining: int = Field(description="What may still be refunded, in minor units")
    currency: str


@router.post("/admin/orders/{order_id}/refunds", status_code=201, tags=["admin"])
async def create_goodwill_refund(
    order_id: uuid.UUID,
    body: RefundCreate,
    principal: AdminUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    now: NowDep,
    idempotency_key: Annotated[str | None, Header(max_length=100)] = None,
) -> AdminRefundRead:
    """Refund part of a paid order as a goodwill gesture. 409 ``refund_exceeds_remaining``
    when it is more than what is left of the payment, ``refund_lines_exceed_remaining`` when
    a line has fewer units left to refund. The same ``Idempotency-Key`` returns the same
    refund. The money moves in the background: the refund is ``pending`` until the provider
    confirms it."""
    refund = await refunds.create_refund(
        session,
        order_id=order_id,
        source=RefundSource.GOODWILL,
        reason=body.reason,
        lines=[(line.order_line_id, line.quantity) for line in body.lines],
        amount=body.amount,
        restock=body.restock,
        requested_by=principal.user_id,
        request_key=f"goodwill:{order_id}:{idempotency_key}" if idempotency_key else None,
        now=now,
    )
    lines = (await refunds.lines_of(session, refund_ids=[refund.id]))[refund.id]
    # Stored before its workflow can work on it; a lost start is made up by the reconciler.
    await session.commit()
    await refund_saga.start_refund_workflow(
        temporal,
        settings,
        refund_id=refund.id,
        order_id=refund.order_id,
        summary=refunds.describe(refund),
    )
    return AdminRefundRead.build(refund, lines)


@router.get("/orders/{order_id}/refunds", tags=["orders"])
async def list_order_refunds(
    order_id: uuid.UUID, principal: CurrentUser, session: SessionDep
) -> RefundList:
    """The refunds of one of the shopper's orders, oldest first."""
    order = await orders.customer_order(session, order_id=order_id, customer_id=principal.user_id)
    found = await refunds.list_for_order(session, order_id=order.id)
    lines = await refunds.lines_of(session, refund_ids=[refund.id for refund in found])
    return RefundList(
        items=[RefundRead.build(refund, lines[refund.id]) for refund in found],
        remaining=await refunds.remaining(session, order_id=order.id),
        currency=order.currency,
    )


@router.get("/admin/refunds/{refund_id}", tags=["admin"])
async def admin_read_refund(
    refund_id: uuid.UUID, _: OperationsUser, session: SessionDep
) -> AdminRefundRead:
    refund = await refunds.get_refund(session, refund_id=refund_id)
    lines = (await refunds.lines_of(session, refund_ids=[refund.id]))[refund.id]
    return AdminRefundRead.build(refund, lines)
