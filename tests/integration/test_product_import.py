"""Product import and export: exact money, row-by-row savepoints, dry runs, limits, and an
export that imports back unchanged."""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.catalog import bulk, products
from core import money
from models import (
    InventoryLevel,
    Product,
    ProductStatus,
    SearchOutbox,
    Variant,
    Vendor,
    VendorMembership,
    VendorRole,
)
from tests.catalog_factories import make_category, make_vendor
from tests.factories import Account, sign_up

PROBLEM = "application/problem+json"


@dataclass
class Shop:
    owner: Account
    vendor: Vendor

    @property
    def products(self) -> str:
        return f"/vendors/{self.vendor.id}/products"


async def _shop(client: httpx.AsyncClient, db_session: AsyncSession) -> Shop:
    owner = await sign_up(client, db_session)
    return Shop(owner, await make_vendor(db_session, owner_id=uuid.UUID(owner.id)))


@pytest.fixture
async def shop(client: httpx.AsyncClient, db_session: AsyncSession) -> Shop:
    return await _shop(client, db_session)


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code, body
    return body


def _csv(rows: list[dict[str, Any]]) -> bytes:
    columns = [c for c in bulk.COLUMNS if any(c in row for row in rows)]
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


async def _import(
    client: httpx.AsyncClient,
    shop: Shop,
    content: bytes,
    *,
    media_type: str = "text/csv",
    dry_run: bool = False,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.post(
        f"{shop.products}/import",
        params={"dry_run": "true"} if dry_run else {},
        content=content,
        headers={"content-type": media_type, **(headers or shop.owner.headers)},
    )


async def _report(
    client: httpx.AsyncClient, shop: Shop, content: bytes, **kwargs: Any
) -> dict[str, Any]:
    response = await _import(client, shop, content, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def _statuses(report: dict[str, Any]) -> list[tuple[int, str, str | None]]:
    return [(row["line"], row["status"], row["code"]) for row in report["rows"]]


def _sku() -> str:
    return f"SKU-{uuid.uuid4().hex[:10]}"


async def _variant(db_session: AsyncSession, vendor: Vendor, sku: str) -> Variant | None:
    return await db_session.scalar(
        select(Variant)
        .where(Variant.vendor_id == vendor.id, Variant.sku == sku)
        .execution_options(populate_existing=True)
    )


async def _count(db_session: AsyncSession, model: Any, *where: Any) -> int:
    return await db_session.scalar(select(func.count()).select_from(model).where(*where)) or 0


# --- money --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "minor"),
    [
        ("19.99", "EUR", 1999),
        ("4.35", "EUR", 435),  # float(4.35) * 100 == 434.99999999999994
        ("0.29", "EUR", 29),  # int(0.29 * 100) == 28
        ("19.990", "EUR", 1999),  # trailing zeros are still exact
        ("19", "EUR", 1900),
        (" 0.5 ", "EUR", 50),
        ("1500", "JPY", 1500),
        ("1500.0", "JPY", 1500),
        ("1.234", "KWD", 1234),
        ("0.001", "BHD", 1),
        ("1.5", "CLF", 15000),
        ("99999999999.99", "EUR", 9999999999999),
        (Decimal("19.99"), "EUR", 1999),
        (7, "USD", 700),
    ],
)
def test_major_units_convert_to_minor_units_exactly(value: Any, currency: str, minor: int) -> None:
    assert bulk.parse_amount(value, currency) == minor


@pytest.mark.parametrize(
    ("value", "currency"),
    [
        ("19.999", "EUR"),  # a fraction of a cent cannot be charged
        ("1.5", "JPY"),
        ("1.2345", "KWD"),
        ("-1.00", "EUR"),
        ("1,99", "EUR"),
        ("1 000", "EUR"),
        ("1e3", "EUR"),
        ("€19.99", "EUR"),
        (".99", "EUR"),
        ("19.", "EUR"),
        ("", "EUR"),
        ("NaN", "EUR"),
        (Decimal("NaN"), "EUR"),
        (19.99, "EUR"),  # a float is never trusted
        (True, "EUR"),
        ("999999999999999.99", "EUR"),  # above products.MAX_AMOUNT
    ],
)
def test_inexact_or_malformed_amounts_are_refused(value: Any, currency: str) -> None:
    with pytest.raises(products.InvalidPrice):
        bulk.parse_amount(value, currency)


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [(1999, "EUR", "19.99"), (5, "EUR", "0.05"), (1500, "JPY", "1500"), (1234, "KWD", "1.234")],
)
def test_formatting_reads_back(minor: int, currency: str, text: str) -> None:
    assert money.decimal_string(minor, currency) == text
    assert bulk.parse_amount(text, currency) == minor


