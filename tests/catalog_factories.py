"""Catalog test data, written straight through the ORM (fast; the API has its own tests).

vendor = await make_vendor(db_session)
product = await make_product(db_session, vendor=vendor, variants=[VariantSpec("S1", 1999)])
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Category,
    InventoryLevel,
    Product,
    ProductStatus,
    Variant,
    Vendor,
    VendorMembership,
    VendorRole,
    VendorStatus,
    Warehouse,
)


def _slug(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def make_vendor(
    session: AsyncSession,
    *,
    name: str | None = None,
    status: VendorStatus = VendorStatus.ACTIVE,
    owner_id: uuid.UUID | None = None,
) -> Vendor:
    """A vendor with its default warehouse ("main"), and an owner membership if given."""
    slug = _slug("vendor")
    vendor = Vendor(
        slug=slug,
        name=name or slug.title(),
        description="",
        status=status,
        approved_at=datetime.now(UTC) if status == VendorStatus.ACTIVE else None,
    )
    session.add(vendor)
    await session.flush()
    session.add(Warehouse(vendor_id=vendor.id, code="main", name="Main", is_default=True))
    if owner_id is not None:
        session.add(VendorMembership(vendor_id=vendor.id, user_id=owner_id, role=VendorRole.OWNER))
    await session.flush()
    return vendor


async def default_warehouse(session: AsyncSession, vendor: Vendor) -> Warehouse:
    warehouse = await session.scalar(
        select(Warehouse).where(Warehouse.vendor_id == vendor.id, Warehouse.is_default)
    )
    assert warehouse is not None
    return warehouse


async def make_category(
    session: AsyncSession, *, name: str | None = None, parent: Category | None = None
) -> Category:
    slug = _slug("cat")
    category = Category(
        slug=slug,
        name=name or slug.title(),
        parent_id=parent.id if parent else None,
        path=f"{parent.path}/{slug}" if parent else slug,
    )
    session.add(category)
    await session.flush()
    return category


@dataclass
class VariantSpec:
    sku: str
    price: int  # minor units
    stock: int = 10
    options: dict[str, str] = field(default_factory=dict)
    currency: str = "EUR"
    weight_grams: int | None = 500
    compare_at: int | None = None


async def make_product(
    session: AsyncSession,
    *,
    vendor: Vendor,
    title: str | None = None,
    category: Category | None = None,
    brand: str | None = None,
    description: str = "",
    tags: list[str] | None = None,
    attributes: dict[str, str] | None = None,
    status: ProductStatus = ProductStatus.ACTIVE,
    variants: list[VariantSpec] | None = None,
) -> Product:
    """A product with variants and stock in the vendor's default warehouse."""
    title = title or f"Product {uuid.uuid4().hex[:6]}"
    product = Product(
        vendor_id=vendor.id,
        category_id=category.id if category else None,
        slug=_slug("product"),
        title=title,
        brand=brand,
        description=description,
        tags=tags or [],
        attributes=attributes or {},
        status=status,
        published_at=datetime.now(UTC) if status == ProductStatus.ACTIVE else None,
    )
    session.add(product)
    await session.flush()
    warehouse = await default_warehouse(session, vendor)
    for spec in variants or [VariantSpec(f"SKU-{uuid.uuid4().hex[:8]}", 1000)]:
        variant = Variant(
            product_id=product.id,
            vendor_id=vendor.id,
            sku=spec.sku,
            options=spec.options,
            price_amount=spec.price,
            currency=spec.currency,
            compare_at_amount=spec.compare_at,
            weight_grams=spec.weight_grams,
        )
        session.add(variant)
        await session.flush()
        session.add(
            InventoryLevel(variant_id=variant.id, warehouse_id=warehouse.id, on_hand=spec.stock)
        )
    await session.flush()
    return product
