"""The vendor ledger and its payouts. Money is integer minor units with its currency."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamps, UUIDPrimaryKey, pg_enum


class LedgerKind(enum.StrEnum):
    SALE = "sale"  # + the vendor's part of a confirmed order (items, shipping, tax)
    COMMISSION = "commission"  # - the platform's commission on a sale
    REFUND = "refund"  # - money given back to the shopper from the vendor's part
    COMMISSION_REFUND = "commission_refund"  # + the commission on what was refunded
    DISPUTE = "dispute"  # - a chargeback lost
    PAYOUT = "payout"  # - money paid out to the vendor


class LedgerEntry(Base):
    """One signed movement of a vendor's balance. The balance is the sum of its entries;
    ``entry_key`` makes every writer idempotent (a retried activity writes nothing twice)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_entries_vendor_time", "vendor_id", "id"),
        # Debits by when they were booked (analytics), entries by when payable (payouts).
        Index("ix_ledger_entries_available_at", "available_at"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso4217"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    entry_key: Mapped[str] = mapped_column(String(200), unique=True)
    vendor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vendors.id", ondelete="RESTRICT"))
    kind: Mapped[LedgerKind] = mapped_column(pg_enum(LedgerKind, "ledger_kind"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    order_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), index=True
    )
    refund_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("refunds.id", ondelete="RESTRICT")
    )
    dispute_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("disputes.id", ondelete="RESTRICT")
    )
    payout_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("payouts.id", ondelete="RESTRICT"), index=True
    )
    # When the entry may be paid out: a sale after its return window; debits at once.
    available_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    memo: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()")
    )


class PayoutStatus(enum.StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"


class Payout(UUIDPrimaryKey, Timestamps, Base):
    """Money sent to a vendor: the entries it settles point at it (``ledger_entries.payout_id``)."""

    __tablename__ = "payouts"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        # One payout per vendor per run: a retried payout run pays nobody twice.
        UniqueConstraint("vendor_id", "run_key"),
    )

    vendor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("vendors.id", ondelete="RESTRICT"), index=True
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[PayoutStatus] = mapped_column(
        pg_enum(PayoutStatus, "payout_status"), default=PayoutStatus.PENDING
    )
    run_key: Mapped[str] = mapped_column(String(100))
    provider_reference: Mapped[str | None] = mapped_column(String(255))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
