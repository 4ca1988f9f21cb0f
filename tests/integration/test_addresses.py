"""The address book: CRUD, country-aware validation, one default per kind, no IDOR."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from commerce.accounts.addresses import MAX_ADDRESSES_PER_USER
from models import Address, AddressKind
from tests.concurrency import wait_for_lock_waiters
from tests.factories import Account, sign_up

PROBLEM = "application/problem+json"


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code, body
    return body


def _address(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "shipping",
        "name": "Ada Lovelace",
        "line1": "1 Market St",
        "city": "San Francisco",
        "region": "CA",
        "postal_code": "94105",
        "country": "US",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


async def _create(client: httpx.AsyncClient, account: Account, **overrides: Any) -> dict[str, Any]:
    response = await client.post(
        "/me/addresses", json=_address(**overrides), headers=account.headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _defaults(session: AsyncSession, account: Account) -> dict[AddressKind, list[str]]:
    """Straight from the table: the default addresses' ids per kind."""
    rows = await session.execute(
        select(Address.kind, Address.id).where(
            Address.user_id == uuid.UUID(account.id), Address.is_default
        )
    )
    found: dict[AddressKind, list[str]] = {}
    for kind, address_id in rows:
        found.setdefault(kind, []).append(str(address_id))
    return found


# --- create, read, update, delete ------------------------------------------------------


async def test_address_book_round_trip(client: httpx.AsyncClient, db_session: AsyncSession) -> None:
    account = await sign_up(client, db_session)
    created = await _create(
        client,
        account,
        name="  Ada   Lovelace ",
        region="california",
        postal_code="94105 1234",
        country="usa",
        phone="+1 415-555-0100",
        company="",
    )
    assert created["name"] == "Ada Lovelace"
    assert created["region"] == "CA"
    assert created["postal_code"] == "94105-1234"
    assert created["country"] == "US"
    assert created["company"] is None
    assert created["is_default"] is True

    address_id = created["id"]
    fetched = await client.get(f"/me/addresses/{address_id}", headers=account.headers)
    assert fetched.status_code == 200
    assert fetched.json() == created

    updated = await client.patch(
        f"/me/addresses/{address_id}", json={"line2": "Suite 5"}, headers=account.headers
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["line2"] == "Suite 5"
    assert updated.json()["postal_code"] == "94105-1234"

    listed = await client.get("/me/addresses", headers=account.headers)
    assert [a["id"] for a in listed.json()["items"]] == [address_id]

    deleted = await client.delete(f"/me/addresses/{address_id}", headers=account.headers)
    assert deleted.status_code == 204
    gone = await client.get(f"/me/addresses/{address_id}", headers=account.headers)
    _problem(gone, 404, "not_found")
    assert (await client.get("/me/addresses", headers=account.headers)).json()["items"] == []


async def test_list_filters_by_kind_with_the_default_first(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    home = await _create(client, account, name="Home")
    office = await _create(client, account, name="Office", is_default=True)
    billing = await _create(
        client,
        account,
        kind="billing",
        country="DE",
        region=None,
        postal_code="10115",
        city="Berlin",
    )
    shipping = await client.get("/me/addresses?kind=shipping", headers=account.headers)
    assert [a["id"] for a in shipping.json()["items"]] == [office["id"], home["id"]]
    only_billing = await client.get(
        "/me/addresses", params={"kind": "billing"}, headers=account.headers
    )
    assert [a["id"] for a in only_billing.json()["items"]] == [billing["id"]]
    everything = await client.get("/me/addresses", headers=account.headers)
    assert len(everything.json()["items"]) == 3
    _problem(
        await client.get("/me/addresses?kind=moon", headers=account.headers),
        422,
        "validation_error",
    )


async def test_requests_without_a_token_are_refused(client: httpx.AsyncClient) -> None:
    some_id = uuid.uuid4()
    for method, path in [
        ("GET", "/me/addresses"),
        ("POST", "/me/addresses"),
        ("GET", f"/me/addresses/{some_id}"),
        ("PATCH", f"/me/addresses/{some_id}"),
        ("DELETE", f"/me/addresses/{some_id}"),
        ("POST", f"/me/addresses/{some_id}/default"),
    ]:
        response = await client.request(method, path, json=_address())
        _problem(response, 401, "invalid_token")


# --- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"region": None}, [("region", "required")]),
        ({"postal_code": "ABCDE"}, [("postal_code", "invalid_postal_code")]),
        ({"postal_code": None}, [("postal_code", "required")]),
        ({"region": "Narnia"}, [("region", "invalid_region")]),
        ({"country": "XX"}, [("country", "invalid_country")]),
        (
            {"country": "CA", "postal_code": "123"},
            [("region", "invalid_region"), ("postal_code", "invalid_postal_code")],
        ),
        ({"phone": "call me maybe"}, [("phone", "invalid_phone")]),
        (
            {"name": "   ", "line1": "", "city": "x" * 101},
            [("name", "required"), ("line1", "required"), ("city", "too_long")],
        ),
        ({"line2": "nul\u0000byte"}, [("line2", "invalid_characters")]),
    ],
)
async def test_invalid_addresses_are_problems_with_every_field_at_once(
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    overrides: dict[str, Any],
    expected: list[tuple[str, str]],
) -> None:
    account = await sign_up(client, db_session)
    response = await client.post(
        "/me/addresses", json=_address(**overrides), headers=account.headers
    )
    body = _problem(response, 422, "invalid_address")
    assert [(e["loc"], e["type"]) for e in body["errors"]] == [
        (["body", field], kind) for field, kind in expected
    ]
    assert all(e["message"] for e in body["errors"])
    stored = await db_session.scalar(
        select(func.count()).select_from(Address).where(Address.user_id == uuid.UUID(account.id))
    )
    assert stored == 0


