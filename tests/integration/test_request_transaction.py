"""One transaction per request: committed before a 2xx is sent, rolled back on any error."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from api.app import create_app
from api.deps import SessionDep
from commerce.errors import Conflict
from models import Vendor
from tests.conftest import _client_for, make_settings


@pytest.fixture
async def own_db_client(
    fresh_database_url: str, temporal_address: str
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(make_settings(fresh_database_url, temporal_address))

    @app.post("/_probe/vendors/{slug}")
    async def create_vendor(slug: str, session: SessionDep, fail: bool = False) -> dict[str, str]:
        session.add(Vendor(slug=slug, name=slug.title()))
        await session.flush()
        if fail:
            raise Conflict("changed my mind")
        return {"slug": slug}

    @app.get("/_probe/vendors")
    async def count_vendors(session: SessionDep) -> dict[str, int]:
        return {"count": await session.scalar(select(func.count()).select_from(Vendor)) or 0}

    @app.post("/_probe/duplicate/{slug}")
    async def duplicate(slug: str, session: SessionDep) -> dict[str, str]:
        # Violates the unique slug only at COMMIT time (deferred by adding without flushing).
        session.add(Vendor(slug=slug, name="one"))
        session.add(Vendor(slug=slug, name="two"))
        return {"slug": slug}

    @app.post("/_probe/named/{slug}")
    async def named(slug: str, name: str, session: SessionDep) -> dict[str, str]:
        session.add(Vendor(slug=slug, name=name))
        await session.flush()
        return {"slug": slug}

    async for client in _client_for(app):
        yield app, client


async def test_success_commits_and_error_rolls_back(
    own_db_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = own_db_client
    assert (await client.post("/_probe/vendors/kept")).status_code == 200
    assert (await client.post("/_probe/vendors/dropped?fail=true")).status_code == 409
    assert (await client.get("/_probe/vendors")).json() == {"count": 1}


async def test_a_failed_commit_is_an_error_not_a_success(
    own_db_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = own_db_client
    response = await client.post("/_probe/duplicate/twin")
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert (await client.get("/_probe/vendors")).json() == {"count": 0}


async def test_a_value_the_database_refuses_is_a_422_not_a_500(
    own_db_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = own_db_client
    response = await client.post("/_probe/named/nul", params={"name": "bad\x00name"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_input"
    assert "\x00" not in response.text
    assert (await client.get("/_probe/vendors")).json() == {"count": 0}
