"""Promotions (coupons and automatic ones) and their counted uses."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamps, UUIDPrimaryKey, pg_enum


class PromotionKind(enum.StrEnum):
    PERCENTAGE = "percentage"  # value in basis points
    FIXED = "fixed"  # value in minor units of `currency`
    FREE_SHIPPING = "free_shipping"


class PromotionScope(enum.StrEnum):
    CART = "cart"
    VENDOR = "vendor"
    CATEGORY = "category"
    PRODUCTS = "products"


class RedemptionStatus(enum.StrEnum):
    RESERVED = "reserved"  # counted while the order is being placed
    CONFIRMED = "confirmed"
    RELEASED = "released"  # the order was cancelled: the use is given back


class Promotion(UUIDPrimaryKey, Timestamps, Base):
    """A coupon (with a code) or an automatic promotion, of the platform or of one vendor."""

    __tablename__ = "promotions"
    __table_args__ = (
        Index("uq_promotions_code", text("lower(code)"), unique=True),
        CheckConstraint("value >= 0", name="value_not_negative"),
        CheckConstraint(
            "kind <> 'percentage' OR value BETWEEN 1 AND 10000", name="percentage_range"
        ),
        CheckConstraint("kind <> 'fixed' OR currency IS NOT NULL", name="fixed_has_currency"),
        CheckConstraint(
            "usage_limit_total IS NULL OR times_used <= usage_limit_total",
            name="usage_within_limit",
        ),
        CheckConstraint("times_used >= 0", name="usage_not_negative"),
        CheckConstraint("code IS NOT NULL OR automatic", name="coupon_or_automatic"),
    )

    vendor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("vendors.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str | None] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[PromotionKind] = mapped_column(pg_enum(PromotionKind, "promotion_kind"))
    value: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str | None] = mapped_column(String(3))
    scope: Mapped[PromotionScope] = mapped_column(pg_enum(PromotionScope, "promotion_scope"))
    scope_vendor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("vendors.id", ondelete="CASCADE")
    )
    scope_category_path: Mapped[str | None] = mapped_column(String(800))
    scope_product_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(Uuid()),
        default=list,
        server_default="{}",
    )
    min_subtotal: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    usage_limit_total: Mapped[int | None] = mapped_column(Integer)
    usage_limit_per_customer: Mapped[int | None] = mapped_column(Integer)
    # Counted atomically when an order is placed, given back when it is cancelled.
    times_used: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    automatic: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    stackable: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    priority: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")


class PromotionRedemption(UUIDPrimaryKey, Base):
    """One use of a promotion by one order; idempotent by (promotion, order)."""

    __tablename__ = "promotion_redemptions"
    __table_args__ = (UniqueConstraint("promotion_id", "order_id"),)

    promotion_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("promotions.id", ondelete="RESTRICT")
    )
    order_id: Mapped[uuid.UUID] = mapped_column(index=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[RedemptionStatus] = mapped_column(
        pg_enum(RedemptionStatus, "redemption_status"), default=RedemptionStatus.RESERVED
    )
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()")
    )
