"""Exception handlers: every error path answers problem+json with a stable code."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError as DBAPIDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.problems import for_status, problem_response
from commerce.errors import DomainError
from core.pagination import InvalidCursor

log = logging.getLogger("emporium.api")


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return problem_response(
        exc.status,
        exc.code,
        exc.title,
        exc.detail,
        instance=request.url.path,
        headers=exc.headers,
        **exc.extra,
    )


async def _invalid_cursor(request: Request, exc: Exception) -> JSONResponse:
    # core.pagination refuses a cursor the list did not give out; every list answers alike.
    assert isinstance(exc, InvalidCursor)
    return problem_response(
        422,
        InvalidCursor.code,
        "The page cursor is not valid",
        exc.detail,
        instance=request.url.path,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    problem = for_status(exc.status_code)
    # Starlette's default detail is just the status phrase; only pass on a real explanation.
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != problem.title else None
    if exc.status_code == 404 and detail == "Not Found":
        detail = "No such resource."
    headers = exc.headers
    if exc.status_code == 405:
        if detail == "Method Not Allowed":
            detail = f"{request.method} is not allowed here."
        # Starlette names only the first route that matched the path; several routes may
        # share it (GET and PUT of one resource are often two functions).
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return problem_response(
        exc.status_code,
        problem.code,
        problem.title,
        detail,
        instance=request.url.path,
        headers=headers,
    )


_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at this path (asked the way the router asks)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # The submitted values are not echoed back: they may be passwords or card data.
    errors = [
        {"loc": list(error.get("loc", ())), "message": error.get("msg", ""), "type": error["type"]}
        for error in exc.errors()
    ]
    return problem_response(
        422,
        "validation_error",
        "The request is not valid",
        f"{len(errors)} problem(s) with the request; see `errors`.",
        instance=request.url.path,
        errors=errors,
    )


async def _unstorable_input(request: Request, exc: Exception) -> JSONResponse:
    # PostgreSQL refused a value (a NUL character, a number out of range, an invalid text
    # encoding): the input, not the server, is at fault. The request's transaction has been
    # rolled back by then; the database's message is logged, not echoed.
    cause = getattr(exc, "orig", exc)  # the driver's error inside SQLAlchemy's
    log.warning("database refused a value", extra={"error": type(cause).__name__})
    return problem_response(
        422,
        "invalid_input",
        "The request contains a value that cannot be stored",
        "Remove control characters and out-of-range numbers from the request.",
        instance=request.url.path,
    )


@contextmanager
def fields_named(names: Mapping[str, tuple[str, ...]]) -> Iterator[None]:
    """Within the block, a domain error about a field of the domain's (``price_amount``) names
    the request's path to it instead (``price.amount``), so a client shows it by the input
    that was sent (the services count money as minor units beside a currency, the API in
    ``Money`` objects)."""
    try:
        yield
    except DomainError as error:
        for item in error.extra.get("errors") or ():
            loc = item.get("loc")
            if isinstance(loc, list) and len(loc) >= 2 and loc[0] == "body" and loc[1] in names:
                item["loc"] = ["body", *names[loc[1]], *loc[2:]]
        raise


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(InvalidCursor, _invalid_cursor)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DBAPIDataError, _unstorable_input)
    # Anything else is caught by RequestContextMiddleware, which logs it with the request id
    # and answers a 500 problem without internals.
