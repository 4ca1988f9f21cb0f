"""Vendor payouts (``PayoutWorkflow``, started by the ``payouts`` schedule or by an admin):
names, the run key, inputs and outputs, and the interface of its activity
(``activities.payouts``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from temporalio import activity
from temporalio.common import SearchAttributeKey

from workflows.contracts.timings import CheckoutTimings

PAYOUT_WORKFLOW = "PayoutWorkflow"
#: The Temporal Schedule that starts a run every ``payout_interval_s``.
PAYOUT_SCHEDULE_ID = "payouts"

#: Set by Temporal on every workflow a schedule starts: the time it was due.
SCHEDULED_START_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


def run_key_for(when: datetime) -> str:
    """``payouts:2026-11-30T12:00:00Z``: a run's time, to the second, names it."""
    return "payouts:" + when.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def manual_run_workflow_id(run_key: str) -> str:
    """The workflow id of a run an admin started: one per second, like its key."""
    return f"payouts-manual-{run_key.removeprefix('payouts:')}"


@dataclass(frozen=True)
class PayoutWorkflowInput:
    timings: CheckoutTimings = field(default_factory=CheckoutTimings)
    # None: the run is keyed by when it was due (a schedule's action) or started.
    run_key: str | None = None
    # What is payable at this time (ISO 8601) is paid. A run started by hand passes the time
    # of its request; None (a schedule's run): the application's clock when the run settles,
    # the clock that made the entries available, not the Temporal server's.
    as_of: str | None = None


@dataclass(frozen=True)
class RunPayoutsInput:
    run_key: str  # the same key again settles and pays nothing twice
    # ISO timestamp: entries available at or before it are paid. None: the time on the
    # application's clock when the run settles (the clock available_at was set by).
    now: str | None = None


@dataclass(frozen=True)
class RunPayoutsOutput:
    payouts: int  # settled by this run
    paid: int  # of them, paid (the others failed, or wait to be sent by a later run)
    amounts: dict[str, int]  # currency -> total paid by this run


class PayoutActivities:
    """The payout run's step; implemented by ``activities.payouts.PayoutActivities``."""

    @activity.defn
    async def run_payouts(self, params: RunPayoutsInput) -> RunPayoutsOutput:
        """Settle what each vendor may be paid (once per run key), then send it."""
        raise NotImplementedError
