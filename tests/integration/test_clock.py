"""The app reads time from one clock (core/clock.py): a test can say what time it is, and
every decision a request makes follows it, not the machine's or the database's clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from commerce.checkout.carts import GUEST_CART_TTL
from core.clock import FixedClock
from core.settings import Settings
from tests.conftest import _client_for, bind_to_test_transaction

# Far from today on purpose: nothing here may depend on the real date.
FROZEN = datetime(2031, 3, 14, 15, 9, 26, tzinfo=UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(FROZEN)


@pytest.fixture
async def frozen_client(
    settings: Settings, db_session: AsyncSession, clock: FixedClock
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, clock=clock)
    bind_to_test_transaction(app, db_session)
    async for client in _client_for(app):
        yield client


async def test_a_guest_cart_lives_by_the_apps_clock(
    frozen_client: httpx.AsyncClient, clock: FixedClock
) -> None:
    created = await frozen_client.post("/carts")
    assert created.status_code == 201, created.text
    body = created.json()
    token = body["cart_token"]
    assert datetime.fromisoformat(body["cart"]["expires_at"]) == FROZEN + GUEST_CART_TTL

    # A day before it expires it is there; every change pushes its expiry on.
    clock.advance(GUEST_CART_TTL - timedelta(days=1))
    read = await frozen_client.get("/carts/current", headers={"X-Cart-Token": token})
    assert read.status_code == 200, read.text

    # Past its expiry by the app's clock (the database's clock says 2026 or so): gone.
    clock.advance(timedelta(days=2))
    gone = await frozen_client.get("/carts/current", headers={"X-Cart-Token": token})
    assert gone.status_code == 404, gone.text
    assert gone.json()["code"] == "cart_not_found"


async def test_access_tokens_expire_by_the_apps_clock(
    frozen_client: httpx.AsyncClient, clock: FixedClock, settings: Settings
) -> None:
    email, password = "clock@example.com", "a long and unusual passphrase 42"
    signed_up = await frozen_client.post(
        "/auth/signup", json={"username": "clockwatcher", "email": email, "password": password}
    )
    assert signed_up.status_code == 201, signed_up.text
    login = await frozen_client.post("/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert (await frozen_client.get("/me", headers=headers)).status_code == 200

    # Signed in 2031; the token is still good until its lifetime runs out on that clock.
    clock.advance(timedelta(seconds=settings.access_token_ttl_s + 10))
    expired = await frozen_client.get("/me", headers=headers)
    assert expired.status_code == 401, expired.text
