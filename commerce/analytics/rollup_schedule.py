"""The Temporal Schedule that keeps the sales rollup current (``analytics-rollup``): a
``SalesRollupWorkflow`` every ``EMPORIUM_ANALYTICS_ROLLUP_INTERVAL_S``, never two at once."""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
)

from commerce.orders.order_saga import timings
from core import temporal
from core.settings import Settings
from workflows.contracts.analytics import ROLLUP_SCHEDULE_ID, ROLLUP_WORKFLOW, SalesRollupInput

log = logging.getLogger("emporium.analytics")


def rollup_schedule(settings: Settings) -> Schedule:
    # One at a time; after an outage one run catches up (it rolls up every hour due).
    return temporal.every(
        timedelta(seconds=settings.analytics_rollup_interval_s),
        ROLLUP_WORKFLOW,
        SalesRollupInput(timings=timings(settings)),
        id="analytics-rollup",
        task_queue=settings.temporal_task_queue,
        summary="Roll up the sales of the hours closed since the last run",
        note="Sales rollup (commerce.analytics.rollup_schedule)",
    )


async def ensure_rollup_schedule(
    client: Client, settings: Settings, *, schedule_id: str = ROLLUP_SCHEDULE_ID
) -> None:
    """Create the schedule, or bring an existing one up to these settings (keeping its
    state: paused by an operator, its note)."""
    created = await temporal.ensure_schedule(client, schedule_id, rollup_schedule(settings))
    log.info(
        "rollup schedule " + ("created" if created else "updated"),
        extra={"every_s": settings.analytics_rollup_interval_s},
    )
