"""The vendor ledger: what the platform owes each vendor, entry by entry, and paying it out.

A vendor's balance (per currency) is the sum of its ``ledger_entries``. Every writer is
idempotent through ``entry_key`` (``sale:{order}:{vendor}``, ``refund:{refund}:{vendor}``, ...):
``INSERT ... ON CONFLICT DO NOTHING``, so a retried activity writes nothing twice.

Signs, in integer minor units of the order's currency:
    SALE +part.total, COMMISSION -commission, REFUND -share, COMMISSION_REFUND +commission on
    the share, DISPUTE -share of a lost chargeback, PAYOUT -amount paid out (+amount when a
    transfer is refused for good, which gives the money back to the balance).

So for every vendor and currency, with each kind summed as a magnitude::

    sale - commission - refunds + commission_refunds - disputes - payouts == balance

Commission is ``round_half_up(amount * bp / 10000)`` (commerce.checkout.pricing), in integers. The
commission given back over an order's refunds is computed on the cumulative refunded amount
and capped at the commission charged, so refunding a vendor part in several pieces gives back
exactly what one full refund would (never a minor unit more than was taken).

Payable: entries not yet paid out (``payout_id IS NULL``) whose ``available_at`` has passed.
A sale becomes available after the vendor's return window; debits are available at once, so
they net against what is paid next. Every entry of an order with an OPEN dispute is frozen
(not payable) until the dispute is won or lost; a lost one adds its DISPUTE entries.

Payouts: a run (``run_key``, e.g. the schedule's time) settles each vendor's payable amount per
currency into one ``Payout`` (unique per vendor and ``{run_key}:{currency}``: a retried run
pays nobody twice), points the settled entries at it and writes its PAYOUT entry, then sends
the money through a :class:`PayoutProvider`. Only a simulated provider exists here: real bank
transfers or Stripe Connect payouts are out of scope; they would be another implementation of
the Protocol (with the same idempotency key, the payout id).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.aftersales import refunds
from commerce.checkout.pricing import BASIS_POINTS, round_half_up, split_by_weight
from commerce.errors import Conflict, DomainError, NotFound
from core import pagination
from models import (
    Dispute,
    DisputeStatus,
    LedgerEntry,
    LedgerKind,
    Order,
    OrderVendorPart,
    Payout,
    PayoutStatus,
    Refund,
    RefundStatus,
    Vendor,
)

# --- errors --------------------------------------------------------------------------------


class OrderNotFound(NotFound):
    code, title = "order_not_found", "No such order"


class OrderNotConfirmed(Conflict):
    code, title = "order_not_confirmed", "The order has not been paid"


class RefundNotFound(NotFound):
    code, title = "refund_not_found", "No such refund"


class RefundNotSucceeded(Conflict):
    code, title = "refund_not_succeeded", "The refund has not succeeded"


class DisputeNotFound(NotFound):
    code, title = "dispute_not_found", "No such dispute"


class DisputeNotLost(Conflict):
    code, title = "dispute_not_lost", "The dispute has not been lost"


class InvalidRunKey(DomainError):
    code, title = "invalid_run_key", "A payout run key is 1 to 90 characters"


# --- money helpers -------------------------------------------------------------------------


def commission(amount: int, commission_bp: int) -> int:
    """The platform's commission on ``amount`` minor units, rounded half up."""
    return round_half_up(amount * commission_bp, BASIS_POINTS)


# --- writing entries -----------------------------------------------------------------------


def _entry(
    *,
    key: str,
    vendor_id: uuid.UUID,
    kind: LedgerKind,
    amount: int,
    currency: str,
    available_at: datetime,
    order_id: uuid.UUID | None = None,
    refund_id: uuid.UUID | None = None,
    dispute_id: uuid.UUID | None = None,
    payout_id: uuid.UUID | None = None,
    memo: str | None = None,
) -> dict[str, Any]:
    return {
        "entry_key": key,
        "vendor_id": vendor_id,
        "kind": kind,
        "amount": amount,
        "currency": currency,
        "available_at": available_at,
        "order_id": order_id,
        "refund_id": refund_id,
        "dispute_id": dispute_id,
        "payout_id": payout_id,
        "memo": memo,
    }


