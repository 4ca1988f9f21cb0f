"""GET /checkout/summary: every number exact and explained, problems listed, not thrown."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.fulfilment.shipping import add_business_days
from models import (
    Product,
    Promotion,
    PromotionKind,
    PromotionScope,
    TaxRate,
    Vendor,
)
from tests.catalog_factories import VariantSpec, make_product, make_vendor
from tests.order_harness import BERLIN, add_shipping


@dataclass
class Shop:
    north: Vendor
    south: Vendor
    tee: str
    book: str
    mug: str
    coupon: str


@pytest.fixture
async def shop(db_session: AsyncSession) -> Shop:
    north = await make_vendor(db_session, name="North")
    south = await make_vendor(db_session, name="South")
    tee = await make_product(
        db_session, vendor=north, title="Tee", variants=[VariantSpec("N-TEE", 2500, stock=10)]
    )
    book = await make_product(
        db_session,
        vendor=north,
        title="Book",
        variants=[VariantSpec("N-BOOK", 1000, stock=10, weight_grams=500)],
    )
    book.tax_class = "reduced"
    mug = await make_product(
        db_session, vendor=south, title="Mug", variants=[VariantSpec("S-MUG", 1200, stock=1)]
    )
    db_session.add_all(
        [
            TaxRate(country="DE", tax_class="standard", rate_bp=1900),
            TaxRate(country="DE", tax_class="reduced", rate_bp=700),
        ]
    )
    await add_shipping(
        db_session, north, code="standard", handling=2, transit=(2, 4), amount=490, free_over=10_000
    )
    await add_shipping(db_session, north, code="express", handling=1, transit=(1, 1), amount=990)
    await add_shipping(db_session, south, code="parcel", handling=1, transit=(3, 5), amount=590)
    code = f"SAVE{uuid.uuid4().hex[:6].upper()}"
    db_session.add(
        Promotion(
            code=code,
            name="10% off",
            kind=PromotionKind.PERCENTAGE,
            value=1000,
            scope=PromotionScope.CART,
        )
    )
    await db_session.flush()

    async def variant_of(product: Product) -> str:
        await db_session.refresh(product, ["variants"])
        return str(product.variants[0].id)

    return Shop(
        north, south, await variant_of(tee), await variant_of(book), await variant_of(mug), code
    )


async def _guest_cart(client: httpx.AsyncClient, shop: Shop) -> dict[str, str]:
    created = await client.post("/carts")
    assert created.status_code == 201, created.text
    headers = {"X-Cart-Token": created.json()["cart_token"]}
    for variant, quantity in ((shop.tee, 2), (shop.book, 1), (shop.mug, 1)):
        added = await client.post(
            "/carts/current/items",
            headers=headers,
            json={"variant_id": variant, "quantity": quantity},
        )
        assert added.status_code == 201, added.text
    return headers


async def test_summary_without_an_address_lists_what_is_missing(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    headers = await _guest_cart(client, shop)
    summary = (await client.get("/checkout/summary", headers=headers)).json()
    assert summary["can_check_out"] is False
    assert "shipping_address_required" in [p["code"] for p in summary["problems"]]
    assert summary["items_subtotal"]["amount"] == 2 * 2500 + 1000 + 1200
    assert summary["shipping_total"]["amount"] == 0


async def test_summary_prices_every_part_exactly(client: httpx.AsyncClient, shop: Shop) -> None:
    headers = await _guest_cart(client, shop)
    assert (
        await client.put("/carts/current/shipping-address", headers=headers, json=BERLIN)
    ).status_code == 200
    coupons = await client.put(
        "/carts/current/coupons", headers=headers, json={"codes": [shop.coupon.lower()]}
    )
    assert coupons.status_code == 200, coupons.text
    response = await client.get("/checkout/summary", headers=headers)
    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["problems"] == []
    assert summary["can_check_out"] is True
    assert summary["currency"] == "EUR"

    # 10% of 7,200 = 720, allocated 500 / 100 / 120 (proportional, exact here).
    lines = {line["sku"]: line for v in summary["vendors"] for line in v["lines"]}
    assert {
        sku: (
            line["subtotal"]["amount"],
            line["discount"]["amount"],
            line["tax"]["amount"],
            line["tax_rate_bp"],
        )
        for sku, line in lines.items()
    } == {
        "N-TEE": (5000, 500, 855, 1900),  # 19% of 4,500
        "N-BOOK": (1000, 100, 63, 700),  # 7% of 900
        "S-MUG": (1200, 120, 205, 1900),  # 19% of 1,080 = 205.2
    }
    vendors = {v["vendor_name"]: v for v in summary["vendors"]}
    assert vendors["North"]["shipping"]["method_code"] == "standard"  # the cheapest
    assert vendors["North"]["shipping_amount"]["amount"] == 490
    assert vendors["South"]["shipping_amount"]["amount"] == 590
    # Shipping taxed at the standard rate: 93.1 -> 93 and 112.1 -> 112.
    assert vendors["North"]["tax"]["amount"] == 855 + 63 + 93
    assert vendors["South"]["tax"]["amount"] == 205 + 112
    assert summary["promotions"] == [
        {
            "promotion_id": summary["promotions"][0]["promotion_id"],
            "label": "10% off",
            "kind": "percentage",
            "amount": {"amount": 720, "currency": "EUR"},
        }
    ]
    assert summary["items_subtotal"]["amount"] == 7200
    assert summary["discount_total"]["amount"] == 720
    assert summary["shipping_total"]["amount"] == 1080
    assert summary["tax_total"]["amount"] == 855 + 63 + 205 + 93 + 112
    assert summary["grand_total"]["amount"] == 6480 + 1080 + 1328
    # The parts add up, at every level.
    assert summary["grand_total"]["amount"] == sum(v["total"]["amount"] for v in summary["vendors"])

    # Each vendor ships separately; the order is complete when the slower one arrives.
    today = datetime.now(UTC).date()
    assert (
        summary["estimated_delivery_earliest"]
        == max(add_business_days(today, 2 + 2), add_business_days(today, 1 + 3)).isoformat()
    )
    assert (
        summary["estimated_delivery_latest"]
        == max(add_business_days(today, 2 + 4), add_business_days(today, 1 + 5)).isoformat()
    )


async def test_chosen_shipping_method_and_refused_coupons(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    headers = await _guest_cart(client, shop)
    await client.put("/carts/current/shipping-address", headers=headers, json=BERLIN)
    chosen = await client.put(
        f"/carts/current/shipping/{shop.north.id}", headers=headers, json={"method_code": "express"}
    )
    assert chosen.status_code == 200, chosen.text
    await client.put("/carts/current/coupons", headers=headers, json={"codes": ["NOPE"]})
    summary = (await client.get("/checkout/summary", headers=headers)).json()
    north = next(v for v in summary["vendors"] if v["vendor_name"] == "North")
    assert north["shipping"]["method_code"] == "express"
    assert north["shipping_amount"]["amount"] == 990
    assert {o["method_code"] for o in north["shipping_options"]} == {"standard", "express"}
    assert [p["code"] for p in summary["problems"]] == ["coupon_unknown"]
    assert summary["discount_total"]["amount"] == 0
    assert summary["can_check_out"] is False


async def test_stock_and_destination_problems_are_listed(
    client: httpx.AsyncClient, shop: Shop, db_session: AsyncSession
) -> None:
    headers = await _guest_cart(client, shop)
    await client.put(
        "/carts/current/shipping-address",
        headers=headers,
        json={**BERLIN, "country": "US", "region": "NY", "postal_code": "10001", "city": "NYC"},
    )
    summary = (await client.get("/checkout/summary", headers=headers)).json()
    codes = sorted(p["code"] for p in summary["problems"])
    # Nobody ships to the US, and no US tax rates are set up.
    assert codes.count("no_shipping_method") == 2
    assert "tax_rate_missing" in codes
    assert summary["can_check_out"] is False


async def test_summary_needs_a_cart(client: httpx.AsyncClient) -> None:
    response = await client.get("/checkout/summary")
    assert response.status_code == 401
    assert response.json()["code"] == "cart_required"
