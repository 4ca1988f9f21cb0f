"""One vendor's part of a paid order, from the vendor's acceptance to delivery.

The database is the arbiter of every state change (the API writes a vendor's acceptance or
tracking number, and carrier webhooks the parcel's progress, each with a conditional update);
this workflow is the clock and the conductor: it notifies the vendor, enforces the acceptance
deadline (cancelling and refunding the part when it passes), tells the order when the part
ships, and ends when it is delivered or cancelled. Signals are nudges that make it look at the
database now; it also looks every ``recheck_s`` in case a nudge was lost.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.contracts.orders import (
        SHIPMENT_SHIPPED_SIGNAL,
        NotifyVendorInput,
        OrderActivities,
        order_workflow_id,
    )
    from workflows.contracts.refunds import RefundWorkflowInput
    from workflows.contracts.shipments import (
        DONE,
        NUDGE_SIGNAL,
        STATE_QUERY,
        OpenShipmentInput,
        ShipmentActivities,
        ShipmentRef,
        ShipmentState,
        ShipmentStatus,
        ShipmentWorkflowInput,
    )
    from workflows.refunds import run_refund

P = TypeVar("P")
R = TypeVar("R")


@workflow.defn
class ShipmentWorkflow:
    """Id ``shipment:{order_id}:{vendor_id}``; a child of the order's workflow."""

    def __init__(self) -> None:
        self._nudged = False
        self._told_parent = False
        self._state: ShipmentState | None = None

    @workflow.signal(name=NUDGE_SIGNAL)
    def nudge(self) -> None:
        """Something changed in the database (accepted, shipped, tracking news): look now."""
        self._nudged = True

    @workflow.query(name=STATE_QUERY)
    def state(self) -> ShipmentState | None:
        return self._state

    @workflow.run
    async def run(self, params: ShipmentWorkflowInput) -> str:
        self._params = params
        ref = ShipmentRef(params.order_id, params.vendor_id)
        state = await self._run(
            ShipmentActivities.open_shipment,
            OpenShipmentInput(params.order_id, params.vendor_id, params.accept_within_s),
        )
        self._state = state
        accept_by = datetime.fromisoformat(state.accept_by)
        # The time to accept is measured once, on the application's clock (the one accept_by
        # was set by), then counted down on the workflow's own.
        deadline = accept_by
        if state.accept_in_s is not None:  # None: a history from before it was measured
            deadline = workflow.now() + timedelta(seconds=state.accept_in_s)
        await self._run(
            OrderActivities.notify_vendor, NotifyVendorInput(params.order_id, params.vendor_id)
        )
        workflow.set_current_details(f"Waiting for the vendor to accept (by {accept_by}).")
        while state.status == ShipmentStatus.AWAITING_ACCEPTANCE:
            remaining = (deadline - workflow.now()).total_seconds()
            if remaining <= 0:
                outcome = await self._run(ShipmentActivities.cancel_unaccepted, ref)
                if outcome.refund_id is not None:
                    await run_refund(
                        RefundWorkflowInput(refund_id=outcome.refund_id, timings=params.timings)
                    )
                state = self._state = await self._run(ShipmentActivities.shipment_state, ref)
                continue
            state = await self._look(ref, min(remaining, params.recheck_s))

        workflow.set_current_details("Accepted; waiting for the parcel to be delivered.")
        while state.status not in DONE:
            await self._tell_parent_if_shipped(state)
            state = await self._look(ref, params.recheck_s)
        await self._tell_parent_if_shipped(state)
        workflow.set_current_details(f"Ended {state.status}.")
        return state.status

    async def _look(self, ref: ShipmentRef, timeout_s: float) -> ShipmentState:
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: self._nudged, timeout=max(timeout_s, 0.001))
        self._nudged = False
        state = self._state = await self._run(ShipmentActivities.shipment_state, ref)
        return state

    async def _tell_parent_if_shipped(self, state: ShipmentState) -> None:
        # Once a part has shipped, the order can no longer be cancelled as a whole.
        if state.shipped and not self._told_parent:
            await workflow.get_external_workflow_handle(
                order_workflow_id(self._params.order_id)
            ).signal(SHIPMENT_SHIPPED_SIGNAL, self._params.vendor_id)
            self._told_parent = True

    async def _run(self, step: Callable[[Any, P], Awaitable[R]], arg: P) -> R:
        timings = self._params.timings
        return await workflow.execute_activity_method(
            step,
            arg,
            start_to_close_timeout=timings.activity_timeout,
            retry_policy=timings.retry(),
        )
