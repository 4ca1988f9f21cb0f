"""The refund's steps: thin activities over commerce/, each idempotent.

The provider call carries an idempotency key derived from the refund id, so a retried or
restarted step replays the provider's first answer; database writes are conditional updates
(``pending`` -> ``succeeded``/``failed``) or keyed (stock movements, ledger entries, credit
notes, the shopper's email), so running any step twice changes nothing the second time.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import refused
from commerce.aftersales import refunds
from commerce.catalog import inventory
from commerce.errors import DomainError
from commerce.finance import invoices, ledger
from commerce.payments.provider import PaymentDeclined, PaymentError, TransientPaymentError
from commerce.payments.registry import PaymentProviders
from core.clock import SYSTEM_CLOCK, Clock
from core.money import format_money
from models import OrderLine, Payment, RefundLine
from workflows.contracts import refunds as contract
from workflows.contracts.refunds import (
    CreateRefundInput,
    ProviderRefundOutput,
    RecordRefundInput,
    RefundFacts,
    RefundRef,
    RefundSource,
    RefundStatus,
)

__all__ = ["RefundActivities", "refund_idempotency_key", "send_refund"]

DEFAULT_COMMISSION_BP = 1000


def refund_idempotency_key(refund_id: uuid.UUID | str) -> str:
    """The provider idempotency key of a refund: the same on every try, in every process."""
    return f"emporium:refund:{refund_id}"


class RefundActivities(contract.RefundActivities):
    """Steps of ``RefundWorkflow``, and ``create_refund`` for workflows that decide on one."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        providers: PaymentProviders,
        storefront_url: str,
        *,
        commission_bp: int = DEFAULT_COMMISSION_BP,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._providers = providers
        self._storefront_url = storefront_url
        self._commission_bp = commission_bp
        self._clock = clock

    @activity.defn
    async def create_refund(self, params: CreateRefundInput) -> str:
        """Create (or, with the same request key, find) a pending refund; its id. Refusals
        (too much, not refundable, invalid) are final: ``ApplicationError`` with the domain
        error's class name as type (e.g. ``RefundExceedsRemaining``) and its code in details."""
        async with self._sessionmaker.begin() as session:
            try:
                refund = await refunds.create_refund(
                    session,
                    order_id=uuid.UUID(params.order_id),
                    source=RefundSource(params.source),
                    reason=params.reason,
                    lines=[(uuid.UUID(line.order_line_id), line.quantity) for line in params.lines],
                    amount=params.amount,
                    vendor_id=uuid.UUID(params.vendor_id) if params.vendor_id else None,
                    restock=params.restock,
                    requested_by=uuid.UUID(params.requested_by) if params.requested_by else None,
                    request_key=params.request_key,
                    now=self._clock.now(),
                )
            except DomainError as error:
                raise refused(error) from None
            return str(refund.id)

    @activity.defn
    async def describe_refund(self, ref: RefundRef) -> RefundFacts:
        async with self._sessionmaker.begin() as session:
            try:
                refund = await refunds.get_refund(session, refund_id=uuid.UUID(ref.refund_id))
            except refunds.RefundNotFound as error:
                raise refused(error) from None
            return RefundFacts(
                refund_id=str(refund.id),
                order_id=str(refund.order_id),
                status=refund.status.value,
                amount=refund.amount,
                currency=refund.currency,
                amount_text=format_money(refund.amount, refund.currency),
                restock=refund.restock,
            )

    @activity.defn
    async def refund_at_provider(self, ref: RefundRef) -> ProviderRefundOutput:
        """Refund at the payment provider and record the outcome (see ``send_refund``)."""
        return await send_refund(
            self._sessionmaker, self._providers, uuid.UUID(ref.refund_id), clock=self._clock
        )

    @activity.defn
    async def restock_refund(self, ref: RefundRef) -> int:
        """Put the refunded units back in stock, once per refund line (keyed movements).
        Lines whose variant no longer exists are skipped. Returns the units put back now."""
        refund_id = uuid.UUID(ref.refund_id)
        restocked = 0
        async with self._sessionmaker.begin() as session:
            refund = await refunds.get_refund(session, refund_id=refund_id)
            if not refund.restock or refund.status != RefundStatus.SUCCEEDED:
                return 0
            rows = (
                await session.execute(
                    select(RefundLine, OrderLine)
                    .join(OrderLine, OrderLine.id == RefundLine.order_line_id)
                    .where(RefundLine.refund_id == refund_id)
                    .order_by(RefundLine.order_line_id)
                )
            ).all()
            for refunded, line in rows:
                if line.variant_id is None or refunded.quantity <= 0:
                    continue
                try:
                    async with session.begin_nested():
                        await inventory.restock_returned(
                            session,
                            variant_id=line.variant_id,
                            quantity=refunded.quantity,
                            note=f"refund {refund_id}",
                            return_key=f"refund:{refund_id}:{line.id}",
                        )
                except inventory.VariantNotFound:
                    activity.logger.warning(
                        "refunded variant no longer exists; not restocked",
                        extra={"refund_id": str(refund_id), "order_line_id": str(line.id)},
                    )
                    continue
                restocked += refunded.quantity
        return restocked

    @activity.defn
    async def record_refund_in_ledger(self, params: RecordRefundInput) -> int:
        """Debit the vendors' share of a succeeded refund (idempotent: keyed entries)."""
        bp = self._commission_bp if params.commission_bp is None else params.commission_bp
        async with self._sessionmaker.begin() as session:
            return await ledger.record_refund(
                session,
                refund_id=uuid.UUID(params.refund_id),
                commission_bp=bp,
                now=self._clock.now(),
            )

    @activity.defn
    async def issue_refund_credit_notes(self, ref: RefundRef) -> int:
        """One credit note per vendor share (idempotent); how many the refund has."""
        async with self._sessionmaker.begin() as session:
            notes = await invoices.issue_credit_note(
                session, refund_id=uuid.UUID(ref.refund_id), now=self._clock.now()
            )
            return len(notes)

    @activity.defn
    async def notify_refund_issued(self, ref: RefundRef) -> bool:
        """Queue the shopper's "refund issued" email, once."""
        async with self._sessionmaker.begin() as session:
            return await refunds.queue_refund_issued(
                session, refund_id=uuid.UUID(ref.refund_id), storefront_url=self._storefront_url
            )


