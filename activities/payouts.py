"""The payout run's step: settle what each vendor may be paid, then send it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from commerce.finance import ledger
from core import metrics
from core.clock import SYSTEM_CLOCK, Clock
from models import PayoutStatus
from workflows.contracts import payouts as contract
from workflows.contracts.payouts import RunPayoutsInput, RunPayoutsOutput


class PayoutActivities(contract.PayoutActivities):
    """Steps of ``PayoutWorkflow``, built once per worker. ``provider`` defaults to the
    simulated one: real transfers (bank, Stripe Connect) are out of scope."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        provider: ledger.PayoutProvider | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._provider = provider or ledger.TestPayoutProvider()

    @activity.defn
    async def run_payouts(self, params: RunPayoutsInput) -> RunPayoutsOutput:
        """Settle in one transaction (committed before any money moves, so a retry finds the
        run's payouts and settles nothing twice), then send each pending payout in its own
        transaction, its id the transfer's idempotency key."""
        now = datetime.fromisoformat(params.now) if params.now else self._clock.now()
        async with self._sessionmaker.begin() as session:
            settled = [
                p.id for p in await ledger.settle_payouts(session, run_key=params.run_key, now=now)
            ]
            pending = await ledger.pending_payout_ids(session)
        for payout_id in pending:
            activity.heartbeat(str(payout_id))
            async with self._sessionmaker.begin() as session:
                await ledger.send_payout(
                    session, payout_id=payout_id, provider=self._provider, now=self._clock.now()
                )
        async with self._sessionmaker() as session:
            found = await ledger.payouts_by_id(session, payout_ids=settled)
        amounts: dict[str, int] = {}
        for payout in found:
            metrics.PAYOUTS.labels(payout.status.value).inc()
            if payout.status == PayoutStatus.PAID:
                amounts[payout.currency] = amounts.get(payout.currency, 0) + payout.amount
        unpaid = any(payout.status == PayoutStatus.FAILED for payout in found)
        metrics.PAYOUT_RUNS.labels("failed" if unpaid else "paid").inc()
        return RunPayoutsOutput(
            payouts=len(found),
            paid=sum(1 for payout in found if payout.status == PayoutStatus.PAID),
            amounts=amounts,
        )
