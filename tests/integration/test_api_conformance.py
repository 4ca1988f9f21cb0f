"""The API against its own /openapi.json: a bounded schemathesis run over every operation.

The API runs as it is deployed (uvicorn, real HTTP, its own transactions) on a fresh database
and the test Temporal server. Every operation is called with generated input as four callers:
anonymous, a customer, a vendor's owner and an admin. A run fails on any 5xx, any 4xx that is
not problem+json, any answer whose status, content type or body the schema does not declare,
and any request the schema allows that the server refuses with 400/422 (except on the
operations of ``RULES_BEYOND_THE_SCHEMA``, each listed with why). The examples per operation
are few (``CONFORMANCE_EXAMPLES``, derandomized, so a run is repeatable);
``CONFORMANCE_EXAMPLES=50`` explores further by hand, ``CONFORMANCE_TRACE=1`` prints each
operation's time (with ``-s``), and ``CONFORMANCE_REPORT=path`` writes the failures there as
JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from api.app import create_app
from models import PlatformRole
from tests.conftest import make_settings
from tests.factories import Account, sign_up

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("CONFORMANCE_EXAMPLES", "3"))
PROBLEM_JSON = "application/problem+json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

STRICT_CHECKS = [*CHECKS, positive_data_acceptance]

#: Operations whose rules the schema cannot state, so a request the schema allows may still
#: be refused (with the operation's own problem code). Every other operation is also held to
#: ``positive_data_acceptance``: what the schema allows, the server accepts (or answers with
#: 401/403/404/409/429 about credentials, ids and state, never 400/422).
RULES_BEYOND_THE_SCHEMA = {
    "GET /search": "the lowest price must not be above the highest",
    "POST /auth/signup": "password strength is judged by the server",
    "POST /auth/verify-email": "the token must be one the server mailed",
    "POST /auth/password-reset/confirm": "the token must be one the server mailed",
    "POST /me/email/confirm": "the token must be one the server mailed",
    "POST /vendor-invitations/accept": "the invitation token must be one the server mailed",
    "POST /checkout": "the payment providers on offer are configuration",
    "POST /me/payment-methods": "the provider must be configured; its token is screened",
    "POST /me/addresses": "postal codes and regions follow each country's own rules",
    "PUT /carts/current/shipping-address": "postal codes and regions follow each country's rules",
    "POST /admin/tax-rates": "regions are ISO 3166-2 subdivisions of the country",
    "POST /admin/orders/{order_id}/refunds": "either order lines or an amount, not both",
    "POST /admin/promotions": "which amount a promotion takes depends on its kind",
    "PATCH /admin/categories/{category_id}": "a new name, a new slug, or both",
    # `format: email` allows addresses on special-use domains (.test, .local, .invalid), which
    # can never receive mail and are refused.
    "PATCH /me": "an email address on a special-use domain is refused",
    "POST /vendors": "an email address on a special-use domain is refused",
    "PATCH /vendors/{vendor_id}": "a special-use email domain or an unknown time zone is refused",
    "GET /vendors/{vendor_id}/analytics/sales": "the range runs forwards, at most 400 buckets",
    "GET /vendors/{vendor_id}/analytics/products": "the range runs forwards, within 400 months",
    "GET /admin/analytics/sales": "the range runs forwards, at most 400 buckets",
    "GET /admin/analytics/vendors": "the range runs forwards, within 400 months",
    "GET /admin/analytics/payments": "the range runs forwards, within 400 months",
    "GET /admin/analytics/categories": "the range runs forwards, within 400 months",
    "GET /admin/analytics/customers": "the range runs forwards, at most 400 buckets",
    "GET /admin/analytics/signups": "the range runs forwards, at most 400 buckets",
    "GET /vendors/{vendor_id}/analytics/ratings": "the range runs forwards, at most 400 buckets",
    "POST /vendors/{vendor_id}/invitations": "an email address on a special-use domain is refused",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Findings:
    calls: Counter[str] = field(default_factory=Counter)  # per caller
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)  # "caller METHOD /path" -> why


def _problem_json_on_4xx(response: schemathesis.Response) -> None:
    if 400 <= response.status_code < 500:
        kind = response.headers.get("content-type", [""])[0].split(";")[0]
        if kind != PROBLEM_JSON:
            raise AssertionError(f"{response.status_code} answered as {kind!r}, not {PROBLEM_JSON}")


def _run(
    base_url: str,
    callers: dict[str, Callable[[], dict[str, str]]],
    findings: Findings,
) -> int:
    """Every operation as every caller; returns how many operations the schema has. A caller
    whose credentials an operation ended (a logout, a deleted account, a new password) gets
    fresh ones before the next operation."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    with httpx.Client(base_url=base_url, timeout=30) as probe:
        for caller, sign_in in callers.items():
            headers = sign_in()
            for operation in operations:
                if headers and probe.get("/me", headers=headers).status_code != 200:
                    headers = sign_in()
                label = f"{caller} {operation.method.upper()} {operation.path}"
                test = _one_operation(operation, base_url, headers, caller, findings)
                started = time.monotonic()
                try:
                    test()
                # schemathesis reports what it found as a FailureGroup (a BaseExceptionGroup).
                except (Exception, FailureGroup) as error:
                    findings.failures.setdefault(label, f"{type(error).__name__}: {error}"[:2000])
                if os.environ.get("CONFORMANCE_TRACE"):
                    print(f"{time.monotonic() - started:6.2f}s {label}", flush=True)
    return len(operations)


