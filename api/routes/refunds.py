"""Refunds: an admin's goodwill refund of an order, the shopper's view of their refunds,
an admin's view of one refund."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header

from api.access import AdminUser, CurrentUser, OperationsUser
from api.deps import NowDep, SessionDep, SettingsDep, TemporalDep
from api.schemas.money import Money
from api.schemas.refunds import (
    AdminRefundRead,
    RefundCreate,
    RefundList,
    RefundRead,
)
from commerce.aftersales import refund_saga, refunds
from commerce.orders import orders
from models import RefundSource

router = APIRouter()


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
        amount=body.amount.amount if body.amount else None,
        currency=body.amount.currency if body.amount else None,
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
        next_cursor=None,
        items=[RefundRead.build(refund, lines[refund.id]) for refund in found],
        remaining=Money.of(await refunds.remaining(session, order_id=order.id), order.currency),
    )


@router.get("/admin/refunds/{refund_id}", tags=["admin"])
async def admin_read_refund(
    refund_id: uuid.UUID, _: OperationsUser, session: SessionDep
) -> AdminRefundRead:
    refund = await refunds.get_refund(session, refund_id=refund_id)
    lines = (await refunds.lines_of(session, refund_ids=[refund.id]))[refund.id]
    return AdminRefundRead.build(refund, lines)