async def test_submitted_values_are_not_echoed_in_problems(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    response = await client.post(
        "/me/addresses",
        json=_address(postal_code="SECRET-ZIP-77", phone="tel: secret-phone"),
        headers=account.headers,
    )
    _problem(response, 422, "invalid_address")
    assert "SECRET" not in response.text.upper()
    assert "secret-phone" not in response.text


async def test_a_partial_update_checks_the_merged_address(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    created = await _create(client, account)
    path = f"/me/addresses/{created['id']}"

    # Canada's rules now apply to the US state and ZIP code left as they were.
    moved = await client.patch(path, json={"country": "CA"}, headers=account.headers)
    body = _problem(moved, 422, "invalid_address")
    assert [(e["loc"][-1], e["type"]) for e in body["errors"]] == [
        ("region", "invalid_region"),
        ("postal_code", "invalid_postal_code"),
    ]
    cleared = await client.patch(path, json={"name": None}, headers=account.headers)
    assert _problem(cleared, 422, "invalid_address")["errors"][0]["loc"] == ["body", "name"]
    no_kind = await client.patch(path, json={"kind": None}, headers=account.headers)
    assert _problem(no_kind, 422, "invalid_address")["errors"][0]["loc"] == ["body", "kind"]

    unchanged = (await client.get(path, headers=account.headers)).json()
    assert unchanged == created

    relocated = await client.patch(
        path,
        json={"country": "CA", "region": "Ontario", "postal_code": "k1a0b1", "city": "Ottawa"},
        headers=account.headers,
    )
    assert relocated.status_code == 200, relocated.text
    assert relocated.json()["region"] == "ON"
    assert relocated.json()["postal_code"] == "K1A 0B1"
    assert relocated.json()["name"] == "Ada Lovelace"


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'"a string"',
        b"null",
        b'{"unexpected": true}',
        b'{"kind": "moon", "name": "a", "line1": "b", "city": "c", "country": "US"}',
        b'{"kind": "shipping", "name": 12, "line1": ["b"], "city": {}, "country": "US"}',
        b'{"kind": "shipping", "name": "' + b"x" * 5000 + b'", "line1": "b", "city": "c"}',
    ],
)
async def test_malformed_bodies_are_problems_never_500(
    client: httpx.AsyncClient, db_session: AsyncSession, body: bytes
) -> None:
    account = await sign_up(client, db_session)
    created = await _create(client, account)
    headers = {**account.headers, "content-type": "application/json"}
    for method, path in [
        ("POST", "/me/addresses"),
        ("PATCH", f"/me/addresses/{created['id']}"),
    ]:
        response = await client.request(method, path, content=body, headers=headers)
        _problem(response, 422, "validation_error")
        assert response.json()["errors"]
    bad_id = await client.get("/me/addresses/not-a-uuid", headers=account.headers)
    _problem(bad_id, 422, "validation_error")


