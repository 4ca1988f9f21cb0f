"""The demo catalog that `emporium dev` and `emporium seed` load into an empty platform."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.search.outbox import enqueue_reindex
from models import (
    Category,
    InventoryLevel,
    InventoryMovement,
    MovementReason,
    Product,
    ProductStatus,
    ShippingMethod,
    ShippingRate,
    ShippingZone,
    TaxRate,
    Variant,
    Vendor,
    VendorStatus,
    Warehouse,
)

DEMO_MARKER_VENDOR = "northwind-outfitters"

# VAT in basis points (standard, reduced) where the demo vendors ship, so a checkout works in
# dev out of the box. Real shops set their own at /admin/tax-rates.
_DEMO_TAX = {
    "DE": (1900, 700),
    "FR": (2000, 550),
    "NL": (2100, 900),
    "AT": (2000, 1000),
    "BE": (2100, 600),
    "IT": (2200, 1000),
    "ES": (2100, 1000),
    "IE": (2300, 1350),
    "PL": (2300, 800),
}
# (code, name, handling days, transit min, transit max, amount, free over)
_DEMO_SHIPPING = (
    ("standard", "Standard", 1, 2, 5, 490, 5000),
    ("express", "Express", 0, 1, 1, 1290, None),
)


@dataclass(frozen=True)
class _DemoVariant:
    sku: str
    options: dict[str, str]
    price: int  # minor units
    stock: int
    weight_grams: int
    compare_at: int | None = None


@dataclass(frozen=True)
class _DemoProduct:
    slug: str
    title: str
    brand: str
    category: str
    description: str
    variants: tuple[_DemoVariant, ...]
    tags: tuple[str, ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()


_CATEGORIES: tuple[tuple[str, str, str | None], ...] = (
    ("clothing", "Clothing", None),
    ("t-shirts", "T-shirts", "clothing"),
    ("outerwear", "Outerwear", "clothing"),
    ("home", "Home & Kitchen", None),
    ("coffee", "Coffee", "home"),
    ("cookware", "Cookware", "home"),
)


def _sizes(
    prefix: str, price: int, stock: int, grams: int, colour: str
) -> tuple[_DemoVariant, ...]:
    return tuple(
        _DemoVariant(f"{prefix}-{size}", {"size": size, "colour": colour}, price, stock, grams)
        for size in ("S", "M", "L", "XL")
    )


_VENDORS: dict[str, tuple[str, str, tuple[_DemoProduct, ...]]] = {
    DEMO_MARKER_VENDOR: (
        "Northwind Outfitters",
        "Durable clothing for long walks and short summers.",
        (
            _DemoProduct(
                "organic-cotton-tee",
                "Organic Cotton Tee",
                "Northwind",
                "t-shirts",
                "A heavyweight tee in GOTS-certified organic cotton.",
                _sizes("NW-TEE-BLK", 2500, 40, 220, "black")
                + _sizes("NW-TEE-WHT", 2500, 3, 220, "white"),
                tags=("organic", "basics"),
                attributes=(("material", "organic cotton"),),
            ),
            _DemoProduct(
                "merino-base-layer",
                "Merino Base Layer",
                "Northwind",
                "t-shirts",
                "Fine merino wool that stays warm when wet.",
                _sizes("NW-MER-NVY", 6900, 12, 180, "navy"),
                tags=("outdoor", "wool"),
                attributes=(("material", "merino wool"),),
            ),
            _DemoProduct(
                "storm-shell-jacket",
                "Storm Shell Jacket",
                "Northwind",
                "outerwear",
                "A waterproof, breathable three-layer shell with taped seams.",
                tuple(
                    _DemoVariant(f"NW-SHELL-{size}", {"size": size}, 18900, 5, 410, 22900)
                    for size in ("S", "M", "L")
                ),
            ),
        ),
    ),
    "blue-kettle-roasters": (
        "Blue Kettle Roasters",
        "Small-batch coffee, roasted on Mondays, shipped on Tuesdays.",
        (
            _DemoProduct(
                "ethiopia-yirgacheffe",
                "Ethiopia Yirgacheffe",
                "Blue Kettle",
                "coffee",
                "Washed heirloom varieties: jasmine, bergamot and lemon curd.",
                (
                    _DemoVariant(
                        "BK-YIRG-250", {"weight": "250 g", "grind": "whole bean"}, 1400, 60, 260
                    ),
                    _DemoVariant(
                        "BK-YIRG-1000", {"weight": "1 kg", "grind": "whole bean"}, 4600, 15, 1030
                    ),
                ),
            ),
            _DemoProduct(
                "cast-iron-skillet",
                "Cast Iron Skillet 26 cm",
                "Blue Kettle",
                "cookware",
                "Pre-seasoned cast iron that will outlive you.",
                (_DemoVariant("BK-SKIL-26", {}, 3900, 0, 2600),),
            ),
        ),
    ),
}


@dataclass(frozen=True)
class SeedResult:
    created: bool
    vendors: int
    products: int
    variants: int


async def _demo_shipping(session: AsyncSession, vendor: Vendor) -> None:
    zone = ShippingZone(vendor_id=vendor.id, name="Europe", countries=sorted(_DEMO_TAX))
    session.add(zone)
    await session.flush()
    for code, name, handling, fastest, slowest, amount, free_over in _DEMO_SHIPPING:
        method = ShippingMethod(
            vendor_id=vendor.id,
            code=code,
            name=name,
            handling_days=handling,
            transit_days_min=fastest,
            transit_days_max=slowest,
        )
        session.add(method)
        await session.flush()
        session.add(
            ShippingRate(
                method_id=method.id,
                zone_id=zone.id,
                min_weight_grams=0,
                amount=amount,
                currency="EUR",
                free_over_amount=free_over,
            )
        )


async def seed_demo_catalog(session: AsyncSession, *, now: datetime) -> SeedResult:
    """Load the demo catalog once. A no-op when it is already there, so safe to retry."""
    existing = await session.scalar(select(Vendor.id).where(Vendor.slug == DEMO_MARKER_VENDOR))
    if existing is not None:
        return SeedResult(created=False, vendors=0, products=0, variants=0)

    category_ids: dict[str, object] = {}
    for slug, name, parent in _CATEGORIES:
        path = f"{parent}/{slug}" if parent else slug
        category_ids[slug] = await session.scalar(
            insert(Category)
            .values(slug=slug, name=name, path=path, parent_id=category_ids.get(parent or ""))
            .on_conflict_do_update(index_elements=[Category.slug], set_={"name": name})
            .returning(Category.id)
        )

    products = variants = 0
    product_ids: list[uuid.UUID] = []
    for vendor_slug, (name, description, catalog) in _VENDORS.items():
        vendor = Vendor(
            slug=vendor_slug,
            name=name,
            description=description,
            status=VendorStatus.ACTIVE,
            approved_at=now,
        )
        session.add(vendor)
        await session.flush()
        warehouse = Warehouse(
            vendor_id=vendor.id, code="main", name="Main warehouse", is_default=True
        )
        session.add(warehouse)
        await _demo_shipping(session, vendor)
        await session.flush()
        for item in catalog:
            product = Product(
                vendor_id=vendor.id,
                category_id=category_ids[item.category],
                slug=item.slug,
                title=item.title,
                brand=item.brand,
                description=item.description,
                status=ProductStatus.ACTIVE,
                tags=list(item.tags),
                attributes=dict(item.attributes),
                published_at=now,
            )
            session.add(product)
            await session.flush()
            product_ids.append(product.id)
            products += 1
            for spec in item.variants:
                variant = Variant(
                    product_id=product.id,
                    vendor_id=vendor.id,
                    sku=spec.sku,
                    options=spec.options,
                    price_amount=spec.price,
                    compare_at_amount=spec.compare_at,
                    currency="EUR",
                    weight_grams=spec.weight_grams,
                )
                session.add(variant)
                await session.flush()
                session.add(
                    InventoryLevel(
                        variant_id=variant.id,
                        warehouse_id=warehouse.id,
                        on_hand=spec.stock,
                        low_stock_threshold=5,
                    )
                )
                # The movement log explains every unit of stock, the demo's included.
                session.add(
                    InventoryMovement(
                        variant_id=variant.id,
                        warehouse_id=warehouse.id,
                        on_hand_delta=spec.stock,
                        reserved_delta=0,
                        reason=MovementReason.RESTOCK,
                        note="demo catalog",
                    )
                )
                variants += 1
    for country, (standard, reduced) in _DEMO_TAX.items():
        for tax_class, rate in (("standard", standard), ("reduced", reduced)):
            # A rate set up by hand before the demo was loaded is kept.
            await session.execute(
                insert(TaxRate)
                .values(country=country, tax_class=tax_class, rate_bp=rate)
                .on_conflict_do_nothing()
            )
    await session.flush()
    # Searchable as soon as the indexer drains the outbox.
    await enqueue_reindex(session, product_ids)
    return SeedResult(created=True, vendors=len(_VENDORS), products=products, variants=variants)
