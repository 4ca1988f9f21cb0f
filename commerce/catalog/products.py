"""A vendor's back office for its own products: products, variants and images.

Every service takes the ``vendor_id`` of the back office that acts and looks products up
within that vendor only: another vendor's product, variant or image id is ``NotFound``, the
same answer as an id that does not exist, so ids cannot be probed (no IDOR).

The rules live here, once, for the API and for :mod:`commerce.catalog.bulk` alike; each
breach raises a ``DomainError`` with its own code. Changes that touch a product's variants,
images or status lock the product row first, so checks across variants (one currency, no
two active variants with the same options, "an active product stays sellable") cannot be
raced by a concurrent request. Every change queues the product for re-indexing.

Services flush but never commit, and return objects whose columns and collections are
loaded (the sessions here have no lazy loading to fall back on).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Uuid, delete, insert, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from commerce.catalog.gtin import is_valid_gtin
from commerce.errors import Conflict, DomainError, NotFound
from commerce.search.outbox import enqueue_reindex
from core import pagination
from core.money import tender_currency
from models import (
    Category,
    InventoryLevel,
    Product,
    ProductImage,
    ProductStatus,
    Variant,
    Warehouse,
)

MAX_TITLE_LENGTH = 300  # products.title
MAX_DESCRIPTION_LENGTH = 50_000
MAX_BRAND_LENGTH = 120  # products.brand
MAX_TAGS = 20
MAX_TAG_LENGTH = 40  # products.tags is VARCHAR(40)[]
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_KEY_LENGTH = 100
MAX_ATTRIBUTE_VALUE_LENGTH = 1_000
MAX_OPTIONS = 10
MAX_OPTION_KEY_LENGTH = 40
MAX_OPTION_VALUE_LENGTH = 100
MAX_SKU_LENGTH = 64  # variants.sku
MAX_IMAGES = 20
MAX_URL_LENGTH = 2_000  # product_images.url
MAX_ALT_TEXT_LENGTH = 300  # product_images.alt_text
# Far above any real price, far below BIGINT: a typo'd extra zero or two still fits, an
# absurd number is refused before PostgreSQL would refuse it less politely.
MAX_AMOUNT = 10**13
# Grams and millimetres; INTEGER columns.
MAX_MEASURE = 100_000_000
MAX_PAGE_SIZE = 200
MAX_SLUG_LENGTH = 160  # products.slug
# Room for "-<suffix>" when a generated slug collides.
_SLUG_BASE_LENGTH = 140
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/#+-]*$")
TAX_CLASS = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
# Reserved by the import/export format ("size=M|colour=black", "tag-a|tag-b").
_FORMAT_CHARACTERS = ("|", "=")

_PRODUCT_FIELDS = frozenset(
    {"title", "description", "brand", "category_id", "tags", "attributes", "tax_class", "slug"}
)
_VARIANT_FIELDS = frozenset(
    {
        "sku",
        "options",
        "price_amount",
        "currency",
        "compare_at_amount",
        "weight_grams",
        "barcode",
        "length_mm",
        "width_mm",
        "height_mm",
        "is_active",
    }
)
_SKU_CONSTRAINT = "uq_variants_vendor_id_sku"
_SLUG_CONSTRAINT = "uq_products_slug"


# --- errors ---------------------------------------------------------------------------------


class InvalidProduct(DomainError):
    status, code, title = 422, "invalid_product", "The product is not valid"


class UnknownCategory(DomainError):
    status, code, title = 422, "unknown_category", "No such category"


class SlugTaken(Conflict):
    code, title = "slug_taken", "Another product has this slug"


class ProductNotReady(Conflict):
    code, title = "product_not_ready", "The product has nothing to sell yet"


class InvalidVariant(DomainError):
    status, code, title = 422, "invalid_variant", "The variant is not valid"


class InvalidBarcode(DomainError):
    status, code, title = 422, "invalid_barcode", "The barcode is not a valid GTIN"


class InvalidCurrency(DomainError):
    status, code, title = 422, "invalid_currency", "Not an ISO 4217 currency"


class CurrencyMismatch(DomainError):
    status, code, title = 422, "currency_mismatch", "All variants of a product share a currency"


class InvalidPrice(DomainError):
    status, code, title = 422, "invalid_price", "The price is not valid"


class SkuTaken(Conflict):
    code, title = "sku_taken", "Another variant of this vendor has this SKU"


class DuplicateVariant(Conflict):
    code, title = "duplicate_variant", "Another active variant has the same options"


class InvalidImage(DomainError):
    status, code, title = 422, "invalid_image", "The image is not valid"


class ImageLimit(Conflict):
    code, title = "image_limit", "The product has as many images as it may"


class InvalidImageOrder(DomainError):
    status, code, title = 422, "invalid_image_order", "The image order is not valid"


class NoDefaultWarehouse(Conflict):
    code, title = "no_default_warehouse", "The vendor has no default warehouse"


def _text(value: object, error: type[DomainError], field: str) -> str:
    if not isinstance(value, str):
        raise _field_error(error, field, f"{field} must be text.")
    # PostgreSQL text cannot hold NUL; refused here rather than as a database error.
    if "\x00" in value:
        raise _field_error(error, field, f"{field} cannot contain NUL characters.")
    return value


def _field_error(error: type[DomainError], field: str, message: str) -> DomainError:
    """An error naming its field the way request validation errors do, so clients show both
    next to the right input."""
    return error(message, errors=[{"loc": ["body", field], "message": message, "type": error.code}])


# --- normalising input (pure) ---------------------------------------------------------------


def normalize_title(title: object) -> str:
    title = " ".join(_text(title, InvalidProduct, "title").split())
    if not title:
        raise _field_error(InvalidProduct, "title", "A product needs a title.")
    if len(title) > MAX_TITLE_LENGTH:
        raise _field_error(
            InvalidProduct, "title", f"A title has at most {MAX_TITLE_LENGTH} characters."
        )
    return title


def normalize_description(description: object) -> str:
    # Kept exactly as written (line breaks, indentation): it is the vendor's prose.
    if description is None:
        return ""
    description = _text(description, InvalidProduct, "description")
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise _field_error(
            InvalidProduct,
            "description",
            f"A description has at most {MAX_DESCRIPTION_LENGTH} characters.",
        )
    return description


def normalize_brand(brand: object) -> str | None:
    if brand is None:
        return None
    brand = " ".join(_text(brand, InvalidProduct, "brand").split())
    if len(brand) > MAX_BRAND_LENGTH:
        raise _field_error(
            InvalidProduct, "brand", f"A brand has at most {MAX_BRAND_LENGTH} characters."
        )
    return brand or None


def normalize_tags(tags: object) -> list[str]:
    """Lower-case, trimmed (inner runs of spaces become one), without duplicates or blanks,
    in the order given. At most :data:`MAX_TAGS` of at most :data:`MAX_TAG_LENGTH`."""
    if tags is None:
        return []
    if isinstance(tags, str) or not isinstance(tags, Iterable):
        raise _field_error(InvalidProduct, "tags", "Tags are a list of words.")
    found: dict[str, None] = {}
    for raw in tags:
        tag = " ".join(_text(raw, InvalidProduct, "tags").split()).lower()
        if not tag:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise _field_error(
                InvalidProduct,
                "tags",
                f"A tag has at most {MAX_TAG_LENGTH} characters: {tag[:MAX_TAG_LENGTH]}...",
            )
        if "|" in tag:
            raise _field_error(InvalidProduct, "tags", "A tag cannot contain '|'.")
        found[tag] = None
    if len(found) > MAX_TAGS:
        raise _field_error(InvalidProduct, "tags", f"A product has at most {MAX_TAGS} tags.")
    return list(found)


def normalize_attributes(attributes: object) -> dict[str, str]:
    """Text to text, keys and values trimmed, at most :data:`MAX_ATTRIBUTES` keys."""
    if attributes is None:
        return {}
    if not isinstance(attributes, Mapping):
        raise _field_error(InvalidProduct, "attributes", "Attributes map names to text.")
    if len(attributes) > MAX_ATTRIBUTES:
        raise _field_error(
            InvalidProduct, "attributes", f"A product has at most {MAX_ATTRIBUTES} attributes."
        )
    tidy: dict[str, str] = {}
    for raw_key, raw_value in attributes.items():
        key = _text(raw_key, InvalidProduct, "attributes").strip()
        value = _text(raw_value, InvalidProduct, "attributes").strip()
        if not key or len(key) > MAX_ATTRIBUTE_KEY_LENGTH:
            raise _field_error(
                InvalidProduct,
                "attributes",
                f"An attribute name has 1 to {MAX_ATTRIBUTE_KEY_LENGTH} characters.",
            )
        if len(value) > MAX_ATTRIBUTE_VALUE_LENGTH:
            raise _field_error(
                InvalidProduct,
                "attributes",
                f"An attribute value has at most {MAX_ATTRIBUTE_VALUE_LENGTH} characters.",
            )
        if key in tidy:
            raise _field_error(InvalidProduct, "attributes", f"The attribute {key!r} is twice.")
        tidy[key] = value
    return tidy


def normalize_tax_class(tax_class: object) -> str:
    if not isinstance(tax_class, str) or not TAX_CLASS.match(tax_class.strip().lower()):
        raise _field_error(
            InvalidProduct,
            "tax_class",
            "A tax class is 1 to 40 lower-case letters, digits, '-' or '_' (e.g. standard).",
        )
    return tax_class.strip().lower()


def normalize_slug(slug: object) -> str:
    slug = _text(slug, InvalidProduct, "slug").strip().lower()
    if len(slug) > MAX_SLUG_LENGTH or not SLUG.match(slug):
        raise _field_error(
            InvalidProduct,
            "slug",
            f"A slug is 1 to {MAX_SLUG_LENGTH} letters a-z, digits and single hyphens.",
        )
    return slug


def slugify(title: str) -> str:
    """The slug a title suggests ("Crème Brûlée Set" -> "creme-brulee-set")."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:_SLUG_BASE_LENGTH].rstrip("-") or "product"


