"""Returns: one workflow per return (``return:{return_id}``), the timer and the orchestrator.

PostgreSQL is the arbiter of a return's state: the vendor's decision, the parcel's receipt and
the shopper's withdrawal are conditional updates made by the API, which then nudges this
workflow (the ``return_changed`` signal); the workflow re-reads the state with an activity.
What it does itself: at ``respond_by`` it approves a return the vendor left unanswered (a
conditional update too, so a decision at the same moment is settled by the database), and
once the parcel is received it has the refund created (the lines' share, restocked) and runs
``RefundWorkflow`` as a child, then marks the return refunded.

Deterministic code only. Activities are called by name with the dataclasses below, so this
module imports nothing with I/O and the API can import its types to start and signal it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from workflows.order_types import CheckoutTimings
    from workflows.refunds import (
        REFUND_WORKFLOW,
        RefundWorkflowInput,
        RefundWorkflowResult,
        refund_workflow_id,
    )

RETURN_WORKFLOW = "ReturnWorkflow"
RETURN_CHANGED_SIGNAL = "return_changed"


def return_workflow_id(return_id: str) -> str:
    return f"return:{return_id}"


# --- in and out ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReturnWorkflowInput:
    return_id: str
    respond_by: str  # ISO 8601 with its offset: when the return is approved automatically
    timings: CheckoutTimings = field(default_factory=CheckoutTimings)
    # How often the state is re-read without a nudge (a nudge lost while Temporal was away).
    recheck_s: float = 3600.0
    # Handed to the refund (commission given back); None: the worker's setting.
    commission_bp: int | None = None


@dataclass(frozen=True)
class ReturnRef:
    return_id: str


@dataclass(frozen=True)
class ReturnState:
    """The return as stored: ``status`` is a models.ReturnStatus value."""

    return_id: str
    status: str
    refund_id: str | None = None
    refund_status: str | None = None  # pending | succeeded | failed
    auto_approved: bool = False
    # Seconds until respond_by, by the application's clock when read (None in histories
    # recorded before it existed: the workflow then measures with its own clock).
    respond_in_s: float | None = None


@dataclass(frozen=True)
class ReturnWorkflowResult:
    return_id: str
    status: str  # rejected | cancelled | refunded | received (its refund failed or was refused)
    refund_id: str | None = None
    auto_approved: bool = False


@dataclass(frozen=True)
class ReturnProgress:
    """The ``progress`` query: what the workflow waits for now."""

    return_id: str
    step: str  # starting | awaiting_decision | approving | awaiting_parcel | refunding | done
    status: str


_NOT_REFUNDABLE = "ReturnNotRefundable"


# --- the workflow --------------------------------------------------------------------------


@workflow.defn(name=RETURN_WORKFLOW)
class ReturnWorkflow:
    """One return, from requested to refunded (or rejected, or withdrawn)."""

    def __init__(self) -> None:
        self._changes = 0
        self._return_id = ""
        self._step = "starting"
        self._status = "requested"

    @workflow.signal(name=RETURN_CHANGED_SIGNAL)
    def return_changed(self) -> None:
        """The API moved the return in the database: look again."""
        self._changes += 1

    @workflow.query
    def progress(self) -> ReturnProgress:
        return ReturnProgress(return_id=self._return_id, step=self._step, status=self._status)

    @workflow.run
    async def run(self, params: ReturnWorkflowInput) -> ReturnWorkflowResult:
        self._return_id = params.return_id
        ref = ReturnRef(params.return_id)
        respond_by = datetime.fromisoformat(params.respond_by)

        seen, state = await self._read(ref, params)
        # How long the vendor has is measured once, on the application's clock (the one
        # respond_by was set by), then counted down on the workflow's own.
        deadline = respond_by
        if state.respond_in_s is not None:  # None: a history from before it was measured
            deadline = workflow.now() + timedelta(seconds=state.respond_in_s)
        while state.status == "requested":
            left = (deadline - workflow.now()).total_seconds()
            if left <= 0:
                self._at("approving", "No answer from the vendor in time: approving.")
                seen = self._changes
                state = await self._call("auto_approve_return", ref, ReturnState, params)
                self._status = state.status
                continue
            self._at(
                "awaiting_decision",
                f"Waiting for the vendor to approve or reject until {respond_by.isoformat()}.",
            )
            await self._changed(seen, min(left, params.recheck_s))
            seen, state = await self._read(ref, params)

        while state.status == "approved":
            self._at("awaiting_parcel", "Approved; waiting for the vendor to receive the parcel.")
            if workflow.info().is_continue_as_new_suggested():
                # A parcel may take weeks: start afresh rather than grow the history.
                workflow.continue_as_new(params)
            await self._changed(seen, params.recheck_s)
            seen, state = await self._read(ref, params)

        if state.status == "received":
            state = await self._refund(ref, params, state)
        self._at("done", f"The return is {state.status}.")
        return ReturnWorkflowResult(
            return_id=params.return_id,
            status=state.status,
            refund_id=state.refund_id,
            auto_approved=state.auto_approved,
        )

    async def _refund(
        self, ref: ReturnRef, params: ReturnWorkflowInput, state: ReturnState
    ) -> ReturnState:
        self._at("refunding", "Received; refunding the returned items.")
        try:
            refund_id: str = await self._call("create_return_refund", ref, str, params)
        except ActivityError as error:
            cause = error.cause
            if isinstance(cause, ApplicationError) and cause.type == _NOT_REFUNDABLE:
                # Money or units already went back another way: for operations to look at
                # (the order's timeline says why); the return stays received.
                workflow.logger.warning("return not refundable", extra={"error": str(cause)})
                return state
            raise
        # Already started (e.g. by operations): its outcome is read below all the same.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await workflow.execute_child_workflow(
                REFUND_WORKFLOW,
                RefundWorkflowInput(
                    refund_id=refund_id,
                    timings=params.timings,
                    commission_bp=params.commission_bp,
                ),
                id=refund_workflow_id(refund_id),
                result_type=RefundWorkflowResult,
                # Money that started moving finishes moving, whatever happens to the return.
                parent_close_policy=ParentClosePolicy.ABANDON,
            )
        while True:
            state = await self._call("complete_return", ref, ReturnState, params)
            self._status = state.status
            if state.refund_status != "pending":
                return state
            await workflow.sleep(timedelta(seconds=params.timings.retry_max_s))

    # --- plumbing ---------------------------------------------------------------------------

    async def _read(self, ref: ReturnRef, params: ReturnWorkflowInput) -> tuple[int, ReturnState]:
        """The nudge count from *before* the read, and the state: a nudge that comes while
        reading is not lost."""
        seen = self._changes
        state: ReturnState = await self._call("read_return", ref, ReturnState, params)
        self._status = state.status
        return seen, state

    async def _changed(self, seen: int, timeout_s: float) -> None:
        # A timeout is the deadline, or time to look again anyway.
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._changes > seen, timeout=timedelta(seconds=max(timeout_s, 0.001))
            )

    def _at(self, step: str, details: str) -> None:
        self._step = step
        workflow.set_current_details(details)

    async def _call(
        self, name: str, arg: Any, result_type: type, params: ReturnWorkflowInput
    ) -> Any:
        timings = params.timings
        return await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timedelta(seconds=timings.activity_timeout_s),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=timings.retry_initial_s),
                maximum_interval=timedelta(seconds=timings.retry_max_s),
                maximum_attempts=0,
            ),
        )
