"""Orders: the shopper's history and detail, payment retries, cancellation; and the calls
that start and talk to an order's workflow (shared with checkout)."""

from __future__ import annotations

import logging
import uuid

from fastapi import APIRouter
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.access import CurrentUser, OperationsUser
from api.deps import PaymentProvidersDep, SessionDep, TemporalDep
from api.schemas.money import Money
from api.schemas.orders import (
    CheckoutRead,
    OrderCancel,
    OrderPage,
    OrderRead,
    OrderSummaryRead,
    PaymentRetry,
)
from api.schemas.pagination import PageCursor, PageLimit
from commerce.errors import Conflict
from commerce.orders import order_saga, orders
from models import Order
from workflows.contracts.orders import (
    CANCEL_UPDATE,
    RETRY_PAYMENT_UPDATE,
    SHOPPER_RETURNED_UPDATE,
    CancelOrderRequest,
    CancelOrderResult,
    OrderStatusView,
    RetryPaymentRequest,
)

log = logging.getLogger("emporium.orders")

router = APIRouter(tags=["orders"])
admin_router = APIRouter(prefix="/admin/orders", tags=["admin"])


class PaymentRetryNotPossible(Conflict):
    code, title = "payment_retry_not_possible", "The order is not waiting for another payment"


class NotAwaitingApproval(Conflict):
    code, title = "not_awaiting_approval", "The order's payment is not waiting for approval"


def _handle(client: Client, order: Order) -> WorkflowHandle[object, OrderStatusView]:
    return order_saga.handle(client, order)


def _rejection(error: WorkflowUpdateFailedError) -> str:
    cause = error.cause
    return str(cause.message) if isinstance(cause, ApplicationError) else str(cause)


@router.get("/orders")
async def list_orders(
    principal: CurrentUser,
    session: SessionDep,
    limit: PageLimit = 20,
    cursor: PageCursor = None,
) -> OrderPage:
    """The shopper's orders, newest first."""
    found = await orders.list_customer_orders(
        session, customer_id=principal.user_id, limit=limit, cursor=cursor
    )
    page = found.items
    counts = await orders.item_counts(session, order_ids=[order.id for order in page])
    return OrderPage(
        items=[
            OrderSummaryRead(
                id=order.id,
                status=order.status.value,
                grand_total=Money.of(order.grand_total, order.currency),
                currency=order.currency,
                items=counts.get(order.id, 0),
                placed_at=order.created_at,
            )
            for order in page
        ],
        next_cursor=found.next_cursor,
    )


@router.get("/orders/{order_id}")
async def read_order(order_id: uuid.UUID, principal: CurrentUser, session: SessionDep) -> OrderRead:
    """One order: lines as bought, totals, per-vendor shipping, payments and the timeline."""
    order = await orders.customer_order(session, order_id=order_id, customer_id=principal.user_id)
    return OrderRead.from_domain(await orders.detail(session, order=order))


@router.get("/orders/{order_id}/payment")
async def read_payment_state(
    order_id: uuid.UUID, principal: CurrentUser, session: SessionDep, temporal: TemporalDep
) -> CheckoutRead:
    """What the order waits for now (e.g. the 3-D Secure client secret), from its workflow."""
    order = await orders.customer_order(session, order_id=order_id, customer_id=principal.user_id)
    return CheckoutRead.build(order, await order_saga.live_status(temporal, order))


