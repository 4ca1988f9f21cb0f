"""Vendors' shipping: zones, methods and their rates."""

from __future__ import annotations

import uuid

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UUIDPrimaryKey


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
