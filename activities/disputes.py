"""The dispute workflow's steps: thin activities over commerce.aftersales.disputes, each idempotent.

Every step may run more than once; each acts once per dispute: the order events it writes are
keyed by the dispute id (checked under the order's row lock, in the transaction that queues
the emails), the outcome is a conditional update and the ledger entries are keyed.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.errors import refused
from commerce.aftersales import disputes
from core.clock import SYSTEM_CLOCK, Clock
from workflows.contracts import disputes as contract
from workflows.contracts.disputes import (
    DisputeNotified,
    DisputeRef,
    DisputeSettled,
    DisputeState,
    SettleDisputeInput,
)

__all__ = ["DisputeActivities"]


class DisputeActivities(contract.DisputeActivities):
    """Steps of ``DisputeWorkflow``, built once per worker."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock

    @activity.defn
    async def record_dispute_opened(self, ref: DisputeRef) -> DisputeNotified:
        """Put the dispute on the order's timeline; email the vendors and operations."""
        async with self._sessionmaker.begin() as session:
            try:
                status, sent = await disputes.announce(
                    session, dispute_id=uuid.UUID(ref.dispute_id)
                )
            except disputes.DisputeNotFound as error:
                raise refused(error) from None
        return DisputeNotified(recipients=sent, status=status.value)

    @activity.defn
    async def remind_dispute_deadline(self, ref: DisputeRef) -> DisputeState:
        """The evidence deadline passed: remind operations once, if still open."""
        async with self._sessionmaker.begin() as session:
            try:
                status = await disputes.remind(session, dispute_id=uuid.UUID(ref.dispute_id))
            except disputes.DisputeNotFound as error:
                raise refused(error) from None
        return DisputeState(status=status.value)

    @activity.defn
    async def read_dispute_status(self, ref: DisputeRef) -> DisputeState:
        """The stored status: an outcome recorded whose signal did not arrive."""
        async with self._sessionmaker() as session:
            try:
                status = await disputes.stored_status(session, dispute_id=uuid.UUID(ref.dispute_id))
            except disputes.DisputeNotFound as error:
                raise refused(error) from None
        return DisputeState(status=status.value)

    @activity.defn
    async def settle_dispute(self, params: SettleDisputeInput) -> DisputeSettled:
        """Record the outcome (the stored one if decided already); lost: debit the vendors;
        either way tell them (the freeze ended when the outcome was stored)."""
        async with self._sessionmaker.begin() as session:
            try:
                settled = await disputes.settle(
                    session,
                    dispute_id=uuid.UUID(params.dispute_id),
                    outcome=params.outcome,
                    now=self._clock.now(),
                )
            except (disputes.DisputeNotFound, disputes.InvalidDisputeOutcome) as error:
                raise refused(error) from None
        return DisputeSettled(
            status=settled.status.value,
            ledger_entries=settled.ledger_entries,
            recipients=settled.recipients,
        )
