"""``GET /metrics``: the API's request metrics, parsed with prometheus-client's own parser, per
route template and with bounded labels (README, "Observability")."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from tests.conftest import _client_for, make_settings


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def _requests(client: httpx.AsyncClient) -> dict[tuple[tuple[str, str], ...], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return _samples(response.text, "emporium_http_requests_total")


def _key(method: str, route: str, status: int) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"method": method, "route": route, "status": str(status)}.items()))


async def test_requests_are_counted_by_route_template_and_status(
    client: httpx.AsyncClient,
) -> None:
    before = await _requests(client)
    for _ in range(3):
        assert (await client.get("/products")).status_code == 200
    order = f"/orders/{uuid.uuid4()}"
    assert (await client.get(order)).status_code == 401
    secret_path = f"/no-such-route/{uuid.uuid4()}"
    assert (await client.get(secret_path)).status_code == 404
    assert (await client.request("BREW", "/products")).status_code in (404, 405)
    after = await _requests(client)

    def grew(key: tuple[tuple[str, str], ...]) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew(_key("GET", "/products", 200)) == 3
    assert grew(_key("GET", "/orders/{order_id}", 401)) == 1
    assert grew(_key("GET", "unmatched", 404)) == 1
    # No label holds a path, an id or a made-up method.
    labels = {value for key in after for _, value in key}
    assert not any(secret_path in value or order in value for value in labels)
    assert "BREW" not in labels
    buckets = _samples(
        (await client.get("/metrics")).text, "emporium_http_request_duration_seconds_count"
    )
    assert buckets[tuple(sorted({"method": "GET", "route": "/products"}.items()))] >= 3


@pytest.fixture
async def guarded(
    fresh_database_url: str, temporal_address: str
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(fresh_database_url, temporal_address, metrics_token="scrape-me-0123")
    async for client in _client_for(create_app(settings)):
        yield client


async def test_a_metrics_token_keeps_others_out(guarded: httpx.AsyncClient) -> None:
    refused = await guarded.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    wrong = await guarded.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    scraped = await guarded.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123"})
    assert scraped.status_code == 200
    assert "emporium_http_requests_total" in scraped.text


def test_metrics_are_not_part_of_the_public_schema() -> None:
    app = create_app(make_settings("postgresql+psycopg://unused/unused", "unused:7233"))
    assert "/metrics" not in app.openapi()["paths"]