async def _write(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Insert the entries not written before (by ``entry_key``); how many were new."""
    if not rows:
        return 0
    written = await session.scalars(
        pg_insert(LedgerEntry)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=[LedgerEntry.entry_key])
        .returning(LedgerEntry.id)
    )
    return len(written.all())


async def _parts(
    session: AsyncSession, *, order_id: uuid.UUID, lock: bool = False
) -> list[OrderVendorPart]:
    query = (
        select(OrderVendorPart)
        .where(OrderVendorPart.order_id == order_id)
        .order_by(OrderVendorPart.vendor_id)
    )
    if lock:
        # Serialises the writers of one order's entries (concurrent refunds of it), so the
        # cumulative commission given back is computed on what is really there.
        query = query.with_for_update()
    return list((await session.scalars(query)).all())


async def record_sale(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    commission_bp: int,
    now: datetime,
) -> int:
    """Credit each vendor with its part of a paid order, less the platform's commission.

    Per vendor part: SALE ``+part.total`` and COMMISSION ``-round_half_up(total * bp / 10000)``,
    available after the vendor's ``return_window_days`` from ``now``. Idempotent (keys
    ``sale:{order}:{vendor}``, ``commission:{order}:{vendor}``); returns the entries written.
    Raises OrderNotConfirmed for an order that was never paid.
    """
    order = await session.get(Order, order_id, populate_existing=True)
    if order is None:
        raise OrderNotFound()
    if order.confirmed_at is None:
        raise OrderNotConfirmed("Only a paid (confirmed) order is credited to its vendors.")
    rows = (
        await session.execute(
            select(OrderVendorPart, Vendor.return_window_days)
            .join(Vendor, Vendor.id == OrderVendorPart.vendor_id)
            .where(OrderVendorPart.order_id == order_id)
            .order_by(OrderVendorPart.vendor_id)
        )
    ).all()
    entries: list[dict[str, Any]] = []
    for part, window_days in rows:
        available_at = now + timedelta(days=window_days)
        common: dict[str, Any] = {
            "vendor_id": part.vendor_id,
            "currency": order.currency,
            "available_at": available_at,
            "order_id": order_id,
        }
        entries.append(
            _entry(
                key=f"sale:{order_id}:{part.vendor_id}",
                kind=LedgerKind.SALE,
                amount=part.total,
                memo="Order sale",
                **common,
            )
        )
        taken = commission(part.total, commission_bp)
        entries.append(
            _entry(
                key=f"commission:{order_id}:{part.vendor_id}",
                kind=LedgerKind.COMMISSION,
                amount=-taken,
                memo=f"Platform commission {commission_bp / 100:g}%",
                **common,
            )
        )
    return await _write(session, entries)


async def _sum(session: AsyncSession, *conditions: Any) -> int:
    return int(
        await session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(*conditions)
        )
        or 0
    )


async def record_refund(
    session: AsyncSession,
    *,
    refund_id: uuid.UUID,
    commission_bp: int,
    now: datetime,
) -> int:
    """Debit the vendors whose part a SUCCEEDED refund gave back, and return them the
    commission on it.

    Per vendor share (``commerce.aftersales.refunds.vendor_shares``): REFUND ``-share`` and
    COMMISSION_REFUND ``+c``, where ``c`` brings the commission given back on the vendor's
    part of the order to
    ``min(commission charged, round_half_up(refunded so far * bp / 10000))``. Available at
    once. Idempotent (keys ``refund:{refund}:{vendor}``, ``commission_refund:{refund}:{vendor}``);
    returns the entries written. Raises RefundNotSucceeded before the provider confirmed it.
    """
    refund = await session.get(Refund, refund_id, populate_existing=True)
    if refund is None:
        raise RefundNotFound()
    if refund.status != RefundStatus.SUCCEEDED:
        raise RefundNotSucceeded(f"The refund is {refund.status.value}.")
    parts = {
        part.vendor_id: part for part in await _parts(session, order_id=refund.order_id, lock=True)
    }
    entries: list[dict[str, Any]] = []
    for vendor_id, share in sorted((await refunds.vendor_shares(session, refund)).items(), key=str):
        key = f"refund:{refund_id}:{vendor_id}"
        if share <= 0 or await session.scalar(select(exists().where(LedgerEntry.entry_key == key))):
            continue
        of_part = (LedgerEntry.vendor_id == vendor_id, LedgerEntry.order_id == refund.order_id)
        charged = -await _sum(session, *of_part, LedgerEntry.kind == LedgerKind.COMMISSION)
        if charged == 0 and vendor_id in parts:  # the sale is not recorded yet
            charged = commission(parts[vendor_id].total, commission_bp)
        refunded = -await _sum(session, *of_part, LedgerEntry.kind == LedgerKind.REFUND)
        given_back = await _sum(session, *of_part, LedgerEntry.kind == LedgerKind.COMMISSION_REFUND)
        target = min(charged, commission(refunded + share, commission_bp))
        common: dict[str, Any] = {
            "vendor_id": vendor_id,
            "currency": refund.currency,
            "available_at": now,
            "order_id": refund.order_id,
            "refund_id": refund_id,
        }
        entries.append(
            _entry(
                key=key,
                kind=LedgerKind.REFUND,
                amount=-share,
                memo=f"Refund ({refund.source.value})",
                **common,
            )
        )
        entries.append(
            _entry(
                key=f"commission_refund:{refund_id}:{vendor_id}",
                kind=LedgerKind.COMMISSION_REFUND,
                amount=max(0, target - given_back),
                memo="Commission on the refund",
                **common,
            )
        )
    return await _write(session, entries)


async def record_dispute_lost(
    session: AsyncSession, *, dispute_id: uuid.UUID, now: datetime
) -> int:
    """Debit the order's vendors with a lost chargeback, split in proportion to their parts
    (largest remainder, exact). The platform keeps its commission: a chargeback is the
    vendor's loss. Idempotent (key ``dispute:{dispute}:{vendor}``); returns entries written."""
    dispute = await session.get(Dispute, dispute_id, populate_existing=True)
    if dispute is None:
        raise DisputeNotFound()
    if dispute.status != DisputeStatus.LOST:
        raise DisputeNotLost(f"The dispute is {dispute.status.value}.")
    parts = await _parts(session, order_id=dispute.order_id)
    if not parts:
        return 0
    shares = split_by_weight(dispute.amount, {part.vendor_id: part.total for part in parts})
    return await _write(
        session,
        [
            _entry(
                key=f"dispute:{dispute_id}:{vendor_id}",
                vendor_id=vendor_id,
                kind=LedgerKind.DISPUTE,
                amount=-share,
                currency=dispute.currency,
                available_at=now,
                order_id=dispute.order_id,
                dispute_id=dispute_id,
                memo="Chargeback lost",
            )
            for vendor_id, share in sorted(shares.items(), key=str)
            if share > 0
        ],
    )


