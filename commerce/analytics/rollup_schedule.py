"""The Temporal Schedule that keeps the sales rollup current (``analytics-rollup``): a
``SalesRollupWorkflow`` every ``EMPORIUM_ANALYTICS_ROLLUP_INTERVAL_S``, never two at once."""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from commerce.orders.order_saga import timings
from core.settings import Settings
from workflows.contracts.analytics import ROLLUP_SCHEDULE_ID, ROLLUP_WORKFLOW, SalesRollupInput

log = logging.getLogger("emporium.analytics")


def rollup_schedule(settings: Settings) -> Schedule:
    interval = timedelta(seconds=settings.analytics_rollup_interval_s)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ROLLUP_WORKFLOW,
            SalesRollupInput(timings=timings(settings)),
            id="analytics-rollup",
            task_queue=settings.temporal_task_queue,
            static_summary="Roll up the sales of the hours closed since the last run",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval)]),
        policy=SchedulePolicy(
            # One at a time; after an outage one run catches up (it rolls up every hour due).
            overlap=ScheduleOverlapPolicy.SKIP,
            catchup_window=max(interval, timedelta(seconds=60)),
        ),
        state=ScheduleState(note="Sales rollup (commerce.analytics.rollup_schedule)"),
    )


async def ensure_rollup_schedule(
    client: Client, settings: Settings, *, schedule_id: str = ROLLUP_SCHEDULE_ID
) -> None:
    """Create the schedule, or bring an existing one up to these settings (keeping its
    state: paused by an operator, its note)."""
    schedule = rollup_schedule(settings)
    try:
        await client.create_schedule(schedule_id, schedule)
        log.info("rollup schedule created", extra={"every_s": settings.analytics_rollup_interval_s})
        return
    except ScheduleAlreadyRunningError:
        pass

    def updated(current: ScheduleUpdateInput) -> ScheduleUpdate:
        schedule.state = current.description.schedule.state
        return ScheduleUpdate(schedule=schedule)

    await client.get_schedule_handle(schedule_id).update(updated)
