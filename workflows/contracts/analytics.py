"""The sales rollup (``SalesRollupWorkflow``, started by the ``analytics-rollup`` schedule):
names, input and output, and the interface of its activity (``activities.analytics``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import activity

from workflows.contracts.timings import CheckoutTimings

ROLLUP_WORKFLOW = "SalesRollupWorkflow"
#: The Temporal Schedule that starts a rollup every ``analytics_rollup_interval_s``.
ROLLUP_SCHEDULE_ID = "analytics-rollup"


@dataclass(frozen=True)
class SalesRollupInput:
    timings: CheckoutTimings = field(default_factory=CheckoutTimings)


@dataclass(frozen=True)
class RollUpOutput:
    chunks: int  # transactions that rolled hours up (0: nothing new was closed)
    rolled_until: str | None  # ISO 8601: every hour before it is rolled up


class RollupActivities:
    """The rollup's step; implemented by ``activities.analytics.RollupActivities``."""

    @activity.defn
    async def roll_up(self) -> RollUpOutput:
        """Roll up every hour closed since the last run, a chunk per transaction."""
        raise NotImplementedError
