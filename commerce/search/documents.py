"""Search documents built from the catalog: what a product looks like to search, right now."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.search.backend import ProductDocument
from models import (
    Category,
    InventoryLevel,
    Product,
    ProductStatus,
    Variant,
    Vendor,
    VendorStatus,
)


@dataclass
class DocumentBatch:
    """Documents to index, and products to remove from the index."""

    documents: list[ProductDocument] = field(default_factory=list)
    # Gone, not active, of a vendor that is not active, or with nothing to sell.
    removed: list[uuid.UUID] = field(default_factory=list)


def searchable_products() -> list[ColumnElement[bool]]:
    """The conditions under which a product is shown by search (for ``select(...).where``)."""
    return [Product.status == ProductStatus.ACTIVE, Vendor.status == VendorStatus.ACTIVE]


@dataclass
class _Offer:
    prices: dict[str, list[int]] = field(default_factory=dict)
    in_stock: bool = False
    options: dict[str, set[str]] = field(default_factory=dict)


async def build_documents(session: AsyncSession, product_ids: Iterable[uuid.UUID]) -> DocumentBatch:
    """Documents for these products, in two queries whatever their number.

    A product is searchable when it is active, its vendor is active and it has at least one
    active variant (without one it has no price and nothing to add to a cart). Every other id
    comes back in ``removed``.
    """
    ids = list(dict.fromkeys(product_ids))
    batch = DocumentBatch()
    if not ids:
        return batch
    products = (
        await session.execute(
            select(
                Product.id,
                Product.vendor_id,
                Vendor.slug.label("vendor_slug"),
                Product.category_id,
                Category.path.label("category_path"),
                Product.brand,
                Product.tags,
                Product.title,
                Product.slug.label("product_slug"),
                Product.description,
                Product.rating_avg,
                Product.rating_count,
                Product.attributes,
                Product.published_at,
            )
            .join(Vendor, Vendor.id == Product.vendor_id)
            .outerjoin(Category, Category.id == Product.category_id)
            .where(Product.id.in_(ids), *searchable_products())
        )
    ).all()
    offers: dict[uuid.UUID, _Offer] = {}
    if products:
        available = exists().where(
            InventoryLevel.variant_id == Variant.id,
            InventoryLevel.on_hand - InventoryLevel.reserved > 0,
        )
        variants = await session.execute(
            select(
                Variant.product_id,
                Variant.price_amount,
                Variant.currency,
                Variant.options,
                available.label("available"),
            ).where(Variant.product_id.in_([row.id for row in products]), Variant.is_active)
        )
        for product_id, price, currency, options, is_available in variants:
            variant_offer = offers.setdefault(product_id, _Offer())
            variant_offer.prices.setdefault(currency, []).append(price)
            variant_offer.in_stock = variant_offer.in_stock or is_available
            for name, value in (options or {}).items():
                variant_offer.options.setdefault(str(name), set()).add(str(value))
    for row in products:
        offer = offers.get(row.id)
        if offer is None:
            continue
        # Variants of one product share a currency in practice; should they not, the prices
        # shown are those in the currency of the cheapest variant, never a mix.
        currency, prices = min(offer.prices.items(), key=lambda item: (min(item[1]), item[0]))
        batch.documents.append(
            ProductDocument(
                product_id=row.id,
                vendor_id=row.vendor_id,
                vendor_slug=row.vendor_slug,
                category_id=row.category_id,
                category_path=row.category_path,
                brand=row.brand,
                tags=tuple(row.tags or ()),
                title=row.title,
                slug=row.product_slug,
                description=row.description or "",
                price_min=min(prices),
                price_max=max(prices),
                currency=currency,
                rating_avg=float(row.rating_avg) if row.rating_avg is not None else None,
                rating_count=row.rating_count or 0,
                in_stock=offer.in_stock,
                options={name: tuple(sorted(values)) for name, values in offer.options.items()},
                attributes=dict(row.attributes or {}),
                published_at=row.published_at,
            )
        )
    indexed = {document.product_id for document in batch.documents}
    batch.removed = [product_id for product_id in ids if product_id not in indexed]
    return batch
