"""Reviews, and the delivered purchases that entitle a shopper to write one."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamps, UUIDPrimaryKey


class DeliveredPurchase(UUIDPrimaryKey, Base):
    """A delivered order line: what entitles a shopper to review a product.

    Written by fulfilment when a shipment is delivered; one row per order line.
    """

    __tablename__ = "delivered_purchases"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    variant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("variants.id", ondelete="SET NULL")
    )
    order_id: Mapped[uuid.UUID] = mapped_column()
    order_line_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    delivered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Review(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "reviews"
    __table_args__ = (
        UniqueConstraint("product_id", "user_id"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
    )

    product_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purchase_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("delivered_purchases.id", ondelete="RESTRICT")
    )
    rating: Mapped[int] = mapped_column(SmallInteger)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    is_hidden: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    hidden_reason: Mapped[str | None] = mapped_column(String(500))
    vendor_reply: Mapped[str | None] = mapped_column(Text)
    vendor_replied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
