"""Authorization on every route, and bad input on every route, checked by walking the API."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from fastapi import FastAPI

from api.access import api_routes, requirement_of

PROBLEM = "application/problem+json"


def _operations(app: FastAPI) -> list[tuple[str, str, dict[str, object]]]:
    schema = app.openapi()
    return [
        (method.upper(), path, operation)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    ]


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


def test_every_route_declares_who_may_call_it(app: FastAPI) -> None:
    undeclared = [
        f"{sorted(route.methods)} {route.path_format}"
        for route in api_routes(app.routes)
        if route.include_in_schema and requirement_of(route) is None
    ]
    assert undeclared == []
    missing_in_openapi = [
        f"{method} {path}" for method, path, op in _operations(app) if "x-access" not in op
    ]
    assert missing_in_openapi == []


def test_the_walk_sees_every_router(app: FastAPI) -> None:
    paths = {path for _, path, _ in _operations(app)}
    for expected in (
        "/healthz",
        "/auth/login",
        "/auth/oidc/{provider}/callback",
        "/me",
        "/me/addresses/{address_id}",
        "/me/payment-methods",
        "/admin/mail-outbox",
    ):
        assert expected in paths


async def test_every_protected_route_refuses_a_request_without_a_token(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    protected = [
        (method, path, op)
        for method, path, op in _operations(app)
        if op["x-access"]["kind"] != "public"  # type: ignore[index]
    ]
    assert len(protected) >= 10
    for method, path, op in protected:
        response = await client.request(method, _concrete(path), json={})
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.headers["content-type"] == PROBLEM
        # A cart route takes a guest's cart token or a signed-in user, and says so.
        expected = "cart_required" if op["x-access"]["kind"] == "cart" else "invalid_token"  # type: ignore[index]
        assert response.json()["code"] == expected, (method, path)


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"unexpected": true}',
        b'"a string"',
        b"null",
        # Every string field a route might have, with a NUL (PostgreSQL refuses it) and a
        # number far out of any column's range.
        b'{"name": "a\\u0000b", "title": "a\\u0000b", "email": "a\\u0000@x.org", '
        b'"username": "a\\u0000b", "quantity": 99999999999999999999}',
    ],
)
async def test_bad_bodies_on_every_route_are_problems_never_500(
    app: FastAPI, client: httpx.AsyncClient, body: bytes
) -> None:
    for method, path, _ in _operations(app):
        if method not in {"POST", "PUT", "PATCH", "DELETE"}:
            continue
        response = await client.request(
            method, _concrete(path), content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code < 500, (method, path, response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"] == PROBLEM, (method, path)
