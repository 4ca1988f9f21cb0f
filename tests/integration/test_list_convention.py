"""Every list answers in one shape, ``{"items": [...], "next_cursor": ...}`` (README, "The
API's conventions"), and the lists that page walk their rows without gaps or repeats."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from api.schemas.pagination import MAX_PAGE_SIZE
from models import PlatformRole
from tests.factories import sign_up, unique

#: Operations that answer with a file, not a list: an export is the whole data set in one
#: document (CSV, or the same rows as a JSON array), made to be saved, not paged through.
EXPORTS = {"export_products", "export_stock"}


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _json_answers(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    found = []
    for operations in spec["paths"].values():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                if not status.startswith("2"):
                    continue
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if schema is not None:
                    found.append((operation["operationId"], operation, _resolve(spec, schema)))
    return found


def test_no_operation_answers_with_a_bare_array(app: FastAPI) -> None:
    spec = app.openapi()
    answers = _json_answers(spec)
    assert len(answers) > 150
    bare = sorted({op_id for op_id, _, schema in answers if schema.get("type") == "array"})
    assert bare == sorted(EXPORTS)


def test_every_list_has_items_and_next_cursor(app: FastAPI) -> None:
    spec = app.openapi()
    lists = {
        op_id: schema
        for op_id, _, schema in _json_answers(spec)
        if "items" in schema.get("properties", {})
        and schema["properties"]["items"].get("type") == "array"
        # A wishlist has items too, but it is a thing with a name, not a list.
        and not {"id", "name"} & set(schema["properties"])
    }
    assert {"list_orders", "list_addresses", "search", "vendor_ledger"} <= set(lists)
    missing = sorted(
        op_id for op_id, schema in lists.items() if "next_cursor" not in schema["required"]
    )
    assert missing == []
    # The old names are gone: one word for the list, one for the way on.
    for schema in lists.values():
        assert not {"hits", "entries", "next_before"} & set(schema["properties"])


def test_paged_lists_take_limit_and_cursor_and_nothing_else_pages(app: FastAPI) -> None:
    spec = app.openapi()
    paged = 0
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            query = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}
            if "cursor" not in query:
                # A list without a cursor is one the server bounds: it takes no limit either.
                assert "limit" not in query or path == "/admin/payouts/run", path
                continue
            paged += 1
            limit = query["limit"]["schema"]
            assert (limit["minimum"], limit["maximum"]) == (1, MAX_PAGE_SIZE), path
            assert not {"before", "page"} & set(query), path
            assert "offset" not in query or path == "/search", path
    assert paged >= 15


async def _walk(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> list[str]:
    """Every item's id, following cursors one small page at a time."""
    ids: list[str] = []
    cursor: str | None = None
    for _ in range(50):
        params: dict[str, Any] = {"limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= 2
        ids += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError(f"{path} did not end")


@pytest.mark.parametrize("path", ["/admin/vendors", "/admin/mail-outbox", "/admin/promotions"])
async def test_admin_lists_page_without_gaps_or_repeats(
    client: httpx.AsyncClient, db_session: AsyncSession, path: str
) -> None:
    admin = await sign_up(client, db_session, role=PlatformRole.ADMIN)
    for _ in range(3):
        owner = await sign_up(client, db_session)
        applied = await client.post(
            "/vendors", json={"name": unique("Shop")}, headers=owner.headers
        )
        assert applied.status_code == 201, applied.text
        promotion = await client.post(
            "/admin/promotions",
            json={
                "code": unique("TEN"),
                "name": "Ten off",
                "kind": "percentage",
                "percent_bp": 1000,
            },
            headers=admin.headers,
        )
        assert promotion.status_code == 201, promotion.text
    whole = await client.get(path, params={"limit": MAX_PAGE_SIZE}, headers=admin.headers)
    newest = [item["id"] for item in whole.json()["items"]]
    walked = await _walk(client, path, admin.headers)
    assert len(walked) == len(set(walked))
    # Small pages show what one big page shows, in the same order, then go on past it.
    assert walked[: len(newest)] == newest
    assert len(walked) >= 3


async def test_a_cursor_of_another_list_is_refused(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    admin = await sign_up(client, db_session, role=PlatformRole.ADMIN)
    for _ in range(2):
        owner = await sign_up(client, db_session)
        await client.post("/vendors", json={"name": unique("Shop")}, headers=owner.headers)
    first = await client.get("/admin/vendors", params={"limit": 1}, headers=admin.headers)
    cursor = first.json()["next_cursor"]
    assert cursor is not None
    borrowed = await client.get(
        "/admin/promotions", params={"cursor": cursor}, headers=admin.headers
    )
    assert borrowed.status_code == 422
    assert borrowed.json()["code"] == "invalid_cursor"