# --- reading -------------------------------------------------------------------------------


def _frozen() -> Any:
    """The entry belongs to an order with an open dispute."""
    return exists().where(
        Dispute.order_id == LedgerEntry.order_id, Dispute.status == DisputeStatus.OPEN
    )


async def _by_currency(session: AsyncSession, *conditions: Any) -> dict[str, int]:
    rows = await session.execute(
        select(LedgerEntry.currency, func.sum(LedgerEntry.amount))
        .where(*conditions)
        .group_by(LedgerEntry.currency)
        .order_by(LedgerEntry.currency)
    )
    return {currency: int(amount) for currency, amount in rows.all()}


async def balance(session: AsyncSession, *, vendor_id: uuid.UUID) -> dict[str, int]:
    """What the platform owes the vendor, per currency: the sum of all its entries."""
    return await _by_currency(session, LedgerEntry.vendor_id == vendor_id)


def _payable_conditions(now: datetime) -> tuple[Any, ...]:
    return (LedgerEntry.payout_id.is_(None), LedgerEntry.available_at <= now, ~_frozen())


async def payable(session: AsyncSession, *, vendor_id: uuid.UUID, now: datetime) -> dict[str, int]:
    """What a payout run at ``now`` would settle, per currency (may be negative: debits
    waiting for sales to net against; nothing is paid then)."""
    return await _by_currency(
        session, LedgerEntry.vendor_id == vendor_id, *_payable_conditions(now)
    )


async def frozen(session: AsyncSession, *, vendor_id: uuid.UUID) -> dict[str, int]:
    """Unpaid entries held back by open disputes on their orders, per currency."""
    return await _by_currency(
        session, LedgerEntry.vendor_id == vendor_id, LedgerEntry.payout_id.is_(None), _frozen()
    )


@dataclass(frozen=True)
class Books:
    """A vendor's books in one currency at a moment, read in one pass over its ledger."""

    currency: str
    balance: int  # every entry: what the platform owes the vendor
    payable: int  # what a payout run at that moment would settle (``payable``)
    frozen: int  # unpaid entries held back by open disputes (``frozen``)
    pending: int  # unpaid entries not available yet (sales inside their return window)
    next_available_at: datetime | None  # when the first of them becomes available


