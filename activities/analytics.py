"""The sales rollup's step: roll up, a chunk per transaction, every hour closed since."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from commerce.analytics import rollup
from core.clock import SYSTEM_CLOCK, Clock
from workflows.contracts import analytics as contract
from workflows.contracts.analytics import RollUpOutput


class RollupActivities(contract.RollupActivities):
    """Steps of ``SalesRollupWorkflow``, built once per worker."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock

    @activity.defn
    async def roll_up(self) -> RollUpOutput:
        chunks = 0
        while True:
            async with self._sessionmaker.begin() as session:
                rolled = await rollup.roll_up_chunk(session, now=self._clock.now())
            if rolled.since is None:
                break
            chunks += 1
            activity.heartbeat(rolled.until.isoformat())
        async with self._sessionmaker() as session:
            current = await rollup.rolled_until(session)
        return RollUpOutput(chunks, current.isoformat() if current else None)
