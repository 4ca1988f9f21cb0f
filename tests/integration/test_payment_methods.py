"""Saved payment methods: provider tokens only, idempotent saves, no IDOR, no card numbers."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from models import SavedPaymentMethod
from tests.concurrency import wait_for_lock_waiters
from tests.factories import Account, sign_up

PROBLEM = "application/problem+json"
VISA = "4242424242424242"  # Stripe's test card: a valid card number (Luhn) all the same


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code, body
    return body


def _token() -> str:
    # Letters only: a random hex token holds a Luhn-valid run of 13+ digits about once in 470
    # draws, and the server rightly refuses that as raw card data.
    return "pm_" + uuid.uuid4().hex.translate(str.maketrans("0123456789", "ghijklmnop"))


def _method(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "provider": "stripe",
        "provider_token": _token(),
        "brand": "visa",
        "last4": "4242",
        "exp_month": 12,
        "exp_year": 2099,
    }
    body.update(overrides)
    return body


async def _stored(session: AsyncSession, account: Account) -> list[tuple[str, str]]:
    rows = await session.execute(
        select(SavedPaymentMethod.id, SavedPaymentMethod.provider_token)
        .where(SavedPaymentMethod.user_id == uuid.UUID(account.id))
        .order_by(SavedPaymentMethod.provider_token)
    )
    return [(str(method_id), token) for method_id, token in rows]


async def test_save_list_and_delete(client: httpx.AsyncClient, db_session: AsyncSession) -> None:
    account = await sign_up(client, db_session)
    token = _token()
    response = await client.post(
        "/me/payment-methods",
        json=_method(provider_token=token, brand="Visa"),
        headers=account.headers,
    )
    assert response.status_code == 201, response.text
    saved = response.json()
    assert saved["provider"] == "stripe"
    assert saved["brand"] == "visa"
    assert saved["last4"] == "4242"
    assert (saved["exp_month"], saved["exp_year"]) == (12, 2099)
    assert token not in response.text, "the provider token is not handed back"

    paypal = await client.post(
        "/me/payment-methods",
        json={"provider": "paypal", "provider_token": "8kk8451t-vault"},
        headers=account.headers,
    )
    assert paypal.status_code == 201, paypal.text
    assert paypal.json()["last4"] is None

    listed = await client.get("/me/payment-methods", headers=account.headers)
    assert listed.status_code == 200
    assert {m["id"] for m in listed.json()["items"]} == {saved["id"], paypal.json()["id"]}
    assert token not in listed.text

    deleted = await client.delete(f"/me/payment-methods/{saved['id']}", headers=account.headers)
    assert deleted.status_code == 204
    again = await client.delete(f"/me/payment-methods/{saved['id']}", headers=account.headers)
    _problem(again, 404, "not_found")
    assert await _stored(db_session, account) == [(paypal.json()["id"], "8kk8451t-vault")]


async def test_requests_without_a_token_are_refused(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/me/payment-methods"),
        ("POST", "/me/payment-methods"),
        ("DELETE", f"/me/payment-methods/{uuid.uuid4()}"),
    ]:
        response = await client.request(method, path, json=_method())
        _problem(response, 401, "invalid_token")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("provider_token", VISA),
        ("provider_token", "4242 4242 4242 4242"),
        ("provider_token", f"pm_{VISA}"),
        ("provider", VISA),
        ("brand", f"visa {VISA}"),
        ("last4", VISA),
        ("last4", "4242-4242-4242-4242"),
    ],
)
async def test_card_numbers_are_refused_in_any_field_and_never_echoed(
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    caplog: pytest.LogCaptureFixture,
    field: str,
    value: str,
) -> None:
    account = await sign_up(client, db_session)
    caplog.set_level(logging.DEBUG)
    response = await client.post(
        "/me/payment-methods", json=_method(**{field: value}), headers=account.headers
    )
    body = _problem(response, 422, "invalid_payment_method")
    assert {"loc": ["body", field], "type": "raw_card_data"} in [
        {"loc": e["loc"], "type": e["type"]} for e in body["errors"]
    ]
    digits = "".join(char for char in value if char.isdigit())
    assert value not in response.text
    assert digits not in "".join(char for char in response.text if char.isdigit())
    assert value not in caplog.text
    assert await _stored(db_session, account) == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"provider": "venmo"}, [("provider", "invalid_provider")]),
        ({"provider_token": "tok_visa"}, [("provider_token", "invalid_token")]),
        ({"provider_token": ""}, [("provider_token", "required")]),
        ({"brand": "acme"}, [("brand", "invalid_brand")]),
        ({"last4": "42"}, [("last4", "invalid_last4")]),
        ({"exp_month": 13}, [("exp_month", "invalid_exp_month")]),
        ({"exp_month": None}, [("exp_month", "required")]),
        ({"exp_month": 1, "exp_year": 2020}, [("exp_year", "expired")]),
        ({"exp_year": 10**30}, [("exp_year", "invalid_exp_year")]),
    ],
)
async def test_invalid_methods_are_problems_per_field(
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    overrides: dict[str, Any],
    expected: list[tuple[str, str]],
) -> None:
    account = await sign_up(client, db_session)
    response = await client.post(
        "/me/payment-methods", json=_method(**overrides), headers=account.headers
    )
    body = _problem(response, 422, "invalid_payment_method")
    assert [(e["loc"], e["type"]) for e in body["errors"]] == [
        (["body", field], kind) for field, kind in expected
    ]
    assert await _stored(db_session, account) == []


async def test_saving_the_same_token_again_returns_the_saved_method(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    body = _method()
    first = await client.post("/me/payment-methods", json=body, headers=account.headers)
    second = await client.post("/me/payment-methods", json=body, headers=account.headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert await _stored(db_session, account) == [(first.json()["id"], body["provider_token"])]


async def test_a_token_saved_by_another_account_is_a_conflict(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    alice = await sign_up(client, db_session)
    bob = await sign_up(client, db_session)
    body = _method()
    mine = await client.post("/me/payment-methods", json=body, headers=alice.headers)
    assert mine.status_code == 201
    taken = await client.post("/me/payment-methods", json=body, headers=bob.headers)
    _problem(taken, 409, "payment_method_taken")
    assert body["provider_token"] not in taken.text
    assert await _stored(db_session, bob) == []
    assert await _stored(db_session, alice) == [(mine.json()["id"], body["provider_token"])]


async def test_other_users_methods_cannot_be_deleted(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    alice = await sign_up(client, db_session)
    bob = await sign_up(client, db_session)
    saved = await client.post("/me/payment-methods", json=_method(), headers=alice.headers)
    before = await _stored(db_session, alice)
    for method_id in (saved.json()["id"], str(uuid.uuid4())):
        response = await client.delete(f"/me/payment-methods/{method_id}", headers=bob.headers)
        _problem(response, 404, "not_found")
    assert (await client.get("/me/payment-methods", headers=bob.headers)).json()["items"] == []
    assert await _stored(db_session, alice) == before
    listed = await client.get("/me/payment-methods", headers=alice.headers)
    assert listed.json()["items"] == [saved.json()]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'"a string"',
        b"null",
        b'{"unexpected": true}',
        b'{"provider": "stripe"}',
        b'{"provider": 1, "provider_token": ["pm_x"], "exp_month": "soon"}',
        b'{"provider": "stripe", "provider_token": "' + b"x" * 5000 + b'"}',
        b'{"provider": "stripe", "provider_token": "pm_abcdef", "card_number": "'
        + VISA.encode()
        + b'"}',
    ],
)
async def test_malformed_bodies_are_problems_never_500(
    client: httpx.AsyncClient, db_session: AsyncSession, body: bytes
) -> None:
    account = await sign_up(client, db_session)
    response = await client.post(
        "/me/payment-methods",
        content=body,
        headers={**account.headers, "content-type": "application/json"},
    )
    _problem(response, 422, "validation_error")
    assert VISA not in response.text
    bad_id = await client.delete("/me/payment-methods/not-a-uuid", headers=account.headers)
    _problem(bad_id, 422, "validation_error")


# --- concurrency, with real commits ----------------------------------------------------


async def test_concurrent_saves_of_one_token_store_it_once(
    committing: tuple[httpx.AsyncClient, AsyncEngine],
) -> None:
    client, engine = committing
    async with AsyncSession(engine) as session:
        alice = await sign_up(client, session, verified=False)
        bob = await sign_up(client, session, verified=False)
    body = _method()
    senders = [alice, alice, alice, bob]
    # Hold back every INSERT until all requests have looked the token up and found nothing:
    # the double-submitted form's race, made certain.
    async with engine.connect() as blocker:
        await blocker.execute(text("LOCK TABLE saved_payment_methods IN SHARE ROW EXCLUSIVE MODE"))
        requests = [
            asyncio.create_task(
                client.post("/me/payment-methods", json=body, headers=sender.headers)
            )
            for sender in senders
        ]
        await wait_for_lock_waiters(engine, len(senders))
        await blocker.rollback()
    responses = await asyncio.gather(*requests)

    async with AsyncSession(engine) as session:
        count = await session.scalar(select(func.count()).select_from(SavedPaymentMethod))
        owner = await session.scalar(select(SavedPaymentMethod.user_id))
    assert count == 1
    winner = alice if str(owner) == alice.id else bob
    for sender, response in zip(senders, responses, strict=True):
        if sender is winner:
            assert response.status_code == 201, response.text
        else:
            _problem(response, 409, "payment_method_taken")
    assert (
        len({r.json()["id"] for r, s in zip(responses, senders, strict=True) if s is winner}) == 1
    )
