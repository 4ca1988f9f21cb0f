"""Every error path answers RFC 9457 problem+json with a stable code and the request id."""

from __future__ import annotations

import json
import logging
import uuid

import httpx
import pytest
from fastapi import FastAPI, Query

from commerce.errors import Conflict, DomainError

PROBLEM = "application/problem+json"


def _assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"/problems/{code}"
    assert body["title"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_unknown_route_is_a_not_found_problem(client: httpx.AsyncClient) -> None:
    body = _assert_problem(await client.get("/no/such/thing"), 404, "not_found")
    assert body["instance"] == "/no/such/thing"


async def test_wrong_method_is_a_problem_with_allow_header(client: httpx.AsyncClient) -> None:
    response = await client.delete("/healthz")
    _assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET"


@pytest.fixture
def app_with_probe_routes(app: FastAPI) -> FastAPI:
    """Routes that fail in each way a real route can, to drive the error machinery."""

    @app.get("/_probe/validated")
    async def validated(limit: int = Query(ge=1, le=100)) -> dict[str, int]:
        return {"limit": limit}

    @app.post("/_probe/body")
    async def body(payload: dict[str, int]) -> dict[str, int]:
        return payload

    @app.get("/_probe/conflict")
    async def conflict() -> None:
        raise Conflict("The cart changed since you last saw it.", cart_version=3)

    @app.get("/_probe/crash")
    async def crash() -> None:
        raise RuntimeError("database password is hunter2")

    return app


async def test_validation_errors_list_each_field_without_echoing_input(
    app_with_probe_routes: FastAPI, client: httpx.AsyncClient
) -> None:
    body = _assert_problem(await client.get("/_probe/validated?limit=0"), 422, "validation_error")
    assert body["errors"] == [
        {
            "loc": ["query", "limit"],
            "message": "Input should be greater than or equal to 1",
            "type": "greater_than_equal",
        }
    ]
    missing = _assert_problem(await client.get("/_probe/validated"), 422, "validation_error")
    assert missing["errors"][0]["type"] == "missing"  # type: ignore[index]

    secret = "4242 4242 4242 4242"
    response = await client.post("/_probe/body", json={"card": secret})
    _assert_problem(response, 422, "validation_error")
    assert secret not in response.text


async def test_malformed_json_is_a_validation_problem(
    app_with_probe_routes: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        "/_probe/body", content=b"{not json", headers={"content-type": "application/json"}
    )
    body = _assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["type"] == "json_invalid"  # type: ignore[index]


async def test_domain_errors_carry_their_status_code_and_extras(
    app_with_probe_routes: FastAPI, client: httpx.AsyncClient
) -> None:
    body = _assert_problem(await client.get("/_probe/conflict"), 409, "conflict")
    assert body["detail"] == "The cart changed since you last saw it."
    assert body["cart_version"] == 3


async def test_unexpected_exception_is_a_500_problem_that_leaks_nothing(
    app_with_probe_routes: FastAPI,
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="emporium.api"):
        response = await client.get("/_probe/crash", headers={"X-Request-ID": "trace-me-42"})
    body = _assert_problem(response, 500, "internal_error")
    assert body["request_id"] == "trace-me-42"
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    [record] = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert record.exc_info is not None
    assert getattr(record, "path", None) == "/_probe/crash"


async def test_request_id_is_kept_when_safe_and_replaced_when_not(
    client: httpx.AsyncClient,
) -> None:
    kept = await client.get("/healthz", headers={"X-Request-ID": "abc-123.x"})
    assert kept.headers["x-request-id"] == "abc-123.x"
    replaced = await client.get("/healthz", headers={"X-Request-ID": "bad id\r\ninjected"})
    assert replaced.headers["x-request-id"] != "bad id\r\ninjected"
    assert len(replaced.headers["x-request-id"]) == 32
    fresh = await client.get("/healthz")
    assert len(fresh.headers["x-request-id"]) == 32


async def test_access_log_line_carries_request_id_and_no_query_string(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    from core.logs import JsonFormatter

    with caplog.at_level(logging.INFO, logger="emporium.access"):
        response = await client.get("/healthz?token=secret-reset-token")
    [record] = [r for r in caplog.records if r.name == "emporium.access"]
    line = json.loads(JsonFormatter().format(record))
    assert line["path"] == "/healthz"
    assert line["status"] == 200
    assert "secret-reset-token" not in json.dumps(line)
    assert line["request_id"] == response.headers["x-request-id"]


async def test_problem_catalogue_describes_every_code(client: httpx.AsyncClient) -> None:
    response = await client.get("/problems")
    assert response.status_code == 200
    codes = {item["code"]: item for item in response.json()["items"]}
    for required in ("not_found", "validation_error", "internal_error", "not_ready", "conflict"):
        assert required in codes
    for error in (DomainError, Conflict):
        assert codes[error.code]["status"] == error.status
    one = await client.get("/problems/validation_error")
    assert one.json() == {
        "code": "validation_error",
        "status": 422,
        "title": "The request is not valid",
    }
    _assert_problem(await client.get("/problems/no_such_code"), 404, "not_found")


async def test_openapi_documents_errors_as_problem_json(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert "Problem" in schema["components"]["schemas"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) or status == "default":
                    assert list(response["content"]) == [PROBLEM], (path, method, status)
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_allow_lists_every_method_of_a_path_served_by_several_routes(
    client: httpx.AsyncClient,
) -> None:
    # PATCH and DELETE of a cart line are two route functions on one path.
    response = await client.put(f"/carts/current/items/{uuid.uuid4()}")
    _assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "DELETE, PATCH"