# --- defaults --------------------------------------------------------------------------


async def test_the_first_address_of_each_kind_becomes_its_default(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    first = await _create(client, account)
    second = await _create(client, account, name="Second", is_default=False)
    billing = await _create(client, account, kind="billing")
    assert first["is_default"] is True
    assert second["is_default"] is False
    assert billing["is_default"] is True, "kinds have their own defaults"
    assert await _defaults(db_session, account) == {
        AddressKind.SHIPPING: [first["id"]],
        AddressKind.BILLING: [billing["id"]],
    }


async def test_switching_the_default_leaves_exactly_one(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    first = await _create(client, account)
    billing = await _create(client, account, kind="billing")
    second = await _create(client, account, name="Second", is_default=True)
    assert second["is_default"] is True
    assert await _defaults(db_session, account) == {
        AddressKind.SHIPPING: [second["id"]],
        AddressKind.BILLING: [billing["id"]],
    }

    chosen = await client.post(f"/me/addresses/{first['id']}/default", headers=account.headers)
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["is_default"] is True
    again = await client.post(f"/me/addresses/{first['id']}/default", headers=account.headers)
    assert again.status_code == 200
    assert await _defaults(db_session, account) == {
        AddressKind.SHIPPING: [first["id"]],
        AddressKind.BILLING: [billing["id"]],
    }

    patched = await client.patch(
        f"/me/addresses/{second['id']}", json={"is_default": True}, headers=account.headers
    )
    assert patched.json()["is_default"] is True
    listed = (await client.get("/me/addresses?kind=shipping", headers=account.headers)).json()[
        "items"
    ]
    assert [(a["id"], a["is_default"]) for a in listed] == [
        (second["id"], True),
        (first["id"], False),
    ]


async def test_the_default_cannot_be_unset_only_replaced(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    first = await _create(client, account)
    second = await _create(client, account, name="Second")
    refused = await client.patch(
        f"/me/addresses/{first['id']}", json={"is_default": False}, headers=account.headers
    )
    _problem(refused, 409, "default_address_required")
    fine = await client.patch(
        f"/me/addresses/{second['id']}", json={"is_default": False}, headers=account.headers
    )
    assert fine.status_code == 200
    assert await _defaults(db_session, account) == {AddressKind.SHIPPING: [first["id"]]}


@pytest.mark.parametrize("latest", ["second", "third"])
async def test_deleting_the_default_promotes_the_most_recently_updated(
    client: httpx.AsyncClient, db_session: AsyncSession, latest: str
) -> None:
    account = await sign_up(client, db_session)
    first = await _create(client, account)
    created = {
        "second": await _create(client, account, name="Second"),
        "third": await _create(client, account, name="Third"),
    }
    billing = await _create(client, account, kind="billing")
    # One test is one transaction, where now() does not move: set the times explicitly.
    base = datetime.now(UTC)
    for name, address in created.items():
        later = timedelta(hours=2 if name == latest else 1)
        await db_session.execute(
            update(Address)
            .where(Address.id == uuid.UUID(address["id"]))
            .values(updated_at=base + later)
        )

    deleted = await client.delete(f"/me/addresses/{first['id']}", headers=account.headers)
    assert deleted.status_code == 204
    assert await _defaults(db_session, account) == {
        AddressKind.SHIPPING: [created[latest]["id"]],
        AddressKind.BILLING: [billing["id"]],
    }
    promoted = await client.get(f"/me/addresses/{created[latest]['id']}", headers=account.headers)
    assert promoted.json()["is_default"] is True


async def test_deleting_the_last_address_then_adding_one_makes_it_the_default(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    only = await _create(client, account)
    await client.delete(f"/me/addresses/{only['id']}", headers=account.headers)
    assert await _defaults(db_session, account) == {}
    fresh = await _create(client, account, is_default=False)
    assert fresh["is_default"] is True


async def test_changing_kind_moves_the_default_along(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    first = await _create(client, account)
    second = await _create(client, account, name="Second")
    billing = await _create(client, account, kind="billing")

    # The shipping default leaves: the remaining shipping address takes over; billing has a
    # default already, so the moved address joins it as an ordinary one.
    moved = await client.patch(
        f"/me/addresses/{first['id']}", json={"kind": "billing"}, headers=account.headers
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["is_default"] is False
    assert await _defaults(db_session, account) == {
        AddressKind.SHIPPING: [second["id"]],
        AddressKind.BILLING: [billing["id"]],
    }

    # Back to shipping as the default of that kind.
    back = await client.patch(
        f"/me/addresses/{first['id']}",
        json={"kind": "shipping", "is_default": True},
        headers=account.headers,
    )
    assert back.json()["is_default"] is True
    assert await _defaults(db_session, account) == {
        AddressKind.SHIPPING: [first["id"]],
        AddressKind.BILLING: [billing["id"]],
    }


async def test_the_address_book_has_a_size_limit(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    user_id = uuid.UUID(account.id)
    db_session.add_all(
        Address(
            user_id=user_id,
            kind=AddressKind.SHIPPING,
            name=f"Stored {n}",
            line1="Unter den Linden 1",
            city="Berlin",
            postal_code="10117",
            country="DE",
            is_default=n == 0,
        )
        for n in range(MAX_ADDRESSES_PER_USER - 1)
    )
    await db_session.flush()
    await _create(client, account, kind="billing")
    full = await client.post("/me/addresses", json=_address(), headers=account.headers)
    _problem(full, 409, "address_limit")
    count = await db_session.scalar(
        select(func.count()).select_from(Address).where(Address.user_id == user_id)
    )
    assert count == MAX_ADDRESSES_PER_USER


# --- other people's addresses ----------------------------------------------------------


async def test_other_users_addresses_are_not_found(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    alice = await sign_up(client, db_session)
    bob = await sign_up(client, db_session)
    home = await _create(client, alice)
    office = await _create(client, alice, name="Office")
    await _create(client, bob)
    path = f"/me/addresses/{office['id']}"
    nowhere = f"/me/addresses/{uuid.uuid4()}"

    for probe in (path, nowhere):
        _problem(await client.get(probe, headers=bob.headers), 404, "not_found")
        patched = await client.patch(probe, json={"name": "Mallory"}, headers=bob.headers)
        _problem(patched, 404, "not_found")
        made_default = await client.post(f"{probe}/default", headers=bob.headers)
        _problem(made_default, 404, "not_found")
        _problem(await client.delete(probe, headers=bob.headers), 404, "not_found")
    # A body that would be invalid must not tell Bob more (422) than a valid one (404).
    invalid = await client.patch(path, json={"country": "XX"}, headers=bob.headers)
    _problem(invalid, 404, "not_found")

    assert [
        a["name"] for a in (await client.get("/me/addresses", headers=bob.headers)).json()["items"]
    ] == ["Ada Lovelace"]
    mine = (await client.get("/me/addresses", headers=alice.headers)).json()["items"]
    assert mine == [home, office]
    assert (await _defaults(db_session, alice)) == {AddressKind.SHIPPING: [home["id"]]}


# --- concurrency, with real commits ----------------------------------------------------


async def test_concurrent_first_addresses_make_exactly_one_default(
    committing: tuple[httpx.AsyncClient, AsyncEngine],
) -> None:
    client, engine = committing
    async with AsyncSession(engine) as session:
        account = await sign_up(client, session, verified=False)
    racers = 4
    # Hold back every INSERT into addresses until all requests are under way, so that each
    # has looked for a default before any has stored one: the window of the race, made wide.
    async with engine.connect() as blocker:
        await blocker.execute(text("LOCK TABLE addresses IN SHARE ROW EXCLUSIVE MODE"))
        requests = [
            asyncio.create_task(
                client.post(
                    "/me/addresses", json=_address(name=f"Racer {n}"), headers=account.headers
                )
            )
            for n in range(racers)
        ]
        await wait_for_lock_waiters(engine, racers)
        await blocker.rollback()
    responses = await asyncio.gather(*requests)
    assert [r.status_code for r in responses] == [201] * racers, [r.text for r in responses]
    assert sum(r.json()["is_default"] for r in responses) == 1
    async with AsyncSession(engine) as session:
        assert len((await _defaults(session, account))[AddressKind.SHIPPING]) == 1
