"""What shoppers browse: product lists, product pages, the category tree, vendor pages.

Only *visible* products are ever shown: an active product of an active vendor with at least
one active variant (a product with nothing to buy has no price to show). A vendor's
suspension hides all of its products at once, with nothing to rewrite on the products.
Searching is ``commerce.search``'s job; this module answers the browsing pages.
"""

from __future__ import annotations

import enum
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVarTuple

from sqlalchemy import (
    ColumnElement,
    Select,
    SQLColumnExpression,
    and_,
    exists,
    func,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from commerce.errors import NotFound
from core import pagination
from core.money import Money
from models import (
    Category,
    InventoryLevel,
    Product,
    ProductImage,
    ProductStatus,
    Variant,
    Vendor,
    VendorStatus,
)

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 24


class ProductSort(enum.StrEnum):
    NEWEST = "newest"
    PRICE_ASC = "price_asc"
    PRICE_DESC = "price_desc"
    TITLE = "title"


class StockAvailability(enum.StrEnum):
    IN_STOCK = "in_stock"
    LOW_STOCK = "low_stock"
    OUT_OF_STOCK = "out_of_stock"


@dataclass(frozen=True)
class Rating:
    average: Decimal | None
    count: int


@dataclass(frozen=True)
class VendorRef:
    slug: str
    name: str
    rating: Rating


@dataclass(frozen=True)
class Image:
    url: str
    alt_text: str


@dataclass(frozen=True)
class ProductSummary:
    """A product card in a list: enough to draw it, with the lowest active variant price."""

    id: uuid.UUID
    slug: str
    title: str
    brand: str | None
    vendor: VendorRef
    from_price: Money
    compare_at: Money | None
    rating: Rating
    image: Image | None
    published_at: datetime


@dataclass(frozen=True)
class ProductList:
    items: list[ProductSummary]
    # None on the last page.
    next_cursor: str | None


@dataclass(frozen=True)
class CategoryCrumb:
    slug: str
    name: str
    path: str


@dataclass(frozen=True)
class VariantOffer:
    id: uuid.UUID
    sku: str
    options: dict[str, str]
    price: Money
    compare_at: Money | None
    availability: StockAvailability


@dataclass(frozen=True)
class ProductDetail:
    id: uuid.UUID
    slug: str
    title: str
    description: str
    brand: str | None
    tags: list[str]
    attributes: dict[str, str]
    breadcrumb: list[CategoryCrumb]
    vendor: VendorRef
    rating: Rating
    images: list[Image]
    variants: list[VariantOffer]
    from_price: Money
    published_at: datetime


@dataclass
class CategoryNode:
    id: uuid.UUID
    slug: str
    name: str
    path: str
    # Visible products in this category and all of its descendants.
    product_count: int = 0
    children: list[CategoryNode] = field(default_factory=list)


@dataclass(frozen=True)
class VendorPage:
    slug: str
    name: str
    description: str
    rating: Rating
    product_count: int


# --- visibility -----------------------------------------------------------------------------


def _product_is_visible() -> ColumnElement[bool]:
    """The product's own half of the rule; its vendor must be active too."""
    return and_(
        Product.status == ProductStatus.ACTIVE,
        exists().where(Variant.product_id == Product.id, Variant.is_active),
    )


_Columns = TypeVarTuple("_Columns")


def _visible(statement: Select[*_Columns]) -> Select[*_Columns]:
    """Join the vendor and keep only what the storefront may show. Every query here goes
    through it (or ``_product_is_visible``), so the rule lives in one place."""
    return statement.join(Vendor, Vendor.id == Product.vendor_id).where(
        _product_is_visible(), Vendor.status == VendorStatus.ACTIVE
    )


# Demo and imported products may be active without a publication date; they count as
# published when they were created.
_PUBLISHED_AT = func.coalesce(Product.published_at, Product.created_at)


# --- cursors --------------------------------------------------------------------------------

#: What each sort order's cursor holds before the product id.
_KEY_TYPE: dict[ProductSort, type[pagination.Key]] = {
    ProductSort.NEWEST: datetime,
    ProductSort.PRICE_ASC: int,
    ProductSort.PRICE_DESC: int,
    ProductSort.TITLE: str,
}


def _encode_cursor(sort: ProductSort, key: pagination.Key, product_id: uuid.UUID) -> str:
    return pagination.encode_cursor(f"products:{sort.value}", key, product_id)


def _decode_cursor(cursor: str, sort: ProductSort) -> tuple[pagination.Key, uuid.UUID]:
    """The sort key and product id a cursor of this sort order was made from; a cursor of
    another sort order is ``InvalidCursor``."""
    key, product_id = pagination.decode_cursor(
        cursor, f"products:{sort.value}", _KEY_TYPE[sort], uuid.UUID
    )
    return key, product_id


# --- product lists --------------------------------------------------------------------------


async def list_products(
    session: AsyncSession,
    *,
    category_slug: str | None = None,
    brand: str | None = None,
    vendor_slug: str | None = None,
    tag: str | None = None,
    sort: ProductSort = ProductSort.NEWEST,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> ProductList:
    """One page of visible products, filtered and sorted, in one query.

    Keyset pagination: ``cursor`` (the previous page's ``next_cursor``) carries the sort key
    and id of the last product shown, and the page continues strictly after it. Products
    added or removed between requests never make another product repeat or go missing, as
    OFFSET paging would. A category includes its whole subtree; filters on unknown values
    give an empty page. ``InvalidCursor`` for a cursor this sort did not make.
    """
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    # The cheapest active variant gives the "from" price (and its compare-at price).
    cheapest = (
        select(
            Variant.price_amount.label("amount"),
            Variant.currency.label("currency"),
            Variant.compare_at_amount.label("compare_at"),
        )
        .where(Variant.product_id == Product.id, Variant.is_active)
        .order_by(Variant.price_amount, Variant.sku)
        .limit(1)
        .lateral("cheapest")
    )
    first_image = (
        select(ProductImage.url, ProductImage.alt_text)
        .where(ProductImage.product_id == Product.id)
        .order_by(ProductImage.position, ProductImage.id)
        .limit(1)
        .lateral("first_image")
    )
    statement = _visible(
        select(
            Product.id,
            Product.slug,
            Product.title,
            Product.brand,
            Product.rating_avg,
            Product.rating_count,
            _PUBLISHED_AT.label("published_at"),
            Vendor.slug.label("vendor_slug"),
            Vendor.name.label("vendor_name"),
            Vendor.rating_avg.label("vendor_rating_avg"),
            Vendor.rating_count.label("vendor_rating_count"),
            cheapest.c.amount,
            cheapest.c.currency,
            cheapest.c.compare_at,
            first_image.c.url.label("image_url"),
            first_image.c.alt_text.label("image_alt"),
        ).select_from(Product)
    )
    statement = statement.join(cheapest, true()).outerjoin(first_image, true())

    if category_slug is not None:
        root_path = select(Category.path).where(Category.slug == category_slug).scalar_subquery()
        subtree = select(Category.id).where(
            or_(
                Category.path == root_path,
                # starts_with, not LIKE: a path is data, never a pattern.
                func.starts_with(Category.path, root_path.concat("/")),
            )
        )
        statement = statement.where(Product.category_id.in_(subtree))
    if brand is not None:
        # Brands are typed by vendors: "Northwind" and "northwind" are the same brand.
        statement = statement.where(func.lower(Product.brand) == brand.lower())
    if vendor_slug is not None:
        statement = statement.where(Vendor.slug == vendor_slug)
    if tag is not None:
        statement = statement.where(Product.tags.contains([tag]))

    key: SQLColumnExpression[Any] = {
        ProductSort.NEWEST: _PUBLISHED_AT,
        ProductSort.PRICE_ASC: cheapest.c.amount,
        ProductSort.PRICE_DESC: cheapest.c.amount,
        ProductSort.TITLE: Product.title,
    }[sort]
    descending = sort in (ProductSort.NEWEST, ProductSort.PRICE_DESC)
    if cursor is not None:
        after_key, after_id = _decode_cursor(cursor, sort)
        if descending:
            statement = statement.where(
                or_(key < after_key, and_(key == after_key, Product.id < after_id))
            )
        else:
            statement = statement.where(
                or_(key > after_key, and_(key == after_key, Product.id > after_id))
            )
    # The id breaks ties, so the order is total and a cursor names one exact position.
    order = (key.desc(), Product.id.desc()) if descending else (key.asc(), Product.id.asc())
    rows = (await session.execute(statement.order_by(*order).limit(limit + 1))).all()

    page, more = rows[:limit], len(rows) > limit
    items = [_summary(row) for row in page]
    next_cursor = None
    if more:
        last = page[-1]
        last_key = {
            ProductSort.NEWEST: last.published_at,
            ProductSort.PRICE_ASC: last.amount,
            ProductSort.PRICE_DESC: last.amount,
            ProductSort.TITLE: last.title,
        }[sort]
        next_cursor = _encode_cursor(sort, last_key, last.id)
    return ProductList(items=items, next_cursor=next_cursor)


def _summary(row: Any) -> ProductSummary:
    return ProductSummary(
        id=row.id,
        slug=row.slug,
        title=row.title,
        brand=row.brand,
        vendor=VendorRef(
            row.vendor_slug, row.vendor_name, Rating(row.vendor_rating_avg, row.vendor_rating_count)
        ),
        from_price=Money(row.amount, row.currency),
        compare_at=Money(row.compare_at, row.currency) if row.compare_at is not None else None,
        rating=Rating(row.rating_avg, row.rating_count),
        image=Image(row.image_url, row.image_alt) if row.image_url is not None else None,
        published_at=row.published_at,
    )


# --- product page ---------------------------------------------------------------------------


async def product_detail(session: AsyncSession, *, slug: str) -> ProductDetail:
    """A visible product's page, in four queries whatever its size (three without a
    category): the product with its vendor and category, its images, its active variants
    with their stock summed over the vendor's warehouses, and the categories of its
    breadcrumb. ``NotFound`` when the product is not visible (a draft, archived, nothing on
    sale, or its vendor is not active)."""
    row = (
        await session.execute(
            _visible(
                select(Product, Vendor, Category.path)
                .select_from(Product)
                .outerjoin(Category, Category.id == Product.category_id)
                .options(selectinload(Product.images))
            ).where(Product.slug == slug)
        )
    ).first()
    if row is None:
        raise NotFound("No such product.")
    product, vendor, category_path = row

    available = func.coalesce(func.sum(InventoryLevel.on_hand - InventoryLevel.reserved), 0)
    # Each warehouse's low-stock threshold is its share of the buffer: the variant is low
    # when what is left everywhere is within the sum of them.
    threshold = func.coalesce(func.sum(InventoryLevel.low_stock_threshold), 0)
    variant_rows = (
        await session.execute(
            select(Variant, available.label("available"), threshold.label("threshold"))
            .outerjoin(InventoryLevel, InventoryLevel.variant_id == Variant.id)
            .where(Variant.product_id == product.id, Variant.is_active)
            .group_by(Variant.id)
            .order_by(Variant.sku)
        )
    ).all()
    variants = [
        VariantOffer(
            id=variant.id,
            sku=variant.sku,
            options=dict(variant.options),
            price=Money(variant.price_amount, variant.currency),
            compare_at=(
                Money(variant.compare_at_amount, variant.currency)
                if variant.compare_at_amount is not None
                else None
            ),
            availability=_availability(int(stock), int(low)),
        )
        for variant, stock, low in variant_rows
    ]
    if not variants:
        # Deactivated between the two queries: no longer visible.
        raise NotFound("No such product.")

    return ProductDetail(
        id=product.id,
        slug=product.slug,
        title=product.title,
        description=product.description,
        brand=product.brand,
        tags=list(product.tags),
        attributes=dict(product.attributes),
        breadcrumb=await _breadcrumb(session, category_path),
        vendor=VendorRef(vendor.slug, vendor.name, Rating(vendor.rating_avg, vendor.rating_count)),
        rating=Rating(product.rating_avg, product.rating_count),
        images=[Image(image.url, image.alt_text) for image in product.images],
        variants=variants,
        from_price=min(variants, key=lambda offer: offer.price.amount).price,
        published_at=product.published_at or product.created_at,
    )


def _availability(available: int, threshold: int) -> StockAvailability:
    if available <= 0:
        return StockAvailability.OUT_OF_STOCK
    if available <= threshold:
        return StockAvailability.LOW_STOCK
    return StockAvailability.IN_STOCK


async def _breadcrumb(session: AsyncSession, path: str | None) -> list[CategoryCrumb]:
    """The categories from the root down to ``path``: its prefixes, in one query."""
    if path is None:
        return []
    segments = path.split("/")
    prefixes = ["/".join(segments[: depth + 1]) for depth in range(len(segments))]
    rows = (
        await session.execute(
            select(Category.slug, Category.name, Category.path).where(Category.path.in_(prefixes))
        )
    ).all()
    by_path = {row.path: CategoryCrumb(row.slug, row.name, row.path) for row in rows}
    return [by_path[prefix] for prefix in prefixes if prefix in by_path]


# --- categories and vendors -----------------------------------------------------------------


async def category_tree(session: AsyncSession) -> list[CategoryNode]:
    """Every category as a tree (children by name), each with the number of visible
    products in it and all of its descendants. Two queries: the categories, and the
    visible products counted per category."""
    categories = (
        await session.execute(
            select(Category.id, Category.parent_id, Category.slug, Category.name, Category.path)
        )
    ).all()
    counted = await session.execute(
        _visible(select(Product.category_id, func.count()).select_from(Product))
        .where(Product.category_id.is_not(None))
        .group_by(Product.category_id)
    )
    counts = {category_id: count for category_id, count in counted if category_id is not None}
    nodes = {row.id: CategoryNode(row.id, row.slug, row.name, row.path) for row in categories}
    children: dict[uuid.UUID | None, list[CategoryNode]] = defaultdict(list)
    for row in categories:
        children[row.parent_id].append(nodes[row.id])

    def build(node: CategoryNode) -> int:
        node.children = sorted(children.get(node.id, []), key=lambda child: child.name)
        node.product_count = counts.get(node.id, 0) + sum(build(child) for child in node.children)
        return node.product_count

    roots = sorted(children.get(None, []), key=lambda node: node.name)
    for root in roots:
        build(root)
    return roots


async def vendor_page(session: AsyncSession, *, slug: str) -> VendorPage:
    """An active vendor's public page. ``NotFound`` for pending and suspended vendors, as if
    they did not exist."""
    product_count = (
        select(func.count())
        .select_from(Product)
        .where(Product.vendor_id == Vendor.id, _product_is_visible())
        .correlate(Vendor)
        .scalar_subquery()
    )
    row = (
        await session.execute(
            select(Vendor, product_count.label("product_count")).where(
                Vendor.slug == slug, Vendor.status == VendorStatus.ACTIVE
            )
        )
    ).first()
    if row is None:
        raise NotFound("No such vendor.")
    vendor, count = row
    return VendorPage(
        slug=vendor.slug,
        name=vendor.name,
        description=vendor.description,
        rating=Rating(vendor.rating_avg, vendor.rating_count),
        product_count=count,
    )
