"""The return's steps: thin activities over commerce.aftersales.returns, each idempotent.

Every move is a conditional update (``requested`` -> ``approved`` at the deadline, ``received``
-> ``refunded`` once the refund succeeded) and the refund is created under the return's row
lock with the request key ``return:{id}``, so a retried step finds its work done.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.errors import refused
from commerce.aftersales import returns
from commerce.orders import orders
from core.clock import SYSTEM_CLOCK, Clock
from models import ReturnRequest
from workflows.contracts import returns as contract
from workflows.contracts.returns import ReturnRef, ReturnState

__all__ = ["ReturnActivities"]


async def _state(session: AsyncSession, request: ReturnRequest, *, now: datetime) -> ReturnState:
    found = await returns.detail(session, request=request)
    return ReturnState(
        return_id=str(request.id),
        status=request.status.value,
        refund_id=str(request.refund_id) if request.refund_id else None,
        refund_status=found.refund.status.value if found.refund is not None else None,
        auto_approved=request.auto_approved,
        # Measured on the application's clock, the one respond_by was set by: the workflow
        # waits this long, whatever its own clock says.
        respond_in_s=(request.respond_by - now).total_seconds(),
    )


class ReturnActivities(contract.ReturnActivities):
    """Steps of ``ReturnWorkflow``, built once per worker."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock

    @activity.defn
    async def read_return(self, ref: ReturnRef) -> ReturnState:
        """The return as stored now. An unknown return is final (``ReturnNotFound``)."""
        async with self._sessionmaker() as session:
            try:
                request = await returns.get_return(session, return_id=uuid.UUID(ref.return_id))
            except returns.ReturnNotFound as error:
                raise refused(error) from None
            return await _state(session, request, now=self._clock.now())

    @activity.defn
    async def auto_approve_return(self, ref: ReturnRef) -> ReturnState:
        """Approve a return still unanswered at its deadline (the shopper is emailed); a
        decision stored first stands. The state either way."""
        return_id = uuid.UUID(ref.return_id)
        now = self._clock.now()
        async with self._sessionmaker.begin() as session:
            moved = await returns.auto_approve(session, return_id=return_id, now=now)
            if moved:
                activity.logger.info(
                    "return approved automatically", extra={"return_id": ref.return_id}
                )
            request = await returns.get_return(session, return_id=return_id)
            return await _state(session, request, now=now)

    @activity.defn
    async def create_return_refund(self, ref: ReturnRef) -> str:
        """Create the refund of a received return (or find the one made before); its id.
        ``ReturnNotRefundable`` (final) when the money or the units went back another way;
        the order's timeline says so."""
        return_id = uuid.UUID(ref.return_id)
        try:
            async with self._sessionmaker.begin() as session:
                refund = await returns.create_return_refund(
                    session, return_id=return_id, now=self._clock.now()
                )
                return str(refund.id)
        except returns.ReturnNotRefundable as error:
            await self._note_not_refundable(return_id, error)
            raise refused(error) from None

    async def _note_not_refundable(
        self, return_id: uuid.UUID, error: returns.ReturnNotRefundable
    ) -> None:
        async with self._sessionmaker.begin() as session:
            request = await returns.get_return(session, return_id=return_id, for_update=True)
            event = f"return_not_refundable:{request.id}"
            if not await orders.has_event(session, order_id=request.order_id, type=event):
                await orders.add_event(
                    session,
                    order_id=request.order_id,
                    type=event,
                    detail=f"Return {returns.short(request.id)} received but not refunded: "
                    f"{error.detail}",
                    data={"return_id": str(request.id), **error.extra},
                )

    @activity.defn
    async def complete_return(self, ref: ReturnRef) -> ReturnState:
        """Mark the return refunded once its refund succeeded (the shopper is emailed); the
        state, whatever the refund's outcome."""
        return_id = uuid.UUID(ref.return_id)
        async with self._sessionmaker.begin() as session:
            request = await returns.complete(session, return_id=return_id)
            return await _state(session, request, now=self._clock.now())
