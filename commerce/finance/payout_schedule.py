"""The Temporal Schedule that pays vendors: ``payouts``, every ``payout_interval_s``.

Called by the worker at start-up, so a deployment's settings (the interval, the task queue,
the timings) reach the schedule: created the first time, updated after, and an operator's
pause in the Temporal UI is kept.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from temporalio.client import (
    Client,
    Schedule,
)
from temporalio.service import RPCError

from commerce.orders.order_saga import timings
from core import temporal
from core.settings import Settings
from workflows.contracts.payouts import PAYOUT_SCHEDULE_ID, PAYOUT_WORKFLOW, PayoutWorkflowInput

log = logging.getLogger("emporium.payouts")


def payout_schedule(settings: Settings) -> Schedule:
    # One run at a time; after an outage, one catch-up run pays everything due.
    return temporal.every(
        timedelta(seconds=settings.payout_interval_s),
        PAYOUT_WORKFLOW,
        PayoutWorkflowInput(timings=timings(settings)),
        id="payouts",
        task_queue=settings.temporal_task_queue,
        summary="Pay vendors what is past the return window",
        note="Vendor payouts (commerce.finance.payout_schedule)",
    )


async def ensure_payout_schedule(
    client: Client, settings: Settings, *, schedule_id: str = PAYOUT_SCHEDULE_ID
) -> None:
    """Create the ``payouts`` schedule, or bring an existing one up to these settings.
    (``schedule_id``: tests, which share one Temporal namespace, use their own.)"""
    # An existing schedule keeps its state (paused by an operator, its note) as it is.
    created = await temporal.ensure_schedule(client, schedule_id, payout_schedule(settings))
    log.info(
        "payout schedule " + ("created" if created else "updated"),
        extra={"every_s": settings.payout_interval_s},
    )


async def next_payout_at(
    client: Client, *, schedule_id: str = PAYOUT_SCHEDULE_ID
) -> datetime | None:
    """When the payout schedule runs next; ``None`` when there is no schedule (production,
    until real payouts exist), it is paused, or Temporal does not answer now."""
    try:
        described = await client.get_schedule_handle(schedule_id).describe(
            rpc_timeout=timedelta(seconds=2)
        )
    except (RPCError, RuntimeError):
        return None
    if described.schedule.state.paused:
        return None
    upcoming = described.info.next_action_times
    return upcoming[0] if upcoming else None