def normalize_sku(sku: object) -> str:
    sku = _text(sku, InvalidVariant, "sku").strip()
    if not sku or len(sku) > MAX_SKU_LENGTH or not SKU.match(sku):
        raise _field_error(
            InvalidVariant,
            "sku",
            f"A SKU is 1 to {MAX_SKU_LENGTH} letters, digits and . _ / # + - (no spaces), "
            "starting with a letter or digit.",
        )
    return sku


def normalize_options(options: object) -> dict[str, str]:
    """Option names lower-case, names and values trimmed; e.g. {"size": "M"}."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise _field_error(InvalidVariant, "options", "Options map names to values.")
    if len(options) > MAX_OPTIONS:
        raise _field_error(
            InvalidVariant, "options", f"A variant has at most {MAX_OPTIONS} options."
        )
    tidy: dict[str, str] = {}
    for raw_key, raw_value in options.items():
        key = " ".join(_text(raw_key, InvalidVariant, "options").split()).lower()
        value = " ".join(_text(raw_value, InvalidVariant, "options").split())
        if not key or len(key) > MAX_OPTION_KEY_LENGTH:
            raise _field_error(
                InvalidVariant,
                "options",
                f"An option name has 1 to {MAX_OPTION_KEY_LENGTH} characters.",
            )
        if not value or len(value) > MAX_OPTION_VALUE_LENGTH:
            raise _field_error(
                InvalidVariant,
                "options",
                f"An option value has 1 to {MAX_OPTION_VALUE_LENGTH} characters.",
            )
        if any(character in key + value for character in _FORMAT_CHARACTERS):
            raise _field_error(
                InvalidVariant, "options", "Option names and values cannot contain '|' or '='."
            )
        if key in tidy:
            raise _field_error(InvalidVariant, "options", f"The option {key!r} is twice.")
        tidy[key] = value
    return tidy


def normalize_currency(currency: object) -> str:
    """An upper-case ISO 4217 code of a currency shoppers pay with."""
    code = tender_currency(currency)
    if code is None:
        raise _field_error(
            InvalidCurrency, "currency", f"{currency!r} is not an ISO 4217 currency code."
        )
    return code


def normalize_barcode(barcode: object) -> str | None:
    if barcode is None:
        return None
    barcode = _text(barcode, InvalidBarcode, "barcode")
    # Printed barcodes are often written with spaces or hyphens between digit groups.
    code = re.sub(r"[\s-]", "", barcode)
    if not code:
        return None
    if not is_valid_gtin(code):
        raise _field_error(
            InvalidBarcode,
            "barcode",
            "A barcode is a GTIN-8, -12 (UPC), -13 (EAN) or -14 with a correct check digit.",
        )
    return code


def _amount(value: object, field: str, *, optional: bool) -> int | None:
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _field_error(InvalidPrice, field, "An amount is a whole number of minor units.")
    if not 0 <= value <= MAX_AMOUNT:
        raise _field_error(InvalidPrice, field, f"An amount is between 0 and {MAX_AMOUNT}.")
    return value


def _measure(value: object, field: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_MEASURE:
        raise _field_error(
            InvalidVariant, field, f"{field} is a whole number from 0 to {MAX_MEASURE}."
        )
    return value


def normalize_variant_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check and tidy any subset of a variant's fields, one at a time; the rules between
    fields (compare-at above price) and between variants are checked by the services."""
    unknown = set(values) - _VARIANT_FIELDS
    if unknown:
        raise ValueError(f"not variant fields: {sorted(unknown)}")
    tidy: dict[str, Any] = {}
    for name, value in values.items():
        match name:
            case "sku":
                tidy[name] = normalize_sku(value)
            case "options":
                tidy[name] = normalize_options(value)
            case "price_amount":
                tidy[name] = _amount(value, name, optional=False)
            case "compare_at_amount":
                tidy[name] = _amount(value, name, optional=True)
            case "currency":
                tidy[name] = normalize_currency(value)
            case "barcode":
                tidy[name] = normalize_barcode(value)
            case "weight_grams" | "length_mm" | "width_mm" | "height_mm":
                tidy[name] = _measure(value, name)
            case "is_active":
                if not isinstance(value, bool):
                    raise _field_error(InvalidVariant, name, "is_active is true or false.")
                tidy[name] = value
    return tidy


