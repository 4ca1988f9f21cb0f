"""Refunds: money going back to a shopper, and the lines it covers."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamps, UUIDPrimaryKey, pg_enum
from workflows.contracts.refunds import RefundSource, RefundStatus


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
