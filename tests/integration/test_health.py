from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from api.app import create_app
from core.settings import Settings
from tests.conftest import _client_for, make_settings


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_healthz_answers_while_the_process_lives(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_ready_with_real_postgres_and_temporal(
    live_client: httpx.AsyncClient,
) -> None:
    response = await live_client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "temporal": "ok"}}


async def _client_with(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client_for(create_app(settings)):
        yield client


@pytest.fixture
async def client_without_temporal(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(database_url, f"127.0.0.1:{_closed_port()}")
    async for client in _client_with(settings):
        yield client


@pytest.fixture
async def client_without_database(temporal_address: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        f"postgresql://postgres@127.0.0.1:{_closed_port()}/x", temporal_address
    )
    async for client in _client_with(settings):
        yield client


async def test_readyz_reports_unreachable_temporal(
    client_without_temporal: httpx.AsyncClient,
) -> None:
    # The API still starts and stays alive: only readiness is affected.
    assert (await client_without_temporal.get("/healthz")).status_code == 200
    response = await client_without_temporal.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "2"
    body = response.json()
    assert body["code"] == "not_ready"
    assert body["checks"] == {"database": "ok", "temporal": "unavailable"}
    assert body["detail"] == "Unreachable: temporal."


async def test_readyz_reports_unreachable_database(
    client_without_database: httpx.AsyncClient,
) -> None:
    response = await client_without_database.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "unavailable", "temporal": "ok"}