def _check_compare_at(price_amount: int, compare_at_amount: int | None) -> None:
    if compare_at_amount is not None and compare_at_amount <= price_amount:
        raise _field_error(
            InvalidPrice,
            "compare_at_amount",
            "The compare-at price (the 'was' price) must be above the price.",
        )


def is_sellable(variants: Iterable[Variant]) -> bool:
    """What an active product needs: an active variant with a price above zero (a zero
    price is almost always a price not filled in yet, not a gift)."""
    return _sellable((variant.is_active, variant.price_amount) for variant in variants)


def _sellable(variants: Iterable[tuple[bool, int]]) -> bool:
    return any(is_active and price_amount > 0 for is_active, price_amount in variants)


def _options_key(options: Mapping[str, str]) -> frozenset[tuple[str, str]]:
    # "M" and "m" are the same size to a shopper.
    return frozenset((key, value.casefold()) for key, value in options.items())


# --- loading --------------------------------------------------------------------------------


async def _load(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    product_id: uuid.UUID,
    lock: bool = False,
    images: bool = True,
) -> Product:
    collections = [selectinload(Product.variants)]
    if images:
        collections.append(selectinload(Product.images))
    statement = (
        select(Product)
        .where(Product.id == product_id, Product.vendor_id == vendor_id)
        .options(*collections)
        # Collections and server-set columns (updated_at) already in the session may be
        # stale after a change made through another object; always read them afresh.
        .execution_options(populate_existing=True)
    )
    if lock:
        statement = statement.with_for_update(of=Product)
    product = await session.scalar(statement)
    if product is None:
        raise NotFound("No such product.")
    return product