def _one_operation(
    operation: Any, base_url: str, headers: dict[str, str], caller: str, findings: Findings
) -> Callable[[], None]:
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def test(case: schemathesis.Case) -> None:
        # The caller's own credentials, not a generated Authorization header.
        case.headers = {**(case.headers or {}), **headers}
        if not headers:
            case.headers.pop("Authorization", None)
        response = case.call(base_url=base_url, timeout=30)
        findings.calls[caller] += 1
        findings.statuses[response.status_code] += 1
        operation_label = f"{case.operation.method.upper()} {case.operation.path}"
        # A cursor is an opaque token the server gave out: a made-up one is refused
        # (invalid_cursor) however well it fits the schema's string.
        made_up_cursor = bool(case.query and "cursor" in case.query)
        lenient = operation_label in RULES_BEYOND_THE_SCHEMA or made_up_cursor
        checks = CHECKS if lenient else STRICT_CHECKS
        case.validate_response(response, checks=checks)
        _problem_json_on_4xx(response)

    return test


async def _customer(base_url: str, sessionmaker: async_sessionmaker[AsyncSession]) -> Account:
    async with httpx.AsyncClient(base_url=base_url) as client, sessionmaker.begin() as session:
        return await sign_up(client, session)


async def _admin(base_url: str, sessionmaker: async_sessionmaker[AsyncSession]) -> Account:
    async with httpx.AsyncClient(base_url=base_url) as client, sessionmaker.begin() as session:
        return await sign_up(client, session, role=PlatformRole.ADMIN)


async def _vendor_owner(base_url: str, sessionmaker: async_sessionmaker[AsyncSession]) -> Account:
    """The owner of an approved vendor."""
    owner = await _customer(base_url, sessionmaker)
    admin = await _admin(base_url, sessionmaker)
    async with httpx.AsyncClient(base_url=base_url) as client:
        name = f"Conformance {uuid.uuid4().hex[:8]}"
        created = await client.post("/vendors", headers=owner.headers, json={"name": name})
        assert created.status_code == 201, created.text
        approved = await client.post(
            f"/admin/vendors/{created.json()['id']}/approve", headers=admin.headers
        )
        assert approved.status_code == 200, approved.text
    return owner


async def test_every_operation_conforms_to_the_schema(
    fresh_database_url: str, temporal_address: str
) -> None:
    settings_ = make_settings(
        fresh_database_url,
        temporal_address,
        checkout_response_wait_s=0.2,
        payout_run_wait_s=0.5,
        log_level="WARNING",
    )
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings_), host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    base_url = f"http://127.0.0.1:{port}"
    engine = create_async_engine(fresh_database_url, poolclass=NullPool)
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    loop = asyncio.get_running_loop()

    def signing_in(
        make: Callable[[str, async_sessionmaker[AsyncSession]], Coroutine[Any, Any, Account]],
    ) -> Callable[[], dict[str, str]]:
        # Called from the schemathesis thread; the account is made on this loop.
        def sign_in() -> dict[str, str]:
            made = asyncio.run_coroutine_threadsafe(make(base_url, sessionmaker), loop)
            return made.result(timeout=60).headers

        return sign_in

    callers: dict[str, Callable[[], dict[str, str]]] = {
        "anonymous": dict,
        "customer": signing_in(_customer),
        "vendor": signing_in(_vendor_owner),
        "admin": signing_in(_admin),
    }
    findings = Findings()
    try:
        for _ in range(400):  # up to 20 s
            if server.started or serving.done():
                break
            await asyncio.sleep(0.05)
        assert server.started, "the API did not start"
        operations = await asyncio.to_thread(_run, base_url, callers, findings)
    finally:
        server.should_exit = True
        await serving
        await engine.dispose()
    print(
        f"\nconformance: {operations} operations x {len(callers)} callers, "
        f"{sum(findings.calls.values())} calls {dict(findings.calls)}, "
        f"statuses {dict(sorted(findings.statuses.items()))}, {len(findings.failures)} failing"
    )
    if report := os.environ.get("CONFORMANCE_REPORT"):
        await asyncio.to_thread(Path(report).write_text, json.dumps(findings.failures, indent=1))
    assert operations > 100
    assert findings.failures == {}


def test_every_exception_names_an_operation_and_a_reason() -> None:
    """A stale entry would hide nothing and say something false: each names an operation the
    API has, with the rule its schema cannot state."""
    spec = create_app(make_settings("postgresql+psycopg://unused/unused", "unused:7233")).openapi()
    operations = {
        f"{method.upper()} {path}" for path, ops in spec["paths"].items() for method in ops
    }
    assert set(RULES_BEYOND_THE_SCHEMA) <= operations
    assert all(len(reason) > 20 for reason in RULES_BEYOND_THE_SCHEMA.values())
