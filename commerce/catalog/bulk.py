"""Product import and export for vendors: CSV with a header row, or JSON (a list of objects).

One row per variant, keyed by SKU within the vendor: a row whose SKU the vendor already has
updates that variant (and its product); any other row creates one. The columns:

=============  ============================================================================
product_slug   which product the row belongs to (a new product gets this slug)
title          the product's title; without product_slug, rows of one file with the same
               title form one product (a new one, unless their SKUs already have one)
description    product description          brand      product brand
category       category path, e.g. "clothing/t-shirts"
tags           "organic|cotton"             status     draft, active or archived
sku            the variant's SKU; a row without one describes a product only, and needs
               product_slug, so that importing it again finds the same product
options        "size=M|colour=black"
price          in major units as a decimal string, "19.99" (JSON numbers are read exactly)
compare_at     the "was" price, the same way  currency   ISO 4217, e.g. EUR
barcode        GTIN-8/12/13/14              weight_grams   whole grams
active         true or false: whether the variant is sold
=============  ============================================================================

A column left out keeps what is stored. So does an empty product cell (JSON: null): files
often fill a product's columns on one of its rows only, and its other rows must not erase
them (clear a brand or a category through the API). A variant's cells are that row's alone:
an empty compare_at, barcode or weight_grams clears it and empty options mean "no options";
only an empty price, currency or active keeps what is stored. Rows apply in file order, each
in its own savepoint with the same rules as the back-office API
(:mod:`commerce.catalog.products`), so a bad row is reported and leaves nothing behind,
while the good rows around it apply.

Export writes every product of the vendor in the same shape, so importing an export
unchanged reports every row ``unchanged``. Images, attributes, tax class and dimensions are
not part of the format and are left as they are.
"""

from __future__ import annotations

import csv
import enum
import io
import json
import re
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from commerce.catalog import products
from commerce.errors import Conflict, DomainError
from core import money
from models import Category, Product, ProductStatus, Variant

MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_IMPORT_ROWS = 10_000

COLUMNS: tuple[str, ...] = (
    "product_slug",
    "title",
    "description",
    "brand",
    "category",
    "tags",
    "status",
    "sku",
    "options",
    "price",
    "compare_at",
    "currency",
    "barcode",
    "weight_grams",
    "active",
)
_VARIANT_COLUMNS = frozenset(
    {"options", "price", "compare_at", "currency", "barcode", "weight_grams", "active"}
)

# Digits only: no sign, exponent, thousands separator or decimal comma, so "1,000" or
# "1e3" is an error rather than a guess.
_DECIMAL = re.compile(r"^[0-9]{1,15}(?:\.[0-9]{1,12})?$")


class ImportFormat(enum.StrEnum):
    CSV = "csv"
    JSON = "json"


