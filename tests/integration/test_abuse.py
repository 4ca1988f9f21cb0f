"""Brute force, lockout with backoff, per-IP limits, and no secrets in logs."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from api.app import create_app
from core.clock import FixedClock
from core.logs import JsonFormatter
from tests.conftest import _client_for, make_settings
from tests.factories import STRONG_PASSWORD, mailed_token, unique

PROBLEM = "application/problem+json"


@pytest.fixture
def abuse_clock() -> FixedClock:
    """Ten seconds into a minute (and an hour): a run of attempts never straddles two of the
    limiters' fixed windows, however slowly the machine runs."""
    return FixedClock(datetime(2030, 1, 1, 12, 0, 10, tzinfo=UTC))


@pytest.fixture
async def strict_client(
    fresh_database_url: str, temporal_address: str, abuse_clock: FixedClock
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with production limits, on a database of its own (counters start at zero)."""
    settings = make_settings(
        fresh_database_url,
        temporal_address,
        rate_limit_scale=1.0,
        login_lockout_threshold=5,
        login_lockout_base_s=30,
    )
    async for client in _client_for(create_app(settings, clock=abuse_clock)):
        yield client


async def _register(client: httpx.AsyncClient) -> str:
    username = unique()
    email = f"{username}@example.com"
    response = await client.post(
        "/auth/signup", json={"username": username, "email": email, "password": STRONG_PASSWORD}
    )
    assert response.status_code == 201
    return email


async def test_brute_force_locks_the_account_with_backoff(
    strict_client: httpx.AsyncClient, abuse_clock: FixedClock
) -> None:
    email = await _register(strict_client)
    for _ in range(5):
        wrong = await strict_client.post("/auth/login", json={"email": email, "password": "guess"})
        assert wrong.status_code == 401
    # Locked now: even the right password is refused until the lock ends.
    locked = await strict_client.post(
        "/auth/login", json={"email": email, "password": STRONG_PASSWORD}
    )
    assert locked.status_code == 429
    assert locked.headers["content-type"] == PROBLEM
    assert locked.json()["code"] == "rate_limited"
    assert locked.headers["retry-after"] == "30"

    # The lock passes; one more failure locks for twice as long.
    abuse_clock.advance(timedelta(seconds=31))
    again = await strict_client.post("/auth/login", json={"email": email, "password": "guess"})
    assert again.status_code == 401
    relocked = await strict_client.post(
        "/auth/login", json={"email": email, "password": STRONG_PASSWORD}
    )
    assert relocked.status_code == 429
    assert relocked.headers["retry-after"] == "60"


async def test_lockout_looks_the_same_for_accounts_that_do_not_exist(
    strict_client: httpx.AsyncClient,
) -> None:
    real = await _register(strict_client)
    ghost = f"{unique()}@example.com"
    answers = {}
    for email in (real, ghost):
        for _ in range(5):
            await strict_client.post("/auth/login", json={"email": email, "password": "guess"})
        response = await strict_client.post("/auth/login", json={"email": email, "password": "x"})
        answers[email] = (response.status_code, response.json()["code"], response.json()["detail"])
    assert (
        answers[real]
        == answers[ghost]
        == (
            429,
            "rate_limited",
            "Too many failed sign-ins. Try again later or reset your password.",
        )
    )


async def test_logins_from_one_ip_are_limited_across_accounts(
    strict_client: httpx.AsyncClient, abuse_clock: FixedClock
) -> None:
    async def attempt() -> httpx.Response:
        return await strict_client.post(
            "/auth/login", json={"email": f"{unique()}@example.com", "password": "guess"}
        )

    statuses = [(await attempt()).status_code for _ in range(31)]
    assert statuses[:30] == [401] * 30
    assert statuses[30] == 429
    refused = await attempt()
    assert refused.json()["code"] == "rate_limited"
    assert refused.headers["retry-after"] == "50"
    # The next minute's window opens a fresh budget.
    abuse_clock.advance(timedelta(seconds=50))
    assert (await attempt()).status_code == 401


async def test_password_reset_requests_are_limited_per_account(
    strict_client: httpx.AsyncClient,
) -> None:
    email = await _register(strict_client)
    codes = [
        (await strict_client.post("/auth/password-reset", json={"email": email})).status_code
        for _ in range(4)
    ]
    assert codes == [202, 202, 202, 429]


async def test_no_password_or_token_reaches_the_logs(
    client: httpx.AsyncClient, db_session: object, caplog: pytest.LogCaptureFixture
) -> None:
    username = unique()
    email = f"{username}@example.com"
    with caplog.at_level(logging.DEBUG):
        await client.post(
            "/auth/signup",
            json={"username": username, "email": email, "password": STRONG_PASSWORD},
        )
        token = await mailed_token(db_session, to=email, template="verify_email")  # type: ignore[arg-type]
        await client.post("/auth/verify-email", json={"token": token})
        login = await client.post("/auth/login", json={"email": email, "password": STRONG_PASSWORD})
        tokens = login.json()
        await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        await client.get("/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    formatter = JsonFormatter()
    text = "\n".join(formatter.format(record) for record in caplog.records)
    assert caplog.records, "the requests were logged"
    for secret in (STRONG_PASSWORD, token, tokens["access_token"], tokens["refresh_token"]):
        assert secret not in text
    assert json.loads(formatter.format(caplog.records[-1]))["logger"]
