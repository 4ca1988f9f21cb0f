"""Products, their images and their variants (what is sold, at what price)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, Timestamps, UUIDPrimaryKey, pg_enum

if TYPE_CHECKING:
    from models.inventory import InventoryLevel


class ProductStatus(enum.StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    ARCHIVED = "archived"


class Product(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "products"

    vendor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("vendors.id", ondelete="RESTRICT"), index=True
    )
    category_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL"), index=True
    )
    slug: Mapped[str] = mapped_column(String(160), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    brand: Mapped[str | None] = mapped_column(String(120))
    status: Mapped[ProductStatus] = mapped_column(
        pg_enum(ProductStatus, "product_status"), default=ProductStatus.DRAFT
    )
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(40)), default=list, server_default="{}")
    # Free-form descriptive attributes, e.g. {"material": "merino wool"}.
    attributes: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict, server_default="{}")
    tax_class: Mapped[str] = mapped_column(
        String(40), default="standard", server_default="standard"
    )
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Kept by the review service, consistent with the visible reviews.
    rating_avg: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    rating_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    variants: Mapped[list[Variant]] = relationship(
        back_populates="product", lazy="raise", order_by="Variant.sku"
    )
    images: Mapped[list[ProductImage]] = relationship(
        lazy="raise", order_by="ProductImage.position", cascade="all, delete-orphan"
    )


class ProductImage(UUIDPrimaryKey, Base):
    __tablename__ = "product_images"

    product_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    alt_text: Mapped[str] = mapped_column(String(300), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)


class Variant(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "variants"
    __table_args__ = (
        UniqueConstraint("vendor_id", "sku"),
        CheckConstraint("price_amount >= 0", name="price_not_negative"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso4217"),
        CheckConstraint(
            "compare_at_amount IS NULL OR compare_at_amount > price_amount",
            name="compare_at_above_price",
        ),
        CheckConstraint("weight_grams IS NULL OR weight_grams >= 0", name="weight_not_negative"),
    )

    product_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    # Denormalised from the product so that SKUs are unique per vendor in the database.
    vendor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vendors.id", ondelete="RESTRICT"))
    sku: Mapped[str] = mapped_column(String(64))
    options: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    price_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    compare_at_amount: Mapped[int | None] = mapped_column(BigInteger)
    weight_grams: Mapped[int | None] = mapped_column(Integer)
    # GTIN-8/12/13/14, check digit verified by the catalog service.
    barcode: Mapped[str | None] = mapped_column(String(14))
    length_mm: Mapped[int | None] = mapped_column(Integer)
    width_mm: Mapped[int | None] = mapped_column(Integer)
    height_mm: Mapped[int | None] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")

    product: Mapped[Product] = relationship(back_populates="variants", lazy="raise")
    stock: Mapped[list[InventoryLevel]] = relationship(lazy="raise")