async def books(session: AsyncSession, *, vendor_id: uuid.UUID, now: datetime) -> list[Books]:
    """``balance``, ``payable`` and ``frozen`` and what is still pending, per currency, with
    one read of the vendor's entries instead of one each."""
    unpaid = LedgerEntry.payout_id.is_(None)
    frozen = _frozen()
    later = and_(unpaid, LedgerEntry.available_at > now)
    total = func.coalesce(func.sum(LedgerEntry.amount), 0)
    rows = await session.execute(
        select(
            LedgerEntry.currency,
            total,
            func.coalesce(func.sum(LedgerEntry.amount).filter(*_payable_conditions(now)), 0),
            func.coalesce(func.sum(LedgerEntry.amount).filter(unpaid, frozen), 0),
            func.coalesce(func.sum(LedgerEntry.amount).filter(later), 0),
            func.min(LedgerEntry.available_at).filter(later),
        )
        .where(LedgerEntry.vendor_id == vendor_id)
        .group_by(LedgerEntry.currency)
        .order_by(LedgerEntry.currency)
    )
    return [
        Books(currency, int(balance), int(payable), int(held), int(pending), first)
        for currency, balance, payable, held, pending, first in rows
    ]


async def entries(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    limit: int = 50,
    before_id: int | None = None,
) -> list[LedgerEntry]:
    """The vendor's entries, newest first; ``before_id`` pages back (keyset)."""
    query = select(LedgerEntry).where(LedgerEntry.vendor_id == vendor_id)
    if before_id is not None:
        query = query.where(LedgerEntry.id < before_id)
    return list((await session.scalars(query.order_by(LedgerEntry.id.desc()).limit(limit))).all())


async def payouts(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    limit: int = 50,
    cursor: str | None = None,
) -> pagination.Page[Payout]:
    """The vendor's payouts, newest first, a page at a time."""
    return await pagination.newest_first(
        session,
        select(Payout).where(Payout.vendor_id == vendor_id),
        created_at=Payout.created_at,
        id=Payout.id,
        scope="payouts",
        cursor=cursor,
        limit=limit,
    )


async def payouts_by_id(session: AsyncSession, *, payout_ids: Sequence[uuid.UUID]) -> list[Payout]:
    if not payout_ids:
        return []
    found = await session.scalars(
        select(Payout)
        .where(Payout.id.in_(list(payout_ids)))
        .order_by(Payout.vendor_id, Payout.currency)
    )
    return list(found.all())


# --- payouts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferRequest:
    vendor_id: uuid.UUID
    amount: int
    currency: str
    idempotency_key: str  # the payout id: a retried transfer is the same transfer
    description: str


class PayoutRefused(Exception):
    """The provider refused the transfer for good (closed account, ...): not retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PayoutProvider(Protocol):
    """Sends money to a vendor. ``transfer`` returns the provider's reference, the same one
    for the same idempotency key; it raises PayoutRefused for good, anything else to retry.

    Only :class:`TestPayoutProvider` exists: real bank transfers / Stripe Connect are out of
    scope (a vendor's payout account is not modelled yet)."""

    name: str

    async def transfer(self, request: TransferRequest) -> str: ...


@dataclass
class TestPayoutProvider:
    """Simulated transfers: the reference is derived from the idempotency key, so a replay
    (even in another process) answers the same. ``refuse`` lists vendors whose transfers are
    refused for good, to test that path."""

    name: str = "test"
    refuse: set[uuid.UUID] = field(default_factory=set)
    transfers: dict[str, TransferRequest] = field(default_factory=dict)

    async def transfer(self, request: TransferRequest) -> str:
        if request.vendor_id in self.refuse:
            raise PayoutRefused("account_closed")
        self.transfers.setdefault(request.idempotency_key, request)
        digest = hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:24]
        return f"tr_test_{digest}"


