"""Orders: what was bought (prices frozen), per vendor part, and what happened to them."""

from __future__ import annotations

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
from workflows.contracts.orders import OrderStatus


class Order(UUIDPrimaryKey, Timestamps, Base):
    """One checkout. Amounts are the summary frozen at placing, in minor units of currency.

    Status is written by the order workflow's activities with conditional updates, so a
    retried activity never moves it backwards.
    """

    __tablename__ = "orders"
    __table_args__ = (
        # The same Idempotency-Key from the same customer is the same order.
        UniqueConstraint("customer_id", "idempotency_key"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso4217"),
        CheckConstraint(
            "grand_total >= 0 AND items_subtotal >= 0 AND discount_total >= 0 "
            "AND shipping_total >= 0 AND tax_total >= 0",
            name="amounts_not_negative",
        ),
        Index("ix_orders_customer_created", "customer_id", "created_at"),
        # Analytics and their rollup read the orders confirmed in a range.
        Index("ix_orders_confirmed_at", "confirmed_at"),
    )

    # Null once the customer's account is erased: the order stays, anonymised.
    customer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    idempotency_key: Mapped[str] = mapped_column(String(200))
    # SHA-256 of the normalised request: the same key with another body is refused.
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[OrderStatus] = mapped_column(
        pg_enum(OrderStatus, "order_status"), default=OrderStatus.PENDING
    )
    currency: Mapped[str] = mapped_column(String(3))
    prices_include_tax: Mapped[bool] = mapped_column()
    items_subtotal: Mapped[int] = mapped_column(BigInteger)
    discount_total: Mapped[int] = mapped_column(BigInteger)
    shipping_total: Mapped[int] = mapped_column(BigInteger)
    tax_total: Mapped[int] = mapped_column(BigInteger)
    grand_total: Mapped[int] = mapped_column(BigInteger)
    contact_email: Mapped[str | None] = mapped_column(String(320))
    shipping_address: Mapped[dict[str, Any]] = mapped_column(JSONB)
    payment_provider: Mapped[str] = mapped_column(String(20))
    workflow_id: Mapped[str] = mapped_column(String(100), unique=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(String(500))


class OrderVendorPart(Base):
    """What one vendor ships of an order, with its shipping as quoted."""

    __tablename__ = "order_vendor_parts"

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    vendor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("vendors.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    shipping_method_code: Mapped[str] = mapped_column(String(40))
    shipping_method_name: Mapped[str] = mapped_column(String(100))
    shipping_amount: Mapped[int] = mapped_column(BigInteger)
    shipping_tax: Mapped[int] = mapped_column(BigInteger)
    items_subtotal: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[int] = mapped_column(BigInteger)
    tax: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    estimated_delivery_earliest: Mapped[date | None] = mapped_column(Date)
    estimated_delivery_latest: Mapped[date | None] = mapped_column(Date)


class OrderLine(UUIDPrimaryKey, Base):
    """A line as it was sold: product data and prices copied, not referenced."""

    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "subtotal >= 0 AND discount >= 0 AND discount <= subtotal AND tax >= 0",
            name="amounts_consistent",
        ),
        # Units cancelled before shipping and units returned never exceed what was bought.
        CheckConstraint(
            "cancelled_quantity >= 0 AND returned_quantity >= 0 "
            "AND cancelled_quantity + returned_quantity <= quantity",
            name="quantities_within_bought",
        ),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    vendor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vendors.id", ondelete="RESTRICT"))
    product_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("products.id", ondelete="SET NULL")
    )
    variant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("variants.id", ondelete="SET NULL"), index=True
    )
    sku: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    options: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(BigInteger)
    subtotal: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[int] = mapped_column(BigInteger)
    tax: Mapped[int] = mapped_column(BigInteger)
    tax_rate_bp: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(BigInteger)
    cancelled_quantity: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    returned_quantity: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class OrderDiscount(Base):
    __tablename__ = "order_discounts"

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    promotion_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("promotions.id", ondelete="RESTRICT"), primary_key=True
    )
    label: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int] = mapped_column(BigInteger)


class OrderEvent(Base):
    """The order's timeline, for the shopper and for support."""

    __tablename__ = "order_events"
    __table_args__ = (Index("ix_order_events_order_time", "order_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(60))
    detail: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()")
    )
