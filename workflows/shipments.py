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
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.orders import NotifyVendorInput, OrderActivities
    from activities.shipments import (
        OpenShipmentInput,
        ShipmentActivities,
        ShipmentRef,
        ShipmentState,
        UnacceptedOutput,
    )
    from workflows.order_types import CheckoutTimings, order_workflow_id
    from workflows.refunds import RefundWorkflowInput

_DONE = frozenset({"delivered", "cancelled"})


@dataclass(frozen=True)
class ShipmentWorkflowInput:
    order_id: str
    vendor_id: str
    timings: CheckoutTimings
    accept_within_s: float = 172_800.0
    recheck_s: float = 3600.0


@workflow.defn
class ShipmentWorkflow:
    """Id ``shipment:{order_id}:{vendor_id}``; a child of the order's workflow."""

    def __init__(self) -> None:
        self._nudged = False
        self._told_parent = False
        self._state: ShipmentState | None = None

    @workflow.signal
    def nudge(self) -> None:
        """Something changed in the database (accepted, shipped, tracking news): look now."""
        self._nudged = True

    @workflow.query
    def state(self) -> ShipmentState | None:
        return self._state

    @workflow.run
    async def run(self, params: ShipmentWorkflowInput) -> str:
        self._params = params
        ref = ShipmentRef(params.order_id, params.vendor_id)
        self._state = await self._run(
            ShipmentActivities.open_shipment,
            OpenShipmentInput(params.order_id, params.vendor_id, params.accept_within_s),
        )
        accept_by = datetime.fromisoformat(self._state.accept_by)
        # The time to accept is measured once, on the application's clock (the one accept_by
        # was set by), then counted down on the workflow's own.
        deadline = accept_by
        if self._state.accept_in_s is not None:  # None: a history from before it was measured
            deadline = workflow.now() + timedelta(seconds=self._state.accept_in_s)
        await self._run(
            OrderActivities.notify_vendor, NotifyVendorInput(params.order_id, params.vendor_id)
        )
        workflow.set_current_details(f"Waiting for the vendor to accept (by {accept_by}).")
        while self._state.status == "awaiting_acceptance":
            remaining = (deadline - workflow.now()).total_seconds()
            if remaining <= 0:
                outcome: UnacceptedOutput = await self._run(
                    ShipmentActivities.cancel_unaccepted, ref
                )
                if outcome.refund_id is not None:
                    await workflow.execute_child_workflow(
                        "RefundWorkflow",
                        RefundWorkflowInput(refund_id=outcome.refund_id, timings=params.timings),
                        id=f"refund:{outcome.refund_id}",
                    )
                self._state = await self._run(ShipmentActivities.shipment_state, ref)
                continue
            await self._look(ref, min(remaining, params.recheck_s))

        workflow.set_current_details("Accepted; waiting for the parcel to be delivered.")
        while self._state.status not in _DONE:
            await self._tell_parent_if_shipped()
            await self._look(ref, params.recheck_s)
        await self._tell_parent_if_shipped()
        workflow.set_current_details(f"Ended {self._state.status}.")
        return self._state.status

    async def _look(self, ref: ShipmentRef, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: self._nudged, timeout=max(timeout_s, 0.001))
        self._nudged = False
        self._state = await self._run(ShipmentActivities.shipment_state, ref)

    async def _tell_parent_if_shipped(self) -> None:
        # Once a part has shipped, the order can no longer be cancelled as a whole.
        assert self._state is not None
        if self._state.shipped and not self._told_parent:
            await workflow.get_external_workflow_handle(
                order_workflow_id(self._params.order_id)
            ).signal("shipment_shipped", self._params.vendor_id)
            self._told_parent = True

    async def _run(self, activity: object, arg: object) -> object:
        timings = self._params.timings
        return await workflow.execute_activity_method(
            activity,  # type: ignore[arg-type]
            arg,
            start_to_close_timeout=timedelta(seconds=timings.activity_timeout_s),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=timings.retry_initial_s),
                maximum_interval=timedelta(seconds=timings.retry_max_s),
            ),
        )
