"""Invoices and credit notes, and their gapless numbering."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UUIDPrimaryKey, pg_enum


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
