"""Brute force, lockout with backoff, per-IP limits, and no secrets in logs."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from api.app import create_app
from core.logs import JsonFormatter
from models import LoginThrottle
from tests.conftest import _client_for, make_settings
from tests.factories import STRONG_PASSWORD, mailed_token, unique

PROBLEM = "application/problem+json"


@pytest.fixture
async def strict_client(
    fresh_database_url: str, temporal_address: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with production limits, on a database of its own (counters start at zero)."""
    settings = make_settings(
        fresh_database_url,
        temporal_address,
        rate_limit_scale=1.0,
        login_lockout_threshold=5,
        login_lockout_base_s=30,
    )
    async for client in _client_for(create_app(settings)):
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
    strict_client: httpx.AsyncClient, fresh_database_url: str
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
    assert 25 <= int(locked.headers["retry-after"]) <= 30

    # The lock passes; one more failure locks for twice as long.
    engine = create_async_engine(fresh_database_url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(LoginThrottle).values(locked_until=datetime.now(UTC) - timedelta(seconds=1))
            )
    finally:
        await engine.dispose()
    again = await strict_client.post("/auth/login", json={"email": email, "password": "guess"})
    assert again.status_code == 401
    relocked = await strict_client.post(
        "/auth/login", json={"email": email, "password": STRONG_PASSWORD}
    )
    assert relocked.status_code == 429
    assert 55 <= int(relocked.headers["retry-after"]) <= 60


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
    strict_client: httpx.AsyncClient,
) -> None:
    statuses = []
    for _ in range(31):
        response = await strict_client.post(
            "/auth/login", json={"email": f"{unique()}@example.com", "password": "guess"}
        )
        statuses.append(response.status_code)
    assert statuses[:30] == [401] * 30
    assert statuses[30] == 429


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
