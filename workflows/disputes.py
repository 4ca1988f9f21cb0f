"""Disputes (chargebacks): one workflow per dispute (``dispute:{dispute_id}``).

The dispute row exists already, ``open``: from then on every ledger entry of its order is
frozen (``commerce.ledger`` does not pay out an order with an open dispute). The workflow
tells the order's vendors and operations, waits for the outcome until the evidence deadline,
reminds operations once at the deadline and goes on waiting (the bank decides, often weeks
later), then records the outcome: a lost dispute debits the vendors, a won one debits nobody;
either way the freeze ends and the vendors are told.

The outcome comes as the ``outcome`` signal (``POST /admin/disputes/{id}/outcome``, or a
provider's webhook), sent after the outcome was stored. A signal that never arrived (Temporal
unreachable at that moment) is caught up with: after the deadline the workflow looks at the
stored status every ``recheck_s``.

Deterministic code only. Activities are called by name with the dataclasses below, so this
module imports nothing with I/O and the API and commerce can import its types.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.order_types import CheckoutTimings

DISPUTE_WORKFLOW = "DisputeWorkflow"
#: Signal carrying the dispute's outcome (``DisputeOutcome``).
OUTCOME_SIGNAL = "outcome"
OUTCOMES = ("won", "lost")


def dispute_workflow_id(dispute_id: str) -> str:
    return f"dispute:{dispute_id}"


# --- in and out ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DisputeWorkflowInput:
    dispute_id: str
    order_id: str
    # From the start to the evidence deadline (``disputes.evidence_due_at``), in seconds.
    evidence_within_s: float
    # After the deadline: how often the stored status is looked at, for an outcome whose
    # signal was lost.
    recheck_s: float = 86_400.0
    timings: CheckoutTimings = field(default_factory=CheckoutTimings)
    # Set when the workflow continues as new after the deadline: nothing to announce again.
    reminded: bool = False


@dataclass(frozen=True)
class DisputeOutcome:
    """How the dispute ended; sent once the outcome is stored."""

    outcome: str  # won | lost
    source: str = "operations"  # operations | webhook


@dataclass(frozen=True)
class DisputeRef:
    dispute_id: str


@dataclass(frozen=True)
class DisputeNotified:
    recipients: int  # emails queued now (0 when an earlier try did it)
    status: str = "open"  # as stored: decided already when the workflow started late


@dataclass(frozen=True)
class DisputeState:
    status: str  # open | won | lost


@dataclass(frozen=True)
class SettleDisputeInput:
    dispute_id: str
    outcome: str  # won | lost: used if the stored dispute is still open


@dataclass(frozen=True)
class DisputeSettled:
    status: str  # won | lost: what is stored (the first outcome recorded wins)
    ledger_entries: int  # DISPUTE entries written now
    recipients: int  # vendor emails queued now


@dataclass(frozen=True)
class DisputeView:
    """The ``status`` query: where the workflow is."""

    dispute_id: str
    phase: str  # announcing | awaiting_evidence | awaiting_outcome | settling | closed
    outcome: str | None
    evidence_due_at: str | None  # ISO 8601
    reminded: bool


@workflow.defn
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

    @workflow.query
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
            notified = await self._activity("record_dispute_opened", ref, DisputeNotified)
            self._adopt(DisputeState(notified.status))
            self._phase = "awaiting_evidence"
            self._details(f"Waiting for the outcome; evidence due {self._deadline.isoformat()}.")
            remaining = (self._deadline - workflow.now()).total_seconds()
            if not await self._wait_outcome(remaining):
                state = await self._activity("remind_dispute_deadline", ref, DisputeState)
                self._reminded = True
                self._adopt(state)
        if self._outcome is None:
            self._phase = "awaiting_outcome"
            self._details("Evidence deadline passed; waiting for the bank's decision.")
        while self._outcome is None:
            if await self._wait_outcome(params.recheck_s):
                break
            self._adopt(await self._activity("read_dispute_status", ref, DisputeState))
            if self._outcome is None and workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(replace(params, evidence_within_s=0.0, reminded=True))
        assert self._outcome is not None
        self._phase = "settling"
        self._details(f"Recording the outcome: {self._outcome}.")
        settled: DisputeSettled = await self._activity(
            "settle_dispute", SettleDisputeInput(params.dispute_id, self._outcome), DisputeSettled
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

    async def _activity(self, name: str, arg: Any, result_type: type[Any]) -> Any:
        timings = self._params.timings
        return await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timedelta(seconds=timings.activity_timeout_s),
            # Database writes only: retried until they succeed (a missing dispute is a
            # non-retryable error raised by the activity).
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=timings.retry_initial_s),
                maximum_interval=timedelta(seconds=timings.retry_max_s),
            ),
        )

    def _details(self, text: str) -> None:
        workflow.set_current_details(text)