# --- importing ----------------------------------------------------------------------------------


async def test_csv_import_creates_grouped_products_with_exact_prices(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    category = await make_category(db_session)
    title, slug = f"Tee {uuid.uuid4().hex[:6]}", f"mug-{uuid.uuid4().hex[:6]}"
    s, m, mug, bowl = _sku(), _sku(), _sku(), _sku()
    content = _csv(
        [
            {
                "title": title,
                "description": "Soft, heavy cotton.\nMade to last.",
                "brand": "Northwind",
                "category": category.path,
                "tags": "Cotton|basics| cotton",
                "status": "active",
                "sku": s,
                "options": "size=S|colour=black",
                "price": "19.99",
                "compare_at": "24.99",
                "currency": "EUR",
                "barcode": "4006381333931",
                "weight_grams": "220",
            },
            {"title": title, "sku": m, "options": "size=M|colour=black", "price": "19.99"}
            | {"currency": "EUR"},
            {"product_slug": slug, "title": "Mug", "sku": mug, "price": "1500", "currency": "JPY"},
            {"title": "Bowl", "sku": bowl, "price": "1.234", "currency": "KWD", "active": "no"},
        ]
    )
    report = await _report(client, shop, content)
    assert _statuses(report) == [
        (2, "created", None),
        (4, "created", None),
        (5, "created", None),
        (6, "created", None),
    ]
    assert (report["created"], report["errors"], report["dry_run"]) == (4, 0, False)

    small, medium = (
        await _variant(db_session, shop.vendor, s),
        await _variant(db_session, shop.vendor, m),
    )
    assert small is not None
    assert medium is not None
    assert small.product_id == medium.product_id  # grouped by title
    assert (small.price_amount, small.compare_at_amount, small.currency) == (1999, 2499, "EUR")
    assert small.options == {"size": "S", "colour": "black"}
    assert (small.barcode, small.weight_grams) == ("4006381333931", 220)
    tee = await db_session.get(Product, small.product_id, populate_existing=True)
    assert tee is not None
    assert tee.status == ProductStatus.ACTIVE
    assert tee.published_at is not None
    assert tee.description == "Soft, heavy cotton.\nMade to last."
    assert (tee.tags, tee.category_id, tee.brand) == (
        ["cotton", "basics"],
        category.id,
        "Northwind",
    )
    assert report["rows"][0]["product_id"] == str(tee.id)

    mug_variant = await _variant(db_session, shop.vendor, mug)
    assert mug_variant is not None
    assert (mug_variant.price_amount, mug_variant.currency) == (
        1500,
        "JPY",
    )
    mug_product = await db_session.get(Product, mug_variant.product_id)
    assert mug_product is not None
    assert mug_product.slug == slug
    bowl_variant = await _variant(db_session, shop.vendor, bowl)
    assert bowl_variant is not None
    assert (bowl_variant.price_amount, bowl_variant.is_active) == (1234, False)

    # Each new variant got its (empty) stock row, and each product an outbox entry.
    for variant in (small, medium, mug_variant, bowl_variant):
        levels = await _count(db_session, InventoryLevel, InventoryLevel.variant_id == variant.id)
        assert levels == 1
        outbox = await _count(
            db_session, SearchOutbox, SearchOutbox.product_id == variant.product_id
        )
        assert outbox >= 1


async def test_bad_rows_are_reported_and_leave_nothing_behind(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    existing = _sku()
    first = await _report(
        client,
        shop,
        _csv([{"title": "Existing", "sku": existing, "price": "10.00", "currency": "EUR"}]),
    )
    assert _statuses(first) == [(2, "created", None)]
    products_before = await _count(db_session, Product, Product.vendor_id == shop.vendor.id)

    good, good_too = _sku(), _sku()
    bad_titles = [f"Never {n} {uuid.uuid4().hex[:6]}" for n in range(4)]
    content = _csv(
        [
            {"title": "Good", "sku": good, "price": "5.00", "currency": "EUR", "options": "size=S"},
            # A new product whose only variant is bad: neither may exist afterwards.
            {"title": bad_titles[0], "sku": _sku(), "price": "5.00", "currency": "EUR"}
            | {"barcode": "4006381333932"},
            {"title": "Good", "sku": good_too, "price": "6.00", "currency": "EUR"}
            | {"options": "size=M"},
            {"sku": existing, "price": "19.999", "currency": "EUR"},
            {"title": "Good", "sku": good, "price": "7.00", "currency": "EUR"},
            {"title": bad_titles[1], "sku": _sku(), "price": "5", "currency": "EUR"}
            | {"category": "no/such/category"},
            # The product would be created, then activating it fails: the whole row goes.
            {"title": bad_titles[2], "sku": _sku(), "price": "0", "currency": "EUR"}
            | {"status": "active"},
            {"title": bad_titles[3], "sku": _sku(), "currency": "EUR"},
            {"title": "Good", "sku": "bad sku", "price": "1", "currency": "EUR"},
            {"title": "Good", "sku": _sku(), "price": "1", "currency": "EUROS"},
            {"title": "Good", "sku": _sku(), "price": "1", "currency": "USD", "options": "size=L"},
        ]
    )
    report = await _report(client, shop, content)
    assert _statuses(report) == [
        (2, "created", None),
        (3, "error", "invalid_barcode"),
        (4, "created", None),
        (5, "error", "invalid_price"),
        (6, "error", "duplicate_row"),
        (7, "error", "unknown_category"),
        (8, "error", "product_not_ready"),
        (9, "error", "missing_field"),
        (10, "error", "invalid_variant"),
        (11, "error", "invalid_currency"),
        (12, "error", "currency_mismatch"),
    ]
    assert (report["created"], report["updated"], report["errors"]) == (2, 0, 9)
    assert all(row["message"] for row in report["rows"] if row["status"] == "error")
    assert report["rows"][1]["sku"] is not None

    for title in bad_titles:
        assert await _count(db_session, Product, Product.title == title) == 0
    assert await _count(db_session, Product, Product.vendor_id == shop.vendor.id) == (
        products_before + 1
    )
    stored = await _variant(db_session, shop.vendor, existing)
    assert stored is not None
    assert stored.price_amount == 1000
    good_variant, good_too_variant = (
        await _variant(db_session, shop.vendor, good),
        await _variant(db_session, shop.vendor, good_too),
    )
    assert good_variant is not None
    assert good_too_variant is not None
    assert good_variant.price_amount == 500  # the duplicate row did not apply
    assert good_variant.product_id == good_too_variant.product_id

    # A SKU stays with its product: naming another one is an error, not a move.
    elsewhere = _csv([{"sku": existing, "product_slug": "some-other-product", "price": "1"}])
    assert _statuses(await _report(client, shop, elsewhere)) == [(2, "error", "product_mismatch")]


async def test_import_updates_by_sku_and_reports_unchanged_rows(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    sku = _sku()
    slug = f"kettle-{uuid.uuid4().hex[:6]}"
    row = {"product_slug": slug, "title": "Kettle", "sku": sku, "price": "30.00"} | {
        "currency": "EUR",
        "options": "colour=steel",
    }
    assert _statuses(await _report(client, shop, _csv([row]))) == [(2, "created", None)]
    product_id = (await _variant(db_session, shop.vendor, sku)).product_id  # type: ignore[union-attr]
    outbox = await _count(db_session, SearchOutbox, SearchOutbox.product_id == product_id)

    assert _statuses(await _report(client, shop, _csv([row]))) == [(2, "unchanged", None)]
    assert await _count(db_session, SearchOutbox, SearchOutbox.product_id == product_id) == outbox

    changed = row | {"price": "27.50", "title": "Steel Kettle", "status": "active"}
    assert _statuses(await _report(client, shop, _csv([changed]))) == [(2, "updated", None)]
    variant = await _variant(db_session, shop.vendor, sku)
    product = await db_session.get(Product, product_id, populate_existing=True)
    assert variant is not None
    assert product is not None
    assert (variant.price_amount, product.title, product.status) == (2750, "Steel Kettle", "active")
    assert product.slug == slug
    assert await _count(db_session, SearchOutbox, SearchOutbox.product_id == product_id) > outbox

    # A row keyed by SKU alone (no title, no slug) updates just the variant.
    price_only = _csv([{"sku": sku, "price": "25"}])
    assert _statuses(await _report(client, shop, price_only)) == [(2, "updated", None)]
    assert (await _variant(db_session, shop.vendor, sku)).price_amount == 2500  # type: ignore[union-attr]


async def test_the_same_sku_in_another_vendor_is_another_variant(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    sku = _sku()
    other = await _shop(client, db_session)
    content = _csv([{"title": "Lamp", "sku": sku, "price": "40", "currency": "EUR"}])
    assert _statuses(await _report(client, other, content)) == [(2, "created", None)]
    assert _statuses(await _report(client, shop, content)) == [(2, "created", None)]
    mine, theirs = (
        await _variant(db_session, shop.vendor, sku),
        await _variant(db_session, other.vendor, sku),
    )
    assert mine is not None
    assert theirs is not None
    assert mine.id != theirs.id


async def test_dry_run_reports_the_same_and_writes_nothing(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    existing = _sku()
    await _report(
        client, shop, _csv([{"title": "Old", "sku": existing, "price": "1", "currency": "EUR"}])
    )
    rows = [
        {"title": "New", "sku": _sku(), "price": "2.50", "currency": "EUR", "options": "size=S"},
        {"sku": existing, "price": "3"},
        {"title": "New", "sku": _sku(), "price": "2.505", "currency": "EUR", "options": "size=M"},
        {"title": "New", "sku": _sku(), "price": "2.75", "currency": "EUR", "options": "size=L"},
    ]
    content = _csv(rows)

    async def snapshot() -> tuple[int, ...]:
        return (
            await _count(db_session, Product, Product.vendor_id == shop.vendor.id),
            await _count(db_session, Variant, Variant.vendor_id == shop.vendor.id),
            await _count(db_session, InventoryLevel),
            await _count(db_session, SearchOutbox),
        )

    before = await snapshot()
    dry = await _report(client, shop, content, dry_run=True)
    assert dry["dry_run"] is True
    assert await snapshot() == before
    assert (await _variant(db_session, shop.vendor, existing)).price_amount == 100  # type: ignore[union-attr]
    assert all(row["product_id"] is None for row in dry["rows"])

    real = await _report(client, shop, content)
    assert (
        _statuses(dry)
        == _statuses(real)
        == [
            (2, "created", None),
            (3, "updated", None),
            (4, "error", "invalid_price"),
            (5, "created", None),
        ]
    )
    assert await snapshot() != before


async def test_json_import_reads_numbers_exactly(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    sku, other = _sku(), _sku()
    payload = (
        b'[{"title": "Scarf", "sku": "%s", "price": 4.35, "currency": "EUR", '
        b'"tags": ["Wool", "winter"], "options": {"Colour": "red"}, "weight_grams": 80}, '
        b'{"title": "Scarf", "sku": "%s", "price": 4.355, "currency": "EUR"}, '
        b'"not an object", {"sku": "x", "colour": "red"}, '
        b'{"title": "Scarf", "sku": "y", "options": [1], "price": "1", "currency": "EUR"}, '
        b'{"title": "Scarf", "sku": "z", "tags": [1], "price": "1", "currency": "EUR"}, '
        b'{"title": "Scarf", "sku": "w", "price": "1", "currency": "EUR", "active": "maybe"}]'
    ) % (sku.encode(), other.encode())
    report = await _report(client, shop, payload, media_type="application/json; charset=utf-8")
    assert _statuses(report) == [
        (1, "created", None),
        (2, "error", "invalid_price"),
        (3, "error", "invalid_row"),
        (4, "error", "invalid_row"),
        (5, "error", "invalid_row"),
        (6, "error", "invalid_row"),
        (7, "error", "invalid_row"),
    ]
    variant = await _variant(db_session, shop.vendor, sku)
    assert variant is not None
    assert (variant.price_amount, variant.options, variant.weight_grams) == (
        435,
        {"colour": "red"},
        80,
    )


# --- the file as a whole ------------------------------------------------------------------------


async def test_files_that_cannot_be_read_are_refused_whole(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    before = await _count(db_session, Product, Product.vendor_id == shop.vendor.id)
    too_many = b"title,sku,price,currency\n" + b"".join(
        b"T,S-%d,1,EUR\n" % n for n in range(bulk.MAX_IMPORT_ROWS + 1)
    )
    _problem(await _import(client, shop, too_many), 413, "import_too_large")
    exactly = b"title,sku,price,currency\n" + b"T,\n" * bulk.MAX_IMPORT_ROWS
    assert (await _report(client, shop, exactly, dry_run=True))["errors"] == bulk.MAX_IMPORT_ROWS
    huge = b"title,sku,price,currency\n" + b"x" * bulk.MAX_IMPORT_BYTES
    _problem(await _import(client, shop, huge), 413, "import_too_large")
    _problem(
        await _import(client, shop, b"{}", media_type="text/plain"), 415, "unsupported_media_type"
    )
    _problem(await _import(client, shop, b"sku,prcie\nA,1\n"), 422, "invalid_import")
    _problem(await _import(client, shop, b"sku,sku\nA,B\n"), 422, "invalid_import")
    _problem(await _import(client, shop, b""), 422, "invalid_import")
    _problem(await _import(client, shop, b"sku,title\n"), 422, "invalid_import")
    _problem(await _import(client, shop, b'sku,title\n"A,B\n'), 422, "invalid_import")
    _problem(await _import(client, shop, b"\xff\xfesku"), 422, "invalid_import")
    for bad_json in (b"{not json", b'{"sku": "A"}', b"[NaN]", b"[" * 100_000):
        _problem(
            await _import(client, shop, bad_json, media_type="application/json"),
            422,
            "invalid_import",
        )
    assert await _count(db_session, Product, Product.vendor_id == shop.vendor.id) == before


async def test_ragged_csv_rows_are_row_errors_with_line_numbers(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    sku = _sku()
    content = (
        "\ufefftitle,description,sku,price,currency\r\n"  # a spreadsheet's byte-order mark
        'Desk,"Oak, solid.\nTwo drawers.",' + sku + ",120.00,EUR\r\n"
        "\r\n"
        "Chair,only three cells,x\r\n"
        "Stool,NUL\x00,S-1,1,EUR\r\n"
    ).encode()
    report = await _report(client, shop, content)
    assert _statuses(report) == [
        (2, "created", None),
        (5, "error", "invalid_row"),
        (6, "error", "invalid_row"),
    ]


async def test_only_managers_import_their_own_vendor(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    staff = await sign_up(client, db_session)
    db_session.add(
        VendorMembership(
            vendor_id=shop.vendor.id, user_id=uuid.UUID(staff.id), role=VendorRole.STAFF
        )
    )
    await db_session.flush()
    content = _csv([{"title": "T", "sku": _sku(), "price": "1", "currency": "EUR"}])
    _problem(await _import(client, shop, content, headers=staff.headers), 403, "forbidden")
    stranger = await _shop(client, db_session)
    _problem(await _import(client, shop, content, headers=stranger.owner.headers), 404, "not_found")
    assert await _count(db_session, Variant, Variant.vendor_id == shop.vendor.id) == 0


# --- export -------------------------------------------------------------------------------------


async def _catalog(client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop) -> None:
    """A catalog with the awkward cases: quotes, commas and line breaks in text, three
    currency exponents, compare-at prices, an inactive variant, a product without variants,
    an archived product, a category, options and tags."""
    category = await make_category(db_session)
    tag = uuid.uuid4().hex[:6]
    rows = [
        {
            "product_slug": f"tee-{tag}",
            "title": 'The "Everyday" Tee, 2-pack',
            "description": '  Line one,\r\nline "two"\n\ttabbed ünïcödé ✓ ',
            "brand": "Northwind",
            "category": category.path,
            "tags": "cotton|basics",
            "status": "active",
            "sku": f"TEE-S-{tag}",
            "options": "size=S|colour=black",
            "price": "19.99",
            "compare_at": "25.00",
            "currency": "EUR",
            "barcode": "4006381333931",
            "weight_grams": "220",
            "active": "true",
        },
        {"product_slug": f"tee-{tag}", "sku": f"TEE-M-{tag}", "options": "size=M|colour=black"}
        | {"price": "19.99", "currency": "EUR", "active": "false"},
        {"product_slug": f"tea-{tag}", "title": "Sencha", "sku": f"TEA-{tag}", "price": "1500"}
        | {"currency": "JPY", "status": "archived"},
        {"product_slug": f"dates-{tag}", "title": "Dates", "sku": f"DATES-{tag}"}
        | {"price": "1.234", "compare_at": "2.000", "currency": "KWD"},
        {"product_slug": f"empty-{tag}", "title": "Coming soon", "description": "Later."},
    ]
    report = await _report(client, shop, _csv(rows))
    assert report["errors"] == 0, report
    assert report["created"] == 5


@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_export_then_import_changes_nothing(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop, fmt: str
) -> None:
    await _catalog(client, db_session, shop)
    exported = await client.get(
        f"{shop.products}/export", params={"format": fmt}, headers=shop.owner.headers
    )
    assert exported.status_code == 200, exported.text
    assert "attachment" in exported.headers["content-disposition"]
    media_type = "text/csv" if fmt == "csv" else "application/json"
    assert exported.headers["content-type"].startswith(media_type)
    outbox = await _count(db_session, SearchOutbox)

    report = await _report(client, shop, exported.content, media_type=media_type)
    assert report["unchanged"] == len(report["rows"]) == 5, report
    assert await _count(db_session, SearchOutbox) == outbox

    again = await client.get(
        f"{shop.products}/export", params={"format": fmt}, headers=shop.owner.headers
    )
    assert again.content == exported.content


async def test_export_holds_the_vendors_catalog_in_the_import_format(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    await _catalog(client, db_session, shop)
    other = await _shop(client, db_session)
    await _report(
        client, other, _csv([{"title": "Not mine", "sku": _sku(), "price": "1", "currency": "EUR"}])
    )
    as_json = await client.get(
        f"{shop.products}/export", params={"format": "json"}, headers=shop.owner.headers
    )
    rows = json.loads(as_json.content)
    assert {row["title"] for row in rows} == {
        'The "Everyday" Tee, 2-pack',
        "Sencha",
        "Dates",
        "Coming soon",
    }
    small = next(row for row in rows if row["sku"] and row["sku"].startswith("TEE-S"))
    assert small["price"] == "19.99"
    assert small["compare_at"] == "25.00"
    assert small["options"] == {"colour": "black", "size": "S"}
    assert small["tags"] == ["cotton", "basics"]
    assert small["active"] is True
    assert small["weight_grams"] == 220
    dates = next(row for row in rows if row["title"] == "Dates")
    assert (dates["price"], dates["compare_at"], dates["currency"]) == ("1.234", "2.000", "KWD")
    sencha = next(row for row in rows if row["title"] == "Sencha")
    assert (sencha["price"], sencha["status"]) == ("1500", "archived")
    empty = next(row for row in rows if row["title"] == "Coming soon")
    assert empty["sku"] is None
    assert empty["status"] == "draft"

    as_csv = await client.get(f"{shop.products}/export", headers=shop.owner.headers)
    table = list(csv.DictReader(io.StringIO(as_csv.content.decode(), newline="")))
    assert list(table[0]) == list(bulk.COLUMNS)
    assert len(table) == len(rows)
    tee = next(row for row in table if row["sku"].startswith("TEE-S"))
    assert tee["options"] == "colour=black|size=S"
    assert tee["tags"] == "cotton|basics"
    assert tee["description"] == '  Line one,\r\nline "two"\n\ttabbed ünïcödé ✓ '
