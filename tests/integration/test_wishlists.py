"""Wishlists: CRUD, limits, idempotent items, share links that can be withdrawn, a read-only
shared view with honest availability, and no way into another user's lists."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.engagement import wishlists
from models import (
    InventoryLevel,
    Product,
    ProductStatus,
    Variant,
    Vendor,
    VendorStatus,
    Warehouse,
    Wishlist,
    WishlistItem,
)
from tests.catalog_factories import VariantSpec, default_warehouse, make_product, make_vendor
from tests.factories import Account, sign_up

PROBLEM = "application/problem+json"


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code, body
    return body


async def _create(client: httpx.AsyncClient, account: Account, name: str) -> dict[str, Any]:
    response = await client.post("/me/wishlists", json={"name": name}, headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def _add(
    client: httpx.AsyncClient, account: Account, wishlist: dict[str, Any], variant_id: uuid.UUID
) -> httpx.Response:
    return await client.post(
        f"/me/wishlists/{wishlist['id']}/items",
        json={"variant_id": str(variant_id)},
        headers=account.headers,
    )


async def _variant_ids(session: AsyncSession, product: Product) -> list[uuid.UUID]:
    found = await session.scalars(
        select(Variant.id).where(Variant.product_id == product.id).order_by(Variant.sku)
    )
    return list(found)


# --- lists -------------------------------------------------------------------------------


async def test_wishlist_round_trip(client: httpx.AsyncClient, db_session: AsyncSession) -> None:
    account = await sign_up(client, db_session)
    vendor = await make_vendor(db_session)
    product = await make_product(
        db_session,
        vendor=vendor,
        title="Merino scarf",
        variants=[VariantSpec("SCARF-RED", 3900, options={"colour": "red"})],
    )
    [variant_id] = await _variant_ids(db_session, product)

    birthday = await _create(client, account, "  Birthday ")
    assert birthday["name"] == "Birthday"
    assert (birthday["item_count"], birthday["share_token"], birthday["shared_path"]) == (
        0,
        None,
        None,
    )
    later = await _create(client, account, "Later")
    added = await _add(client, account, birthday, variant_id)
    assert added.status_code == 201, added.text
    assert added.json() == {
        "variant_id": str(variant_id),
        "product_id": str(product.id),
        "product_title": "Merino scarf",
        "product_slug": product.slug,
        "sku": "SCARF-RED",
        "options": {"colour": "red"},
        "price": {"amount": 3900, "currency": "EUR"},
        "availability": "in_stock",
        "added_at": added.json()["added_at"],
    }

    listed = (await client.get("/me/wishlists", headers=account.headers)).json()["items"]
    assert [(w["name"], w["item_count"]) for w in listed] == [("Birthday", 1), ("Later", 0)]
    detail = (await client.get(f"/me/wishlists/{birthday['id']}", headers=account.headers)).json()
    assert [item["sku"] for item in detail["items"]] == ["SCARF-RED"]

    renamed = await client.patch(
        f"/me/wishlists/{birthday['id']}", json={"name": "Birthday 2027"}, headers=account.headers
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Birthday 2027"
    assert renamed.json()["item_count"] == 1
    taken = await client.patch(
        f"/me/wishlists/{later['id']}", json={"name": "BIRTHDAY 2027"}, headers=account.headers
    )
    _problem(taken, 409, "wishlist_name_taken")
    recased = await client.patch(
        f"/me/wishlists/{birthday['id']}", json={"name": "birthday 2027"}, headers=account.headers
    )
    assert recased.json()["name"] == "birthday 2027", "a list may change its own name's case"

    deleted = await client.delete(f"/me/wishlists/{birthday['id']}", headers=account.headers)
    assert deleted.status_code == 204
    _problem(
        await client.get(f"/me/wishlists/{birthday['id']}", headers=account.headers),
        404,
        "not_found",
    )
    items_left = await db_session.scalar(
        select(func.count())
        .select_from(WishlistItem)
        .where(WishlistItem.wishlist_id == uuid.UUID(birthday["id"]))
    )
    assert items_left == 0
    listed = (await client.get("/me/wishlists", headers=account.headers)).json()["items"]
    assert [w["name"] for w in listed] == ["Later"]


async def test_names_are_unique_per_user_ignoring_case(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    ann = await sign_up(client, db_session)
    bob = await sign_up(client, db_session)
    await _create(client, ann, "Gifts")
    for name in ("Gifts", "gifts", " GIFTS "):
        duplicate = await client.post("/me/wishlists", json={"name": name}, headers=ann.headers)
        _problem(duplicate, 409, "wishlist_name_taken")
    await _create(client, bob, "Gifts")


async def test_at_most_twenty_lists(client: httpx.AsyncClient, db_session: AsyncSession) -> None:
    account = await sign_up(client, db_session)
    for n in range(wishlists.MAX_WISHLISTS_PER_USER):
        await _create(client, account, f"List {n}")
    one_more = await client.post(
        "/me/wishlists", json={"name": "One more"}, headers=account.headers
    )
    _problem(one_more, 409, "wishlist_limit")
    assert len((await client.get("/me/wishlists", headers=account.headers)).json()["items"]) == 20


# --- items -------------------------------------------------------------------------------


async def test_adding_is_idempotent_and_removing_too(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    vendor = await make_vendor(db_session)
    product = await make_product(
        db_session, vendor=vendor, variants=[VariantSpec("A", 100), VariantSpec("B", 200)]
    )
    first, second = await _variant_ids(db_session, product)
    wishlist = await _create(client, account, "Mine")

    assert (await _add(client, account, wishlist, first)).status_code == 201
    again = await _add(client, account, wishlist, first)
    assert again.status_code == 200, "already there: nothing changes"
    assert (await _add(client, account, wishlist, second)).status_code == 201
    detail = (await client.get(f"/me/wishlists/{wishlist['id']}", headers=account.headers)).json()
    assert sorted(item["sku"] for item in detail["items"]) == ["A", "B"]
    assert detail["item_count"] == 2

    path = f"/me/wishlists/{wishlist['id']}/items/{first}"
    assert (await client.delete(path, headers=account.headers)).status_code == 204
    assert (await client.delete(path, headers=account.headers)).status_code == 204
    detail = (await client.get(f"/me/wishlists/{wishlist['id']}", headers=account.headers)).json()
    assert [item["sku"] for item in detail["items"]] == ["B"]


async def test_only_variants_for_sale_can_be_added(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    vendor = await make_vendor(db_session)
    draft = await make_product(db_session, vendor=vendor, status=ProductStatus.DRAFT)
    pending_vendor = await make_vendor(db_session, status=VendorStatus.PENDING)
    unapproved = await make_product(db_session, vendor=pending_vendor)
    retired = await make_product(db_session, vendor=vendor)
    [retired_variant] = await _variant_ids(db_session, retired)
    await db_session.execute(
        update(Variant).where(Variant.id == retired_variant).values(is_active=False)
    )
    wishlist = await _create(client, account, "Mine")
    candidates = [
        uuid.uuid4(),
        retired_variant,
        *await _variant_ids(db_session, draft),
        *await _variant_ids(db_session, unapproved),
    ]
    for variant_id in candidates:
        _problem(await _add(client, account, wishlist, variant_id), 404, "variant_unavailable")
    detail = (await client.get(f"/me/wishlists/{wishlist['id']}", headers=account.headers)).json()
    assert detail["items"] == []


async def test_a_full_list_takes_no_new_variant_but_keeps_its_own(
    client: httpx.AsyncClient, db_session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The rule, not the number: three variants stand for five hundred.
    monkeypatch.setattr(wishlists, "MAX_ITEMS_PER_WISHLIST", 2)
    account = await sign_up(client, db_session)
    vendor = await make_vendor(db_session)
    product = await make_product(
        db_session,
        vendor=vendor,
        variants=[VariantSpec("A", 100), VariantSpec("B", 100), VariantSpec("C", 100)],
    )
    a, b, c = await _variant_ids(db_session, product)
    wishlist = await _create(client, account, "Mine")
    assert (await _add(client, account, wishlist, a)).status_code == 201
    assert (await _add(client, account, wishlist, b)).status_code == 201
    _problem(await _add(client, account, wishlist, c), 409, "wishlist_full")
    assert (await _add(client, account, wishlist, a)).status_code == 200
    other = await _create(client, account, "Other")
    assert (await _add(client, account, other, c)).status_code == 201, "the limit is per list"


def test_the_item_limit_is_five_hundred() -> None:
    assert wishlists.MAX_ITEMS_PER_WISHLIST == 500
    assert wishlists.MAX_WISHLISTS_PER_USER == 20


# --- sharing -----------------------------------------------------------------------------


async def test_share_unshare_and_share_again(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    vendor = await make_vendor(db_session)
    product = await make_product(db_session, vendor=vendor, title="Teapot")
    [variant_id] = await _variant_ids(db_session, product)
    wishlist = await _create(client, account, "Kitchen")
    await _add(client, account, wishlist, variant_id)
    share_path = f"/me/wishlists/{wishlist['id']}/share"

    shared = await client.post(share_path, headers=account.headers)
    assert shared.status_code == 200, shared.text
    token = shared.json()["share_token"]
    assert len(token) == 32, "secrets.token_urlsafe(24): 192 random bits"
    link = shared.json()["shared_path"]
    assert link == f"/wishlists/shared/{token}"
    assert (await client.post(share_path, headers=account.headers)).json()["share_token"] == token
    summary = (await client.get("/me/wishlists", headers=account.headers)).json()["items"][0]
    assert summary["shared_path"] == link

    public = await client.get(link)  # no credentials
    assert public.status_code == 200, public.text
    body = public.json()
    assert set(body) == {"name", "items", "updated_at"}, "no owner, no ids to act with"
    assert body["name"] == "Kitchen"
    assert [item["product_title"] for item in body["items"]] == ["Teapot"]
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        _problem(await client.request(method, link, json={}), 405, "method_not_allowed")

    assert (await client.delete(share_path, headers=account.headers)).status_code == 204
    _problem(await client.get(link), 404, "not_found")
    assert (await client.delete(share_path, headers=account.headers)).status_code == 204
    reshared = (await client.post(share_path, headers=account.headers)).json()
    assert reshared["share_token"] != token
    _problem(await client.get(link), 404, "not_found")
    assert (await client.get(reshared["shared_path"])).status_code == 200

    await client.delete(f"/me/wishlists/{wishlist['id']}", headers=account.headers)
    _problem(await client.get(reshared["shared_path"]), 404, "not_found")
    for guess in ("x", "A" * 32, "A" * 64):
        _problem(await client.get(f"/wishlists/shared/{guess}"), 404, "not_found")


async def test_a_deleted_accounts_shared_list_is_gone(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    wishlist = await _create(client, account, "Mine")
    shared = await client.post(f"/me/wishlists/{wishlist['id']}/share", headers=account.headers)
    link = shared.json()["shared_path"]
    assert (await client.get(link)).status_code == 200
    gone = await client.request(
        "DELETE", "/me", json={"password": account.password}, headers=account.headers
    )
    assert gone.status_code == 204, gone.text
    _problem(await client.get(link), 404, "not_found")


async def test_the_shared_view_tells_what_can_be_bought(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    vendor = await make_vendor(db_session)
    stocked = await make_product(db_session, vendor=vendor, variants=[VariantSpec("STOCK", 100)])
    sold_out = await make_product(
        db_session, vendor=vendor, variants=[VariantSpec("ALL-RESERVED", 100, stock=3)]
    )
    split = await make_product(
        db_session, vendor=vendor, variants=[VariantSpec("SPLIT", 100, stock=0)]
    )
    archived = await make_product(db_session, vendor=vendor, variants=[VariantSpec("ARCH", 100)])
    retired = await make_product(db_session, vendor=vendor, variants=[VariantSpec("OFF", 100)])
    other_vendor = await make_vendor(db_session)
    suspended = await make_product(
        db_session, vendor=other_vendor, variants=[VariantSpec("SUSP", 100)]
    )
    products = [stocked, sold_out, split, archived, retired, suspended]
    wishlist = await _create(client, account, "Everything")
    variant_of = {}
    for product in products:
        [variant_id] = await _variant_ids(db_session, product)
        variant_of[product.id] = variant_id
        assert (await _add(client, account, wishlist, variant_id)).status_code == 201

    # Then the world changes under the list.
    await db_session.execute(
        update(InventoryLevel)
        .where(InventoryLevel.variant_id == variant_of[sold_out.id])
        .values(reserved=3)
    )
    # Out of stock in the default warehouse, 2 available in another: in stock overall.
    second = Warehouse(vendor_id=vendor.id, code="north", name="North")
    db_session.add(second)
    await db_session.flush()
    main = await default_warehouse(db_session, vendor)
    assert main.id != second.id
    db_session.add(
        InventoryLevel(
            variant_id=variant_of[split.id], warehouse_id=second.id, on_hand=5, reserved=3
        )
    )
    await db_session.execute(
        update(Product).where(Product.id == archived.id).values(status=ProductStatus.ARCHIVED)
    )
    await db_session.execute(
        update(Variant).where(Variant.id == variant_of[retired.id]).values(is_active=False)
    )
    await db_session.execute(
        update(Vendor).where(Vendor.id == other_vendor.id).values(status=VendorStatus.SUSPENDED)
    )
    await db_session.flush()

    link = (
        await client.post(f"/me/wishlists/{wishlist['id']}/share", headers=account.headers)
    ).json()["shared_path"]
    shared = (await client.get(link)).json()
    assert {item["sku"]: item["availability"] for item in shared["items"]} == {
        "STOCK": "in_stock",
        "ALL-RESERVED": "out_of_stock",
        "SPLIT": "in_stock",
        "ARCH": "unavailable",
        "OFF": "unavailable",
        "SUSP": "unavailable",
    }
    owner_view = (
        await client.get(f"/me/wishlists/{wishlist['id']}", headers=account.headers)
    ).json()
    assert owner_view["items"] == shared["items"]

    # Reading the shared list changed nothing.
    stored = await db_session.scalar(
        select(func.count())
        .select_from(WishlistItem)
        .where(WishlistItem.wishlist_id == uuid.UUID(wishlist["id"]))
    )
    assert stored == len(products)


# --- other people's lists ----------------------------------------------------------------


async def test_other_users_wishlists_are_not_found(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    owner = await sign_up(client, db_session)
    intruder = await sign_up(client, db_session)
    vendor = await make_vendor(db_session)
    product = await make_product(
        db_session, vendor=vendor, variants=[VariantSpec("A", 100), VariantSpec("B", 100)]
    )
    a, b = await _variant_ids(db_session, product)
    wishlist = await _create(client, owner, "Private")
    await _add(client, owner, wishlist, a)
    base = f"/me/wishlists/{wishlist['id']}"

    for method, path, body in [
        ("GET", base, None),
        ("PATCH", base, {"name": "Mine now"}),
        ("DELETE", base, None),
        ("POST", f"{base}/items", {"variant_id": str(b)}),
        ("DELETE", f"{base}/items/{a}", None),
        ("POST", f"{base}/share", None),
        ("DELETE", f"{base}/share", None),
    ]:
        response = await client.request(method, path, json=body, headers=intruder.headers)
        _problem(response, 404, "not_found")
        unknown = path.replace(wishlist["id"], str(uuid.uuid4()))
        _problem(
            await client.request(method, unknown, json=body, headers=owner.headers),
            404,
            "not_found",
        )
    assert (await client.get("/me/wishlists", headers=intruder.headers)).json()["items"] == []

    stored = await db_session.get(Wishlist, uuid.UUID(wishlist["id"]))
    assert stored is not None
    await db_session.refresh(stored)
    assert (stored.name, stored.share_token) == ("Private", None)
    detail = (await client.get(base, headers=owner.headers)).json()
    assert [item["variant_id"] for item in detail["items"]] == [str(a)]


async def test_wishlist_routes_need_a_signed_in_user(client: httpx.AsyncClient) -> None:
    some = uuid.uuid4()
    for method, path in [
        ("GET", "/me/wishlists"),
        ("POST", "/me/wishlists"),
        ("GET", f"/me/wishlists/{some}"),
        ("PATCH", f"/me/wishlists/{some}"),
        ("DELETE", f"/me/wishlists/{some}"),
        ("POST", f"/me/wishlists/{some}/items"),
        ("DELETE", f"/me/wishlists/{some}/items/{some}"),
        ("POST", f"/me/wishlists/{some}/share"),
        ("DELETE", f"/me/wishlists/{some}/share"),
    ]:
        _problem(await client.request(method, path, json={}), 401, "invalid_token")


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": ""}, "validation_error"),
        ({"name": "x" * 101}, "validation_error"),
        ({"name": 7}, "validation_error"),
        ({}, "validation_error"),
        ({"name": "ok", "public": True}, "validation_error"),
        # Blank and control characters: the schema's pattern says so, so the request is
        # refused as invalid before the service (which refuses them too) sees it.
        ({"name": "   "}, "validation_error"),
        ({"name": "tab\tname"}, "validation_error"),
        ({"name": "nul\u0000"}, "validation_error"),
    ],
)
async def test_bad_names_are_problems(
    client: httpx.AsyncClient, db_session: AsyncSession, body: dict[str, Any], code: str
) -> None:
    account = await sign_up(client, db_session)
    existing = await _create(client, account, "Existing")
    created = await client.post("/me/wishlists", json=body, headers=account.headers)
    assert _problem(created, 422, code)["errors"]
    renamed = await client.patch(
        f"/me/wishlists/{existing['id']}", json=body, headers=account.headers
    )
    _problem(renamed, 422, code)
    assert [
        w["name"]
        for w in (await client.get("/me/wishlists", headers=account.headers)).json()["items"]
    ] == ["Existing"]


async def test_bad_ids_are_problems(client: httpx.AsyncClient, db_session: AsyncSession) -> None:
    account = await sign_up(client, db_session)
    wishlist = await _create(client, account, "Mine")
    items = f"/me/wishlists/{wishlist['id']}/items"
    for body in ({"variant_id": "not-a-uuid"}, {}, {"variant_id": None}, [], "x"):
        _problem(
            await client.post(items, json=body, headers=account.headers), 422, "validation_error"
        )
    for path in ("/me/wishlists/not-a-uuid", f"{items}/not-a-uuid"):
        _problem(await client.delete(path, headers=account.headers), 422, "validation_error")
    _problem(await client.get(f"/wishlists/shared/{'x' * 65}"), 422, "validation_error")


async def test_move_to_cart_checks_stock_and_takes_the_item_off_the_list(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    from tests.catalog_factories import VariantSpec, make_product, make_vendor

    account = await sign_up(client, db_session)
    vendor = await make_vendor(db_session)
    product = await make_product(
        db_session,
        vendor=vendor,
        variants=[VariantSpec(f"MV-{uuid.uuid4().hex[:6]}", 990, stock=2)],
    )
    await db_session.refresh(product, ["variants"])
    variant_id = str(product.variants[0].id)
    wishlist = (
        await client.post("/me/wishlists", headers=account.headers, json={"name": "Later"})
    ).json()
    added = await client.post(
        f"/me/wishlists/{wishlist['id']}/items",
        headers=account.headers,
        json={"variant_id": variant_id},
    )
    assert added.status_code == 201, added.text
    url = f"/me/wishlists/{wishlist['id']}/items/{variant_id}/move-to-cart"

    too_many = await client.post(url, headers=account.headers, json={"quantity": 3})
    assert too_many.status_code == 409
    assert too_many.json()["code"] == "insufficient_stock"
    still = (await client.get(f"/me/wishlists/{wishlist['id']}", headers=account.headers)).json()
    assert [item["variant_id"] for item in still["items"]] == [variant_id]

    moved = await client.post(url, headers=account.headers, json={"quantity": 2})
    assert moved.status_code == 200, moved.text
    [line] = [line for group in moved.json()["vendors"] for line in group["lines"]]
    assert (line["variant_id"], line["quantity"]) == (variant_id, 2)
    after = (await client.get(f"/me/wishlists/{wishlist['id']}", headers=account.headers)).json()
    assert after["items"] == []
    gone = await client.post(url, headers=account.headers, json={})
    assert gone.status_code == 404
    assert gone.json()["code"] == "not_on_wishlist"

    stranger = await sign_up(client, db_session)
    theirs = await client.post(url, headers=stranger.headers, json={})
    assert theirs.status_code == 404