async def settle_payouts(session: AsyncSession, *, run_key: str, now: datetime) -> list[Payout]:
    """The first half of a run: per vendor and currency with a positive payable amount at
    ``now``, a PENDING payout (unique per vendor and ``{run_key}:{currency}``), the settled
    entries pointing at it and its PAYOUT entry. A retried run finds its payouts and settles
    nothing again. Returns the payouts of this run (new and old)."""
    if not 0 < len(run_key) <= 90:
        raise InvalidRunKey()
    candidates = (
        await session.execute(
            select(LedgerEntry.vendor_id, LedgerEntry.currency)
            .where(*_payable_conditions(now))
            .group_by(LedgerEntry.vendor_id, LedgerEntry.currency)
            .having(func.sum(LedgerEntry.amount) > 0)
            .order_by(LedgerEntry.vendor_id, LedgerEntry.currency)
        )
    ).all()
    for vendor_id, currency in candidates:
        payout_key = f"{run_key}:{currency}"
        done = await session.scalar(
            select(Payout.id).where(Payout.vendor_id == vendor_id, Payout.run_key == payout_key)
        )
        if done is not None:
            continue
        # Lock what is settled, in id order; a concurrent run waits, then finds the rows
        # settled (the WHERE is re-checked on the locked rows) and skips them.
        locked = (
            await session.execute(
                select(LedgerEntry.id, LedgerEntry.amount)
                .where(
                    LedgerEntry.vendor_id == vendor_id,
                    LedgerEntry.currency == currency,
                    *_payable_conditions(now),
                )
                .order_by(LedgerEntry.id)
                .with_for_update()
            )
        ).all()
        amount = sum(row.amount for row in locked)
        if amount <= 0:
            continue
        payout_id = await session.scalar(
            pg_insert(Payout)
            .values(
                id=uuid.uuid4(),
                vendor_id=vendor_id,
                amount=amount,
                currency=currency,
                status=PayoutStatus.PENDING,
                run_key=payout_key,
                # Bookkeeping, not a business time: the database's statement clock keeps the
                # payouts of one run listed in the order they were made.
                created_at=func.clock_timestamp(),  # noqa: TID251
            )
            .on_conflict_do_nothing(index_elements=[Payout.vendor_id, Payout.run_key])
            .returning(Payout.id)
        )
        if payout_id is None:
            continue  # the same run, concurrently: it settles these
        await session.execute(
            update(LedgerEntry)
            .where(LedgerEntry.id.in_([row.id for row in locked]))
            .values(payout_id=payout_id)
        )
        await _write(
            session,
            [
                _entry(
                    key=f"payout:{payout_id}",
                    vendor_id=vendor_id,
                    kind=LedgerKind.PAYOUT,
                    amount=-amount,
                    currency=currency,
                    available_at=now,
                    payout_id=payout_id,
                    memo=f"Payout {run_key}",
                )
            ],
        )
    found = await session.scalars(
        select(Payout)
        .where(Payout.run_key.like(f"{_like_escape(run_key)}:___", escape="\\"))
        .order_by(Payout.vendor_id, Payout.currency)
    )
    return list(found.all())


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def pending_payout_ids(session: AsyncSession) -> list[uuid.UUID]:
    """Payouts settled but not yet sent (this run's, or an earlier run's that was cut short)."""
    found = await session.scalars(
        select(Payout.id).where(Payout.status == PayoutStatus.PENDING).order_by(Payout.created_at)
    )
    return list(found.all())


async def send_payout(
    session: AsyncSession, *, payout_id: uuid.UUID, provider: PayoutProvider, now: datetime
) -> Payout | None:
    """The second half: send a PENDING payout through ``provider`` (idempotency key: its id)
    and mark it PAID with the provider's reference. A refusal for good marks it FAILED and
    writes a PAYOUT entry of ``+amount`` (payable at once), so the money goes back into the
    vendor's balance and the next run pays it. Other errors propagate (retry). None when
    another run is sending it right now, or it was sent already (row locked / not pending)."""
    payout = await session.scalar(
        select(Payout)
        .where(Payout.id == payout_id, Payout.status == PayoutStatus.PENDING)
        .with_for_update(skip_locked=True)
    )
    if payout is None:
        return None
    request = TransferRequest(
        vendor_id=payout.vendor_id,
        amount=payout.amount,
        currency=payout.currency,
        idempotency_key=f"payout:{payout.id}",
        description=f"Emporium payout {payout.run_key}",
    )
    try:
        reference = await provider.transfer(request)
    except PayoutRefused as refused:
        payout.status = PayoutStatus.FAILED
        payout.provider_reference = f"refused:{refused.reason}"[:255]
        await _write(
            session,
            [
                _entry(
                    key=f"payout_failed:{payout.id}",
                    vendor_id=payout.vendor_id,
                    kind=LedgerKind.PAYOUT,
                    amount=payout.amount,
                    currency=payout.currency,
                    available_at=now,
                    memo=f"Payout refused ({refused.reason}); back in the balance",
                )
            ],
        )
    else:
        payout.status = PayoutStatus.PAID
        payout.provider_reference = reference
        payout.paid_at = now
    await session.flush()
    await session.refresh(payout)
    return payout


async def run_payouts(
    session: AsyncSession,
    *,
    run_key: str,
    now: datetime,
    provider: PayoutProvider | None = None,
) -> list[Payout]:
    """Pay every vendor what is payable at ``now`` (see module docstring), in this session:
    settle, then send every pending payout (this run's and any left over). Same ``run_key``
    again: nothing is settled or paid twice. Returns this run's payouts. The provider
    defaults to the simulated one (real transfers are out of scope)."""
    provider = provider or TestPayoutProvider()
    settled = await settle_payouts(session, run_key=run_key, now=now)
    for payout_id in await pending_payout_ids(session):
        await send_payout(session, payout_id=payout_id, provider=provider, now=now)
    for payout in settled:
        await session.refresh(payout)
    return settled