async def get_product(
    session: AsyncSession, *, vendor_id: uuid.UUID, product_id: uuid.UUID
) -> Product:
    """One of the vendor's products with its variants (inactive ones too) and images.
    ``NotFound`` when it does not exist or belongs to another vendor."""
    return await _load(session, vendor_id=vendor_id, product_id=product_id)


@dataclass(frozen=True)
class ProductPage:
    items: list[Product]
    next_cursor: str | None


async def list_products(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    status: ProductStatus | None = None,
    q: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> ProductPage:
    """The vendor's products, newest first, a page at a time (keyset on created_at, id, so
    pages neither skip nor repeat while products are added).

    Archived products are left out unless ``status=archived`` asks for them. ``q`` matches
    titles containing it, ignoring case. The items' variants and images are not loaded.
    """
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    statement = select(Product).where(Product.vendor_id == vendor_id)
    if status is None:
        statement = statement.where(Product.status != ProductStatus.ARCHIVED)
    else:
        statement = statement.where(Product.status == status)
    if q is not None and q.strip():
        pattern = re.sub(r"([\\%_])", r"\\\1", q.strip())
        statement = statement.where(Product.title.ilike(f"%{pattern}%", escape="\\"))
    page = await pagination.newest_first(
        session,
        statement,
        created_at=Product.created_at,
        id=Product.id,
        scope="vendor_products",
        cursor=cursor,
        limit=limit,
    )
    return ProductPage(page.items, page.next_cursor)


# --- products -------------------------------------------------------------------------------


def _constraint(error: IntegrityError) -> str | None:
    diag = getattr(error.orig, "diag", None)
    return getattr(diag, "constraint_name", None)


async def _check_category(session: AsyncSession, category_id: object) -> uuid.UUID | None:
    if category_id is None:
        return None
    if not isinstance(category_id, uuid.UUID):
        raise _field_error(UnknownCategory, "category_id", "The category id is not valid.")
    if await session.scalar(select(Category.id).where(Category.id == category_id)) is None:
        raise _field_error(UnknownCategory, "category_id", "No such category.")
    return category_id


async def _slug_is_free(
    session: AsyncSession, slug: str, *, other_than: uuid.UUID | None = None
) -> bool:
    statement = select(Product.id).where(Product.slug == slug)
    if other_than is not None:
        statement = statement.where(Product.id != other_than)
    return await session.scalar(statement) is None


async def _free_slug(session: AsyncSession, base: str) -> str:
    """``base``, else the first free of base-2 ... base-20, else base-<random>."""
    candidates = [base] + [f"{base}-{n}" for n in range(2, 21)]
    taken = set(
        (await session.scalars(select(Product.slug).where(Product.slug.in_(candidates)))).all()
    )
    for candidate in candidates:
        if candidate not in taken:
            return candidate
    return f"{base}-{uuid.uuid4().hex[:8]}"


async def create_product(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    title: str,
    description: str = "",
    brand: str | None = None,
    category_id: uuid.UUID | None = None,
    tags: Iterable[str] = (),
    attributes: Mapping[str, str] | None = None,
    tax_class: str = "standard",
    slug: str | None = None,
) -> Product:
    """A new draft product of the vendor, without variants yet.

    The slug is generated from the title (with a numeric suffix when it is taken) unless
    one is given, which must be free (``SlugTaken``, 409). Raises ``InvalidProduct`` (422)
    for bad fields and ``UnknownCategory`` (422).
    """
    values = {
        "title": normalize_title(title),
        "description": normalize_description(description),
        "brand": normalize_brand(brand),
        "tags": normalize_tags(tags),
        "attributes": normalize_attributes(attributes),
        "tax_class": normalize_tax_class(tax_class),
        "category_id": await _check_category(session, category_id),
    }
    wanted = normalize_slug(slug) if slug is not None else None
    if wanted is not None and not await _slug_is_free(session, wanted):
        raise _field_error(SlugTaken, "slug", f"The slug {wanted!r} is taken.")
    for attempt in range(3):
        product = Product(
            id=uuid.uuid4(),
            vendor_id=vendor_id,
            status=ProductStatus.DRAFT,
            slug=wanted or await _free_slug(session, slugify(str(values["title"]))),
            **values,
        )
        try:
            # A savepoint, so that losing a race for the slug leaves the transaction usable.
            async with session.begin_nested():
                session.add(product)
                await session.flush()
            break
        except IntegrityError as error:
            if _constraint(error) != _SLUG_CONSTRAINT:
                raise
            if wanted is not None:
                raise _field_error(SlugTaken, "slug", f"The slug {wanted!r} is taken.") from None
            if attempt == 2:
                raise
    await enqueue_reindex(session, [product.id])
    return await _load(session, vendor_id=vendor_id, product_id=product.id)


async def update_product(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    product_id: uuid.UUID,
    changes: Mapping[str, Any],
) -> Product:
    """Change some of a product's fields: ``changes`` holds only those sent (title,
    description, brand, category_id, tags, attributes, tax_class, slug; ``None`` clears
    brand, category and description). Nothing is written when nothing differs.

    The slug does not follow the title: links to the product keep working. It changes only
    when given, and must then be free (``SlugTaken``, 409).
    """
    unknown = set(changes) - _PRODUCT_FIELDS
    if unknown:
        raise ValueError(f"not product fields: {sorted(unknown)}")
    product = await _load(session, vendor_id=vendor_id, product_id=product_id)
    values: dict[str, Any] = {}
    for name, value in changes.items():
        match name:
            case "title":
                values[name] = normalize_title(value)
            case "description":
                values[name] = normalize_description(value)
            case "brand":
                values[name] = normalize_brand(value)
            case "tags":
                values[name] = normalize_tags(value)
            case "attributes":
                values[name] = normalize_attributes(value)
            case "tax_class":
                values[name] = normalize_tax_class(value)
            case "slug":
                values[name] = normalize_slug(value)
            case "category_id":
                values[name] = await _check_category(session, value)
    diff = {name: value for name, value in values.items() if getattr(product, name) != value}
    if not diff:
        return product
    if "slug" in diff and not await _slug_is_free(session, diff["slug"], other_than=product.id):
        raise _field_error(SlugTaken, "slug", f"The slug {diff['slug']!r} is taken.")
    try:
        # Changed inside the savepoint: begin_nested() flushes what is pending before it.
        async with session.begin_nested():
            for name, value in diff.items():
                setattr(product, name, value)
            await session.flush()
    except IntegrityError as error:
        if _constraint(error) == _SLUG_CONSTRAINT:
            raise _field_error(SlugTaken, "slug", "The slug is taken.") from None
        raise
    await enqueue_reindex(session, [product.id])
    return await _load(session, vendor_id=vendor_id, product_id=product.id)


async def set_status(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    product_id: uuid.UUID,
    status: ProductStatus,
    now: datetime,
) -> Product:
    """Move a product to draft, active or archived (archived products are hidden from the
    storefront and search, and from the back-office list unless asked for).

    Becoming active needs an active variant with a price above zero (``ProductNotReady``,
    409); the first activation sets ``published_at``, which later ones keep.
    """
    product = await _load(session, vendor_id=vendor_id, product_id=product_id, lock=True)
    if product.status == status:
        return product
    if status == ProductStatus.ACTIVE and not is_sellable(product.variants):
        raise ProductNotReady(
            "Add an active variant with a price above zero before activating the product."
        )
    product.status = status
    if status == ProductStatus.ACTIVE and product.published_at is None:
        product.published_at = now
    await session.flush()
    await enqueue_reindex(session, [product.id])
    return await _load(session, vendor_id=vendor_id, product_id=product.id)


async def delete_product(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    product_id: uuid.UUID,
    now: datetime,
) -> ProductStatus | None:
    """Delete a draft that was never published; archive any other product instead, since
    it may have been ordered or linked to. Returns ``None`` when deleted, else the new
    status (``archived``)."""
    product = await _load(session, vendor_id=vendor_id, product_id=product_id, lock=True)
    if product.status != ProductStatus.DRAFT or product.published_at is not None:
        product = await set_status(
            session,
            vendor_id=vendor_id,
            product_id=product_id,
            status=ProductStatus.ARCHIVED,
            now=now,
        )
        return product.status
    children = [*product.variants, *product.images]
    # Variants, their stock rows and images go with it (ON DELETE CASCADE). A Core delete:
    # the ORM would try to null the variants' product_id first.
    await session.execute(
        delete(Product).where(Product.id == product.id, Product.vendor_id == vendor_id),
        execution_options={"synchronize_session": False},
    )
    for child in children:
        session.expunge(child)
    session.expunge(product)
    # The outbox row survives the product and tells the indexer to remove it.
    await enqueue_reindex(session, [product_id])
    return None


# --- variants -------------------------------------------------------------------------------


async def _sku_is_free(
    session: AsyncSession, vendor_id: uuid.UUID, sku: str, *, other_than: uuid.UUID | None = None
) -> bool:
    statement = select(Variant.id).where(Variant.vendor_id == vendor_id, Variant.sku == sku)
    if other_than is not None:
        statement = statement.where(Variant.id != other_than)
    return await session.scalar(statement) is None


def _sku_taken(sku: str) -> DomainError:
    return _field_error(SkuTaken, "sku", f"Another of your variants has the SKU {sku!r}.")


def _check_against_siblings(
    siblings: Sequence[Variant], *, currency: str, options: Mapping[str, str], is_active: bool
) -> None:
    """The rules between a product's variants, for one variant as it would become."""
    others = {variant.currency for variant in siblings}
    if others and others != {currency}:
        raise _field_error(
            CurrencyMismatch,
            "currency",
            f"The product's other variants are priced in {', '.join(sorted(others))}.",
        )
    if is_active:
        key = _options_key(options)
        if any(v.is_active and _options_key(v.options) == key for v in siblings):
            raise _field_error(
                DuplicateVariant,
                "options",
                "Another active variant of this product has the same options.",
            )


async def add_variant(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    product_id: uuid.UUID,
    sku: str,
    price_amount: int,
    currency: str,
    options: Mapping[str, str] | None = None,
    compare_at_amount: int | None = None,
    weight_grams: int | None = None,
    barcode: str | None = None,
    length_mm: int | None = None,
    width_mm: int | None = None,
    height_mm: int | None = None,
    is_active: bool = True,
) -> Variant:
    """A new variant of one of the vendor's products, with an empty stock row in the
    vendor's default warehouse (stock itself is :mod:`commerce.catalog.inventory`'s).

    Amounts are minor units of ``currency`` (ISO 4217, the same for all the product's
    variants: ``CurrencyMismatch``, 422). Raises ``SkuTaken`` (409, SKUs are unique per
    vendor), ``DuplicateVariant`` (409, same options as another active variant),
    ``InvalidBarcode``, ``InvalidPrice``, ``InvalidCurrency`` or ``InvalidVariant`` (422).
    """
    values = normalize_variant_fields(
        {
            "sku": sku,
            "options": options,
            "price_amount": price_amount,
            "currency": currency,
            "compare_at_amount": compare_at_amount,
            "weight_grams": weight_grams,
            "barcode": barcode,
            "length_mm": length_mm,
            "width_mm": width_mm,
            "height_mm": height_mm,
            "is_active": is_active,
        }
    )
    _check_compare_at(values["price_amount"], values["compare_at_amount"])
    product = await _load(
        session, vendor_id=vendor_id, product_id=product_id, lock=True, images=False
    )
    _check_against_siblings(
        product.variants,
        currency=values["currency"],
        options=values["options"],
        is_active=values["is_active"],
    )
    # The unique (vendor_id, sku) answers "is the SKU free?" and settles a race with a
    # concurrent request in the same statement; one round trip, no savepoint (imports add
    # thousands of variants).
    insert_variant = (
        pg_insert(Variant)
        .values(id=uuid.uuid4(), product_id=product.id, vendor_id=vendor_id, **values)
        .on_conflict_do_nothing(index_elements=[Variant.vendor_id, Variant.sku])
        .returning(Variant)
    )
    variant = await session.scalar(insert_variant)
    if variant is None:
        raise _sku_taken(values["sku"])
    empty_stock = (
        insert(InventoryLevel)
        .from_select(
            ["variant_id", "warehouse_id", "on_hand", "reserved", "low_stock_threshold"],
            select(
                literal(variant.id, Uuid), Warehouse.id, literal(0), literal(0), literal(0)
            ).where(Warehouse.vendor_id == vendor_id, Warehouse.is_default),
        )
        .returning(InventoryLevel.warehouse_id)
    )
    if await session.scalar(empty_stock) is None:
        # The caller rolls back on the error, the variant row with it.
        raise NoDefaultWarehouse("Set up a default warehouse before adding variants.")
    await enqueue_reindex(session, [product.id])
    return variant


async def update_variant(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    product_id: uuid.UUID,
    variant_id: uuid.UUID,
    changes: Mapping[str, Any],
) -> Variant:
    """Change some of a variant's fields (any of those :func:`add_variant` takes); the
    variant as it would become is checked as a whole, with the same errors.

    An active product must stay sellable: a change that would leave it without an active
    variant priced above zero raises ``ProductNotReady`` (409); set the product to draft or
    archive it first. Nothing is written when nothing differs. ``compare_at_currency``, when
    given, must be the variant's currency as it would become.
    """
    changes = dict(changes)
    compare_at_currency = changes.pop("compare_at_currency", None)
    values = normalize_variant_fields(changes)
    product = await _load(
        session, vendor_id=vendor_id, product_id=product_id, lock=True, images=False
    )
    variant = next((v for v in product.variants if v.id == variant_id), None)
    if variant is None:
        raise NotFound("No such variant of this product.")
    currency = values.get("currency", variant.currency)
    if compare_at_currency is not None and compare_at_currency != currency:
        raise _field_error(
            InvalidPrice, "compare_at", f"The compare-at price must be in {currency}, as the price."
        )
    diff = {name: value for name, value in values.items() if getattr(variant, name) != value}
    if not diff:
        return variant
    merged = {name: diff.get(name, getattr(variant, name)) for name in _VARIANT_FIELDS}
    _check_compare_at(merged["price_amount"], merged["compare_at_amount"])
    siblings = [v for v in product.variants if v.id != variant.id]
    becomes_active = merged["is_active"]
    _check_against_siblings(
        siblings,
        currency=merged["currency"],
        # Reactivating checks the options as much as changing them does.
        options=merged["options"],
        is_active=becomes_active and ("options" in diff or "is_active" in diff),
    )
    if product.status == ProductStatus.ACTIVE:
        after = [(v.is_active, v.price_amount) for v in siblings]
        if not _sellable([*after, (becomes_active, merged["price_amount"])]):
            raise ProductNotReady(
                "This is the product's last active variant with a price: set the product to "
                "draft or archive it first."
            )
    if "sku" in diff and not await _sku_is_free(
        session, vendor_id, diff["sku"], other_than=variant.id
    ):
        raise _sku_taken(diff["sku"])
    try:
        # Changed inside the savepoint: begin_nested() flushes what is pending before it.
        async with session.begin_nested():
            for name, value in diff.items():
                setattr(variant, name, value)
            await session.flush()
    except IntegrityError as error:
        if _constraint(error) == _SKU_CONSTRAINT:
            raise _sku_taken(diff["sku"]) from None
        raise
    await enqueue_reindex(session, [product.id])
    await session.refresh(variant)
    return variant


async def deactivate_variant(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    product_id: uuid.UUID,
    variant_id: uuid.UUID,
) -> Variant:
    """Stop selling a variant (it stays, for orders and history, and can be reactivated).
    ``ProductNotReady`` (409) if it is the last sellable variant of an active product."""
    return await update_variant(
        session,
        vendor_id=vendor_id,
        product_id=product_id,
        variant_id=variant_id,
        changes={"is_active": False},
    )


# --- images ---------------------------------------------------------------------------------


def normalize_image_url(url: object) -> str:
    """An absolute https URL: the storefront is served over https and must not mix content,
    and other schemes (javascript:, data:, file:) have no business in an <img>."""
    url = _text(url, InvalidImage, "url").strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if (
        parts is None
        or parts.scheme.lower() != "https"
        or not host
        or parts.username is not None
        or parts.password is not None
        or len(url) > MAX_URL_LENGTH
        or any(character.isspace() or ord(character) < 32 for character in url)
    ):
        raise _field_error(
            InvalidImage,
            "url",
            f"An image URL is an https:// address of at most {MAX_URL_LENGTH} characters, "
            "without spaces or credentials.",
        )
    return url


def normalize_alt_text(alt_text: object) -> str:
    if alt_text is None:
        return ""
    text = _text(alt_text, InvalidImage, "alt_text")
    if len(text.strip()) > MAX_ALT_TEXT_LENGTH:
        raise _field_error(
            InvalidImage, "alt_text", f"Alt text has at most {MAX_ALT_TEXT_LENGTH} characters."
        )
    return " ".join(text.split())


async def add_image(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    product_id: uuid.UUID,
    url: str,
    alt_text: str = "",
) -> ProductImage:
    """Add an image after the product's others. ``InvalidImage`` (422) unless the URL is
    https; ``ImageLimit`` (409) beyond :data:`MAX_IMAGES`."""
    url, alt_text = normalize_image_url(url), normalize_alt_text(alt_text)
    product = await _load(session, vendor_id=vendor_id, product_id=product_id, lock=True)
    if len(product.images) >= MAX_IMAGES:
        raise ImageLimit(f"A product has at most {MAX_IMAGES} images; delete one first.")
    position = max((image.position for image in product.images), default=-1) + 1
    image = ProductImage(
        id=uuid.uuid4(), product_id=product.id, url=url, alt_text=alt_text, position=position
    )
    # Through the collection: with delete-orphan, an image added on its own is an orphan.
    product.images.append(image)
    await session.flush()
    await enqueue_reindex(session, [product.id])
    return image


async def delete_image(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    product_id: uuid.UUID,
    image_id: uuid.UUID,
) -> None:
    """Remove one of the product's images; the others close the gap in their order."""
    product = await _load(session, vendor_id=vendor_id, product_id=product_id, lock=True)
    image = next((i for i in product.images if i.id == image_id), None)
    if image is None:
        raise NotFound("No such image of this product.")
    product.images.remove(image)  # delete-orphan: the image row goes
    for position, remaining in enumerate(product.images):
        remaining.position = position
    await session.flush()
    await enqueue_reindex(session, [product.id])


async def reorder_images(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    product_id: uuid.UUID,
    image_ids: Sequence[uuid.UUID],
) -> list[ProductImage]:
    """Put the product's images in the order of ``image_ids``, which must list each of them
    exactly once (``InvalidImageOrder``, 422). The first is the main image."""
    product = await _load(session, vendor_id=vendor_id, product_id=product_id, lock=True)
    by_id = {image.id: image for image in product.images}
    if len(image_ids) != len(set(image_ids)) or set(image_ids) != set(by_id):
        raise _field_error(
            InvalidImageOrder, "image_ids", "List every image of the product exactly once."
        )
    if [image.id for image in product.images] != list(image_ids):
        for position, image_id in enumerate(image_ids):
            by_id[image_id].position = position
        await session.flush()
        await enqueue_reindex(session, [product.id])
    return [by_id[image_id] for image_id in image_ids]
