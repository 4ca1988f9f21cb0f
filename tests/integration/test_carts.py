"""Carts over HTTP: guest and user carts, stock and currency rules, honest views of stale
lines, the guest-to-user merge, and no way into someone else's cart."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from models import Cart, InventoryLevel, Product, ProductStatus, Variant, Vendor, VendorStatus
from tests.catalog_factories import VariantSpec, make_product, make_vendor
from tests.conftest import _client_for, make_settings
from tests.factories import Account, bearer, log_in, sign_up

PROBLEM = "application/problem+json"


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code, body
    return body


async def _variant(
    session: AsyncSession, *, vendor: Vendor | None = None, price: int = 1000, **spec: Any
) -> Variant:
    vendor = vendor or await make_vendor(session)
    sku = f"SKU-{uuid.uuid4().hex[:8]}"
    product = await make_product(session, vendor=vendor, variants=[VariantSpec(sku, price, **spec)])
    found = await session.scalar(select(Variant).where(Variant.product_id == product.id))
    assert found is not None
    return found


async def _guest(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/carts")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["cart"]["is_guest"] is True
    assert body["cart"]["vendors"] == []
    return {"X-Cart-Token": body["cart_token"]}


async def _add(
    client: httpx.AsyncClient, headers: dict[str, str], variant: Variant, quantity: int = 1
) -> httpx.Response:
    return await client.post(
        "/carts/current/items",
        json={"variant_id": str(variant.id), "quantity": quantity},
        headers=headers,
    )


def _lines(cart: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {line["variant_id"]: line for group in cart["vendors"] for line in group["lines"]}


def _problem_codes(line: dict[str, Any]) -> list[str]:
    return [problem["code"] for problem in line["problems"]]


async def test_guest_cart_lifecycle(client: httpx.AsyncClient, db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    shirt = await _variant(db_session, vendor=vendor, price=1999, stock=5, options={"size": "M"})
    mug = await _variant(db_session, vendor=vendor, price=750, stock=3)
    other_vendor_item = await _variant(db_session, price=500)
    guest = await _guest(client)

    assert (await _add(client, guest, shirt, 2)).status_code == 201
    assert (await _add(client, guest, mug)).status_code == 201
    response = await _add(client, guest, shirt, 1)  # summed with the line already there
    assert response.status_code == 201
    assert (await _add(client, guest, other_vendor_item)).status_code == 201

    cart = (await client.get("/carts/current", headers=guest)).json()
    assert cart["currency"] == "EUR"
    assert len(cart["vendors"]) == 2
    lines = _lines(cart)
    line = lines[str(shirt.id)]
    assert (line["quantity"], line["unit_price"]["amount"], line["subtotal"]["amount"]) == (
        3,
        1999,
        5997,
    )
    assert line["options"] == {"size": "M"}
    assert line["problems"] == []
    assert line["sku"] == shirt.sku
    assert line["available"] == 5
    assert cart["subtotal"]["amount"] == 5997 + 750 + 500
    assert cart["item_count"] == 5
    assert cart["has_problems"] is False
    group = next(g for g in cart["vendors"] if g["vendor_id"] == str(vendor.id))
    assert group["subtotal"]["amount"] == 5997 + 750

    response = await client.patch(
        f"/carts/current/items/{shirt.id}", json={"quantity": 1}, headers=guest
    )
    assert response.status_code == 200
    assert _lines(response.json())[str(shirt.id)]["quantity"] == 1
    response = await client.patch(
        f"/carts/current/items/{mug.id}", json={"quantity": 0}, headers=guest
    )
    assert str(mug.id) not in _lines(response.json())
    response = await client.delete(f"/carts/current/items/{shirt.id}", headers=guest)
    assert set(_lines(response.json())) == {str(other_vendor_item.id)}
    _problem(
        await client.delete(f"/carts/current/items/{shirt.id}", headers=guest),
        404,
        "cart_item_not_found",
    )

    response = await client.delete("/carts/current/items", headers=guest)
    assert response.status_code == 200
    assert response.json()["vendors"] == []
    assert response.json()["currency"] is None


async def test_coupons_address_and_shipping_choices_are_stored(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    guest = await _guest(client)
    response = await client.put(
        "/carts/current/coupons", json={"codes": [" summer10 ", "SUMMER10", "vip"]}, headers=guest
    )
    assert response.status_code == 200, response.text
    assert response.json()["coupon_codes"] == ["SUMMER10", "VIP"]
    _problem(
        await client.put(
            "/carts/current/coupons", json={"codes": [f"C{i}" for i in range(6)]}, headers=guest
        ),
        422,
        "validation_error",
    )

    address = {
        "name": " Ada  Lovelace ",
        "line1": "1 Main St",
        "city": "San Francisco",
        "region": "california",
        "postal_code": "94105",
        "country": "usa",
    }
    response = await client.put("/carts/current/shipping-address", json=address, headers=guest)
    assert response.status_code == 200, response.text
    stored = response.json()["shipping_address"]
    assert (stored["name"], stored["region"], stored["country"]) == ("Ada Lovelace", "CA", "US")
    body = _problem(
        await client.put(
            "/carts/current/shipping-address",
            json={**address, "postal_code": "not a zip"},
            headers=guest,
        ),
        422,
        "invalid_address",
    )
    assert [error["loc"] for error in body["errors"]] == [["body", "postal_code"]]

    vendor_id = uuid.uuid4()
    response = await client.put(
        f"/carts/current/shipping/{vendor_id}", json={"method_code": "express"}, headers=guest
    )
    assert response.status_code == 200
    assert response.json()["shipping_choices"] == {str(vendor_id): "express"}


async def test_user_cart_persists_across_sign_ins(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    variant = await _variant(db_session)
    assert (await _add(client, account.headers, variant, 2)).status_code == 201

    second = bearer((await log_in(client, account.email, account.password))["access_token"])
    cart = (await client.get("/carts/current", headers=second)).json()
    assert cart["is_guest"] is False
    assert _lines(cart)[str(variant.id)]["quantity"] == 2
    first = (await client.get("/carts/current", headers=account.headers)).json()
    assert first["id"] == cart["id"]
    carts = await db_session.scalars(select(Cart).where(Cart.user_id == uuid.UUID(account.id)))
    assert len(list(carts)) == 1


async def test_one_currency_per_cart(client: httpx.AsyncClient, db_session: AsyncSession) -> None:
    euro = await _variant(db_session)
    dollar = await _variant(db_session, currency="USD")
    guest = await _guest(client)
    assert (await _add(client, guest, euro)).status_code == 201
    body = _problem(await _add(client, guest, dollar), 409, "currency_mismatch")
    assert body["cart_currency"] == "EUR"
    # An emptied cart may start over in another currency.
    await client.delete("/carts/current/items", headers=guest)
    assert (await _add(client, guest, dollar)).status_code == 201


async def test_stock_caps_adding(client: httpx.AsyncClient, db_session: AsyncSession) -> None:
    variant = await _variant(db_session, stock=3)
    guest = await _guest(client)
    assert (await _add(client, guest, variant, 2)).status_code == 201
    body = _problem(await _add(client, guest, variant, 2), 409, "insufficient_stock")
    assert (body["available"], body["requested"], body["in_cart"]) == (3, 4, 2)
    _problem(
        await client.patch(
            f"/carts/current/items/{variant.id}", json={"quantity": 4}, headers=guest
        ),
        409,
        "insufficient_stock",
    )
    sold_out = await _variant(db_session, stock=0)
    assert (
        _problem(await _add(client, guest, sold_out), 409, "insufficient_stock")["available"] == 0
    )
    hidden = await _variant(db_session)
    await db_session.execute(update(Variant).where(Variant.id == hidden.id).values(is_active=False))
    _problem(await _add(client, guest, hidden), 409, "not_available")
    unknown = Variant(id=uuid.uuid4())
    _problem(await _add(client, guest, unknown), 409, "not_available")


async def test_view_reports_what_changed_after_adding(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    suspended_vendor = await make_vendor(db_session)
    from_suspended = await _variant(db_session, vendor=suspended_vendor)
    archived = await _variant(db_session)
    repriced = await _variant(db_session, price=1000)
    dwindling = await _variant(db_session, stock=5)
    sold_out = await _variant(db_session, stock=5)
    guest = await _guest(client)
    for variant, quantity in (
        (from_suspended, 1),
        (archived, 1),
        (repriced, 2),
        (dwindling, 4),
        (sold_out, 1),
    ):
        assert (await _add(client, guest, variant, quantity)).status_code == 201

    await db_session.execute(
        update(Vendor).where(Vendor.id == suspended_vendor.id).values(status=VendorStatus.SUSPENDED)
    )
    await db_session.execute(
        update(Product)
        .where(Product.id == archived.product_id)
        .values(status=ProductStatus.ARCHIVED)
    )
    await db_session.execute(
        update(Variant).where(Variant.id == repriced.id).values(price_amount=1200)
    )
    await db_session.execute(_stock_statement(dwindling.id, 2))
    await db_session.execute(_stock_statement(sold_out.id, 0))

    cart = (await client.get("/carts/current", headers=guest)).json()
    lines = _lines(cart)
    assert cart["has_problems"] is True
    assert _problem_codes(lines[str(from_suspended.id)]) == ["not_available"]
    assert _problem_codes(lines[str(archived.id)]) == ["not_available"]
    line = lines[str(repriced.id)]
    assert _problem_codes(line) == ["price_changed"]
    assert (
        line["unit_price_seen"]["amount"],
        line["unit_price"]["amount"],
        line["subtotal"]["amount"],
    ) == (1000, 1200, 2400)
    assert line["price_changed"] is True
    assert lines[str(dwindling.id)]["problems"] == [{"code": "insufficient_stock", "available": 2}]
    assert _problem_codes(lines[str(sold_out.id)]) == ["out_of_stock"]

    # Changes are checked too: a stale line may only go down to what is there, or go away.
    _problem(
        await client.patch(
            f"/carts/current/items/{archived.id}", json={"quantity": 2}, headers=guest
        ),
        409,
        "not_available",
    )
    response = await client.patch(
        f"/carts/current/items/{dwindling.id}", json={"quantity": 2}, headers=guest
    )
    assert _lines(response.json())[str(dwindling.id)]["problems"] == []
    response = await client.delete(f"/carts/current/items/{from_suspended.id}", headers=guest)
    assert response.status_code == 200
    # Adding again acknowledges the new price.
    response = await _add(client, guest, repriced, 1)
    assert _lines(response.json())[str(repriced.id)]["price_changed"] is False


def _stock_statement(variant_id: uuid.UUID, on_hand: int) -> Any:
    return (
        update(InventoryLevel)
        .where(InventoryLevel.variant_id == variant_id)
        .values(on_hand=on_hand, reserved=0)
    )


async def test_merging_a_guest_cart_keeps_every_item(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    shared = await _variant(db_session, stock=5)
    guest_only = await _variant(db_session, stock=9)
    going_away = await _variant(db_session)
    dollar_vendor = await make_vendor(db_session)
    in_dollars = await _variant(db_session, vendor=dollar_vendor, currency="USD")

    assert (await _add(client, account.headers, shared, 3)).status_code == 201
    guest = await _guest(client)
    assert (await _add(client, guest, shared, 4)).status_code == 201
    assert (await _add(client, guest, guest_only, 2)).status_code == 201
    assert (await _add(client, guest, going_away, 1)).status_code == 201
    await client.put("/carts/current/coupons", json={"codes": ["welcome"]}, headers=guest)
    await db_session.execute(
        update(Product)
        .where(Product.id == going_away.product_id)
        .values(status=ProductStatus.ARCHIVED)
    )

    response = await client.post(
        "/me/cart/merge", json={"cart_token": guest["X-Cart-Token"]}, headers=account.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    merged = {line["variant_id"]: line for line in body["merged"]}
    assert (merged[str(shared.id)]["added"], merged[str(shared.id)]["quantity"]) == (2, 5)
    assert merged[str(shared.id)]["requested"] == 4
    assert merged[str(guest_only.id)]["added"] == 2
    assert body["not_merged"] == [
        {
            "variant_id": str(going_away.id),
            "sku": going_away.sku,
            "quantity": 1,
            "reason": "not_available",
            "available": None,
        }
    ]
    lines = _lines(body["cart"])
    assert {vid: line["quantity"] for vid, line in lines.items()} == {
        str(shared.id): 5,
        str(guest_only.id): 2,
    }
    assert body["cart"]["coupon_codes"] == ["WELCOME"]

    # The guest token is spent: merging again and using it both fail, and nothing changes.
    _problem(
        await client.post(
            "/me/cart/merge", json={"cart_token": guest["X-Cart-Token"]}, headers=account.headers
        ),
        404,
        "cart_not_found",
    )
    _problem(await client.get("/carts/current", headers=guest), 404, "cart_not_found")
    cart = (await client.get("/carts/current", headers=account.headers)).json()
    assert _lines(cart)[str(shared.id)]["quantity"] == 5

    # A guest cart in another currency than the user's: its lines are reported, not dropped.
    dollars = await _guest(client)
    assert (await _add(client, dollars, in_dollars, 1)).status_code == 201
    body = (
        await client.post(
            "/me/cart/merge", json={"cart_token": dollars["X-Cart-Token"]}, headers=account.headers
        )
    ).json()
    assert body["merged"] == []
    assert [(line["variant_id"], line["reason"]) for line in body["not_merged"]] == [
        (str(in_dollars.id), "currency_mismatch")
    ]


async def test_no_way_into_another_cart(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    variant = await _variant(db_session)
    alice = await _guest(client)
    assert (await _add(client, alice, variant)).status_code == 201
    mallory = await _guest(client)
    assert _lines((await client.get("/carts/current", headers=mallory)).json()) == {}

    forged = {"X-Cart-Token": "x" * 43}
    _problem(await client.get("/carts/current", headers=forged), 404, "cart_not_found")
    _problem(await _add(client, forged, variant), 404, "cart_not_found")
    # A signed-in user's cart is theirs only, whatever cart token comes along.
    account: Account = await sign_up(client, db_session)
    cart = (await client.get("/carts/current", headers={**account.headers, **alice})).json()
    assert _lines(cart) == {}
    # A bad access token is refused, not silently replaced by the guest cart.
    _problem(
        await client.get("/carts/current", headers={**bearer("nope"), **alice}),
        401,
        "invalid_token",
    )
    _problem(
        await client.post("/me/cart/merge", json={"cart_token": alice["X-Cart-Token"]}),
        401,
        "invalid_token",
    )


async def test_without_a_cart_or_a_sign_in_is_401(client: httpx.AsyncClient) -> None:
    for method, path in (
        ("GET", "/carts/current"),
        ("POST", "/carts/current/items"),
        ("DELETE", "/carts/current/items"),
        ("PUT", "/carts/current/coupons"),
    ):
        response = await client.request(method, path, json={})
        body = _problem(response, 401, "cart_required")
        assert "X-Cart-Token" in body["detail"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/carts/current/items", {"variant_id": "not-a-uuid"}),
        ("POST", "/carts/current/items", {"variant_id": str(uuid.uuid4()), "quantity": 0}),
        ("POST", "/carts/current/items", {"variant_id": str(uuid.uuid4()), "quantity": 1000}),
        ("POST", "/carts/current/items", {"variant_id": str(uuid.uuid4()), "extra": 1}),
        ("PATCH", f"/carts/current/items/{uuid.uuid4()}", {"quantity": -1}),
        ("PATCH", "/carts/current/items/not-a-uuid", {"quantity": 1}),
        ("PUT", "/carts/current/coupons", {"codes": "SUMMER"}),
        ("PUT", "/carts/current/shipping-address", {"name": "x"}),
        ("PUT", f"/carts/current/shipping/{uuid.uuid4()}", {"method_code": ""}),
    ],
)
async def test_bad_input_is_a_422_problem(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any]
) -> None:
    guest = await _guest(client)
    response = await client.request(method, path, json=body, headers=guest)
    _problem(response, 422, "validation_error")


async def test_control_characters_are_refused(client: httpx.AsyncClient) -> None:
    guest = await _guest(client)
    _problem(
        await client.put("/carts/current/coupons", json={"codes": ["A\u0000B"]}, headers=guest),
        422,
        "validation_error",
    )
    _problem(
        await client.put(
            f"/carts/current/shipping/{uuid.uuid4()}",
            json={"method_code": "a\u0000b"},
            headers=guest,
        ),
        422,
        "validation_error",
    )


async def test_first_requests_of_a_new_user_at_once_make_one_cart(
    fresh_database_url: str, temporal_address: str
) -> None:
    """Real transactions, each committing: the INSERT ... ON CONFLICT race of user_cart."""
    app = create_app(make_settings(fresh_database_url, temporal_address))
    async for client in _client_for(app):
        account = await sign_up(client, None, verified=False)  # type: ignore[arg-type]
        responses = await asyncio.gather(
            *(client.get("/carts/current", headers=account.headers) for _ in range(5))
        )
        assert [response.status_code for response in responses] == [200] * 5
        assert len({response.json()["id"] for response in responses}) == 1
