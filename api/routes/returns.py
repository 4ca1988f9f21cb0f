"""Returns: the shopper asks to send delivered items back; the vendor approves or rejects
(approved automatically at the deadline), receives and inspects the parcel; the refund follows.

Every move is a conditional update in PostgreSQL, committed before the return's workflow
(``return:{id}``) is nudged to look again; the workflow keeps the deadline and runs the refund.
Another shopper's or vendor's return is 404.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.common import SearchAttributePair

from api.access import CurrentUser, VendorManager, VendorStaff
from api.deps import NowDep, SessionDep, SettingsDep, TemporalDep
from api.schemas.pagination import PageCursor, PageLimit
from api.schemas.returns import (
    ReturnCreate,
    ReturnList,
    ReturnPage,
    ReturnRead,
    ReturnReceive,
    ReturnReject,
)
from commerce.aftersales import returns
from commerce.orders import order_saga, orders
from core.settings import Settings
from core.temporal import WorkflowStartFailed, start_workflow
from models import ReturnRequest, ReturnStatus, Vendor
from workflows.contracts.returns import (
    RETURN_CHANGED_SIGNAL,
    RETURN_WORKFLOW,
    ReturnWorkflowInput,
    return_workflow_id,
)
from workflows.contracts.search_attributes import CUSTOMER_ID, ORDER_ID, VENDOR_IDS

log = logging.getLogger("emporium.returns")

router = APIRouter(tags=["returns"])


# --- schemas -----------------------------------------------------------------------------------


# --- the workflow ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Start:
    """What starting a return's workflow needs, read before the request commits."""

    request: ReturnRequest
    customer_id: uuid.UUID | None
    summary: str


async def _start_facts(session: AsyncSession, found: returns.ReturnDetail) -> _Start:
    request = found.request
    order = await orders.get_order(session, order_id=request.order_id)
    vendor = await session.get(Vendor, request.vendor_id)
    return _Start(
        request=request,
        customer_id=order.customer_id,
        summary=returns.describe(
            request,
            units=sum(item.line.quantity for item in found.lines),
            vendor_name=vendor.name if vendor is not None else str(request.vendor_id),
        ),
    )


async def _start(client: Client, settings: Settings, facts: _Start, *, nudge: bool) -> bool:
    """Start ``return:{id}`` (``nudge``: or, if it runs, signal it that the state changed);
    False when it had started (``nudge``: had ended) already."""
    request = facts.request
    return await start_workflow(
        client,
        RETURN_WORKFLOW,
        ReturnWorkflowInput(
            return_id=str(request.id),
            respond_by=request.respond_by.isoformat(),
            timings=order_saga.timings(settings),
            commission_bp=settings.platform_commission_bp,
        ),
        id=return_workflow_id(str(request.id)),
        task_queue=settings.temporal_task_queue,
        signal=RETURN_CHANGED_SIGNAL if nudge else None,
        search_attributes=[
            SearchAttributePair(ORDER_ID, str(request.order_id)),
            SearchAttributePair(CUSTOMER_ID, str(facts.customer_id or "")),
            SearchAttributePair(VENDOR_IDS, [str(request.vendor_id)]),
        ],
        summary=facts.summary,
    )


async def _moved(
    session: AsyncSession, settings: Settings, temporal: Client, request: ReturnRequest
) -> ReturnRead:
    """Commit a move, then nudge the workflow to look again (signal-with-start: a workflow
    whose start was lost starts now). A failed nudge is only logged: the state is stored, and
    the workflow looks again by itself every ``recheck_s``."""
    found = await returns.detail(session, request=request)
    facts = await _start_facts(session, found)
    await session.commit()
    try:
        await _start(temporal, settings, facts, nudge=True)  # False: ended, nothing to tell
    except WorkflowStartFailed:
        log.warning("could not nudge a return's workflow", extra={"return_id": str(request.id)})
    return ReturnRead.from_domain(found)


# --- the shopper -------------------------------------------------------------------------------


@router.post("/orders/{order_id}/returns", status_code=201)
async def request_return(
    order_id: uuid.UUID,
    body: ReturnCreate,
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    now: NowDep,
) -> ReturnRead:
    """Ask to send delivered items of one vendor back, within the vendor's return window.

    409 ``return_not_delivered`` before the vendor's shipment is delivered,
    ``return_window_closed`` after its window, ``return_quantity_exceeded`` for more units than
    are left (bought, less cancelled, less those in other returns not rejected or withdrawn);
    422 ``return_lines_other_vendor`` for lines of another vendor (``invalid_return`` for lines
    not of this order). The vendor is emailed and has until ``respond_by`` to answer, after
    which the return is approved automatically. 503 ``workflow_unavailable`` (it is withdrawn)
    when Temporal cannot be reached."""
    order = await orders.customer_order(session, order_id=order_id, customer_id=principal.user_id)
    request = await returns.request_return(
        session,
        order=order,
        vendor_id=body.vendor_id,
        reason=body.reason,
        lines=[(line.order_line_id, line.quantity) for line in body.lines],
        now=now,
        respond_within_s=settings.return_response_within_s,
    )
    found = await returns.detail(session, request=request)
    facts = await _start_facts(session, found)
    # Stored before its workflow can work on it.
    await session.commit()
    try:
        await _start(temporal, settings, facts, nudge=False)
    except WorkflowStartFailed as error:
        # Nobody would keep its deadline: withdraw it, so its units can be asked back again.
        await returns.abandon(
            session, return_id=request.id, reason="Return withdrawn: it could not be started."
        )
        await session.commit()
        log.warning("could not start a return's workflow", extra={"return_id": str(request.id)})
        raise order_saga.WorkflowUnavailable(
            "The return could not be started; please try again."
        ) from error
    return ReturnRead.from_domain(found)


