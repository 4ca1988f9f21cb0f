"""After payment: shipments and tracking, returns, refunds, disputes, invoices, the vendor ledger
and payouts. Money is integer minor units with its currency, as everywhere."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamps, UUIDPrimaryKey, pg_enum
from workflows.contracts.disputes import DisputeStatus
from workflows.contracts.refunds import RefundSource, RefundStatus
from workflows.contracts.returns import ReturnStatus
from workflows.contracts.shipments import ShipmentStatus

# --- shipments ---------------------------------------------------------------------------------


class Shipment(UUIDPrimaryKey, Timestamps, Base):
    """One vendor's part of an order on its way: workflow ``shipment:{order_id}:{vendor_id}``."""

    __tablename__ = "shipments"
    __table_args__ = (
        UniqueConstraint("order_id", "vendor_id"),
        UniqueConstraint("carrier", "tracking_number"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    vendor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("vendors.id", ondelete="RESTRICT"), index=True
    )
    status: Mapped[ShipmentStatus] = mapped_column(
        pg_enum(ShipmentStatus, "shipment_status"), default=ShipmentStatus.AWAITING_ACCEPTANCE
    )
    accept_by: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    carrier: Mapped[str | None] = mapped_column(String(40))
    service: Mapped[str | None] = mapped_column(String(60))
    tracking_number: Mapped[str | None] = mapped_column(String(80))
    label_url: Mapped[str | None] = mapped_column(String(500))
    shipped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    estimated_delivery_earliest: Mapped[date | None] = mapped_column(Date)
    estimated_delivery_latest: Mapped[date | None] = mapped_column(Date)
    cancel_reason: Mapped[str | None] = mapped_column(String(200))


class ShipmentEvent(Base):
    """A step of a shipment's timeline; carrier events are stored once per carrier event id."""

    __tablename__ = "shipment_events"
    __table_args__ = (
        UniqueConstraint("carrier", "carrier_event_id"),
        Index("ix_shipment_events_shipment_time", "shipment_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    shipment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(200))
    carrier: Mapped[str | None] = mapped_column(String(40))
    carrier_event_id: Mapped[str | None] = mapped_column(String(120))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()")
    )


# --- refunds -----------------------------------------------------------------------------------


class Refund(UUIDPrimaryKey, Timestamps, Base):
    """Money going back to the shopper: workflow ``refund:{id}``.

    Created with its amount already counted in ``payments.refunded_amount`` (whose check
    constraint keeps it within what was captured), so two refunds racing for the last euro
    cannot both pass; a refund the provider refuses for good gives its amount back.
    """

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso4217"),
        Index("ix_refunds_order", "order_id"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"))
    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payments.id", ondelete="RESTRICT"))
    # The vendor whose part is refunded (None: spread over the order, e.g. goodwill).
    vendor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("vendors.id", ondelete="RESTRICT")
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[RefundStatus] = mapped_column(
        pg_enum(RefundStatus, "refund_status"), default=RefundStatus.PENDING
    )
    source: Mapped[RefundSource] = mapped_column(pg_enum(RefundSource, "refund_source"))
    reason: Mapped[str] = mapped_column(String(500))
    restock: Mapped[bool] = mapped_column(default=False)
    provider_refund_id: Mapped[str | None] = mapped_column(String(255))
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    requested_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    # Who asked, made unique: the same request (a retried activity, a double click) is the
    # same refund, e.g. "return:{return_id}" or "unaccepted:{order_id}:{vendor_id}".
    request_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RefundLine(Base):
    __tablename__ = "refund_lines"
    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )

    refund_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("refunds.id", ondelete="CASCADE"), primary_key=True
    )
    order_line_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("order_lines.id", ondelete="RESTRICT"), primary_key=True
    )
    quantity: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)


# --- returns -----------------------------------------------------------------------------------


class ReturnRequest(UUIDPrimaryKey, Timestamps, Base):
    """An RMA: delivered lines going back to one vendor. Workflow ``return:{id}``."""

    __tablename__ = "returns"
    __table_args__ = (Index("ix_returns_order", "order_id"),)

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"))
    vendor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("vendors.id", ondelete="RESTRICT"), index=True
    )
    status: Mapped[ReturnStatus] = mapped_column(
        pg_enum(ReturnStatus, "return_status"), default=ReturnStatus.REQUESTED
    )
    reason: Mapped[str] = mapped_column(String(500))
    respond_by: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    auto_approved: Mapped[bool] = mapped_column(default=False)
    rejection_reason: Mapped[str | None] = mapped_column(String(500))
    received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    inspection_note: Mapped[str | None] = mapped_column(String(500))
    refund_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("refunds.id", ondelete="SET NULL")
    )


class ReturnLine(Base):
    __tablename__ = "return_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    return_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("returns.id", ondelete="CASCADE"), primary_key=True
    )
    order_line_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("order_lines.id", ondelete="RESTRICT"), primary_key=True
    )
    quantity: Mapped[int] = mapped_column(Integer)


# --- disputes ----------------------------------------------------------------------------------


class Dispute(UUIDPrimaryKey, Timestamps, Base):
    """A chargeback: workflow ``dispute:{id}``; the vendor's payout of the order is frozen."""

    __tablename__ = "disputes"
    __table_args__ = (
        UniqueConstraint("provider", "provider_dispute_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), index=True
    )
    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payments.id", ondelete="RESTRICT"))
    provider: Mapped[str] = mapped_column(String(20))
    provider_dispute_id: Mapped[str] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[DisputeStatus] = mapped_column(
        pg_enum(DisputeStatus, "dispute_status"), default=DisputeStatus.OPEN
    )
    evidence_due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# --- invoices ----------------------------------------------------------------------------------


class InvoiceKind(enum.StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class InvoiceSequence(Base):
    """The next number per vendor and kind, taken under a row lock: gapless by construction
    (the number is used in the same transaction that stores the document)."""

    __tablename__ = "invoice_sequences"

    vendor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("vendors.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[InvoiceKind] = mapped_column(
        pg_enum(InvoiceKind, "invoice_kind"), primary_key=True
    )
    next_number: Mapped[int] = mapped_column(Integer, default=1)


class Invoice(UUIDPrimaryKey, Base):
    """An invoice for one vendor's part of an order, or a credit note for one refund of it.
    The document is frozen in ``document`` (what the PDF and JSON are rendered from)."""

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("vendor_id", "kind", "number"),
        # One invoice per vendor part; one credit note per refund and vendor.
        Index(
            "uq_invoices_order_vendor_invoice",
            "order_id",
            "vendor_id",
            unique=True,
            postgresql_where=text("kind = 'invoice'"),
        ),
        Index(
            "uq_invoices_refund_vendor",
            "refund_id",
            "vendor_id",
            unique=True,
            postgresql_where=text("refund_id IS NOT NULL"),
        ),
    )

    vendor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vendors.id", ondelete="RESTRICT"))
    kind: Mapped[InvoiceKind] = mapped_column(pg_enum(InvoiceKind, "invoice_kind"))
    number: Mapped[int] = mapped_column(Integer)
    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), index=True
    )
    refund_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("refunds.id", ondelete="RESTRICT")
    )
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[int] = mapped_column(BigInteger)
    tax: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    document: Mapped[dict[str, Any]] = mapped_column(JSONB)
    issued_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()")
    )


# --- the vendor ledger and payouts -------------------------------------------------------------


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
