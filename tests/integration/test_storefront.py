"""Storefront browsing: what is visible, filters, keyset pages, product pages, category tree."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, event, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.catalog import storefront
from commerce.catalog.storefront import ProductSort
from core.pagination import InvalidCursor
from models import (
    Category,
    InventoryLevel,
    Product,
    ProductImage,
    ProductStatus,
    Variant,
    Vendor,
    VendorStatus,
    Warehouse,
)
from tests.catalog_factories import VariantSpec, make_category, make_product, make_vendor

PROBLEM = "application/problem+json"


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code, body
    return body


def _sku() -> str:
    return f"SKU-{uuid.uuid4().hex[:8]}"


async def _slugs(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get("/products", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return [item["slug"] for item in response.json()["items"]]


@asynccontextmanager
async def _statements(session: AsyncSession) -> AsyncIterator[list[str]]:
    """The SQL statements sent on this session's connection while the block runs."""
    connection = (await session.connection()).sync_connection
    assert connection is not None
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(connection, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(connection, "before_cursor_execute", record)


# --- visibility -----------------------------------------------------------------------------


async def test_only_active_products_of_active_vendors_are_visible(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    tag = f"t{uuid.uuid4().hex[:8]}"
    vendor = await make_vendor(db_session)
    shown = await make_product(db_session, vendor=vendor, tags=[tag])
    hidden = [
        await make_product(db_session, vendor=vendor, tags=[tag], status=ProductStatus.DRAFT),
        await make_product(db_session, vendor=vendor, tags=[tag], status=ProductStatus.ARCHIVED),
        await make_product(
            db_session,
            vendor=await make_vendor(db_session, status=VendorStatus.PENDING),
            tags=[tag],
        ),
        await make_product(
            db_session,
            vendor=await make_vendor(db_session, status=VendorStatus.SUSPENDED),
            tags=[tag],
        ),
    ]
    # Active, but with nothing on sale: no price to show, nothing to buy.
    no_variants = await make_product(db_session, vendor=vendor, tags=[tag])
    await db_session.execute(
        update(Variant).where(Variant.product_id == no_variants.id).values(is_active=False)
    )
    hidden.append(no_variants)

    assert await _slugs(client, tag=tag) == [shown.slug]
    assert (await client.get(f"/products/{shown.slug}")).status_code == 200
    for product in hidden:
        _problem(await client.get(f"/products/{product.slug}"), 404, "not_found")

    # Suspending the vendor hides its products everywhere at once.
    vendor.status = VendorStatus.SUSPENDED
    await db_session.flush()
    assert await _slugs(client, tag=tag) == []
    _problem(await client.get(f"/products/{shown.slug}"), 404, "not_found")
    _problem(await client.get(f"/vendors/by-slug/{vendor.slug}"), 404, "not_found")


async def test_vendor_page_shows_active_vendors_only(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    vendor = await make_vendor(db_session, name="Northwind Test")
    vendor.description = "Durable clothing."
    vendor.rating_avg, vendor.rating_count = Decimal("4.25"), 8
    await make_product(db_session, vendor=vendor)
    await make_product(db_session, vendor=vendor)
    await make_product(db_session, vendor=vendor, status=ProductStatus.DRAFT)
    await db_session.flush()

    response = await client.get(f"/vendors/by-slug/{vendor.slug}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "Northwind Test"
    assert body["description"] == "Durable clothing."
    assert body["rating"] == {"average": 4.25, "count": 8}
    assert body["product_count"] == 2

    for status in (VendorStatus.PENDING, VendorStatus.SUSPENDED):
        other = await make_vendor(db_session, status=status)
        _problem(await client.get(f"/vendors/by-slug/{other.slug}"), 404, "not_found")
    _problem(await client.get("/vendors/by-slug/no-such-vendor"), 404, "not_found")


# --- filters --------------------------------------------------------------------------------


async def test_a_category_filter_includes_its_whole_subtree(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    vendor = await make_vendor(db_session)
    root = await make_category(db_session)
    child = await make_category(db_session, parent=root)
    grandchild = await make_category(db_session, parent=child)
    other = await make_category(db_session)
    in_root = await make_product(db_session, vendor=vendor, category=root)
    in_child = await make_product(db_session, vendor=vendor, category=child)
    in_grandchild = await make_product(db_session, vendor=vendor, category=grandchild)
    in_other = await make_product(db_session, vendor=vendor, category=other)

    def slugs(*products: Product) -> set[str]:
        return {product.slug for product in products}

    assert set(await _slugs(client, category=root.slug)) == slugs(in_root, in_child, in_grandchild)
    assert set(await _slugs(client, category=child.slug)) == slugs(in_child, in_grandchild)
    assert set(await _slugs(client, category=grandchild.slug)) == slugs(in_grandchild)
    assert set(await _slugs(client, category=other.slug)) == slugs(in_other)
    assert await _slugs(client, category="no-such-category") == []


async def test_brand_vendor_and_tag_filters(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    brand = f"Brand{uuid.uuid4().hex[:6]}"
    tag = f"t{uuid.uuid4().hex[:8]}"
    first, second = await make_vendor(db_session), await make_vendor(db_session)
    a = await make_product(db_session, vendor=first, brand=brand, tags=[tag, "sale"])
    b = await make_product(db_session, vendor=first, brand="Other", tags=[tag])
    c = await make_product(db_session, vendor=second, brand=brand)

    # Brands are matched regardless of case.
    assert set(await _slugs(client, brand=brand.lower())) == {a.slug, c.slug}
    assert set(await _slugs(client, vendor=first.slug)) == {a.slug, b.slug}
    assert set(await _slugs(client, tag=tag)) == {a.slug, b.slug}
    assert await _slugs(client, tag=tag, brand=brand, vendor=first.slug) == [a.slug]
    assert await _slugs(client, vendor=second.slug, tag=tag) == []
    assert await _slugs(client, brand="no-such-brand") == []


async def test_a_card_shows_the_from_price_first_image_and_vendor(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    vendor = await make_vendor(db_session)
    product = await make_product(
        db_session,
        vendor=vendor,
        variants=[
            VariantSpec(_sku(), 2500),
            VariantSpec(_sku(), 1900, compare_at=2400),
            VariantSpec("INACTIVE-CHEAP", 100),
        ],
    )
    await db_session.execute(
        update(Variant)
        .where(Variant.product_id == product.id, Variant.sku == "INACTIVE-CHEAP")
        .values(is_active=False)
    )
    db_session.add_all(
        [
            ProductImage(
                product_id=product.id, url="https://img/2.jpg", alt_text="back", position=2
            ),
            ProductImage(
                product_id=product.id, url="https://img/1.jpg", alt_text="front", position=1
            ),
        ]
    )
    await db_session.flush()

    response = await client.get("/products", params={"vendor": vendor.slug})
    assert response.status_code == 200, response.text
    [card] = response.json()["items"]
    assert card["slug"] == product.slug
    assert card["from_price"] == {"amount": 1900, "currency": "EUR"}
    assert card["compare_at"] == {"amount": 2400, "currency": "EUR"}
    assert card["image"] == {"url": "https://img/1.jpg", "alt_text": "front"}
    assert card["vendor"]["slug"] == vendor.slug
    assert card["links"]["self"] == f"/products/{product.slug}"


# --- keyset pagination ----------------------------------------------------------------------

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
# (title, prices of its variants, published hours before NOW); ties on every key on purpose.
CATALOG: list[tuple[str, list[int], int]] = [
    ("Alpha", [1500], 5),
    ("Bravo", [900, 3000], 3),
    ("Bravo", [2000], 3),
    ("Charlie", [900], 8),
    ("Delta", [4000, 1200], 1),
    ("Echo", [1500], 2),
    ("Foxtrot", [700], 6),
]


async def _add(
    session: AsyncSession, vendor: Vendor, title: str, prices: list[int], published_at: datetime
) -> dict[str, Any]:
    product = await make_product(
        session,
        vendor=vendor,
        title=title,
        variants=[VariantSpec(_sku(), price) for price in prices],
    )
    product.published_at = published_at
    await session.flush()
    return {
        "id": product.id,
        "slug": product.slug,
        "title": title,
        "price": min(prices),
        "published_at": published_at,
    }


def _expected_order(products: list[dict[str, Any]], sort: ProductSort) -> list[str]:
    def key(p: dict[str, Any]) -> tuple[Any, uuid.UUID]:
        value = {
            ProductSort.NEWEST: p["published_at"],
            ProductSort.PRICE_ASC: p["price"],
            ProductSort.PRICE_DESC: p["price"],
            ProductSort.TITLE: p["title"],
        }[sort]
        return (value, p["id"])

    descending = sort in (ProductSort.NEWEST, ProductSort.PRICE_DESC)
    return [p["slug"] for p in sorted(products, key=key, reverse=descending)]


# Per sort: a product that sorts before everything (already passed: it must not appear) and
# one that sorts after everything (still ahead: it must appear), as (title, price, published).
EDGES: dict[ProductSort, tuple[tuple[str, int, datetime], tuple[str, int, datetime]]] = {
    ProductSort.NEWEST: (
        ("Mid", 1000, NOW + timedelta(days=1)),
        ("Mid", 1000, NOW - timedelta(days=900)),
    ),
    ProductSort.PRICE_ASC: (("Mid", 1, NOW), ("Mid", 10**7, NOW)),
    ProductSort.PRICE_DESC: (("Mid", 10**7, NOW), ("Mid", 1, NOW)),
    ProductSort.TITLE: (("Aaa", 1000, NOW), ("Zulu", 1000, NOW)),
}


@pytest.mark.parametrize("sort", list(ProductSort))
async def test_walking_the_pages_shows_every_product_once_in_order_while_products_are_added(
    client: httpx.AsyncClient, db_session: AsyncSession, sort: ProductSort
) -> None:
    vendor = await make_vendor(db_session)
    products = [
        await _add(db_session, vendor, title, prices, NOW - timedelta(hours=hours))
        for title, prices, hours in CATALOG
    ]

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"vendor": vendor.slug, "sort": sort.value, "limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        response = await client.get("/products", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= 3
        seen += [item["slug"] for item in body["items"]]
        pages += 1
        if pages == 1:
            # New products between page requests: one sorts before the cursor, one after.
            (t1, p1, at1), (t2, p2, at2) = EDGES[sort]
            await _add(db_session, vendor, t1, [p1], at1)
            products.append(await _add(db_session, vendor, t2, [p2], at2))
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert pages == 3
    assert len(seen) == len(set(seen))
    assert seen == _expected_order(products, sort)


async def test_price_order_uses_the_from_price(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    vendor = await make_vendor(db_session)
    products = [await _add(db_session, vendor, title, prices, NOW) for title, prices, _ in CATALOG]
    response = await client.get(
        "/products", params={"vendor": vendor.slug, "sort": "price_asc", "limit": 100}
    )
    prices = [item["from_price"]["amount"] for item in response.json()["items"]]
    assert prices == sorted(p["price"] for p in products)


async def test_a_tampered_or_foreign_cursor_is_refused(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    vendor = await make_vendor(db_session)
    for _ in range(3):
        await make_product(db_session, vendor=vendor)
    first = await client.get("/products", params={"vendor": vendor.slug, "limit": 1})
    cursor = first.json()["next_cursor"]
    assert cursor is not None

    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[-3] ^= 0x01  # one bit of the payload
    flipped = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    for bad in (flipped, "not-a-cursor", cursor[:-4], "", "%%%%", "e30"):
        response = await client.get(
            "/products", params={"vendor": vendor.slug, "limit": 1, "cursor": bad}
        )
        _problem(response, 422, "invalid_cursor")
    # A cursor made for another sort order names no position in this one.
    response = await client.get(
        "/products", params={"vendor": vendor.slug, "sort": "price_asc", "cursor": cursor}
    )
    _problem(response, 422, "invalid_cursor")
    # The cursor as given still works.
    response = await client.get(
        "/products", params={"vendor": vendor.slug, "limit": 1, "cursor": cursor}
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"limit": "ten"}, {"sort": "popular"}, {"cursor": "x" * 600}],
)
async def test_bad_list_parameters_are_validation_problems(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    body = _problem(await client.get("/products", params=params), 422, "validation_error")
    assert body["errors"][0]["loc"][0] == "query"


async def test_the_service_refuses_a_cursor_of_another_sort(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    for _ in range(2):
        await make_product(db_session, vendor=vendor)
    page = await storefront.list_products(db_session, vendor_slug=vendor.slug, limit=1)
    assert page.next_cursor is not None
    with pytest.raises(InvalidCursor):
        await storefront.list_products(
            db_session, vendor_slug=vendor.slug, sort=ProductSort.TITLE, cursor=page.next_cursor
        )


# --- product page ---------------------------------------------------------------------------


async def _stock(
    session: AsyncSession,
    product: Product,
    sku: str,
    *,
    on_hand: int,
    reserved: int = 0,
    threshold: int = 0,
    warehouse: Warehouse | None = None,
) -> None:
    variant_id = await session.scalar(
        select(Variant.id).where(Variant.product_id == product.id, Variant.sku == sku)
    )
    assert variant_id is not None
    if warehouse is None:
        await session.execute(
            update(InventoryLevel)
            .where(InventoryLevel.variant_id == variant_id)
            .values(on_hand=on_hand, reserved=reserved, low_stock_threshold=threshold)
        )
    else:
        session.add(
            InventoryLevel(
                variant_id=variant_id,
                warehouse_id=warehouse.id,
                on_hand=on_hand,
                reserved=reserved,
                low_stock_threshold=threshold,
            )
        )
        await session.flush()


async def _detailed_product(session: AsyncSession, *, images: int = 3) -> Product:
    """A product with one variant in each availability state, images, a three-level
    category and stock in two warehouses."""
    vendor = await make_vendor(session, name="Northwind Outfitters")
    vendor.rating_avg, vendor.rating_count = Decimal("4.60"), 12
    clothing = await make_category(session, name="Clothing")
    tees = await make_category(session, name="T-shirts", parent=clothing)
    organic = await make_category(session, name="Organic", parent=tees)
    product = await make_product(
        session,
        vendor=vendor,
        title="Organic Cotton Tee",
        category=organic,
        brand="Northwind",
        description="A heavyweight tee.",
        tags=["organic", "cotton"],
        attributes={"material": "organic cotton"},
        variants=[
            VariantSpec("TEE-L", 2500, options={"size": "L"}, compare_at=3000),
            VariantSpec("TEE-M", 2500, options={"size": "M"}),
            VariantSpec("TEE-S", 2300, options={"size": "S"}),
            VariantSpec("TEE-XL", 2700, options={"size": "XL"}),
            VariantSpec("TEE-XXL", 2700, options={"size": "XXL"}),
        ],
    )
    product.rating_avg, product.rating_count = Decimal("4.50"), 2
    # TEE-L: 10 available in all, over two warehouses -> in stock.
    east = Warehouse(vendor_id=vendor.id, code="east", name="East")
    session.add(east)
    await session.flush()
    await _stock(session, product, "TEE-L", on_hand=6, reserved=2, threshold=3)
    await _stock(session, product, "TEE-L", on_hand=6, threshold=3, warehouse=east)
    # TEE-M: 2 left against a threshold of 5 -> low stock.
    await _stock(session, product, "TEE-M", on_hand=4, reserved=2, threshold=5)
    # TEE-S: everything reserved -> out of stock.
    await _stock(session, product, "TEE-S", on_hand=5, reserved=5, threshold=1)
    # TEE-XL: never stocked anywhere (no inventory row) -> out of stock.
    await session.execute(
        delete(InventoryLevel).where(
            InventoryLevel.variant_id.in_(
                select(Variant.id).where(Variant.product_id == product.id, Variant.sku == "TEE-XL")
            )
        )
    )
    await session.execute(
        update(Variant)
        .where(Variant.product_id == product.id, Variant.sku == "TEE-XXL")
        .values(is_active=False)
    )
    for position in reversed(range(images)):
        session.add(
            ProductImage(
                product_id=product.id,
                url=f"https://img.example/{position}.jpg",
                alt_text=f"view {position}",
                position=position,
            )
        )
    await session.flush()
    return product


async def test_the_product_page(client: httpx.AsyncClient, db_session: AsyncSession) -> None:
    product = await _detailed_product(db_session)
    response = await client.get(f"/products/{product.slug}")
    assert response.status_code == 200, response.text
    body = response.json()

    assert body["title"] == "Organic Cotton Tee"
    assert body["description"] == "A heavyweight tee."
    assert body["brand"] == "Northwind"
    assert sorted(body["tags"]) == ["cotton", "organic"]
    assert body["attributes"] == {"material": "organic cotton"}
    assert [crumb["name"] for crumb in body["breadcrumb"]] == ["Clothing", "T-shirts", "Organic"]
    assert body["breadcrumb"][-1]["path"].count("/") == 2
    assert body["vendor"]["name"] == "Northwind Outfitters"
    assert body["vendor"]["rating"] == {"average": 4.6, "count": 12}
    assert body["rating"] == {"average": 4.5, "count": 2}
    assert body["images"] == [
        {"url": f"https://img.example/{i}.jpg", "alt_text": f"view {i}"} for i in range(3)
    ]
    assert body["from_price"] == {"amount": 2300, "currency": "EUR"}

    variants = {variant["sku"]: variant for variant in body["variants"]}
    assert list(variants) == ["TEE-L", "TEE-M", "TEE-S", "TEE-XL"]  # no inactive TEE-XXL
    assert {sku: v["availability"] for sku, v in variants.items()} == {
        "TEE-L": "in_stock",
        "TEE-M": "low_stock",
        "TEE-S": "out_of_stock",
        "TEE-XL": "out_of_stock",
    }
    assert variants["TEE-L"]["options"] == {"size": "L"}
    assert variants["TEE-L"]["price"] == {"amount": 2500, "currency": "EUR"}
    assert variants["TEE-L"]["compare_at"] == {"amount": 3000, "currency": "EUR"}
    assert variants["TEE-M"]["compare_at"] is None
    # Stock levels themselves are nobody's business but the vendor's.
    assert "available" not in variants["TEE-L"]


async def test_a_product_without_category_or_images(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    product = await make_product(db_session, vendor=await make_vendor(db_session))
    body = (await client.get(f"/products/{product.slug}")).json()
    assert body["breadcrumb"] == []
    assert body["images"] == []
    assert body["rating"] == {"average": None, "count": 0}


def _selects(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("SELECT")]


async def test_the_product_page_takes_a_fixed_number_of_queries(db_session: AsyncSession) -> None:
    small = await make_product(db_session, vendor=await make_vendor(db_session))
    large = await _detailed_product(db_session, images=6)
    await db_session.flush()
    counts = []
    for product in (small, large):
        db_session.expunge_all()
        async with _statements(db_session) as statements:
            detail = await storefront.product_detail(db_session, slug=product.slug)
        assert detail.slug == product.slug
        counts.append(len(statements))
        assert len(_selects(statements)) == len(statements)
    # Product with vendor and category, images, variants with stock; the breadcrumb is
    # skipped when there is no category.
    assert counts == [3, 4]


async def test_a_list_page_is_one_query(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    for _ in range(5):
        await make_product(db_session, vendor=vendor)
    await db_session.flush()
    async with _statements(db_session) as statements:
        page = await storefront.list_products(db_session, vendor_slug=vendor.slug, limit=2)
        await storefront.list_products(
            db_session, vendor_slug=vendor.slug, limit=2, cursor=page.next_cursor
        )
    assert len(statements) == 2


# --- category tree --------------------------------------------------------------------------


def _find(nodes: list[dict[str, Any]], category_id: uuid.UUID) -> dict[str, Any]:
    for node in nodes:
        if node["id"] == str(category_id):
            return node
        try:
            return _find(node["children"], category_id)
        except LookupError:
            continue
    raise LookupError(category_id)


def _walk(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in nodes:
        yield node
        yield from _walk(node["children"])


async def test_the_category_tree_counts_visible_products_of_each_subtree(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    vendor = await make_vendor(db_session)
    suspended = await make_vendor(db_session, status=VendorStatus.SUSPENDED)
    root = await make_category(db_session, name="Home")
    kitchen = await make_category(db_session, name="Kitchen", parent=root)
    bath = await make_category(db_session, name="Bath", parent=root)
    knives = await make_category(db_session, name="Knives", parent=kitchen)
    empty = await make_category(db_session, name="Empty")
    await make_product(db_session, vendor=vendor, category=root)
    await make_product(db_session, vendor=vendor, category=root, status=ProductStatus.DRAFT)
    await make_product(db_session, vendor=vendor, category=kitchen)
    await make_product(db_session, vendor=suspended, category=kitchen)
    await make_product(db_session, vendor=vendor, category=knives)
    await make_product(db_session, vendor=vendor, category=knives)

    response = await client.get("/categories")
    assert response.status_code == 200, response.text
    tree = response.json()["items"]
    home = _find(tree, root.id)
    assert home["product_count"] == 4
    assert [child["name"] for child in home["children"]] == ["Bath", "Kitchen"]
    assert _find(tree, kitchen.id)["product_count"] == 3
    assert _find(tree, knives.id) == {
        "id": str(knives.id),
        "slug": knives.slug,
        "name": "Knives",
        "path": knives.path,
        "product_count": 2,
        "children": [],
    }
    assert _find(tree, bath.id)["product_count"] == 0
    assert _find(tree, empty.id)["product_count"] == 0
    # Every category appears exactly once.
    ids = [node["id"] for node in _walk(tree)]
    assert len(ids) == len(set(ids)) == len((await db_session.scalars(select(Category.id))).all())
