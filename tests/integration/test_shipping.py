"""Shipping: a vendor's zones, methods and rates over the API (validation, overlapping bands,
who may read and write, another vendor's ids), and ``quote`` over those tables (zone match,
weight bands and their boundaries, free-over thresholds, inactive methods, currency, ordering,
delivery dates over a weekend), and the table-rate carrier."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.fulfilment import shipping
from commerce.fulfilment.shipping import (
    Carrier,
    InvalidShippingQuote,
    LabelRequest,
    QuoteRequest,
    TableRateCarrier,
)
from models import (
    PlatformRole,
    ShippingMethod,
    ShippingRate,
    ShippingZone,
    Vendor,
    VendorMembership,
    VendorRole,
)
from tests.catalog_factories import make_vendor
from tests.factories import Account, sign_up

PROBLEM = "application/problem+json"
WEDNESDAY = date(2026, 11, 18)
FRIDAY = date(2026, 11, 20)


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code, body
    return body


async def _member(
    session: AsyncSession, account: Account, vendor: Vendor, role: VendorRole
) -> None:
    session.add(VendorMembership(vendor_id=vendor.id, user_id=uuid.UUID(account.id), role=role))
    await session.flush()


class Shop:
    """A vendor, its owner and a staff member, signed in."""

    def __init__(self, vendor: Vendor, owner: Account, staff: Account) -> None:
        self.vendor, self.owner, self.staff = vendor, owner, staff
        self.base = f"/vendors/{vendor.id}/shipping"


async def _shop(client: httpx.AsyncClient, session: AsyncSession) -> Shop:
    owner = await sign_up(client, session)
    vendor = await make_vendor(session, owner_id=uuid.UUID(owner.id))
    staff = await sign_up(client, session)
    await _member(session, staff, vendor, VendorRole.STAFF)
    return Shop(vendor, owner, staff)


@pytest.fixture
async def shop(client: httpx.AsyncClient, db_session: AsyncSession) -> Shop:
    return await _shop(client, db_session)


def _money(currency: str, amount: int | None) -> dict[str, Any] | None:
    return None if amount is None else {"amount": amount, "currency": currency}


def _rate_body(body: dict[str, Any]) -> dict[str, Any]:
    """A rate's ``amount``, ``currency`` and ``free_over_amount`` as the API's money objects."""
    body = dict(body)
    currency = body.pop("currency")
    body["price"] = _money(currency, body.pop("amount"))
    if "free_over_amount" in body:
        body["free_over"] = _money(currency, body.pop("free_over_amount"))
    return body


async def _post(client: httpx.AsyncClient, shop: Shop, what: str, **body: Any) -> httpx.Response:
    if what == "rates":
        body = _rate_body(body)
    return await client.post(f"{shop.base}/{what}", json=body, headers=shop.owner.headers)


async def _tables(client: httpx.AsyncClient, shop: Shop) -> tuple[str, str]:
    """A zone (DE, AT) and a method, by id."""
    zone = await _post(client, shop, "zones", name="DACH", countries=["de", "AT"])
    assert zone.status_code == 201, zone.text
    method = await _post(
        client,
        shop,
        "methods",
        code="standard",
        name="Standard",
        transit_days_min=2,
        transit_days_max=4,
    )
    assert method.status_code == 201, method.text
    return zone.json()["id"], method.json()["id"]


# --- the vendor API -------------------------------------------------------------------------------


async def test_manager_builds_the_tables_and_staff_reads_them(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    zone_id, method_id = await _tables(client, shop)
    rate = await _post(
        client,
        shop,
        "rates",
        method_id=method_id,
        zone_id=zone_id,
        max_weight_grams=1000,
        amount=490,
        currency="EUR",
        free_over_amount=5000,
    )
    assert rate.status_code == 201, rate.text
    assert rate.json() | {"id": None} == {
        "id": None,
        "method_id": method_id,
        "zone_id": zone_id,
        "min_weight_grams": 0,
        "max_weight_grams": 1000,
        "price": {"amount": 490, "currency": "EUR"},
        "free_over": {"amount": 5000, "currency": "EUR"},
    }
    for what, expected in (
        ("zones", zone_id),
        ("methods", method_id),
        ("rates", rate.json()["id"]),
    ):
        listed = await client.get(f"{shop.base}/{what}", headers=shop.staff.headers)
        assert listed.status_code == 200, listed.text
        assert [row["id"] for row in listed.json()["items"]] == [expected]
    zones = await client.get(f"{shop.base}/zones", headers=shop.staff.headers)
    assert zones.json()["items"][0]["countries"] == ["DE", "AT"]
    filtered = await client.get(
        f"{shop.base}/rates", params={"zone_id": str(uuid.uuid4())}, headers=shop.staff.headers
    )
    assert filtered.json()["items"] == []

    # Updates, then deletes: a zone takes its rates with it.
    headers = shop.owner.headers
    patched = await client.patch(
        f"{shop.base}/zones/{zone_id}", json={"countries": ["CH"]}, headers=headers
    )
    assert patched.json()["countries"] == ["CH"]
    patched = await client.patch(
        f"{shop.base}/methods/{method_id}", json={"is_active": False}, headers=headers
    )
    assert patched.json()["is_active"] is False
    patched = await client.patch(
        f"{shop.base}/rates/{rate.json()['id']}", json={"free_over": None}, headers=headers
    )
    assert patched.json()["free_over"] is None
    assert (await client.delete(f"{shop.base}/zones/{zone_id}", headers=headers)).status_code == 204
    assert (await client.get(f"{shop.base}/rates", headers=headers)).json()["items"] == []
    deleted = await client.delete(f"{shop.base}/methods/{method_id}", headers=headers)
    assert deleted.status_code == 204
    assert (await client.get(f"{shop.base}/methods", headers=headers)).json()["items"] == []


@pytest.mark.parametrize(
    ("what", "body", "code", "field"),
    [
        ("zones", {"name": "EU", "countries": []}, "invalid_shipping_zone", "countries"),
        ("zones", {"name": "EU", "countries": ["XX"]}, "invalid_shipping_zone", "countries"),
        ("zones", {"name": "EU", "countries": ["DEU"]}, "invalid_shipping_zone", "countries"),
        ("zones", {"name": "  ", "countries": ["DE"]}, "invalid_shipping_zone", "name"),
        (
            "methods",
            {"code": "Express!", "name": "X", "transit_days_min": 1, "transit_days_max": 2},
            "invalid_shipping_method",
            "code",
        ),
        (
            "methods",
            {"code": "x" * 41, "name": "X", "transit_days_min": 1, "transit_days_max": 2},
            "invalid_shipping_method",
            "code",
        ),
        (
            "methods",
            {"code": "slow", "name": "Slow", "transit_days_min": 5, "transit_days_max": 2},
            "invalid_shipping_method",
            "transit_days_max",
        ),
        (
            "methods",
            {"code": "slow", "name": "Slow", "transit_days_min": -1, "transit_days_max": 2},
            "invalid_shipping_method",
            "transit_days_min",
        ),
        (
            "methods",
            {
                "code": "slow",
                "name": "Slow",
                "handling_days": -1,
                "transit_days_min": 1,
                "transit_days_max": 2,
            },
            "invalid_shipping_method",
            "handling_days",
        ),
    ],
)
async def test_invalid_zones_and_methods(
    client: httpx.AsyncClient,
    shop: Shop,
    what: str,
    body: dict[str, Any],
    code: str,
    field: str,
) -> None:
    problem = _problem(await _post(client, shop, what, **body), 422, code)
    assert problem["errors"][0]["loc"] == ["body", field]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": -1, "currency": "EUR"}, "price.amount"),
        ({"amount": 100, "currency": "EUR", "min_weight_grams": -5}, "min_weight_grams"),
        (
            {"amount": 100, "currency": "EUR", "min_weight_grams": 500, "max_weight_grams": 500},
            "max_weight_grams",
        ),
        ({"amount": 100, "currency": "EUR", "free_over_amount": -1}, "free_over.amount"),
    ],
)
async def test_invalid_rates(
    client: httpx.AsyncClient, shop: Shop, body: dict[str, Any], field: str
) -> None:
    zone_id, method_id = await _tables(client, shop)
    response = await _post(client, shop, "rates", method_id=method_id, zone_id=zone_id, **body)
    problem = _problem(response, 422, "invalid_shipping_rate")
    assert problem["errors"][0]["loc"] == ["body", *field.split(".")]


@pytest.mark.parametrize("currency", ["EURO", "ABC", "XAU", "eur"])
async def test_a_rate_in_no_currency_is_a_validation_error(
    client: httpx.AsyncClient, shop: Shop, currency: str
) -> None:
    zone_id, method_id = await _tables(client, shop)
    body = {"amount": 100, "currency": currency}
    response = await _post(client, shop, "rates", method_id=method_id, zone_id=zone_id, **body)
    problem = _problem(response, 422, "validation_error")
    assert problem["errors"][0]["loc"] == ["body", "price", "currency"]


async def test_a_threshold_is_in_the_rates_currency(client: httpx.AsyncClient, shop: Shop) -> None:
    zone_id, method_id = await _tables(client, shop)
    body = {"method_id": method_id, "zone_id": zone_id, "price": {"amount": 490, "currency": "EUR"}}
    mixed = body | {"free_over": {"amount": 5000, "currency": "USD"}}
    response = await client.post(f"{shop.base}/rates", json=mixed, headers=shop.owner.headers)
    assert _problem(response, 422, "invalid_shipping_rate")["errors"][0]["loc"] == [
        "body",
        "free_over",
    ]
    rate = await client.post(f"{shop.base}/rates", json=body, headers=shop.owner.headers)
    assert rate.status_code == 201, rate.text
    patched = await client.patch(
        f"{shop.base}/rates/{rate.json()['id']}",
        json={"free_over": {"amount": 5000, "currency": "USD"}},
        headers=shop.owner.headers,
    )
    _problem(patched, 422, "invalid_shipping_rate")


async def test_names_and_codes_are_unique_per_vendor(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    await _tables(client, shop)
    _problem(
        await _post(client, shop, "zones", name="DACH", countries=["CH"]),
        409,
        "shipping_zone_exists",
    )
    _problem(
        await _post(
            client,
            shop,
            "methods",
            code="standard",
            name="Again",
            transit_days_min=1,
            transit_days_max=1,
        ),
        409,
        "shipping_method_exists",
    )
    express = await _post(
        client,
        shop,
        "methods",
        code="express",
        name="Express",
        transit_days_min=1,
        transit_days_max=1,
    )
    renamed = await client.patch(
        f"{shop.base}/methods/{express.json()['id']}",
        json={"code": "standard"},
        headers=shop.owner.headers,
    )
    _problem(renamed, 409, "shipping_method_exists")
    # Another vendor may use the same names.
    other = await _shop(client, db_session)
    assert (await _tables(client, other))[0]


async def test_weight_bands_may_not_overlap(client: httpx.AsyncClient, shop: Shop) -> None:
    zone_id, method_id = await _tables(client, shop)

    async def band(low: int, high: int | None) -> httpx.Response:
        return await _post(
            client,
            shop,
            "rates",
            method_id=method_id,
            zone_id=zone_id,
            min_weight_grams=low,
            max_weight_grams=high,
            amount=100,
            currency="EUR",
        )

    assert (await band(0, 1000)).status_code == 201
    # Half-open bands chain: 1000 is where the next one starts.
    assert (await band(1000, 2000)).status_code == 201
    for low, high in ((999, 1500), (500, 600), (1500, None), (0, None), (1999, 2001)):
        problem = _problem(await band(low, high), 409, "overlapping_rates")
        assert "overlaps" in problem
    open_ended = await band(2000, None)
    assert open_ended.status_code == 201
    _problem(await band(5000, 6000), 409, "overlapping_rates")
    # Another currency does not make room: one parcel must match one band.
    other_currency = await _post(
        client,
        shop,
        "rates",
        method_id=method_id,
        zone_id=zone_id,
        min_weight_grams=0,
        max_weight_grams=1000,
        amount=100,
        currency="CHF",
    )
    _problem(other_currency, 409, "overlapping_rates")
    # Updating a band into a neighbour is refused; within its own range it is fine.
    first = (await client.get(f"{shop.base}/rates", headers=shop.owner.headers)).json()["items"][0]
    url = f"{shop.base}/rates/{first['id']}"
    _problem(
        await client.patch(url, json={"max_weight_grams": 1001}, headers=shop.owner.headers),
        409,
        "overlapping_rates",
    )
    shrunk = await client.patch(url, json={"max_weight_grams": 900}, headers=shop.owner.headers)
    assert shrunk.status_code == 200, shrunk.text
    # Another zone has bands of its own.
    zone = await _post(client, shop, "zones", name="Rest", countries=["FR"])
    other_zone = await _post(
        client,
        shop,
        "rates",
        method_id=method_id,
        zone_id=zone.json()["id"],
        amount=900,
        currency="EUR",
    )
    assert other_zone.status_code == 201


async def test_staff_cannot_write(client: httpx.AsyncClient, shop: Shop) -> None:
    zone_id, method_id = await _tables(client, shop)
    rate = await _post(
        client, shop, "rates", method_id=method_id, zone_id=zone_id, amount=100, currency="EUR"
    )
    headers = shop.staff.headers
    writes = [
        client.post(f"{shop.base}/zones", json={"name": "X", "countries": ["FR"]}, headers=headers),
        client.patch(f"{shop.base}/zones/{zone_id}", json={"name": "Y"}, headers=headers),
        client.delete(f"{shop.base}/zones/{zone_id}", headers=headers),
        client.post(
            f"{shop.base}/methods",
            json={"code": "x", "name": "X", "transit_days_min": 1, "transit_days_max": 1},
            headers=headers,
        ),
        client.patch(f"{shop.base}/methods/{method_id}", json={"name": "Y"}, headers=headers),
        client.delete(f"{shop.base}/methods/{method_id}", headers=headers),
        client.post(
            f"{shop.base}/rates",
            json={
                "method_id": method_id,
                "zone_id": zone_id,
                "price": {"amount": 1, "currency": "EUR"},
            },
            headers=headers,
        ),
        client.patch(
            f"{shop.base}/rates/{rate.json()['id']}",
            json={"price": {"amount": 1, "currency": "EUR"}},
            headers=headers,
        ),
        client.delete(f"{shop.base}/rates/{rate.json()['id']}", headers=headers),
    ]
    for write in writes:
        _problem(await write, 403, "forbidden")


async def test_another_vendors_tables_are_not_found(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    zone_id, method_id = await _tables(client, shop)
    rate = await _post(
        client, shop, "rates", method_id=method_id, zone_id=zone_id, amount=100, currency="EUR"
    )
    rate_id = rate.json()["id"]
    other = await _shop(client, db_session)
    other_zone, other_method = await _tables(client, other)
    headers = other.owner.headers
    # Through their own vendor's path, our ids do not exist.
    base = other.base
    _problem(
        await client.patch(f"{base}/zones/{zone_id}", json={"name": "Mine"}, headers=headers),
        404,
        "shipping_zone_not_found",
    )
    _problem(
        await client.delete(f"{base}/methods/{method_id}", headers=headers),
        404,
        "shipping_method_not_found",
    )
    _problem(
        await client.patch(
            f"{base}/rates/{rate_id}",
            json={"price": {"amount": 1, "currency": "EUR"}},
            headers=headers,
        ),
        404,
        "shipping_rate_not_found",
    )
    _problem(
        await client.delete(f"{base}/rates/{rate_id}", headers=headers),
        404,
        "shipping_rate_not_found",
    )
    # Mixing our method with their zone (or the reverse) is not found either.
    _problem(
        await client.post(
            f"{base}/rates",
            json={
                "method_id": method_id,
                "zone_id": other_zone,
                "price": {"amount": 1, "currency": "EUR"},
            },
            headers=headers,
        ),
        404,
        "shipping_method_not_found",
    )
    _problem(
        await client.post(
            f"{base}/rates",
            json={
                "method_id": other_method,
                "zone_id": zone_id,
                "price": {"amount": 1, "currency": "EUR"},
            },
            headers=headers,
        ),
        404,
        "shipping_zone_not_found",
    )
    # And our vendor's path is not theirs to read.
    _problem(await client.get(f"{shop.base}/zones", headers=headers), 404, "not_found")
    # Nothing of ours changed.
    ours = (await client.get(f"{shop.base}/rates", headers=shop.owner.headers)).json()["items"]
    assert [(r["id"], r["price"]["amount"]) for r in ours] == [(rate_id, 100)]


async def test_signed_out_and_shoppers_are_kept_out(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    _problem(await client.get(f"{shop.base}/zones"), 401, "invalid_token")
    shopper = await sign_up(client, db_session)
    _problem(await client.get(f"{shop.base}/zones", headers=shopper.headers), 404, "not_found")
    admin = await sign_up(client, db_session, role=PlatformRole.ADMIN)
    as_admin = await client.get(f"{shop.base}/zones", headers=admin.headers)
    assert as_admin.status_code == 200


# --- quotes ---------------------------------------------------------------------------------------


async def _zone(session: AsyncSession, vendor: Vendor, name: str, *countries: str) -> ShippingZone:
    return await shipping.create_zone(
        session, vendor_id=vendor.id, name=name, countries=list(countries)
    )


async def _method(
    session: AsyncSession,
    vendor: Vendor,
    code: str,
    *,
    handling: int = 1,
    transit: tuple[int, int] = (2, 4),
    active: bool = True,
) -> ShippingMethod:
    return await shipping.create_method(
        session,
        vendor_id=vendor.id,
        code=code,
        name=code.title(),
        handling_days=handling,
        transit_days_min=transit[0],
        transit_days_max=transit[1],
        is_active=active,
    )


async def _rate(
    session: AsyncSession,
    method: ShippingMethod,
    zone: ShippingZone,
    amount: int,
    *,
    band: tuple[int, int | None] = (0, None),
    currency: str = "EUR",
    free_over: int | None = None,
) -> ShippingRate:
    return await shipping.create_rate(
        session,
        vendor_id=method.vendor_id,
        method_id=method.id,
        zone_id=zone.id,
        min_weight_grams=band[0],
        max_weight_grams=band[1],
        amount=amount,
        currency=currency,
        free_over_amount=free_over,
    )


async def _quote(
    session: AsyncSession,
    vendor: Vendor,
    *,
    country: str = "DE",
    weight: int = 500,
    subtotal: int = 1000,
    currency: str = "EUR",
    today: date = WEDNESDAY,
) -> list[shipping.ShippingQuote]:
    return await shipping.quote(
        session,
        vendor_id=vendor.id,
        country=country,
        weight_grams=weight,
        subtotal=subtotal,
        currency=currency,
        today=today,
    )


async def test_quote_matches_zone_band_and_currency(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    home = await _zone(db_session, vendor, "Home", "DE")
    standard = await _method(db_session, vendor, "standard")
    await _rate(db_session, standard, home, 490, band=(0, 1000))
    await _rate(db_session, standard, home, 790, band=(1000, 5000))
    await _rate(db_session, standard, home, 1490, band=(5000, None))

    async def price(weight: int) -> int | None:
        quotes = await _quote(db_session, vendor, weight=weight)
        return quotes[0].regular_amount if quotes else None

    # Boundaries: the minimum is in the band, the maximum in the next one.
    assert [await price(w) for w in (0, 999, 1000, 4999, 5000, 10**6)] == [
        490,
        490,
        790,
        790,
        1490,
        1490,
    ]
    # Another country has no zone; another currency no rate.
    assert await _quote(db_session, vendor, country="FR") == []
    assert await _quote(db_session, vendor, currency="CHF") == []
    # Another vendor's tables are not this vendor's.
    assert await _quote(db_session, await make_vendor(db_session)) == []
    # The country is matched case-insensitively.
    assert len(await _quote(db_session, vendor, country="de")) == 1


async def test_quote_with_a_gap_between_bands_offers_nothing_there(
    db_session: AsyncSession,
) -> None:
    vendor = await make_vendor(db_session)
    zone = await _zone(db_session, vendor, "Home", "DE")
    method = await _method(db_session, vendor, "standard")
    await _rate(db_session, method, zone, 490, band=(0, 1000))
    await _rate(db_session, method, zone, 990, band=(2000, 3000))
    assert await _quote(db_session, vendor, weight=1500) == []
    assert await _quote(db_session, vendor, weight=3000) == []


async def test_quote_per_currency(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    zone = await _zone(db_session, vendor, "Switzerland", "CH")
    method = await _method(db_session, vendor, "standard")
    await _rate(db_session, method, zone, 900, band=(0, 1000), currency="CHF")
    await _rate(db_session, method, zone, 950, band=(1000, None), currency="EUR")
    [chf] = await _quote(db_session, vendor, country="CH", weight=10, currency="CHF")
    assert (chf.amount, chf.currency) == (900, "CHF")
    assert await _quote(db_session, vendor, country="CH", weight=10, currency="EUR") == []


async def test_free_over_threshold(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    zone = await _zone(db_session, vendor, "Home", "DE")
    method = await _method(db_session, vendor, "standard")
    await _rate(db_session, method, zone, 490, free_over=5000)

    [below] = await _quote(db_session, vendor, subtotal=4999)
    assert (below.amount, below.regular_amount, below.free) == (490, 490, False)
    [at] = await _quote(db_session, vendor, subtotal=5000)
    assert (at.amount, at.regular_amount, at.free) == (0, 490, True)
    [above] = await _quote(db_session, vendor, subtotal=10**9)
    assert above.free


async def test_inactive_methods_are_not_offered(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    zone = await _zone(db_session, vendor, "Home", "DE")
    standard = await _method(db_session, vendor, "standard")
    paused = await _method(db_session, vendor, "express", active=False)
    await _rate(db_session, standard, zone, 490)
    await _rate(db_session, paused, zone, 990)
    assert [q.method_code for q in await _quote(db_session, vendor)] == ["standard"]
    await shipping.update_method(
        db_session, vendor_id=vendor.id, method_id=paused.id, changes={"is_active": True}
    )
    assert [q.method_code for q in await _quote(db_session, vendor)] == ["standard", "express"]


async def test_quotes_are_ordered_by_amount_then_earliest_date(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    zone = await _zone(db_session, vendor, "Home", "DE", "AT")
    slow = await _method(db_session, vendor, "slow", transit=(5, 8))
    fast = await _method(db_session, vendor, "fast", transit=(1, 1))
    express = await _method(db_session, vendor, "express", handling=0, transit=(1, 1))
    free = await _method(db_session, vendor, "economy", transit=(10, 20))
    await _rate(db_session, slow, zone, 490)
    await _rate(db_session, fast, zone, 490)
    await _rate(db_session, express, zone, 1500)
    await _rate(db_session, free, zone, 990, free_over=1000)
    quotes = await _quote(db_session, vendor, country="AT", subtotal=1000)
    assert [(q.method_code, q.amount) for q in quotes] == [
        ("economy", 0),
        ("fast", 490),
        ("slow", 490),
        ("express", 1500),
    ]


async def test_the_most_specific_zone_prices_the_method(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    europe = await _zone(db_session, vendor, "Europe", "DE", "FR", "IT")
    germany = await _zone(db_session, vendor, "Germany", "DE")
    method = await _method(db_session, vendor, "standard")
    await _rate(db_session, method, europe, 390)
    await _rate(db_session, method, germany, 590)
    # One quote per method, from the Germany zone, even though Europe's is cheaper.
    assert [q.amount for q in await _quote(db_session, vendor, country="DE")] == [590]
    assert [q.amount for q in await _quote(db_session, vendor, country="FR")] == [390]


async def test_delivery_dates_skip_the_weekend(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    zone = await _zone(db_session, vendor, "Home", "DE")
    method = await _method(db_session, vendor, "standard", handling=1, transit=(1, 3))
    await _rate(db_session, method, zone, 490)
    # Friday: handled Monday, delivered Tuesday at best, Thursday at worst.
    [friday] = await _quote(db_session, vendor, today=FRIDAY)
    assert friday.estimated_delivery_earliest == date(2026, 11, 24)
    assert friday.estimated_delivery_latest == date(2026, 11, 26)
    # Saturday: counting starts Monday, so one handling day more than a Friday order.
    [saturday] = await _quote(db_session, vendor, today=date(2026, 11, 21))
    assert saturday.estimated_delivery_earliest == date(2026, 11, 25)
    assert saturday.estimated_delivery_latest == date(2026, 11, 27)
    # Wednesday + 2 = Friday, + 4 = next Tuesday.
    [midweek] = await _quote(db_session, vendor, today=WEDNESDAY)
    assert (midweek.estimated_delivery_earliest, midweek.estimated_delivery_latest) == (
        date(2026, 11, 20),
        date(2026, 11, 24),
    )


async def test_quote_refuses_nonsense(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    for overrides in ({"weight": -1}, {"subtotal": -1}, {"country": "Germany"}):
        with pytest.raises(InvalidShippingQuote):
            await _quote(db_session, vendor, **overrides)  # type: ignore[arg-type]


async def test_table_rate_carrier_quotes_and_refuses_labels(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    zone = await _zone(db_session, vendor, "Home", "DE")
    method = await _method(db_session, vendor, "standard")
    await _rate(db_session, method, zone, 490)
    carrier: Carrier = TableRateCarrier(db_session)
    request = QuoteRequest(
        vendor_id=vendor.id,
        country="DE",
        weight_grams=100,
        subtotal=0,
        currency="EUR",
        today=WEDNESDAY,
    )
    assert [q.method_code for q in await carrier.quote(request)] == ["standard"]
    with pytest.raises(NotImplementedError, match="fulfilment"):
        await carrier.create_label(
            LabelRequest(
                shipment_id=uuid.uuid4(),
                vendor_id=vendor.id,
                method_code="standard",
                destination={"country": "DE"},
                weight_grams=100,
            )
        )
    with pytest.raises(NotImplementedError, match="fulfilment"):
        carrier.parse_webhook(b"{}", {})