#: Written in the transaction that marks a refund succeeded, once (the first success).
Recorded = Callable[[AsyncSession, datetime, str | None], Awaitable[None]]


async def send_refund(
    sessionmaker: async_sessionmaker[AsyncSession],
    providers: PaymentProviders,
    refund_id: uuid.UUID,
    *,
    clock: Clock,
    recorded: Recorded | None = None,
) -> ProviderRefundOutput:
    """Refund a pending refund at its payment's provider and record the outcome: the one way
    money goes back (``RefundWorkflow``, and a paid order's cancellation). The idempotency key
    is the refund's (``refund_idempotency_key``), so every try, in every process, replays the
    provider's first answer. Transient provider errors raise (the retry policy retries); a
    refusal for good marks the refund failed, which gives its amount back to the payment.
    ``recorded(session, now, provider_refund_id)`` runs in the transaction that marks it
    succeeded. A refund already decided is answered as it is."""
    async with sessionmaker.begin() as session:
        refund = await refunds.get_refund(session, refund_id=refund_id)
        if refund.status != RefundStatus.PENDING:
            return _outcome_of(refund.status, refund.provider_refund_id, refund.failure_reason)
        payment = await session.get(Payment, refund.payment_id)
        assert payment is not None  # a foreign key
        name, payment_id = payment.provider, payment.provider_payment_id
        amount, currency = refund.amount, refund.currency
    if payment_id is None:
        return await _fail(sessionmaker, refund_id, "no_provider_payment", clock=clock)
    provider = providers.get(name)
    if provider is None:
        # Configuration: retried until the provider is offered again (the refund stays
        # pending and counted meanwhile, since it may have gone through already).
        raise ApplicationError(f"payment provider {name!r} is off", type="ProviderOff")
    try:
        answer = await provider.refund(
            payment_id,
            amount=amount,
            currency=currency,
            idempotency_key=refund_idempotency_key(refund_id),
        )
    except TransientPaymentError:
        raise
    except PaymentDeclined as declined:
        return await _fail(sessionmaker, refund_id, declined.reason, clock=clock)
    except (PaymentError, ValueError) as error:
        # The provider refused our request as malformed: nothing moved, and retrying the
        # same request cannot help. Logged for operations.
        activity.logger.error("payment provider refused a refund request", exc_info=True)
        return await _fail(
            sessionmaker, refund_id, f"provider_error:{type(error).__name__}", clock=clock
        )
    if answer.status == "failed":
        return await _fail(sessionmaker, refund_id, "provider_failed", clock=clock)
    now = clock.now()
    async with sessionmaker.begin() as session:
        moved = await refunds.mark_succeeded(
            session, refund_id=refund_id, provider_refund_id=answer.provider_refund_id, now=now
        )
        if moved and recorded is not None:
            await recorded(session, now, answer.provider_refund_id)
        refund = await refunds.get_refund(session, refund_id=refund_id)
        return _outcome_of(refund.status, refund.provider_refund_id, refund.failure_reason)


async def _fail(
    sessionmaker: async_sessionmaker[AsyncSession],
    refund_id: uuid.UUID,
    reason: str,
    *,
    clock: Clock,
) -> ProviderRefundOutput:
    async with sessionmaker.begin() as session:
        await refunds.mark_failed(session, refund_id=refund_id, reason=reason, now=clock.now())
        refund = await refunds.get_refund(session, refund_id=refund_id)
        return _outcome_of(refund.status, refund.provider_refund_id, refund.failure_reason)


def _outcome_of(
    status: RefundStatus, provider_refund_id: str | None, failure_reason: str | None
) -> ProviderRefundOutput:
    if status == RefundStatus.SUCCEEDED:
        return ProviderRefundOutput("succeeded", provider_refund_id=provider_refund_id)
    if status == RefundStatus.FAILED:
        return ProviderRefundOutput("failed", failure_reason=failure_reason)
    # Still pending after trying to move it: another try owns it; retry to see its outcome.
    raise ApplicationError("the refund is still pending", type="RefundPending")
