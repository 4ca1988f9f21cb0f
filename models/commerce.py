"""Before the order: carts, promotions, tax rates and vendors' shipping rates."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

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
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamps, UUIDPrimaryKey, pg_enum


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


class TaxRate(UUIDPrimaryKey, Base):
    """Rate for a destination (country, optionally a region) and a product tax class."""

    __tablename__ = "tax_rates"
    __table_args__ = (
        Index(
            "uq_tax_rates_destination_class",
            "country",
            text("coalesce(region, '')"),
            "tax_class",
            unique=True,
        ),
        CheckConstraint("rate_bp BETWEEN 0 AND 10000", name="rate_range"),
        CheckConstraint("country ~ '^[A-Z]{2}$'", name="country_iso3166"),
    )

    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str | None] = mapped_column(String(100))
    tax_class: Mapped[str] = mapped_column(String(40))
    rate_bp: Mapped[int] = mapped_column(Integer)


class ShippingZone(UUIDPrimaryKey, Base):
    __tablename__ = "shipping_zones"
    __table_args__ = (UniqueConstraint("vendor_id", "name"),)

    vendor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vendors.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    countries: Mapped[list[str]] = mapped_column(ARRAY(String(2)))


class ShippingMethod(UUIDPrimaryKey, Base):
    __tablename__ = "shipping_methods"
    __table_args__ = (
        UniqueConstraint("vendor_id", "code"),
        CheckConstraint(
            "transit_days_min >= 0 AND transit_days_max >= transit_days_min",
            name="transit_range",
        ),
        CheckConstraint("handling_days >= 0", name="handling_not_negative"),
    )

    vendor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vendors.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    handling_days: Mapped[int] = mapped_column(SmallInteger, default=1)
    transit_days_min: Mapped[int] = mapped_column(SmallInteger)
    transit_days_max: Mapped[int] = mapped_column(SmallInteger)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")


class ShippingRate(UUIDPrimaryKey, Base):
    """Price of a method into a zone for a weight band (flat when there is one band)."""

    __tablename__ = "shipping_rates"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint(
            "max_weight_grams IS NULL OR max_weight_grams > min_weight_grams",
            name="weight_band",
        ),
    )

    method_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shipping_methods.id", ondelete="CASCADE"), index=True
    )
    zone_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shipping_zones.id", ondelete="CASCADE"))
    min_weight_grams: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    max_weight_grams: Mapped[int | None] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # Free when the vendor's items in the cart reach this subtotal.
    free_over_amount: Mapped[int | None] = mapped_column(BigInteger)
