"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span

from api import errors
from api.access import api_routes, requirement_of
from api.middleware import REQUEST_ID_HEADER, RequestContextMiddleware
from api.problems import PROBLEM_MEDIA_TYPE, FieldError, Problem
from api.routes import (
    addresses,
    admin,
    analytics,
    auth,
    carts,
    categories_admin,
    checkout,
    disputes,
    health,
    inventory,
    invoices,
    ledger,
    me,
    metrics,
    orders,
    payment_methods,
    problems,
    promotions,
    refunds,
    returns,
    reviews,
    search,
    shipments,
    shipping,
    social,
    storefront,
    tax,
    test_payments,
    vendor_products,
    vendors,
    webhooks,
    wishlists,
)
from commerce.accounts.context import AccountsContext
from commerce.accounts.oidc import OidcClient
from commerce.accounts.social import SocialLogin, configured_providers
from commerce.payments.registry import build_providers
from commerce.search.indexer import backend_for
from core import database, telemetry, temporal
from core.clock import SYSTEM_CLOCK, Clock
from core.logs import configure_logging
from core.settings import Settings, load_settings

API_VERSION = "1.0.0"


def _no_query_in_spans(span: Span, scope: dict[str, Any]) -> None:
    """A query string may name an email address (``/admin/mail-outbox?to=``): spans keep the
    path alone."""
    if span.is_recording():
        path = scope.get("path", "")
        for key in ("http.target", "url.query", "http.url", "url.full"):
            span.set_attribute(key, path if key != "url.query" else "")


def _operation_id(route: APIRoute) -> str:
    return route.name


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock = SYSTEM_CLOCK,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """Build the API. Called by uvicorn (``factory=True``) and by the tests. ``clock`` is where
    every request reads its time (``api.deps.NowDep``). ``tracer_provider`` turns tracing on
    (uvicorn's factory call makes one from ``OTEL_EXPORTER_OTLP_ENDPOINT``, if set)."""
    configured = settings is not None
    settings = settings or load_settings()
    if not configured:
        configure_logging(settings.log_level, settings.log_format, process="api")
        tracer_provider = tracer_provider or telemetry.tracer_provider_from_env(
            telemetry.API_SERVICE
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = database.create_engine(settings, tracer_provider=tracer_provider)
        app.state.settings = settings
        app.state.clock = clock
        app.state.engine = engine
        app.state.sessionmaker = database.create_sessionmaker(engine)
        app.state.accounts = AccountsContext.build(settings, app.state.sessionmaker, clock=clock)
        # One pooled HTTP client for calls to the outside world (OIDC providers, ...).
        app.state.http = httpx.AsyncClient(timeout=httpx.Timeout(10.0))
        if tracer_provider is not None:
            HTTPXClientInstrumentor.instrument_client(app.state.http, tracer_provider)
        app.state.social = SocialLogin(configured_providers(settings), OidcClient(app.state.http))
        # Elasticsearch when ELASTICSEARCH_URL is set, else PostgreSQL full-text.
        app.state.search = backend_for(settings, app.state.sessionmaker)
        app.state.payment_providers = build_providers(settings, app.state.sessionmaker)
        # Lazy: the API starts (and /healthz answers) while Temporal is still coming up;
        # /readyz reports whether it is reachable.
        app.state.temporal = await temporal.connect(
            settings, lazy=True, tracer_provider=tracer_provider
        )
        try:
            yield
        finally:
            await app.state.search.close()
            await app.state.payment_providers.aclose()
            await app.state.http.aclose()
            await engine.dispose()

    app = FastAPI(
        title="Emporium",
        version=API_VERSION,
        summary="Multi-vendor marketplace API",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        # operationId = the route's function name (unique in the app): a generated client's
        # functions read `place_order`, `add_item`, not `place_order_checkout_post`.
        generate_unique_id_function=_operation_id,
    )
    if tracer_provider is not None:
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=tracer_provider,
            excluded_urls="/healthz,/readyz",
            server_request_hook=_no_query_in_spans,
        )
    errors.install(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=[REQUEST_ID_HEADER],
        )
    app.add_middleware(RequestContextMiddleware)
    for module in (
        health,
        metrics,
        problems,
        auth,
        social,
        me,
        addresses,
        payment_methods,
        storefront,
        search,
        reviews,
        wishlists,
        vendors,
        vendor_products,
        inventory,
        shipping,
        shipments,
        refunds,
        returns,
        disputes,
        invoices,
        ledger,
        analytics,
        carts,
        checkout,
        orders,
        webhooks,
        test_payments,
        promotions,
        admin,
        tax,
        categories_admin,
    ):
        app.include_router(module.router)
    app.include_router(orders.admin_router)
    app.include_router(invoices.admin_router)
    app.include_router(ledger.admin_router)
    # FastAPI's documented way to extend the schema is to replace this method.
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """OpenAPI with every error documented as problem+json (FastAPI's default 422 is not)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, summary=app.summary, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (Problem, FieldError):
        components[model.__name__] = model.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    schema["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        # Cart routes also serve guests, by the token POST /carts gave them.
        "cartToken": {"type": "apiKey", "in": "header", "name": "X-Cart-Token"},
    }
    requirements = {
        (route.path_format, method.lower()): requirement_of(route)
        for route in api_routes(app.routes)
        for method in route.methods
    }
    problem = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            requirement = requirements.get((path, method))
            if requirement is not None:
                operation["x-access"] = requirement.describe()
                if requirement.kind == "cart":
                    operation["security"] = [{"bearer": []}, {"cartToken": []}]
                elif requirement.kind != "public":
                    operation["security"] = [{"bearer": []}]
            for parameter in operation.get("parameters", []):
                # A header the route checks itself (for its own problem code) but requires.
                param_schema = parameter.get("schema", {})
                if param_schema.pop("x-required", False):
                    parameter["required"] = True
                    # Required, so never null: keep the string branch of `str | None`.
                    branches = [b for b in param_schema.pop("anyOf", []) if b != {"type": "null"}]
                    if len(branches) == 1:
                        param_schema.update(branches[0])
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    response["content"] = problem
            responses.setdefault(
                "default", {"description": "An error (problem details)", "content": problem}
            )
    app.openapi_schema = schema
    return schema
