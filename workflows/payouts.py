"""Paying vendors: one run settles and sends what each vendor may be paid.

Started every ``payout_interval_s`` by the Temporal Schedule ``payouts``
(commerce.finance.payout_schedule), or by an admin (``POST /admin/payouts/run``). Deterministic code
only; its contract is ``workflows.contracts.payouts``.
"""

from __future__ import annotations

from datetime import UTC

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.contracts.payouts import (
        PAYOUT_WORKFLOW,
        SCHEDULED_START_TIME,
        PayoutActivities,
        PayoutWorkflowInput,
        RunPayoutsInput,
        RunPayoutsOutput,
        run_key_for,
    )


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
            start_to_close_timeout=timings.activity_timeout * 10,
            retry_policy=timings.retry(),
        )