@router.post("/orders/{order_id}/payment")
async def retry_payment(
    order_id: uuid.UUID,
    body: PaymentRetry,
    principal: CurrentUser,
    session: SessionDep,
    temporal: TemporalDep,
    providers: PaymentProvidersDep,
) -> CheckoutRead:
    """Pay again after a decline, maybe another way; answers with the new attempt's outcome."""
    order = await orders.customer_order(session, order_id=order_id, customer_id=principal.user_id)
    providers.require(body.payment_provider)
    token = await orders.resolve_payment_token(
        session,
        user_id=principal.user_id,
        provider=body.payment_provider,
        payment_token=body.payment_token,
        payment_method_id=body.payment_method_id,
    )
    try:
        live = await _handle(temporal, order).execute_update(
            RETRY_PAYMENT_UPDATE,
            RetryPaymentRequest(payment_provider=body.payment_provider, payment_token=token),
            result_type=OrderStatusView,
        )
    except WorkflowUpdateFailedError as error:
        raise PaymentRetryNotPossible(_rejection(error)) from None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise PaymentRetryNotPossible("The order has ended.") from None
        raise order_saga.WorkflowUnavailable() from error
    await session.refresh(order)
    return CheckoutRead.build(order, live)


@router.post("/orders/{order_id}/payment/return")
async def payment_return(
    order_id: uuid.UUID,
    principal: CurrentUser,
    session: SessionDep,
    temporal: TemporalDep,
) -> CheckoutRead:
    """The shopper is back from the provider's approval page (PayPal): go on without waiting
    for the webhook, and answer with the outcome. 409 ``not_awaiting_approval`` once the
    payment no longer waits for approval (e.g. the webhook came first)."""
    order = await orders.customer_order(session, order_id=order_id, customer_id=principal.user_id)
    try:
        live = await _handle(temporal, order).execute_update(
            SHOPPER_RETURNED_UPDATE, result_type=OrderStatusView
        )
    except WorkflowUpdateFailedError as error:
        raise NotAwaitingApproval(_rejection(error)) from None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise NotAwaitingApproval("The order has ended.") from None
        raise order_saga.WorkflowUnavailable() from error
    await session.refresh(order)
    return CheckoutRead.build(order, live)


async def _cancel(
    client: Client, session: SessionDep, order: Order, request: CancelOrderRequest
) -> CheckoutRead:
    try:
        result = await _handle(client, order).execute_update(
            CANCEL_UPDATE, request, result_type=CancelOrderResult
        )
    except WorkflowUpdateFailedError as error:
        raise orders.OrderNotCancellable(_rejection(error)) from None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise orders.OrderNotCancellable("The order has ended.") from None
        raise order_saga.WorkflowUnavailable() from error
    if not result.accepted:
        raise orders.OrderNotCancellable("Part of the order has shipped; cancel lines instead.")
    await session.refresh(order)
    log.info("order cancelled", extra={"order_id": str(order.id), "status": result.status})
    return CheckoutRead.build(order, None)


@router.post("/orders/{order_id}/cancel")
async def cancel_order(
    order_id: uuid.UUID,
    body: OrderCancel,
    principal: CurrentUser,
    session: SessionDep,
    temporal: TemporalDep,
) -> CheckoutRead:
    """Cancel an order before anything shipped: stock, promotion uses and money come back.
    Answers once that is done; 409 ``order_not_cancellable`` if it is too late."""
    order = await orders.customer_order(session, order_id=order_id, customer_id=principal.user_id)
    return await _cancel(
        temporal,
        session,
        order,
        CancelOrderRequest(
            reason=body.reason or "cancelled by the customer",
            by="customer",
            actor_id=str(principal.user_id),
        ),
    )


@admin_router.post("/{order_id}/cancel")
async def admin_cancel_order(
    order_id: uuid.UUID,
    body: OrderCancel,
    principal: OperationsUser,
    session: SessionDep,
    temporal: TemporalDep,
) -> CheckoutRead:
    """Operations cancel any order before shipping, with the same compensations."""
    order = await orders.get_order(session, order_id=order_id)
    return await _cancel(
        temporal,
        session,
        order,
        CancelOrderRequest(
            reason=body.reason or "cancelled by operations",
            by="operations",
            actor_id=str(principal.user_id),
        ),
    )


@admin_router.get("/{order_id}")
async def admin_read_order(
    order_id: uuid.UUID, _: OperationsUser, session: SessionDep
) -> OrderRead:
    order = await orders.get_order(session, order_id=order_id)
    return OrderRead.from_domain(await orders.detail(session, order=order))
