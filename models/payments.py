"""Payments: an order's attempts at a provider, the provider's webhooks, and the records of
the built-in test provider."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamps, UUIDPrimaryKey, pg_enum
from workflows.contracts.orders import PaymentStatus


class Payment(UUIDPrimaryKey, Timestamps, Base):
    """One attempt to pay an order with one provider (a declined attempt is kept)."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("order_id", "attempt"),
        UniqueConstraint("provider", "provider_payment_id"),
        # Money never goes the wrong way, whatever retries do: enforced by the database.
        CheckConstraint(
            "captured_amount >= 0 AND captured_amount <= amount", name="capture_within_amount"
        ),
        CheckConstraint(
            "refunded_amount >= 0 AND refunded_amount <= captured_amount",
            name="refund_within_capture",
        ),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"))
    attempt: Mapped[int] = mapped_column(SmallInteger)
    provider: Mapped[str] = mapped_column(String(20))
    provider_payment_id: Mapped[str | None] = mapped_column(String(255))
    # What the provider's webhooks name the payment by, when that is not provider_payment_id:
    # a PayPal order id (its authorization id is what is captured). Webhooks match either.
    provider_reference: Mapped[str | None] = mapped_column(String(255), index=True)
    status: Mapped[PaymentStatus] = mapped_column(
        pg_enum(PaymentStatus, "payment_status"), default=PaymentStatus.PENDING
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    captured_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    decline_code: Mapped[str | None] = mapped_column(String(100))


class PaymentEvent(Base):
    """A provider's webhook event, stored once: a redelivery is a no-op."""

    __tablename__ = "payment_events"
    __table_args__ = (UniqueConstraint("provider", "provider_event_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    provider_event_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(100))
    # The normalised meaning (commerce.payments.PaymentEventStatus), None if not acted on.
    status: Mapped[str | None] = mapped_column(String(20))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    provider_payment_id: Mapped[str | None] = mapped_column(String(255), index=True)
    order_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("orders.id", ondelete="SET NULL"), index=True
    )
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()")
    )
    signalled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TestPaymentRecord(Base):
    """State of the built-in ``test`` payment provider, so it behaves like a real provider
    across processes and restarts: the API and the worker see the same payments, and a
    restarted worker captures what it authorized before it died. Dev and tests only."""

    __tablename__ = "test_payment_records"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()")
    )
