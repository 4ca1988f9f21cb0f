"""A vendor's back office for its products: CRUD, the catalog rules with their problem codes,
status rules, images, pagination, search outbox entries, and no IDOR between vendors."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from api.app import create_app
from commerce.catalog import products
from models import (
    InventoryLevel,
    Product,
    ProductImage,
    SearchOutbox,
    Variant,
    Vendor,
    VendorMembership,
    VendorRole,
    Warehouse,
)
from tests.catalog_factories import VariantSpec, make_category, make_product, make_vendor
from tests.conftest import _client_for, make_settings
from tests.factories import Account, sign_up

PROBLEM = "application/problem+json"


@dataclass
class Shop:
    owner: Account
    vendor: Vendor

    @property
    def products(self) -> str:
        return f"/vendors/{self.vendor.id}/products"

    def product(self, product_id: object) -> str:
        return f"{self.products}/{product_id}"


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


def _title() -> str:
    return f"Merino Jumper {uuid.uuid4().hex[:8]}"


async def _create(client: httpx.AsyncClient, shop: Shop, **fields: Any) -> dict[str, Any]:
    body = {"title": _title(), **fields}
    response = await client.post(shop.products, json=body, headers=shop.owner.headers)
    assert response.status_code == 201, response.text
    return response.json()


def EUR(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR"}


def _variant(**fields: Any) -> dict[str, Any]:
    """A variant's body; ``price_amount``, ``currency`` and ``compare_at_amount`` are folded
    into the ``price`` and ``compare_at`` money objects."""
    currency = fields.pop("currency", "EUR")
    body: dict[str, Any] = {
        "sku": f"SKU-{uuid.uuid4().hex[:10]}",
        "price": {"amount": fields.pop("price_amount", 1999), "currency": currency},
    }
    if "compare_at_amount" in fields:
        was = fields.pop("compare_at_amount")
        body["compare_at"] = None if was is None else {"amount": was, "currency": currency}
    return body | fields


async def _add_variant(
    client: httpx.AsyncClient, shop: Shop, product_id: str, **fields: Any
) -> httpx.Response:
    return await client.post(
        f"{shop.product(product_id)}/variants", json=_variant(**fields), headers=shop.owner.headers
    )


async def _outbox(db_session: AsyncSession, product_id: object) -> int:
    count = await db_session.scalar(
        select(func.count())
        .select_from(SearchOutbox)
        .where(SearchOutbox.product_id == uuid.UUID(str(product_id)))
    )
    return count or 0


# --- products ---------------------------------------------------------------------------------


async def test_product_round_trip(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    category = await make_category(db_session)
    suffix = uuid.uuid4().hex[:8]
    created = await _create(
        client,
        shop,
        title=f"  Crème   Brûlée Set {suffix} ",
        description="Two ramekins.\nOne torch.",
        brand="  Chez  Nous ",
        category_id=str(category.id),
        tags=[" Kitchen", "kitchen", "GIFT  Ideas ", "", "gift ideas"],
        attributes={" material ": " porcelain "},
        tax_class="Reduced",
    )
    assert created["title"] == f"Crème Brûlée Set {suffix}"
    assert created["slug"] == f"creme-brulee-set-{suffix}"
    assert created["brand"] == "Chez Nous"
    assert created["tags"] == ["kitchen", "gift ideas"]
    assert created["attributes"] == {"material": "porcelain"}
    assert created["tax_class"] == "reduced"
    assert created["description"] == "Two ramekins.\nOne torch."
    assert created["status"] == "draft"
    assert created["published_at"] is None
    assert created["variants"] == []
    assert created["images"] == []
    assert created["vendor_id"] == str(shop.vendor.id)

    fetched = await client.get(shop.product(created["id"]), headers=shop.owner.headers)
    assert fetched.status_code == 200
    assert fetched.json() == created

    patched = await client.patch(
        shop.product(created["id"]),
        json={"title": "Brûlée Kit", "brand": None, "category_id": None},
        headers=shop.owner.headers,
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["title"], body["brand"], body["category_id"]) == ("Brûlée Kit", None, None)
    assert body["slug"] == created["slug"]  # links keep working
    assert body["tags"] == created["tags"]
    assert body["updated_at"] >= created["updated_at"]


async def test_slugs_are_unique_with_a_suffix_and_can_be_chosen(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    title = _title()
    first = await _create(client, shop, title=title)
    second = await _create(client, shop, title=title)
    other_shop = await _shop(client, db_session)
    third = await _create(client, other_shop, title=title.upper())
    base = products.slugify(title)
    assert [first["slug"], second["slug"], third["slug"]] == [base, f"{base}-2", f"{base}-3"]

    chosen = await _create(client, shop, slug=f"My-Pick-{uuid.uuid4().hex[:6]}")
    assert chosen["slug"].startswith("my-pick-")
    _problem(
        await client.post(
            shop.products, json={"title": "x", "slug": first["slug"]}, headers=shop.owner.headers
        ),
        409,
        "slug_taken",
    )
    _problem(
        await client.patch(
            shop.product(chosen["id"]), json={"slug": third["slug"]}, headers=shop.owner.headers
        ),
        409,
        "slug_taken",
    )
    _problem(
        await client.patch(
            shop.product(chosen["id"]), json={"slug": "not a slug"}, headers=shop.owner.headers
        ),
        422,
        "invalid_product",
    )


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"title": "   "}, "invalid_product", "title"),
        ({"title": "x" * 301}, "invalid_product", "title"),
        ({"title": "nul\x00byte"}, "invalid_product", "title"),
        ({"tags": [f"tag{n}" for n in range(21)]}, "invalid_product", "tags"),
        ({"tags": ["x" * 41]}, "invalid_product", "tags"),
        ({"tags": ["a|b"]}, "invalid_product", "tags"),
        ({"attributes": {f"k{n}": "v" for n in range(51)}}, "invalid_product", "attributes"),
        ({"attributes": {" ": "v"}}, "invalid_product", "attributes"),
        ({"tax_class": "Not a class!"}, "invalid_product", "tax_class"),
        ({"category_id": str(uuid.uuid4())}, "unknown_category", "category_id"),
    ],
)
async def test_invalid_products_are_422_problems_with_codes(
    client: httpx.AsyncClient, shop: Shop, fields: dict[str, Any], code: str, field: str
) -> None:
    response = await client.post(
        shop.products, json={"title": "A title"} | fields, headers=shop.owner.headers
    )
    body = _problem(response, 422, code)
    assert body["errors"][0]["loc"] == ["body", field]


async def test_twenty_tags_after_removing_duplicates_are_fine(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    tags = [f"Tag{n}" for n in range(20)] + [f"tag{n}" for n in range(20)]
    assert len((await _create(client, shop, tags=tags))["tags"]) == 20


async def test_schema_errors_are_problems_too(client: httpx.AsyncClient, shop: Shop) -> None:
    _problem(
        await client.post(shop.products, json={"tags": "a"}, headers=shop.owner.headers),
        422,
        "validation_error",
    )
    _problem(
        await client.post(
            shop.products, json={"title": "x", "colour": "red"}, headers=shop.owner.headers
        ),
        422,
        "validation_error",
    )


# --- variants ---------------------------------------------------------------------------------


async def test_a_new_variant_has_an_empty_stock_row_in_the_default_warehouse(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    product = await _create(client, shop)
    response = await _add_variant(
        client,
        shop,
        product["id"],
        options={" Size ": " M ", "Colour": "Black"},
        compare_at_amount=2499,
        barcode="4006381333931",
        weight_grams=300,
    )
    assert response.status_code == 201, response.text
    variant = response.json()
    assert variant["options"] == {"size": "M", "colour": "Black"}
    assert variant["price"] == {"amount": 1999, "currency": "EUR"}
    assert variant["compare_at"] == {"amount": 2499, "currency": "EUR"}
    assert variant["barcode"] == "4006381333931"
    assert variant["is_active"] is True

    levels = (
        await db_session.execute(
            select(InventoryLevel, Warehouse)
            .join(Warehouse, Warehouse.id == InventoryLevel.warehouse_id)
            .where(InventoryLevel.variant_id == uuid.UUID(variant["id"]))
        )
    ).all()
    assert len(levels) == 1
    level, warehouse = levels[0]
    assert warehouse.is_default
    assert warehouse.vendor_id == shop.vendor.id
    assert (level.on_hand, level.reserved) == (0, 0)

    fetched = (await client.get(shop.product(product["id"]), headers=shop.owner.headers)).json()
    assert [v["id"] for v in fetched["variants"]] == [variant["id"]]


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"barcode": "4006381333932"}, 422, "invalid_barcode"),
        ({"barcode": "12345"}, 422, "invalid_barcode"),
        ({"barcode": "40063813339\uff131"}, 422, "invalid_barcode"),
        # Not ISO 4217 tender in upper case: the schema says so, so it is a validation error.
        ({"currency": "EUROS"}, 422, "validation_error"),
        ({"currency": "ABC"}, 422, "validation_error"),
        ({"currency": "XAU"}, 422, "validation_error"),
        ({"currency": "eur"}, 422, "validation_error"),
        ({"compare_at": {"amount": 2999, "currency": "USD"}}, 422, "validation_error"),
        ({"price_amount": -1}, 422, "invalid_price"),
        ({"price_amount": 10**18}, 422, "invalid_price"),
        ({"compare_at_amount": 1999}, 422, "invalid_price"),
        ({"compare_at_amount": 1000}, 422, "invalid_price"),
        ({"sku": "has space"}, 422, "invalid_variant"),
        ({"sku": ""}, 422, "invalid_variant"),
        ({"options": {"size": "M|L"}}, 422, "invalid_variant"),
        ({"weight_grams": -5}, 422, "invalid_variant"),
    ],
)
async def test_invalid_variants_are_problems_with_codes(
    client: httpx.AsyncClient, shop: Shop, fields: dict[str, Any], status: int, code: str
) -> None:
    product = await _create(client, shop)
    _problem(await _add_variant(client, shop, product["id"], **fields), status, code)


async def test_variants_of_a_product_share_one_currency(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    product = await _create(client, shop)
    first = (await _add_variant(client, shop, product["id"], options={"size": "S"})).json()
    _problem(
        await _add_variant(client, shop, product["id"], options={"size": "M"}, currency="USD"),
        422,
        "currency_mismatch",
    )
    # The only variant may move to another currency; then a second one must follow it.
    moved = await client.patch(
        f"{shop.product(product['id'])}/variants/{first['id']}",
        json={"price": {"amount": 2500, "currency": "JPY"}},
        headers=shop.owner.headers,
    )
    assert moved.status_code == 200, moved.text
    _problem(
        await _add_variant(client, shop, product["id"], options={"size": "M"}),
        422,
        "currency_mismatch",
    )
    jpy = await _add_variant(client, shop, product["id"], options={"size": "M"}, currency="JPY")
    assert jpy.status_code == 201


async def test_no_two_active_variants_with_the_same_options(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    product = await _create(client, shop)
    path = f"{shop.product(product['id'])}/variants"
    medium = (await _add_variant(client, shop, product["id"], options={"size": "M"})).json()
    _problem(
        await _add_variant(client, shop, product["id"], options={"Size": " m "}),
        409,
        "duplicate_variant",
    )
    # An inactive twin is fine (an old variant kept for history)...
    twin = await _add_variant(client, shop, product["id"], options={"size": "M"}, is_active=False)
    assert twin.status_code == 201, twin.text
    # ... but it cannot come back while the other one sells.
    _problem(
        await client.patch(
            f"{path}/{twin.json()['id']}", json={"is_active": True}, headers=shop.owner.headers
        ),
        409,
        "duplicate_variant",
    )
    large = (await _add_variant(client, shop, product["id"], options={"size": "L"})).json()
    _problem(
        await client.patch(
            f"{path}/{large['id']}", json={"options": {"size": "M"}}, headers=shop.owner.headers
        ),
        409,
        "duplicate_variant",
    )
    # Deactivate one, and its twin may take over.
    off = await client.patch(
        f"{path}/{medium['id']}", json={"is_active": False}, headers=shop.owner.headers
    )
    assert off.status_code == 200
    assert off.json()["is_active"] is False
    on = await client.patch(
        f"{path}/{twin.json()['id']}", json={"is_active": True}, headers=shop.owner.headers
    )
    assert on.status_code == 200, on.text


async def test_skus_are_unique_per_vendor(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    sku = f"TEE-{uuid.uuid4().hex[:8]}"
    first = await _create(client, shop)
    second = await _create(client, shop)
    assert (await _add_variant(client, shop, first["id"], sku=sku)).status_code == 201
    body = _problem(await _add_variant(client, shop, second["id"], sku=sku), 409, "sku_taken")
    assert body["errors"][0]["loc"] == ["body", "sku"]
    # Another vendor may use the same SKU: SKUs are the vendor's own codes.
    other = await _shop(client, db_session)
    elsewhere = await _create(client, other)
    assert (await _add_variant(client, other, elsewhere["id"], sku=sku)).status_code == 201
    # Renaming into a taken SKU is refused the same way.
    renamed = (await _add_variant(client, shop, second["id"])).json()
    _problem(
        await client.patch(
            f"{shop.product(second['id'])}/variants/{renamed['id']}",
            json={"sku": sku},
            headers=shop.owner.headers,
        ),
        409,
        "sku_taken",
    )


async def test_a_variant_update_is_checked_as_a_whole(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    product = await _create(client, shop)
    variant = (await _add_variant(client, shop, product["id"], compare_at_amount=2999)).json()
    path = f"{shop.product(product['id'])}/variants/{variant['id']}"
    # A price above the stored compare-at price breaks the pair.
    _problem(
        await client.patch(path, json={"price": EUR(3500)}, headers=shop.owner.headers),
        422,
        "invalid_price",
    )
    # A compare-at price in another currency than the variant's.
    _problem(
        await client.patch(
            path,
            json={"compare_at": {"amount": 5000, "currency": "USD"}},
            headers=shop.owner.headers,
        ),
        422,
        "invalid_price",
    )
    both = await client.patch(
        path,
        json={"price": EUR(3500), "compare_at": None, "barcode": "036000291452"},
        headers=shop.owner.headers,
    )
    assert both.status_code == 200, both.text
    assert (both.json()["price"], both.json()["compare_at"]) == (EUR(3500), None)
    assert both.json()["barcode"] == "036000291452"
    _problem(
        await client.patch(path, json={"barcode": "036000291453"}, headers=shop.owner.headers),
        422,
        "invalid_barcode",
    )


# --- status -----------------------------------------------------------------------------------


async def _set_status(client: httpx.AsyncClient, shop: Shop, product_id: str, status: str) -> Any:
    return await client.post(
        f"{shop.product(product_id)}/status", json={"status": status}, headers=shop.owner.headers
    )


async def test_status_rules(client: httpx.AsyncClient, shop: Shop) -> None:
    product = await _create(client, shop)
    pid = product["id"]
    _problem(await _set_status(client, shop, pid, "active"), 409, "product_not_ready")
    free = (await _add_variant(client, shop, pid, price_amount=0, options={"size": "S"})).json()
    _problem(await _set_status(client, shop, pid, "active"), 409, "product_not_ready")
    off = (await _add_variant(client, shop, pid, options={"size": "M"}, is_active=False)).json()
    _problem(await _set_status(client, shop, pid, "active"), 409, "product_not_ready")

    variants = f"{shop.product(pid)}/variants"
    on = await client.patch(
        f"{variants}/{off['id']}", json={"is_active": True}, headers=shop.owner.headers
    )
    assert on.status_code == 200
    activated = await _set_status(client, shop, pid, "active")
    assert activated.status_code == 200, activated.text
    published_at = activated.json()["published_at"]
    assert activated.json()["status"] == "active"
    assert published_at is not None

    # An active product stays sellable: its last priced active variant cannot go.
    _problem(
        await client.patch(
            f"{variants}/{off['id']}", json={"is_active": False}, headers=shop.owner.headers
        ),
        409,
        "product_not_ready",
    )
    _problem(
        await client.patch(
            f"{variants}/{off['id']}", json={"price": EUR(0)}, headers=shop.owner.headers
        ),
        409,
        "product_not_ready",
    )
    # The zero-priced one may go: the product still sells the other.
    gone = await client.patch(
        f"{variants}/{free['id']}", json={"is_active": False}, headers=shop.owner.headers
    )
    assert gone.status_code == 200

    # Back to draft and active again: the first publication date stays.
    assert (await _set_status(client, shop, pid, "draft")).json()["status"] == "draft"
    again = await _set_status(client, shop, pid, "active")
    assert again.json()["published_at"] == published_at
    archived = await _set_status(client, shop, pid, "archived")
    assert archived.json()["status"] == "archived"
    _problem(await _set_status(client, shop, pid, "gone"), 422, "validation_error")


async def test_deleting_a_draft_deletes_it_and_anything_else_is_archived(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    draft = await _create(client, shop)
    variant = (await _add_variant(client, shop, draft["id"])).json()
    image = await client.post(
        f"{shop.product(draft['id'])}/images",
        json={"url": "https://cdn.example.com/a.jpg"},
        headers=shop.owner.headers,
    )
    assert image.status_code == 201
    deleted = await client.delete(shop.product(draft["id"]), headers=shop.owner.headers)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"id": draft["id"], "outcome": "deleted"}
    _problem(
        await client.get(shop.product(draft["id"]), headers=shop.owner.headers), 404, "not_found"
    )
    variant_id = uuid.UUID(variant["id"])
    assert await db_session.scalar(select(Variant.id).where(Variant.id == variant_id)) is None
    assert (
        await db_session.scalar(
            select(func.count())
            .select_from(InventoryLevel)
            .where(InventoryLevel.variant_id == variant_id)
        )
        == 0
    )
    # The outbox keeps an entry so that the search index drops it too.
    assert await _outbox(db_session, draft["id"]) >= 1

    live = await _create(client, shop)
    await _add_variant(client, shop, live["id"])
    assert (await _set_status(client, shop, live["id"], "active")).status_code == 200
    assert (await _set_status(client, shop, live["id"], "draft")).status_code == 200
    # Once published, it may have been ordered or linked to: archived, not deleted.
    kept = await client.delete(shop.product(live["id"]), headers=shop.owner.headers)
    assert kept.json() == {"id": live["id"], "outcome": "archived"}
    fetched = await client.get(shop.product(live["id"]), headers=shop.owner.headers)
    assert fetched.json()["status"] == "archived"


# --- images -----------------------------------------------------------------------------------


async def test_images(client: httpx.AsyncClient, shop: Shop) -> None:
    product = await _create(client, shop)
    images = f"{shop.product(product['id'])}/images"
    ids = []
    for n in range(3):
        response = await client.post(
            images,
            json={"url": f"https://cdn.example.com/{n}.jpg", "alt_text": f" Side  {n} "},
            headers=shop.owner.headers,
        )
        assert response.status_code == 201, response.text
        assert response.json()["position"] == n
        ids.append(response.json()["id"])
    assert response.json()["alt_text"] == "Side 2"

    reordered = await client.put(
        f"{images}/order", json={"image_ids": ids[::-1]}, headers=shop.owner.headers
    )
    assert reordered.status_code == 200, reordered.text
    assert [(i["id"], i["position"]) for i in reordered.json()["items"]] == [
        (ids[2], 0),
        (ids[1], 1),
        (ids[0], 2),
    ]
    for wrong in ([ids[0], ids[1]], [*ids, ids[0]], [*ids[:2], str(uuid.uuid4())]):
        _problem(
            await client.put(
                f"{images}/order", json={"image_ids": wrong}, headers=shop.owner.headers
            ),
            422,
            "invalid_image_order",
        )

    assert (
        await client.delete(f"{images}/{ids[1]}", headers=shop.owner.headers)
    ).status_code == 204
    fetched = (await client.get(shop.product(product["id"]), headers=shop.owner.headers)).json()
    assert [(i["id"], i["position"]) for i in fetched["images"]] == [(ids[2], 0), (ids[0], 1)]
    _problem(
        await client.delete(f"{images}/{ids[1]}", headers=shop.owner.headers), 404, "not_found"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://cdn.example.com/a.jpg",
        "javascript:alert(1)",
        "data:image/png;base64,AAAA",
        "//cdn.example.com/a.jpg",
        "https://",
        "https://user:pass@cdn.example.com/a.jpg",
        "https://cdn.example.com/a b.jpg",
        "https://cdn.example.com/" + "a" * 2000,
    ],
)
async def test_only_https_image_urls(client: httpx.AsyncClient, shop: Shop, url: str) -> None:
    product = await _create(client, shop)
    response = await client.post(
        f"{shop.product(product['id'])}/images", json={"url": url}, headers=shop.owner.headers
    )
    _problem(response, 422, "invalid_image")


async def test_at_most_twenty_images(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    product = await _create(client, shop)
    product_id = uuid.UUID(product["id"])
    db_session.add_all(
        ProductImage(product_id=product_id, url=f"https://cdn.example.com/{n}.jpg", position=n)
        for n in range(products.MAX_IMAGES)
    )
    await db_session.flush()
    _problem(
        await client.post(
            f"{shop.product(product_id)}/images",
            json={"url": "https://cdn.example.com/21.jpg"},
            headers=shop.owner.headers,
        ),
        409,
        "image_limit",
    )


# --- reading ----------------------------------------------------------------------------------


async def test_list_pages_with_a_cursor_and_filters(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    created = [await _create(client, shop, title=f"Tee {n}") for n in range(5)]
    percent = await _create(client, shop, title="100% Cotton_Tee")
    archived = await _create(client, shop, title="Old Tee")
    await _add_variant(client, shop, archived["id"])
    assert (await _set_status(client, shop, archived["id"], "archived")).status_code == 200

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await client.get(shop.products, params=params, headers=shop.owner.headers)
        assert page.status_code == 200, page.text
        seen += [item["id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    # Newest first, each once, archived products left out. (Created in one transaction here,
    # so they share created_at and the id breaks the tie: the keyset is on both.)
    expected = (
        await db_session.scalars(
            select(Product.id)
            .where(Product.vendor_id == shop.vendor.id, Product.status != "archived")
            .order_by(Product.created_at.desc(), Product.id.desc())
        )
    ).all()
    assert seen == [str(product_id) for product_id in expected]
    assert sorted(seen) == sorted(p["id"] for p in [*created, percent])
    assert archived["id"] not in seen

    only_archived = await client.get(
        shop.products, params={"status": "archived"}, headers=shop.owner.headers
    )
    assert [p["id"] for p in only_archived.json()["items"]] == [archived["id"]]
    # Wildcards in q are literal characters.
    for q, expected_ids in (
        ("%", [percent["id"]]),
        ("_tee", [percent["id"]]),
        ("tee 3", [created[3]["id"]]),
    ):
        found = await client.get(shop.products, params={"q": q}, headers=shop.owner.headers)
        assert [p["id"] for p in found.json()["items"]] == expected_ids, q
    _problem(
        await client.get(shop.products, params={"cursor": "nonsense"}, headers=shop.owner.headers),
        422,
        "invalid_cursor",
    )


async def test_the_list_is_the_vendors_own(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    mine = await _create(client, shop)
    other = await _shop(client, db_session)
    await make_product(db_session, vendor=other.vendor)
    listed = await client.get(shop.products, headers=shop.owner.headers)
    assert [p["id"] for p in listed.json()["items"]] == [mine["id"]]


# --- who may do what --------------------------------------------------------------------------


async def test_another_vendor_gets_404_on_every_route_for_a_product_not_theirs(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    victim = await make_product(
        db_session, vendor=shop.vendor, variants=[VariantSpec(f"V-{uuid.uuid4().hex[:8]}", 1500)]
    )
    image = ProductImage(product_id=victim.id, url="https://cdn.example.com/v.jpg", position=0)
    db_session.add(image)
    await db_session.flush()
    variant_id = await db_session.scalar(select(Variant.id).where(Variant.product_id == victim.id))
    before = await _outbox(db_session, victim.id)

    attacker = await _shop(client, db_session)
    own = await _create(client, attacker)
    own_variant = (await _add_variant(client, attacker, own["id"])).json()

    def routes(base: str, product_id: object) -> list[tuple[str, str, Any]]:
        product = f"{base}/{product_id}"
        return [
            ("GET", product, None),
            ("PATCH", product, {"title": "pwned"}),
            ("DELETE", product, None),
            ("POST", f"{product}/status", {"status": "archived"}),
            ("POST", f"{product}/variants", _variant()),
            ("PATCH", f"{product}/variants/{variant_id}", {"price": EUR(1)}),
            ("POST", f"{product}/images", {"url": "https://evil.example.com/x.jpg"}),
            ("DELETE", f"{product}/images/{image.id}", None),
            ("PUT", f"{product}/images/order", {"image_ids": [str(image.id)]}),
        ]

    # The victim's product through the attacker's own back office...
    attempts = routes(attacker.products, victim.id)
    # ... the victim's variant and image under the attacker's own product...
    own_path = attacker.product(own["id"])
    attempts += [
        ("PATCH", f"{own_path}/variants/{variant_id}", {"price": EUR(1)}),
        ("DELETE", f"{own_path}/images/{image.id}", None),
    ]
    # ... and the victim's back office itself, where the attacker is nobody.
    attempts += routes(shop.products, victim.id)
    attempts += [
        ("GET", shop.products, None),
        ("GET", f"{shop.products}/export", None),
    ]
    for method, path, body in attempts:
        response = await client.request(method, path, json=body, headers=attacker.owner.headers)
        _problem(response, 404, "not_found")
    import_attempt = await client.post(
        f"{shop.products}/import",
        content=b"sku,price,currency\nX-1,1.00,EUR\n",
        headers={"content-type": "text/csv", **attacker.owner.headers},
    )
    _problem(import_attempt, 404, "not_found")

    # The attacker's own variant cannot be reached under the victim's product either.
    _problem(
        await client.patch(
            f"{attacker.product(victim.id)}/variants/{own_variant['id']}",
            json={"price": EUR(1)},
            headers=attacker.owner.headers,
        ),
        404,
        "not_found",
    )
    untouched = await client.get(shop.product(victim.id), headers=shop.owner.headers)
    assert untouched.json()["title"] == victim.title
    assert untouched.json()["status"] == "active"
    assert [v["price"]["amount"] for v in untouched.json()["variants"]] == [1500]
    assert [i["id"] for i in untouched.json()["images"]] == [str(image.id)]
    assert await _outbox(db_session, victim.id) == before


async def test_staff_may_read_but_not_write(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    product = await _create(client, shop)
    staff = await sign_up(client, db_session)
    manager = await sign_up(client, db_session)
    db_session.add_all(
        [
            VendorMembership(
                vendor_id=shop.vendor.id, user_id=uuid.UUID(staff.id), role=VendorRole.STAFF
            ),
            VendorMembership(
                vendor_id=shop.vendor.id, user_id=uuid.UUID(manager.id), role=VendorRole.MANAGER
            ),
        ]
    )
    await db_session.flush()
    path = shop.product(product["id"])
    for read in (shop.products, path, f"{shop.products}/export"):
        assert (await client.get(read, headers=staff.headers)).status_code == 200, read
    writes: list[tuple[str, str, Any]] = [
        ("POST", shop.products, {"title": "x"}),
        ("PATCH", path, {"title": "x"}),
        ("DELETE", path, None),
        ("POST", f"{path}/status", {"status": "archived"}),
        ("POST", f"{path}/variants", _variant()),
        ("POST", f"{path}/images", {"url": "https://cdn.example.com/x.jpg"}),
        ("PUT", f"{path}/images/order", {"image_ids": []}),
    ]
    for method, url, body in writes:
        response = await client.request(method, url, json=body, headers=staff.headers)
        _problem(response, 403, "forbidden")
    imported = await client.post(
        f"{shop.products}/import",
        content=b"[]",
        headers={"content-type": "application/json", **staff.headers},
    )
    _problem(imported, 403, "forbidden")

    # A manager may write.
    patched = await client.patch(path, json={"title": "By the manager"}, headers=manager.headers)
    assert patched.status_code == 200, patched.text


# --- search outbox ----------------------------------------------------------------------------


async def test_every_change_queues_the_product_for_reindexing(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    product = await _create(client, shop)
    pid = product["id"]
    count = await _outbox(db_session, pid)
    assert count >= 1

    async def changed(response: httpx.Response) -> None:
        nonlocal count
        assert response.status_code < 300, response.text
        now = await _outbox(db_session, pid)
        assert now > count, response.request.url
        count = now

    h = shop.owner.headers
    await changed(await client.patch(shop.product(pid), json={"tags": ["new"]}, headers=h))
    variant = await _add_variant(client, shop, pid)
    await changed(variant)
    variants = f"{shop.product(pid)}/variants"
    await changed(
        await client.patch(
            f"{variants}/{variant.json()['id']}", json={"price": EUR(999)}, headers=h
        )
    )
    await changed(await _set_status(client, shop, pid, "active"))
    image = await client.post(
        f"{shop.product(pid)}/images", json={"url": "https://cdn.example.com/1.jpg"}, headers=h
    )
    await changed(image)
    second = await client.post(
        f"{shop.product(pid)}/images", json={"url": "https://cdn.example.com/2.jpg"}, headers=h
    )
    await changed(second)
    order = [second.json()["id"], image.json()["id"]]
    await changed(
        await client.put(f"{shop.product(pid)}/images/order", json={"image_ids": order}, headers=h)
    )
    await changed(await client.delete(f"{shop.product(pid)}/images/{order[0]}", headers=h))
    await changed(await _set_status(client, shop, pid, "archived"))

    # A change that changes nothing queues nothing.
    same = await client.patch(shop.product(pid), json={"tags": ["NEW "]}, headers=h)
    assert same.status_code == 200
    assert await _outbox(db_session, pid) == count
    assert await db_session.scalar(select(Product.status).where(Product.id == uuid.UUID(pid)))


# --- as deployed --------------------------------------------------------------------------------


async def test_as_deployed_every_request_commits_on_its_own(
    fresh_database_url: str, temporal_address: str
) -> None:
    """The production session (no autoflush, a commit per request), which the rolled-back
    test transaction above does not have: every service must flush what later reads need."""
    app = create_app(make_settings(fresh_database_url, temporal_address))
    engine = create_async_engine(fresh_database_url, poolclass=NullPool)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            async for client in _client_for(app):
                owner = await sign_up(client, session)
                shop = Shop(owner, await make_vendor(session, owner_id=uuid.UUID(owner.id)))
                await session.commit()
                await _deployed_flow(client, shop)
    finally:
        await engine.dispose()


async def _deployed_flow(client: httpx.AsyncClient, shop: Shop) -> None:
    h = shop.owner.headers
    product = await _create(client, shop, tags=["a"])
    pid = product["id"]
    small = await _add_variant(client, shop, pid, options={"size": "S"}, sku="D-S")
    assert small.status_code == 201, small.text
    _problem(await _add_variant(client, shop, pid, options={"size": "s"}), 409, "duplicate_variant")
    _problem(await _add_variant(client, shop, pid, sku="D-S"), 409, "sku_taken")
    medium = await _add_variant(client, shop, pid, options={"size": "M"}, sku="D-M")
    assert medium.status_code == 201
    activated = await _set_status(client, shop, pid, "active")
    assert activated.status_code == 200, activated.text
    assert [v["sku"] for v in activated.json()["variants"]] == ["D-M", "D-S"]
    images = f"{shop.product(pid)}/images"
    ids = []
    for n in range(2):
        added = await client.post(images, json={"url": f"https://cdn.example.com/{n}"}, headers=h)
        assert added.status_code == 201, added.text
        ids.append(added.json()["id"])
    order = await client.put(f"{images}/order", json={"image_ids": ids[::-1]}, headers=h)
    assert order.status_code == 200, order.text
    assert (await client.delete(f"{images}/{ids[1]}", headers=h)).status_code == 204
    patched = await client.patch(shop.product(pid), json={"title": "Deployed"}, headers=h)
    assert patched.json()["title"] == "Deployed"
    assert [i["id"] for i in patched.json()["images"]] == [ids[0]]

    exported = await client.get(f"{shop.products}/export", headers=h)
    same = await client.post(
        f"{shop.products}/import",
        content=exported.content,
        headers={"content-type": "text/csv", **h},
    )
    assert same.status_code == 200, same.text
    assert same.json()["unchanged"] == 2
    new_rows = exported.text.replace("D-M", "D-L").replace("size=M", "size=L")
    for dry_run in (True, False):
        changed = await client.post(
            f"{shop.products}/import",
            params={"dry_run": str(dry_run).lower()},
            content=new_rows.encode(),
            headers={"content-type": "text/csv", **h},
        )
        assert changed.status_code == 200, changed.text
        assert [r["status"] for r in changed.json()["rows"]] == ["created", "unchanged"]
    fetched = await client.get(shop.product(pid), headers=h)
    assert [v["sku"] for v in fetched.json()["variants"]] == ["D-L", "D-M", "D-S"]

    draft = await _create(client, shop)
    await _add_variant(client, shop, draft["id"])
    gone = await client.delete(shop.product(draft["id"]), headers=h)
    assert gone.json()["outcome"] == "deleted"
    _problem(await client.get(shop.product(draft["id"]), headers=h), 404, "not_found")
