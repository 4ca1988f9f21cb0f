"""The client side of the order saga: starting an order's workflow, asking it how it goes,
and the reconciler that makes sure no stored order is left without one.

Used by the API (checkout, order routes) and the worker (reconciler). Talks to workflows by
name and through their input/output dataclasses only (workflows.contracts.orders).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import SearchAttributePair
from temporalio.service import RPCError

from commerce.errors import DomainError
from commerce.orders import orders
from core import temporal
from core.money import format_money
from core.settings import Settings
from models import Order
from workflows.contracts.orders import (
    CHECKOUT_OUTCOME_UPDATE,
    ORDER_WORKFLOW,
    STATUS_QUERY,
    OrderStatusView,
    OrderWorkflowInput,
)
from workflows.contracts.search_attributes import (
    CUSTOMER_ID,
    ORDER_CURRENCY,
    ORDER_ID,
    ORDER_STATUS,
    ORDER_TOTAL,
    PAYMENT_PROVIDER,
    VENDOR_IDS,
)
from workflows.contracts.timings import CheckoutTimings

log = logging.getLogger("emporium.orders")


class WorkflowUnavailable(DomainError):
    status, code, title = 503, "workflow_unavailable", "Order processing is unavailable"


def timings(settings: Settings) -> CheckoutTimings:
    return CheckoutTimings(
        payment_window_s=settings.checkout_payment_window_s,
        max_payment_attempts=settings.checkout_max_payment_attempts,
        activity_timeout_s=settings.activity_timeout_s,
        retry_initial_s=settings.activity_retry_initial_s,
        retry_max_s=settings.activity_retry_max_s,
        payment_retry_max_attempts=settings.payment_retry_max_attempts,
        shipment_accept_within_s=settings.shipment_accept_within_s,
        tracking_recheck_s=settings.tracking_recheck_s,
    )


async def start_order_workflow(
    client: Client,
    settings: Settings,
    *,
    order: Order,
    vendor_ids: list[str],
    payment_token: str | None,
) -> bool:
    """Start ``order:{id}`` (``core.temporal.start_workflow``: an order has one saga, ever);
    True if this call started it, False if it was started before (a retried request, the
    reconciler). ``WorkflowUnavailable`` (503) when Temporal did not take it."""
    try:
        return await temporal.start_workflow(
            client,
            ORDER_WORKFLOW,
            OrderWorkflowInput(
                order_id=str(order.id),
                customer_id=str(order.customer_id) if order.customer_id else None,
                vendor_ids=vendor_ids,
                grand_total=order.grand_total,
                currency=order.currency,
                payment_provider=order.payment_provider,
                payment_token=payment_token,
                timings=timings(settings),
            ),
            id=order.workflow_id,
            task_queue=settings.temporal_task_queue,
            search_attributes=[
                SearchAttributePair(ORDER_ID, str(order.id)),
                SearchAttributePair(CUSTOMER_ID, str(order.customer_id or "")),
                SearchAttributePair(ORDER_STATUS, "pending"),
                SearchAttributePair(VENDOR_IDS, vendor_ids),
                SearchAttributePair(ORDER_TOTAL, order.grand_total),
                SearchAttributePair(ORDER_CURRENCY, order.currency),
                SearchAttributePair(PAYMENT_PROVIDER, order.payment_provider),
            ],
            summary=(
                f"Order {order.id}: {format_money(order.grand_total, order.currency)} "
                f"from {len(vendor_ids)} vendor(s), paid with {order.payment_provider}"
            ),
        )
    except temporal.WorkflowStartFailed as error:
        raise WorkflowUnavailable(
            "The order is stored but could not be started; retry with the same Idempotency-Key.",
            order_id=str(order.id),
        ) from error


def handle(client: Client, order: Order) -> WorkflowHandle[object, OrderStatusView]:
    return client.get_workflow_handle(order.workflow_id, result_type=OrderStatusView)


async def live_status(
    client: Client, order: Order, *, wait_s: float = 0.0
) -> OrderStatusView | None:
    """The workflow's live state: after waiting up to ``wait_s`` for the payment's first
    outcome, else as it is now. ``None`` when the workflow has ended or cannot be reached
    (the stored order then tells the status)."""
    workflow = handle(client, order)
    try:
        if wait_s > 0:
            try:
                return await asyncio.wait_for(
                    workflow.execute_update(CHECKOUT_OUTCOME_UPDATE, result_type=OrderStatusView),
                    timeout=wait_s,
                )
            except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
                pass  # not settled yet: answer with the state as it is
        return await asyncio.wait_for(
            workflow.query(STATUS_QUERY, result_type=OrderStatusView), timeout=5.0
        )
    except (
        RPCError,
        WorkflowUpdateFailedError,
        WorkflowQueryFailedError,
        WorkflowQueryRejectedError,
        TimeoutError,
    ) as error:
        log.info("order workflow not answering", extra={"error": type(error).__name__})
        return None


# --- the reconciler ----------------------------------------------------------------------------


async def reconcile_pending(
    sessionmaker: async_sessionmaker[AsyncSession],
    client: Client,
    settings: Settings,
    *,
    now: datetime,
) -> int:
    """Start the saga of every order left ``pending`` past ``order_reconcile_after_s``.

    Such an order was stored by ``POST /checkout`` whose workflow start then failed (Temporal
    down, the API process killed in between). Its payment token was never stored, so the
    saga is started without one and only undoes the order (promotion uses back, ends
    ``cancelled`` / ``checkout_interrupted``). An order whose saga is running is left alone
    (starting it again finds it). Returns how many were started.
    """
    async with sessionmaker() as session:
        stale = await orders.stale_pending_orders(
            session, older_than=now - timedelta(seconds=settings.order_reconcile_after_s)
        )
        parts = {order.id: await orders.vendor_ids(session, order_id=order.id) for order in stale}
    started = 0
    for order in stale:
        if await start_order_workflow(
            client, settings, order=order, vendor_ids=parts[order.id], payment_token=None
        ):
            log.warning("started the saga of an orphaned order", extra={"order_id": str(order.id)})
            started += 1
    return started
