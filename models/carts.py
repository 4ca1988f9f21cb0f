"""Carts: what a shopper (or a guest, by cart token) is about to buy."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamps, UUIDPrimaryKey


class Cart(UUIDPrimaryKey, Timestamps, Base):
    """A signed-in user's cart (one per user), or a guest's, addressed by a secret token."""

    __tablename__ = "carts"
    __table_args__ = (
        CheckConstraint(
            "(user_id IS NOT NULL) <> (guest_token_hash IS NOT NULL)", name="owner_user_or_guest"
        ),
        CheckConstraint("currency IS NULL OR currency ~ '^[A-Z]{3}$'", name="currency_iso4217"),
    )

    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    # SHA-256 of the guest's cart token: a leaked table opens no carts.
    guest_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Set by the first item: one currency per cart.
    currency: Mapped[str | None] = mapped_column(String(3))
    coupon_codes: Mapped[list[str]] = mapped_column(
        ARRAY(String(40)), default=list, server_default="{}"
    )
    # The normalised destination (commerce.accounts.address_rules), for guests and users.
    shipping_address: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # {vendor_id: shipping method code}
    shipping_choices: Mapped[dict[str, str]] = mapped_column(
        JSONB, default=dict, server_default="{}"
    )
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CartItem(Base):
    __tablename__ = "cart_items"
    __table_args__ = (
        CheckConstraint("quantity BETWEEN 1 AND 999", name="quantity_range"),
        CheckConstraint("unit_price_seen >= 0", name="price_not_negative"),
    )

    cart_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("carts.id", ondelete="CASCADE"), primary_key=True
    )
    variant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("variants.id", ondelete="CASCADE"), primary_key=True
    )
    quantity: Mapped[int] = mapped_column(Integer)
    # The price the shopper saw when adding: a later change is flagged, never silent.
    unit_price_seen: Mapped[int] = mapped_column(BigInteger)
    added_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()")
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()")
    )
