"""Tax rates: the admin API (validation, duplicates, permissions) and ``rates_for`` (a region's
rate overrides the country's rate of the same class, nothing more)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.checkout import tax
from models import PlatformRole
from tests.factories import Account, sign_up

PROBLEM = "application/problem+json"


@pytest.fixture
async def admin(client: httpx.AsyncClient, db_session: AsyncSession) -> Account:
    return await sign_up(client, db_session, role=PlatformRole.ADMIN)


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code, body
    return body


async def _create(client: httpx.AsyncClient, admin: Account, **body: Any) -> httpx.Response:
    return await client.post("/admin/tax-rates", json=body, headers=admin.headers)


# --- the admin API --------------------------------------------------------------------------------


async def test_admin_creates_lists_updates_and_deletes(
    client: httpx.AsyncClient, admin: Account
) -> None:
    created = await _create(client, admin, country="de", tax_class="standard", rate_bp=1900)
    assert created.status_code == 201, created.text
    rate = created.json()
    assert rate["country"] == "DE"
    assert rate["region"] is None
    assert rate["rate_bp"] == 1900
    reduced = await _create(client, admin, country="DE", tax_class="reduced", rate_bp=700)
    assert reduced.status_code == 201

    listed = await client.get("/admin/tax-rates?country=DE", headers=admin.headers)
    assert listed.status_code == 200
    assert [(r["tax_class"], r["rate_bp"]) for r in listed.json()["items"]] == [
        ("reduced", 700),
        ("standard", 1900),
    ]

    patched = await client.patch(
        f"/admin/tax-rates/{rate['id']}", json={"rate_bp": 2000}, headers=admin.headers
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["rate_bp"] == 2000

    deleted = await client.delete(f"/admin/tax-rates/{rate['id']}", headers=admin.headers)
    assert deleted.status_code == 204
    listed = await client.get("/admin/tax-rates?country=DE", headers=admin.headers)
    assert [r["tax_class"] for r in listed.json()["items"]] == ["reduced"]
    missing = await client.delete(f"/admin/tax-rates/{rate['id']}", headers=admin.headers)
    _problem(missing, 404, "tax_rate_not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"country": "XX", "tax_class": "standard", "rate_bp": 100}, "country"),
        ({"country": "DEU", "tax_class": "standard", "rate_bp": 100}, "country"),
        ({"country": "DE", "tax_class": "Standard", "rate_bp": 100}, "tax_class"),
        ({"country": "DE", "tax_class": "", "rate_bp": 100}, "tax_class"),
        ({"country": "DE", "tax_class": "a" * 41, "rate_bp": 100}, "tax_class"),
        ({"country": "DE", "tax_class": "standard", "rate_bp": -1}, "rate_bp"),
        ({"country": "DE", "tax_class": "standard", "rate_bp": 10001}, "rate_bp"),
        ({"country": "US", "region": "ZZ", "tax_class": "standard", "rate_bp": 100}, "region"),
        ({"country": "US", "region": "DE-BY", "tax_class": "standard", "rate_bp": 100}, "region"),
    ],
)
async def test_invalid_rates_are_refused_with_their_field(
    client: httpx.AsyncClient, admin: Account, body: dict[str, Any], field: str
) -> None:
    body = _problem(await _create(client, admin, **body), 422, "invalid_tax_rate")
    assert body["errors"][0]["loc"] == ["body", field]


async def test_bounds_are_allowed(client: httpx.AsyncClient, admin: Account) -> None:
    for rate_bp, tax_class in ((0, "zero"), (10000, "full")):
        response = await _create(client, admin, country="FR", tax_class=tax_class, rate_bp=rate_bp)
        assert response.status_code == 201, response.text


async def test_duplicates_conflict_per_country_region_and_class(
    client: httpx.AsyncClient, admin: Account
) -> None:
    first = await _create(client, admin, country="US", tax_class="standard", rate_bp=0)
    assert first.status_code == 201
    again = await _create(client, admin, country="us", tax_class="standard", rate_bp=500)
    _problem(again, 409, "tax_rate_exists")
    # Another region is another destination; "US-CA" and "ca" name the same one.
    state = await _create(
        client, admin, country="US", region="US-CA", tax_class="standard", rate_bp=725
    )
    assert state.status_code == 201, state.text
    assert state.json()["region"] == "CA"
    same_state = await _create(
        client, admin, country="US", region="ca", tax_class="standard", rate_bp=1
    )
    _problem(same_state, 409, "tax_rate_exists")
    # Updating into an existing destination clashes too.
    other = await _create(
        client, admin, country="US", region="NY", tax_class="standard", rate_bp=400
    )
    moved = await client.patch(
        f"/admin/tax-rates/{other.json()['id']}", json={"region": "CA"}, headers=admin.headers
    )
    _problem(moved, 409, "tax_rate_exists")


async def test_update_validates_the_result(client: httpx.AsyncClient, admin: Account) -> None:
    created = await _create(
        client, admin, country="US", region="TX", tax_class="standard", rate_bp=625
    )
    url = f"/admin/tax-rates/{created.json()['id']}"
    # TX is no region of Germany: the region is re-checked against the new country.
    _problem(
        await client.patch(url, json={"country": "DE"}, headers=admin.headers),
        422,
        "invalid_tax_rate",
    )
    _problem(
        await client.patch(url, json={"rate_bp": None}, headers=admin.headers),
        422,
        "invalid_tax_rate",
    )
    country_wide = await client.patch(url, json={"region": None}, headers=admin.headers)
    assert country_wide.status_code == 200
    assert country_wide.json()["region"] is None
    unknown = await client.patch(url, json={"colour": "red"}, headers=admin.headers)
    _problem(unknown, 422, "validation_error")
    _problem(
        await client.patch(f"/admin/tax-rates/{uuid.uuid4()}", json={}, headers=admin.headers),
        404,
        "tax_rate_not_found",
    )


async def test_only_admins_may_touch_rates(
    client: httpx.AsyncClient, db_session: AsyncSession, admin: Account
) -> None:
    shopper = await sign_up(client, db_session)
    operations = await sign_up(client, db_session, role=PlatformRole.OPERATIONS)
    created = await _create(client, admin, country="IT", tax_class="standard", rate_bp=2200)
    url = f"/admin/tax-rates/{created.json()['id']}"
    for account in (shopper, operations):
        headers = account.headers
        _problem(await client.get("/admin/tax-rates", headers=headers), 403, "forbidden")
        _problem(
            await client.post(
                "/admin/tax-rates",
                json={"country": "IT", "tax_class": "reduced", "rate_bp": 1000},
                headers=headers,
            ),
            403,
            "forbidden",
        )
        _problem(await client.patch(url, json={"rate_bp": 1}, headers=headers), 403, "forbidden")
        _problem(await client.delete(url, headers=headers), 403, "forbidden")
    _problem(await client.get("/admin/tax-rates"), 401, "invalid_token")


# --- rates_for ------------------------------------------------------------------------------------


async def test_a_region_overrides_only_its_classes(db_session: AsyncSession) -> None:
    await tax.create_rate(db_session, country="CA", tax_class="standard", rate_bp=500)
    await tax.create_rate(db_session, country="CA", tax_class="zero", rate_bp=0)
    await tax.create_rate(db_session, country="CA", region="ON", tax_class="standard", rate_bp=1300)
    await tax.create_rate(db_session, country="CA", region="QC", tax_class="books", rate_bp=500)

    assert await tax.rates_for(db_session, country="CA") == {"standard": 500, "zero": 0}
    assert await tax.rates_for(db_session, country="CA", region="ON") == {
        "standard": 1300,
        "zero": 0,
    }
    # The address's form ("ON") and the ISO form ("CA-ON") find the same rates.
    assert await tax.rates_for(db_session, country="ca", region="CA-on") == {
        "standard": 1300,
        "zero": 0,
    }
    # A region's own class is added to the country's.
    assert await tax.rates_for(db_session, country="CA", region="QC") == {
        "standard": 500,
        "zero": 0,
        "books": 500,
    }
    # A region without rates of its own gets the country's.
    assert await tax.rates_for(db_session, country="CA", region="BC") == {
        "standard": 500,
        "zero": 0,
    }


async def test_missing_standard_is_left_to_the_caller(db_session: AsyncSession) -> None:
    await tax.create_rate(db_session, country="NO", tax_class="reduced", rate_bp=1500)
    assert await tax.rates_for(db_session, country="NO") == {"reduced": 1500}
    assert await tax.rates_for(db_session, country="IS") == {}
