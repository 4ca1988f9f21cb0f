"""Returns: one workflow per return (``return:{return_id}``), the timer and the orchestrator.

PostgreSQL is the arbiter of a return's state: the vendor's decision, the parcel's receipt and
the shopper's withdrawal are conditional updates made by the API, which then nudges this
workflow (the ``return_changed`` signal); the workflow re-reads the state with an activity.
What it does itself: at ``respond_by`` it approves a return the vendor left unanswered (a
conditional update too, so a decision at the same moment is settled by the database), and
once the parcel is received it has the refund created (the lines' share, restocked) and runs
``RefundWorkflow`` as a child, then marks the return refunded.

Deterministic code only; its contract is ``workflows.contracts.returns``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts.refunds import RefundStatus, RefundWorkflowInput
    from workflows.contracts.returns import (
        NOT_REFUNDABLE,
        PROGRESS_QUERY,
        RETURN_CHANGED_SIGNAL,
        RETURN_WORKFLOW,
        ReturnActivities,
        ReturnProgress,
        ReturnRef,
        ReturnState,
        ReturnStatus,
        ReturnWorkflowInput,
        ReturnWorkflowResult,
    )
    from workflows.refunds import run_refund

P = TypeVar("P")
R = TypeVar("R")


# --- the workflow --------------------------------------------------------------------------


@workflow.defn(name=RETURN_WORKFLOW)
class ReturnWorkflow:
    """One return, from requested to refunded (or rejected, or withdrawn)."""

    def __init__(self) -> None:
        self._changes = 0
        self._return_id = ""
        self._step = "starting"
        self._status: str = ReturnStatus.REQUESTED

    @workflow.signal(name=RETURN_CHANGED_SIGNAL)
    def return_changed(self) -> None:
        """The API moved the return in the database: look again."""
        self._changes += 1

    @workflow.query(name=PROGRESS_QUERY)
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
        while state.status == ReturnStatus.REQUESTED:
            left = (deadline - workflow.now()).total_seconds()
            if left <= 0:
                self._at("approving", "No answer from the vendor in time: approving.")
                seen = self._changes
                state = await self._call(ReturnActivities.auto_approve_return, ref, params)
                self._status = state.status
                continue
            self._at(
                "awaiting_decision",
                f"Waiting for the vendor to approve or reject until {respond_by.isoformat()}.",
            )
            await self._changed(seen, min(left, params.recheck_s))
            seen, state = await self._read(ref, params)

        while state.status == ReturnStatus.APPROVED:
            self._at("awaiting_parcel", "Approved; waiting for the vendor to receive the parcel.")
            if workflow.info().is_continue_as_new_suggested():
                # A parcel may take weeks: start afresh rather than grow the history.
                workflow.continue_as_new(params)
            await self._changed(seen, params.recheck_s)
            seen, state = await self._read(ref, params)

        if state.status == ReturnStatus.RECEIVED:
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
            refund_id = await self._call(ReturnActivities.create_return_refund, ref, params)
        except ActivityError as error:
            cause = error.cause
            if isinstance(cause, ApplicationError) and cause.type == NOT_REFUNDABLE:
                # Money or units already went back another way: for operations to look at
                # (the order's timeline says why); the return stays received.
                workflow.logger.warning("return not refundable", extra={"error": str(cause)})
                return state
            raise
        # Already started (e.g. by operations): its outcome is read below all the same.
        await run_refund(
            RefundWorkflowInput(
                refund_id=refund_id, timings=params.timings, commission_bp=params.commission_bp
            )
        )
        while True:
            state = await self._call(ReturnActivities.complete_return, ref, params)
            self._status = state.status
            if state.refund_status != RefundStatus.PENDING:
                return state
            await workflow.sleep(timedelta(seconds=params.timings.retry_max_s))

    # --- plumbing ---------------------------------------------------------------------------

    async def _read(self, ref: ReturnRef, params: ReturnWorkflowInput) -> tuple[int, ReturnState]:
        """The nudge count from *before* the read, and the state: a nudge that comes while
        reading is not lost."""
        seen = self._changes
        state = await self._call(ReturnActivities.read_return, ref, params)
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
        self, step: Callable[[Any, P], Awaitable[R]], arg: P, params: ReturnWorkflowInput
    ) -> R:
        timings = params.timings
        return await workflow.execute_activity_method(
            step,
            arg,
            start_to_close_timeout=timings.activity_timeout,
            retry_policy=timings.retry(),
        )
