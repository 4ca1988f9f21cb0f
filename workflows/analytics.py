"""Keeping the sales rollup current: each run rolls up the hours closed since the last.

Started every ``analytics_rollup_interval_s`` by the Temporal Schedule ``analytics-rollup``
(commerce.analytics.rollup_schedule). Deterministic code only; its contract is
``workflows.contracts.analytics``.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.contracts.analytics import (
        ROLLUP_WORKFLOW,
        RollupActivities,
        RollUpOutput,
        SalesRollupInput,
    )


@workflow.defn(name=ROLLUP_WORKFLOW)
class SalesRollupWorkflow:
    """One rollup run. Runs never overlap (the schedule skips), and a rerun after a crash
    finds the hours it rolled up already done (``rollup_state`` moves with them)."""

    @workflow.run
    async def run(self, params: SalesRollupInput) -> RollUpOutput:
        timings = params.timings
        return await workflow.execute_activity_method(
            RollupActivities.roll_up,
            # A first rollup of a year of sales takes a while: chunks, with heartbeats.
            start_to_close_timeout=timings.activity_timeout * 20,
            heartbeat_timeout=timings.activity_timeout * 4,
            retry_policy=timings.retry(),
        )
