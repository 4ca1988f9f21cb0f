from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from api.app import create_app
from tests.conftest import _client_for, make_settings


@pytest.fixture
async def cors_client(database_url: str, temporal_address: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(database_url, temporal_address, cors_origins="https://shop.example")
    async for client in _client_for(create_app(settings)):
        yield client


async def test_configured_origin_is_allowed_and_others_are_not(
    cors_client: httpx.AsyncClient,
) -> None:
    preflight = {"Access-Control-Request-Method": "POST"}
    allowed = await cors_client.options(
        "/auth/login", headers={"Origin": "https://shop.example", **preflight}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    refused = await cors_client.options(
        "/auth/login", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in refused.headers
    simple = await cors_client.get("/healthz", headers={"Origin": "https://shop.example"})
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
