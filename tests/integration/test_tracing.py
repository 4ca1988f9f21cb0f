"""One trace from ``POST /checkout`` through the order workflow to each activity and its SQL,
against the real Temporal dev server, with an in-memory span exporter (README,
"Observability")."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_trace_id
from temporalio.testing import WorkflowEnvironment

from core.logs import JsonFormatter
from core.telemetry import tracer_provider_from_env
from tests.order_harness import Platform, platform

pytestmark = pytest.mark.slow


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def traced_platform(
    fresh_database_url: str,
    temporal_env: WorkflowEnvironment,
    temporal_address: str,
    exporter: InMemorySpanExporter,
) -> AsyncIterator[Platform]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with platform(
        fresh_database_url, temporal_env.client, temporal_address, tracer_provider=provider
    ) as built:
        yield built
    provider.shutdown()


def _by_trace(spans: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    traces: dict[str, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        assert span.context is not None
        traces[format_trace_id(span.context.trace_id)].append(span)
    return traces


async def test_one_trace_from_the_request_to_every_activity_and_its_sql(
    traced_platform: Platform, exporter: InMemorySpanExporter
) -> None:
    p = traced_platform
    account = await p.shopper()
    await p.add(account, p.shop.tee, 1)
    exporter.clear()

    response = await p.checkout(account, "tok_ok")
    assert response.status_code == 201, response.text
    await p.wait_for(response.json()["order_id"], "confirmed")

    spans = exporter.get_finished_spans()
    [server] = [s for s in spans if s.kind == SpanKind.SERVER and s.name == "POST /checkout"]
    assert server.context is not None
    trace_id = format_trace_id(server.context.trace_id)
    traced = _by_trace(spans)[trace_id]
    names = {span.name for span in traced}

    # The request starts the workflow, and the workflow and its activities continue its trace.
    assert "StartWorkflow:OrderWorkflow" in names
    assert "RunWorkflow:OrderWorkflow" in names
    activities = {name.split(":", 1)[1] for name in names if name.startswith("RunActivity:")}
    assert {"reserve_inventory", "authorize_payment", "capture_payment"} <= activities, names
    # Each activity's span names the order it works on (and the payment's provider, attempt).
    order_id = response.json()["order_id"]
    reserve = next(s for s in traced if s.name == "RunActivity:reserve_inventory")
    assert reserve.attributes is not None
    assert reserve.attributes["emporium.order_id"] == order_id
    authorize = next(s for s in traced if s.name == "RunActivity:authorize_payment")
    assert authorize.attributes is not None
    assert authorize.attributes["emporium.provider"] == "test"
    assert authorize.attributes["emporium.attempt"] == 1
    # Each activity's statements are spans of the same trace, children of that activity.
    by_id = {span.context.span_id: span for span in traced if span.context is not None}
    sql_under: dict[str, int] = defaultdict(int)
    for span in traced:
        if span.attributes and span.attributes.get("db.system") == "postgresql":
            parent = span.parent
            while parent is not None and parent.span_id in by_id:
                ancestor = by_id[parent.span_id]
                if ancestor.name.startswith("RunActivity:"):
                    sql_under[ancestor.name.split(":", 1)[1]] += 1
                    break
                parent = ancestor.parent
    assert sql_under["reserve_inventory"] > 0, dict(sql_under)
    assert sql_under["capture_payment"] > 0, dict(sql_under)
    # The request's own SQL (placing the order) is in the trace as well.
    assert any(
        span.attributes
        and span.attributes.get("db.system") == "postgresql"
        and (
            (span.parent is not None and span.parent.span_id == server.context.span_id)
            or (
                span.start_time is not None
                and server.start_time is not None
                and server.end_time is not None
                and server.start_time <= span.start_time <= server.end_time
            )
        )
        for span in traced
    )


async def test_spans_name_no_secret_and_no_email(
    traced_platform: Platform, exporter: InMemorySpanExporter
) -> None:
    p = traced_platform
    account = await p.shopper()
    await p.add(account, p.shop.tee, 1)
    response = await p.checkout(account, "tok_ok")
    assert response.status_code == 201, response.text
    await p.wait_for(response.json()["order_id"], "confirmed")
    await p.client.get("/admin/mail-outbox", params={"to": account.email})

    dumped = json.dumps(
        [
            dict(span.attributes or {}) | {"name": span.name}
            for span in exporter.get_finished_spans()
        ],
        default=str,
    )
    assert account.email not in dumped
    assert "tok_ok" not in dumped
    assert account.headers["Authorization"].split()[1] not in dumped


async def test_problems_and_logs_carry_the_trace_id(
    traced_platform: Platform, exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    p = traced_platform
    account = await p.shopper()
    exporter.clear()
    with caplog.at_level(logging.INFO):
        refused = await p.client.post(
            "/checkout",
            json={"payment_provider": "test", "payment_token": "tok_ok"},
            headers={**account.headers, "Idempotency-Key": "trace-test-0001"},
        )
    assert refused.status_code in (409, 422), refused.text
    [server] = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert server.context is not None
    trace_id = format_trace_id(server.context.trace_id)
    assert refused.json()["trace_id"] == trace_id
    logged = [json.loads(JsonFormatter().format(record)) for record in caplog.records]
    assert trace_id in {entry.get("trace_id") for entry in logged}


def test_tracing_is_off_without_an_otlp_endpoint() -> None:
    assert tracer_provider_from_env("emporium-api", {}) is None
    provider = tracer_provider_from_env(
        "emporium-api", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    )
    assert isinstance(provider, TracerProvider)
    assert provider.resource.attributes["service.name"] == "emporium-api"
    provider.shutdown()


async def test_sql_is_traced_only_within_a_recorded_span(database_url: str) -> None:
    """A statement of a recorded trace is its child; one outside any (a background poll) or
    in a trace sampled out is sent untraced, instead of making a trace of its own."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from core.telemetry import instrument_engine

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    engine = create_async_engine(database_url, poolclass=NullPool)
    instrument_engine(engine, provider)
    sampled_out = TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))  # no span: untraced
            with sampled_out.start_as_current_span("dropped"):
                await connection.execute(text("SELECT 2"))  # sampled out: untraced
            with provider.get_tracer("test").start_as_current_span("request") as request:
                await connection.execute(text("SELECT 3"))
    finally:
        await engine.dispose()
        provider.shutdown()
    statements = [span for span in exporter.get_finished_spans() if span.name != "request"]
    assert [span.attributes.get("db.statement") for span in statements] == ["SELECT 3"]
    assert statements[0].parent is not None
    assert statements[0].parent.span_id == request.get_span_context().span_id
