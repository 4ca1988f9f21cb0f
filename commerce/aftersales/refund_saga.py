"""The client side of refunds: starting a refund's workflow (``refund:{refund_id}``).

Used by the API (an admin's refund). Other workflows run ``RefundWorkflow`` as a child
instead. Talks to the workflow by name and through its input dataclass only.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import SearchAttributePair

from commerce.aftersales import refunds
from commerce.errors import DomainError
from commerce.orders.order_saga import timings
from core import temporal
from core.settings import Settings
from models import RefundSource
from workflows.contracts.refunds import REFUND_WORKFLOW, RefundWorkflowInput, refund_workflow_id
from workflows.contracts.search_attributes import ORDER_ID

log = logging.getLogger("emporium.refunds")


class RefundWorkflowUnavailable(DomainError):
    status, code, title = 503, "workflow_unavailable", "Refund processing is unavailable"


async def start_refund_workflow(
    client: Client,
    settings: Settings,
    *,
    refund_id: uuid.UUID | str,
    order_id: uuid.UUID | str | None = None,
    summary: str | None = None,
) -> None:
    """Start ``refund:{refund_id}`` unless it was started before (ids are never reused, so
    a refund is paid out by one workflow). ``order_id`` sets the ``OrderId`` search attribute
    at once (the workflow sets it itself otherwise); ``summary`` is shown in the Temporal UI
    (``commerce.aftersales.refunds.describe``)."""
    await _start(client, settings, refund_id=refund_id, order_id=order_id, summary=summary)


async def _start(
    client: Client,
    settings: Settings,
    *,
    refund_id: uuid.UUID | str,
    order_id: uuid.UUID | str | None,
    summary: str | None,
) -> bool:
    attributes = [SearchAttributePair(ORDER_ID, str(order_id))] if order_id is not None else []
    try:
        return await temporal.start_workflow(
            client,
            REFUND_WORKFLOW,
            RefundWorkflowInput(
                refund_id=str(refund_id),
                timings=timings(settings),
                commission_bp=settings.platform_commission_bp,
            ),
            id=refund_workflow_id(str(refund_id)),
            task_queue=settings.temporal_task_queue,
            search_attributes=attributes,
            summary=summary or f"Refund {refund_id}",
        )
    except temporal.WorkflowStartFailed as error:
        raise RefundWorkflowUnavailable(
            "The refund is stored but could not be started yet.", refund_id=str(refund_id)
        ) from error


# --- the reconciler ----------------------------------------------------------------------------

#: Refunds whose workflow the API starts. Refunds of other sources are started by the
#: workflow that created them, as its child: starting those here could race it.
API_STARTED: tuple[RefundSource, ...] = (RefundSource.GOODWILL,)


async def reconcile_pending_refunds(
    sessionmaker: async_sessionmaker[AsyncSession],
    client: Client,
    settings: Settings,
    *,
    now: datetime,
) -> int:
    """Start the workflow of every API-created refund still ``pending`` past
    ``order_reconcile_after_s`` whose start was lost (Temporal down, the API killed between
    its commit and the start). One already started is left alone. Returns how many started."""
    async with sessionmaker() as session:
        stale = await refunds.stale_pending(
            session,
            older_than=now - timedelta(seconds=settings.order_reconcile_after_s),
            sources=API_STARTED,
        )
    started = 0
    for refund in stale:
        if await _start(
            client,
            settings,
            refund_id=refund.id,
            order_id=refund.order_id,
            summary=refunds.describe(refund),
        ):
            log.warning(
                "started the workflow of an orphaned refund", extra={"refund_id": str(refund.id)}
            )
            started += 1
    return started
