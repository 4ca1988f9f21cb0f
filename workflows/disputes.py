"""Disputes (chargebacks): one workflow per dispute (``dispute:{dispute_id}``).

The dispute row exists already, ``open``: from then on every ledger entry of its order is
frozen (``commerce.finance.ledger`` does not pay out an order with an open dispute). The workflow
tells the order's vendors and operations, waits for the outcome until the evidence deadline,
reminds operations once at the deadline and goes on waiting (the bank decides, often weeks
later), then records the outcome: a lost dispute debits the vendors, a won one debits nobody;
either way the freeze ends and the vendors are told.

The outcome comes as the ``outcome`` signal (``POST /admin/disputes/{id}/outcome``, or a
provider's webhook), sent after the outcome was stored. A signal that never arrived (Temporal
unreachable at that moment) is caught up with: after the deadline the workflow looks at the
stored status every ``recheck_s``.

Deterministic code only; its contract is ``workflows.contracts.disputes``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.contracts.disputes import (
        DISPUTE_WORKFLOW,
        OUTCOME_SIGNAL,
        OUTCOMES,
        STATUS_QUERY,
        DisputeActivities,
        DisputeOutcome,
        DisputeRef,
        DisputeSettled,
        DisputeState,
        DisputeView,
        DisputeWorkflowInput,
        SettleDisputeInput,
    )

P = TypeVar("P")
R = TypeVar("R")


@workflow.defn(name=DISPUTE_WORKFLOW)
class DisputeWorkflow:
    """One chargeback, from opened to won or lost. Id ``dispute:{dispute_id}``."""

    @workflow.init
    def __init__(self, params: DisputeWorkflowInput) -> None:
        self._params = params
        self._outcome: str | None = None
        self._phase = "announcing"
        self._reminded = params.reminded
        self._deadline = workflow.now() + timedelta(seconds=max(0.0, params.evidence_within_s))

    @workflow.signal(name=OUTCOME_SIGNAL)
    def outcome(self, decision: DisputeOutcome) -> None:
        """The first valid outcome counts; the settle step uses what is stored anyway."""
        if self._outcome is None and decision.outcome in OUTCOMES:
            self._outcome = decision.outcome

    @workflow.query(name=STATUS_QUERY)
    def status(self) -> DisputeView:
        return DisputeView(
            dispute_id=self._params.dispute_id,
            phase=self._phase,
            outcome=self._outcome,
            evidence_due_at=None if self._reminded else self._deadline.isoformat(),
            reminded=self._reminded,
        )

    @workflow.run
    async def run(self, params: DisputeWorkflowInput) -> DisputeSettled:
        ref = DisputeRef(params.dispute_id)
        if not params.reminded:
            # Recorded on the order and emailed once per dispute, however often this runs.
            notified = await self._activity(DisputeActivities.record_dispute_opened, ref)
            self._adopt(DisputeState(notified.status))
            self._phase = "awaiting_evidence"
            self._details(f"Waiting for the outcome; evidence due {self._deadline.isoformat()}.")
            remaining = (self._deadline - workflow.now()).total_seconds()
            if not await self._wait_outcome(remaining):
                state = await self._activity(DisputeActivities.remind_dispute_deadline, ref)
                self._reminded = True
                self._adopt(state)
        if self._outcome is None:
            self._phase = "awaiting_outcome"
            self._details("Evidence deadline passed; waiting for the bank's decision.")
        while self._outcome is None:
            if await self._wait_outcome(params.recheck_s):
                break
            self._adopt(await self._activity(DisputeActivities.read_dispute_status, ref))
            if self._outcome is None and workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(replace(params, evidence_within_s=0.0, reminded=True))
        assert self._outcome is not None
        self._phase = "settling"
        self._details(f"Recording the outcome: {self._outcome}.")
        settled = await self._activity(
            DisputeActivities.settle_dispute, SettleDisputeInput(params.dispute_id, self._outcome)
        )
        self._outcome = settled.status
        self._phase = "closed"
        self._details(f"Closed: {settled.status}.")
        return settled

    # --- helpers ------------------------------------------------------------------------

    async def _wait_outcome(self, timeout_s: float) -> bool:
        """True once an outcome is known; False when ``timeout_s`` passed without one."""
        if self._outcome is not None:
            return True
        if timeout_s <= 0:
            return False
        try:
            await workflow.wait_condition(lambda: self._outcome is not None, timeout=timeout_s)
        except TimeoutError:
            return False
        return True

    def _adopt(self, state: DisputeState) -> None:
        """An outcome stored without its signal reaching us (or before we started waiting)."""
        if self._outcome is None and state.status in OUTCOMES:
            self._outcome = state.status

    async def _activity(self, step: Callable[[Any, P], Awaitable[R]], arg: P) -> R:
        timings = self._params.timings
        # Database writes only: retried until they succeed (a missing dispute is a
        # non-retryable error raised by the activity).
        return await workflow.execute_activity_method(
            step,
            arg,
            start_to_close_timeout=timings.activity_timeout,
            retry_policy=timings.retry(),
        )

    def _details(self, text: str) -> None:
        workflow.set_current_details(text)
