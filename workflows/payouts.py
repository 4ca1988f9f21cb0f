"""Paying vendors: one run settles and sends what each vendor may be paid.

Started every ``payout_interval_s`` by the Temporal Schedule ``payouts``
(commerce.payout_schedule), or by an admin (``POST /admin/payouts/run``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from activities.payouts import PayoutActivities, RunPayoutsInput, RunPayoutsOutput
    from workflows.order_types import CheckoutTimings

PAYOUT_WORKFLOW = "PayoutWorkflow"

#: Set by Temporal on every workflow a schedule starts: the time it was due.
SCHEDULED_START_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


@dataclass(frozen=True)
class PayoutWorkflowInput:
    timings: CheckoutTimings = field(default_factory=CheckoutTimings)
    # None: the run is keyed by when it was due (a schedule's action) or started.
    run_key: str | None = None
    # What is payable at this time (ISO 8601) is paid. A run started by hand passes the time
    # of its request; None (a schedule's run): the application's clock when the run settles,
    # the clock that made the entries available, not the Temporal server's.
    as_of: str | None = None


def run_key_for(when: datetime) -> str:
    """``payouts:2026-11-30T12:00:00Z``: a run's time, to the second, names it."""
    return "payouts:" + when.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


@workflow.defn(name=PAYOUT_WORKFLOW)
class PayoutWorkflow:
    """One payout run: pays every vendor what is past its return window and not frozen by a
    dispute, at the run's time.

    The run key is the time the run was due (the schedule's scheduled time, else the
    workflow's start time; a run started by hand brings its own): retried activities and a
    second start for the same key settle and pay nothing twice. What is payable is judged on
    the application's clock (see ``PayoutWorkflowInput.as_of``).
    """

    @workflow.run
    async def run(self, params: PayoutWorkflowInput) -> RunPayoutsOutput:
        info = workflow.info()
        due = info.typed_search_attributes.get(SCHEDULED_START_TIME) or info.workflow_start_time
        due = due.astimezone(UTC).replace(microsecond=0)
        timings = params.timings
        workflow.set_current_details(
            f"Paying vendors what is payable at {params.as_of or 'the time the run settles'}."
        )
        return await workflow.execute_activity_method(
            PayoutActivities.run_payouts,
            RunPayoutsInput(run_key=params.run_key or run_key_for(due), now=params.as_of),
            # One run sends many transfers: more time than a single step.
            start_to_close_timeout=timedelta(seconds=timings.activity_timeout_s * 10),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=timings.retry_initial_s),
                maximum_interval=timedelta(seconds=timings.retry_max_s),
            ),
        )