@router.get("/orders/{order_id}/returns")
async def list_order_returns(
    order_id: uuid.UUID, principal: CurrentUser, session: SessionDep
) -> ReturnList:
    """The order's returns, oldest first."""
    await orders.customer_order(session, order_id=order_id, customer_id=principal.user_id)
    found = await returns.details(
        session, requests=await returns.list_for_order(session, order_id=order_id)
    )
    return ReturnList.whole(ReturnRead.from_domain(item) for item in found)


@router.get("/orders/{order_id}/returns/{return_id}")
async def read_order_return(
    order_id: uuid.UUID, return_id: uuid.UUID, principal: CurrentUser, session: SessionDep
) -> ReturnRead:
    request = await returns.customer_return(
        session, order_id=order_id, return_id=return_id, customer_id=principal.user_id
    )
    return ReturnRead.from_domain(await returns.detail(session, request=request))


@router.post("/orders/{order_id}/returns/{return_id}/cancel")
async def cancel_return(
    order_id: uuid.UUID,
    return_id: uuid.UUID,
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> ReturnRead:
    """Withdraw the return before the vendor has received it; 409 ``return_not_cancellable``
    after."""
    request = await returns.withdraw(
        session, order_id=order_id, return_id=return_id, customer_id=principal.user_id
    )
    return await _moved(session, settings, temporal, request)


# --- the vendor --------------------------------------------------------------------------------


@router.get("/vendors/{vendor_id}/returns")
async def list_vendor_returns(
    vendor_id: uuid.UUID,
    staff: VendorStaff,
    session: SessionDep,
    status: ReturnStatus | None = None,
    limit: PageLimit = 20,
    cursor: PageCursor = None,
) -> ReturnPage:
    """The vendor's returns, newest first, maybe of one status (e.g. ``requested``: to answer)."""
    found = await returns.list_for_vendor(
        session,
        vendor_id=vendor_id,
        status=status,
        limit=limit,
        cursor=cursor,
    )
    return ReturnPage(
        items=[
            ReturnRead.from_domain(item)
            for item in await returns.details(session, requests=found.items)
        ],
        next_cursor=found.next_cursor,
    )


@router.get("/vendors/{vendor_id}/returns/{return_id}")
async def read_vendor_return(
    vendor_id: uuid.UUID, return_id: uuid.UUID, staff: VendorStaff, session: SessionDep
) -> ReturnRead:
    request = await returns.vendor_return(session, vendor_id=vendor_id, return_id=return_id)
    return ReturnRead.from_domain(await returns.detail(session, request=request))


@router.post("/vendors/{vendor_id}/returns/{return_id}/approve")
async def approve_return(
    vendor_id: uuid.UUID,
    return_id: uuid.UUID,
    manager: VendorManager,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    now: NowDep,
) -> ReturnRead:
    """Take the items back; the shopper is told to send them. 409 ``return_already_decided``."""
    request = await returns.approve(session, vendor_id=vendor_id, return_id=return_id, now=now)
    return await _moved(session, settings, temporal, request)


@router.post("/vendors/{vendor_id}/returns/{return_id}/reject")
async def reject_return(
    vendor_id: uuid.UUID,
    return_id: uuid.UUID,
    body: ReturnReject,
    manager: VendorManager,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    now: NowDep,
) -> ReturnRead:
    """Refuse the return, with a reason the shopper sees, before ``respond_by``
    (409 ``return_response_window_over`` after; ``return_already_decided``)."""
    request = await returns.reject(
        session, vendor_id=vendor_id, return_id=return_id, reason=body.reason, now=now
    )
    return await _moved(session, settings, temporal, request)


@router.post("/vendors/{vendor_id}/returns/{return_id}/receive")
async def receive_return(
    vendor_id: uuid.UUID,
    return_id: uuid.UUID,
    body: ReturnReceive,
    manager: VendorManager,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    now: NowDep,
) -> ReturnRead:
    """The parcel is here and inspected: the units count as returned, and the refund (put
    back in stock) follows. 409 ``return_not_approved`` unless approved."""
    request = await returns.mark_received(
        session,
        vendor_id=vendor_id,
        return_id=return_id,
        inspection_note=body.inspection_note,
        now=now,
    )
    return await _moved(session, settings, temporal, request)