class RowStatus(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    ERROR = "error"


class InvalidImport(DomainError):
    status, code, title = 422, "invalid_import", "The import file cannot be read"


class ImportTooLarge(DomainError):
    status, code, title = 413, "import_too_large", "The import file is too large"


class InvalidRow(DomainError):
    status, code, title = 422, "invalid_row", "The row is not valid"


class MissingField(DomainError):
    status, code, title = 422, "missing_field", "The row lacks a field it needs"


class DuplicateRow(Conflict):
    code, title = "duplicate_row", "The SKU is on an earlier row of the file"


class ProductMismatch(Conflict):
    code, title = "product_mismatch", "The SKU belongs to another product"


# --- money ----------------------------------------------------------------------------------


def parse_amount(value: object, currency: str, *, column: str = "price") -> int:
    """A major-unit amount ("19.99", or an int or Decimal from JSON) in minor units of
    ``currency``, exactly: Decimal arithmetic throughout, and more decimals than the
    currency has is an error ("19.999" EUR), never a rounding. Raises ``InvalidPrice``."""
    if isinstance(value, Decimal):
        text = format(value, "f") if value.is_finite() else "nan"
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise products.InvalidPrice(f"{column} must be a decimal amount like 19.99.")
    if text.startswith("-"):
        raise products.InvalidPrice(f"{column} cannot be negative.")
    if not _DECIMAL.match(text):
        raise products.InvalidPrice(
            f"{column} {text[:40]!r} is not a decimal amount like 19.99 (digits and one '.')."
        )
    exponent = money.exponent(currency)
    scaled = Decimal(text).scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise products.InvalidPrice(
            f"{column} {text!r} has more decimals than {currency} has ({exponent})."
        )
    amount = int(scaled)
    if amount > products.MAX_AMOUNT:
        raise products.InvalidPrice(f"{column} {text!r} is too large.")
    return amount


# --- reading files --------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportRow:
    """One row as read: ``line`` is the CSV line it starts on (the header is line 1) or the
    JSON item's position from 1; ``cells`` holds the columns present; ``problem`` says why
    the row could not be read at all."""

    line: int
    cells: dict[str, Any]
    problem: str | None = None


def read_rows(data: bytes, fmt: ImportFormat) -> list[ImportRow]:
    """The rows of an import file. The file as a whole is refused (``ImportTooLarge``, 413;
    ``InvalidImport``, 422) before anything is written when it cannot be read."""
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportTooLarge(f"An import file has at most {MAX_IMPORT_BYTES // 1024 // 1024} MB.")
    try:
        # utf-8-sig: spreadsheet programs like to start their CSV with a byte-order mark.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidImport("The file must be UTF-8 text.") from None
    rows = _csv_rows(text) if fmt == ImportFormat.CSV else _json_rows(text)
    if len(rows) > MAX_IMPORT_ROWS:
        raise ImportTooLarge(
            f"An import has at most {MAX_IMPORT_ROWS} rows; split the file ({len(rows)} rows)."
        )
    if not rows:
        raise InvalidImport("The file has no rows.")
    return rows


def _csv_rows(text: str) -> list[ImportRow]:
    # newline="": quoted cells keep their own line breaks, as written.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[ImportRow] = []
    try:
        header = next(reader, None)
        if not header:
            raise InvalidImport("A CSV import starts with a header row naming its columns.")
        columns = [name.strip().lower() for name in header]
        _check_columns(columns)
        last_line = reader.line_num
        for record in reader:
            line, last_line = last_line + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue  # blank lines, often at the end
            if len(record) != len(columns):
                problem = f"The row has {len(record)} cells; the header names {len(columns)}."
                rows.append(ImportRow(line, {}, problem))
            else:
                rows.append(ImportRow(line, dict(zip(columns, record, strict=True))))
            if len(rows) > MAX_IMPORT_ROWS:
                break  # read_rows reports it; no need to read on
    except csv.Error as error:
        raise InvalidImport(f"CSV line {reader.line_num}: {error}.") from None
    return rows


def _check_columns(columns: list[str]) -> None:
    duplicated = sorted(name for name, count in Counter(columns).items() if count > 1)
    if duplicated:
        raise InvalidImport(f"Columns named twice: {', '.join(duplicated)}.")
    unknown = [name for name in columns if name not in COLUMNS]
    if unknown:
        raise InvalidImport(
            f"Unknown columns: {', '.join(repr(n) for n in unknown)}. "
            f"The columns are: {', '.join(COLUMNS)}."
        )


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _json_rows(text: str) -> list[ImportRow]:
    try:
        # Decimal, never float: "19.99" must stay exactly 19.99.
        payload = json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise InvalidImport(f"The file is not valid JSON: {error}.") from None
    if not isinstance(payload, list):
        raise InvalidImport("A JSON import is a list of objects, one per variant.")
    rows: list[ImportRow] = []
    for line, item in enumerate(payload[: MAX_IMPORT_ROWS + 1], start=1):
        if not isinstance(item, dict):
            rows.append(ImportRow(line, {}, "Each item is an object of column: value."))
            continue
        unknown = [str(key) for key in item if key not in COLUMNS]
        if unknown:
            problem = f"Unknown fields: {', '.join(repr(n) for n in unknown)}."
            rows.append(ImportRow(line, {}, problem))
            continue
        rows.append(ImportRow(line, dict(item)))
    return rows


# --- understanding one row (pure) -----------------------------------------------------------


@dataclass
class _RowInput:
    sku: str | None
    product_slug: str | None
    # Only the columns the row sets, already tidied by the products rules; prices stay raw
    # until the currency they are in is known.
    product: dict[str, Any] = field(default_factory=dict)
    variant: dict[str, Any] = field(default_factory=dict)


def _blank(value: object) -> bool:
    if isinstance(value, str):
        return not value.strip()
    return value is None or value == [] or value == {}


def _text(value: object, column: str) -> str:
    if not isinstance(value, str):
        raise InvalidRow(f"{column} must be text.")
    if "\x00" in value:
        raise InvalidRow(f"{column} cannot contain NUL characters.")
    return value


def _split(value: object, column: str) -> list[str]:
    """In CSV "a|b"; JSON may also send a list."""
    if isinstance(value, list):
        return [_text(item, column) for item in value]
    return [part for part in _text(value, column).split("|") if part.strip()]


def _options(value: object) -> dict[str, str]:
    if isinstance(value, Mapping):
        return products.normalize_options(value)
    options: dict[str, str] = {}
    for part in _split(value, "options"):
        name, equals, option = part.partition("=")
        if not equals:
            raise InvalidRow(f"options look like size=M|colour=black, not {part.strip()!r}.")
        if name.strip().lower() in options:
            raise InvalidRow(f"The option {name.strip()!r} is twice.")
        options[name.strip().lower()] = option
    return products.normalize_options(options)


def _whole_number(value: object, column: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    raise InvalidRow(f"{column} is a whole number.")


_TRUE, _FALSE = {"true", "1", "yes", "y"}, {"false", "0", "no", "n"}


def _flag(value: object, column: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise InvalidRow(f"{column} is true or false.")


def _parse_row(cells: Mapping[str, Any]) -> _RowInput:
    """Check every cell of a row on its own; raises the first problem."""
    sku = None if _blank(cells.get("sku")) else products.normalize_sku(cells["sku"])
    slug_cell = cells.get("product_slug")
    slug = None if _blank(slug_cell) else products.normalize_slug(_text(slug_cell, "product_slug"))
    row = _RowInput(sku=sku, product_slug=slug)
    product, variant = row.product, row.variant
    for column, value in cells.items():
        blank = _blank(value)
        match column:
            case "title" | "description" | "brand" | "category" | "tags" | "status" if blank:
                pass  # see the module docstring: an empty product cell keeps what is stored
            case "title":
                product["title"] = products.normalize_title(_text(value, column))
            case "description":
                product["description"] = products.normalize_description(_text(value, column))
            case "brand":
                product["brand"] = products.normalize_brand(value)
            case "category":
                product["category"] = _text(value, column).strip().strip("/").lower()
            case "tags":
                product["tags"] = products.normalize_tags(_split(value, column))
            case "status":
                try:
                    product["status"] = ProductStatus(_text(value, column).strip().lower())
                except ValueError:
                    raise InvalidRow("status is draft, active or archived.") from None
            case "options":
                variant["options"] = {} if blank else _options(value)
            case "price" if not blank:
                variant["price"] = value
            case "compare_at":
                variant["compare_at"] = None if blank else value
            case "currency" if not blank:
                variant["currency"] = products.normalize_currency(value)
            case "barcode":
                variant["barcode"] = None if blank else products.normalize_barcode(value)
            case "weight_grams":
                weight = None if blank else _whole_number(value, column)
                variant["weight_grams"] = weight
            case "active" if not blank:
                variant["is_active"] = _flag(value, column)
    if sku is None:
        if any(not _blank(cells.get(column)) for column in _VARIANT_COLUMNS):
            raise MissingField("sku: the row has variant columns but no SKU.")
        if slug is None:
            raise MissingField(
                "A row without a SKU describes a product, and needs its product_slug."
            )
        row.variant.clear()
    return row


def _variant_values(row: _RowInput, currency: str) -> dict[str, Any]:
    """The row's variant fields as :mod:`products` takes them, amounts in minor units."""
    values = {
        name: value for name, value in row.variant.items() if name not in {"price", "compare_at"}
    }
    if "price" in row.variant:
        values["price_amount"] = parse_amount(row.variant["price"], currency)
    if "compare_at" in row.variant:
        raw = row.variant["compare_at"]
        values["compare_at_amount"] = (
            None if raw is None else parse_amount(raw, currency, column="compare_at")
        )
    return products.normalize_variant_fields(values)


# --- importing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowResult:
    line: int
    sku: str | None
    status: RowStatus
    code: str | None = None
    message: str | None = None
    product_id: uuid.UUID | None = None


@dataclass(frozen=True)
class ImportReport:
    dry_run: bool
    rows: list[RowResult]

    def count(self, status: RowStatus) -> int:
        return sum(1 for row in self.rows if row.status == status)


@dataclass
class _ImportState:
    vendor_id: uuid.UUID
    now: datetime
    sku_lines: dict[str, int] = field(default_factory=dict)
    # Products that earlier rows of this file made or used, by folded title, for rows
    # that have a title but no product_slug. Plain ids: ORM objects do not survive a
    # savepoint rolled back by a later row.
    by_title: dict[str, uuid.UUID] = field(default_factory=dict)
    categories: dict[str, uuid.UUID | None] = field(default_factory=dict)


async def import_products(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    data: bytes,
    fmt: ImportFormat,
    dry_run: bool = False,
    now: datetime,
) -> ImportReport:
    """Create or update the vendor's products and variants from an import file, row by row.

    Each row applies in its own savepoint: a row that breaks a rule is reported with its
    error code and message and leaves nothing behind; the others apply. With ``dry_run``
    every row is checked and applied exactly the same way, then all of it is rolled back,
    so the report says what an import would do and nothing is written. Raises
    ``ImportTooLarge`` or ``InvalidImport`` for a file that cannot be read at all.
    """
    rows = read_rows(data, fmt)
    state = _ImportState(vendor_id, now)
    if not dry_run:
        return ImportReport(False, [await _import_row(session, row, state) for row in rows])
    everything = await session.begin_nested()
    try:
        results = [await _import_row(session, row, state) for row in rows]
    finally:
        await everything.rollback()
    return ImportReport(True, [_without_product(result) for result in results])


def _without_product(result: RowResult) -> RowResult:
    # After a dry run no product id points at anything.
    return RowResult(result.line, result.sku, result.status, result.code, result.message)


async def _import_row(session: AsyncSession, row: ImportRow, state: _ImportState) -> RowResult:
    raw_sku = row.cells.get("sku")
    sku = raw_sku.strip() if isinstance(raw_sku, str) and raw_sku.strip() else None
    try:
        if row.problem is not None:
            raise InvalidRow(row.problem)
        parsed = _parse_row(row.cells)
        sku = parsed.sku
        if sku is not None:
            first = state.sku_lines.setdefault(sku, row.line)
            if first != row.line:
                raise DuplicateRow(f"The SKU {sku!r} is already on line {first}.")
        async with session.begin_nested():
            status, product_id = await _apply_row(session, parsed, state)
    except DomainError as error:
        return RowResult(row.line, sku, RowStatus.ERROR, error.code, error.detail)
    except (IntegrityError, DataError):
        # The rules above should have caught it; the savepoint keeps the rest importable.
        return RowResult(
            row.line, sku, RowStatus.ERROR, "conflict", "The database refused the row."
        )
    title = parsed.product.get("title")
    if title is not None:
        state.by_title.setdefault(title.casefold(), product_id)
    return RowResult(row.line, sku, status, product_id=product_id)


async def _category_id(session: AsyncSession, state: _ImportState, path: str) -> uuid.UUID:
    if path not in state.categories:
        state.categories[path] = await session.scalar(
            select(Category.id).where(Category.path == path)
        )
    category_id = state.categories[path]
    if category_id is None:
        raise products.UnknownCategory(f"No category has the path {path!r}.")
    return category_id


def _fresh(statement: Any) -> Any:
    # Objects in the session may predate a savepoint a later row rolled back: read afresh.
    return statement.execution_options(populate_existing=True)


async def _find(
    session: AsyncSession, parsed: _RowInput, state: _ImportState
) -> tuple[Variant | None, Product | None]:
    """The row's variant (by SKU) and product (the variant's, else by slug, else one an
    earlier row with the same title made or used). Fewest queries first: most rows of a
    re-import are existing SKUs, answered by one query."""
    vendor_id = state.vendor_id
    if parsed.sku is not None:
        found = (
            await session.execute(
                _fresh(
                    select(Variant, Product)
                    .join(Product, Product.id == Variant.product_id)
                    .where(
                        Variant.vendor_id == vendor_id,
                        Variant.sku == parsed.sku,
                        Product.vendor_id == vendor_id,
                    )
                )
            )
        ).first()
        if found is not None:
            variant, product = found
            if parsed.product_slug is not None and product.slug != parsed.product_slug:
                raise ProductMismatch(
                    f"The SKU {variant.sku!r} belongs to the product {product.slug!r}, not "
                    f"{parsed.product_slug!r}."
                )
            return variant, product
    if parsed.product_slug is not None:
        by_slug = select(Product).where(
            Product.vendor_id == vendor_id, Product.slug == parsed.product_slug
        )
        return None, await session.scalar(_fresh(by_slug))
    title = parsed.product.get("title")
    if title is None:
        raise MissingField("A row needs a product_slug or a title, to know its product.")
    product_id = state.by_title.get(title.casefold())
    if product_id is None:
        return None, None
    return None, await session.scalar(_fresh(select(Product).where(Product.id == product_id)))


async def _apply_row(
    session: AsyncSession, parsed: _RowInput, state: _ImportState
) -> tuple[RowStatus, uuid.UUID]:
    vendor_id = state.vendor_id
    created = changed = False
    fields = parsed.product
    category_id = None
    if "category" in fields:
        category_id = await _category_id(session, state, fields["category"])
    variant, product = await _find(session, parsed, state)

    if product is None:
        if "title" not in fields:
            raise MissingField("title: a new product needs a title.")
        product = await products.create_product(
            session,
            vendor_id=vendor_id,
            title=fields["title"],
            description=fields.get("description", ""),
            brand=fields.get("brand"),
            category_id=category_id,
            tags=fields.get("tags", []),
            slug=parsed.product_slug,
        )
        created = True
    else:
        changes: dict[str, Any] = {
            name: fields[name]
            for name in ("title", "description", "brand", "tags")
            if name in fields and getattr(product, name) != fields[name]
        }
        if "category" in fields and product.category_id != category_id:
            changes["category_id"] = category_id
        if changes:
            product = await products.update_product(
                session, vendor_id=vendor_id, product_id=product.id, changes=changes
            )
            changed = True

    if parsed.sku is not None and variant is None:
        missing = [name for name in ("price", "currency") if name not in parsed.variant]
        if missing:
            raise MissingField(f"{' and '.join(missing)}: a new variant needs them.")
        values = _variant_values(parsed, parsed.variant["currency"])
        await products.add_variant(
            session, vendor_id=vendor_id, product_id=product.id, sku=parsed.sku, **values
        )
        created = True
    elif variant is not None:
        values = _variant_values(parsed, parsed.variant.get("currency", variant.currency))
        diff = {name: value for name, value in values.items() if getattr(variant, name) != value}
        if "currency" in diff and "price_amount" not in values:
            raise MissingField("price: a variant moving to another currency needs its price.")
        if diff:
            await products.update_variant(
                session,
                vendor_id=vendor_id,
                product_id=product.id,
                variant_id=variant.id,
                changes=diff,
            )
            changed = True

    # Last, so that a row can bring a new product's first variant and activate it.
    if "status" in fields and product.status != fields["status"]:
        await products.set_status(
            session,
            vendor_id=vendor_id,
            product_id=product.id,
            status=fields["status"],
            now=state.now,
        )
        changed = True

    if created:
        return RowStatus.CREATED, product.id
    return (RowStatus.UPDATED if changed else RowStatus.UNCHANGED), product.id


# --- exporting ------------------------------------------------------------------------------


async def export_rows(session: AsyncSession, *, vendor_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every product and variant of the vendor as import rows (JSON types: tags a list,
    options an object, amounts decimal strings), oldest product first, variants by SKU.
    A product without variants is one row without a SKU."""
    found = (
        await session.scalars(
            select(Product)
            .where(Product.vendor_id == vendor_id)
            .options(selectinload(Product.variants))
            .order_by(Product.created_at, Product.id)
            .execution_options(populate_existing=True)
        )
    ).all()
    category_ids = {p.category_id for p in found if p.category_id is not None}
    paths: dict[uuid.UUID, str] = {}
    if category_ids:
        result = await session.execute(
            select(Category.id, Category.path).where(Category.id.in_(category_ids))
        )
        paths = {category_id: path for category_id, path in result}
    rows: list[dict[str, Any]] = []
    for product in found:
        base: dict[str, Any] = {
            "product_slug": product.slug,
            "title": product.title,
            "description": product.description,
            "brand": product.brand,
            "category": paths.get(product.category_id) if product.category_id else None,
            "tags": list(product.tags),
            "status": product.status.value,
        }
        if not product.variants:
            rows.append({**base, **dict.fromkeys(COLUMNS[7:]), "options": {}})
        for variant in product.variants:
            currency = variant.currency
            compare_at = variant.compare_at_amount
            rows.append(
                {
                    **base,
                    "sku": variant.sku,
                    "options": dict(sorted(variant.options.items())),
                    "price": money.decimal_string(variant.price_amount, currency),
                    "compare_at": None
                    if compare_at is None
                    else money.decimal_string(compare_at, currency),
                    "currency": currency,
                    "barcode": variant.barcode,
                    "weight_grams": variant.weight_grams,
                    "active": variant.is_active,
                }
            )
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "|".join(value)
    if isinstance(value, dict):
        return "|".join(f"{name}={option}" for name, option in value.items())
    return str(value)


async def export_products(session: AsyncSession, *, vendor_id: uuid.UUID, fmt: ImportFormat) -> str:
    """The vendor's catalog as an import file: CSV with a header (RFC 4180 line ends) or a
    JSON list; :func:`import_products` reads either back."""
    rows = await export_rows(session, vendor_id=vendor_id)
    if fmt == ImportFormat.JSON:
        return json.dumps(rows, ensure_ascii=False, indent=1)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(_cell(row[column]) for column in COLUMNS)
    return buffer.getvalue()
