"""Traces: one trace from an API request through the workflows it starts or signals to every
activity they run and the SQL those send (README, "Observability").

Tracing is off, and costs nothing, unless a process is given a ``TracerProvider``: the API and
the worker make one from the environment (``tracer_provider_from_env``) when
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, and export
over OTLP/HTTP; the tests pass one with an in-memory exporter. Without one, nothing is
instrumented: no middleware, no SQL hooks, no interceptors.

The pieces are the ecosystem's own: OpenTelemetry's FastAPI, SQLAlchemy and httpx
instrumentations, and ``temporalio.contrib.opentelemetry.TracingInterceptor``, which carries
the trace context in Temporal headers from the client to the workflow and its activities.
Span attributes never hold card data, tokens, passwords or email addresses: ours name orders,
vendors, providers and attempts (``set_attributes``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

#: The ``service.name`` of each process's spans.
API_SERVICE = "emporium-api"
WORKER_SERVICE = "emporium-worker"

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def tracer_provider_from_env(
    service: str, environ: Mapping[str, str] = os.environ
) -> TracerProvider | None:
    """A provider exporting over OTLP/HTTP when an OTLP endpoint is configured, else ``None``
    (tracing off). The exporter reads the standard ``OTEL_EXPORTER_OTLP_*`` variables."""
    if not any(environ.get(name) for name in _ENDPOINT_VARIABLES):
        return None
    # Imported here: a process that does not trace never loads the exporter.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


class _TracedStatements(EngineTracer):
    """OpenTelemetry's SQLAlchemy instrumentation, for statements of a trace being recorded.

    A statement sent outside any recorded span (a background loop's poll, a request whose
    trace was sampled out) would be a trace of its own or a span nobody keeps; it is sent
    untraced, at no cost, instead of paying the instrumentation's per-statement work.
    """

    def _before_cur_exec(
        self, conn: Any, cursor: Any, statement: Any, params: Any, context: Any, many: Any
    ) -> tuple[Any, Any]:
        if not trace.get_current_span().is_recording():
            return statement, params
        traced: tuple[Any, Any] = super()._before_cur_exec(
            conn, cursor, statement, params, context, many
        )
        return traced


def instrument_engine(engine: AsyncEngine, provider: TracerProvider | None) -> None:
    """Every statement ``engine`` sends within a recorded span becomes a span of its own, its
    child (the statement's text, never its parameters)."""
    if provider is None:
        return
    # Per engine, not SQLAlchemyInstrumentor's patching of create_engine for the process: each
    # engine traces to the provider of the process (or test) that made it.
    tracer = provider.get_tracer("opentelemetry.instrumentation.sqlalchemy")
    usage = metrics.NoOpMeter("emporium").create_up_down_counter("db.client.connections.usage")
    _TracedStatements(tracer, engine.sync_engine, usage)


#: Fields of an activity's input that name what it works on: they label its span.
SPAN_FIELDS = (
    "order_id", "vendor_id", "payment_id", "refund_id", "return_id", "dispute_id",
    "shipment_id", "payout_id", "provider", "attempt", "run_key",
)  # fmt: skip


class _ActivitySpanAttributes(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        for argument in input.args:
            if dataclasses.is_dataclass(argument) and not isinstance(argument, type):
                values = {name: getattr(argument, name, None) for name in SPAN_FIELDS}
                set_attributes(
                    **{
                        name: value if isinstance(value, int | str) else str(value)
                        for name, value in values.items()
                        if value is not None
                    }
                )
        return await super().execute_activity(input)


class SpanAttributes(Interceptor):
    """Labels each activity's span with the ids in its input (order, vendor, provider,
    attempt: ``SPAN_FIELDS``), so a trace search by order id finds every step."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivitySpanAttributes(next)


def client_interceptors(provider: TracerProvider | None) -> list[client.Interceptor]:
    """What a Temporal client needs to pass the current trace on: nothing when off."""
    if provider is None:
        return []
    return [TracingInterceptor(provider.get_tracer("emporium.temporal"))]


def worker_interceptors(provider: TracerProvider | None) -> list[Interceptor]:
    """What a worker needs to continue traces into workflows and activities: nothing when
    off. The tracing interceptor comes first, so its span is current in the next."""
    if provider is None:
        return []
    return [TracingInterceptor(provider.get_tracer("emporium.temporal")), SpanAttributes()]


def current_trace_id() -> str | None:
    """The trace id (32 hex digits) of the current span, when there is one that records."""
    context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else None


def current_span_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return trace.format_span_id(context.span_id) if context.is_valid else None


def set_attributes(**attributes: str | int | None) -> None:
    """Name what the current span works on (``order_id=...``, ``provider=...``), as
    ``emporium.<name>`` attributes; ``None`` values are left out. Only ids, codes and counts:
    never card data, tokens, passwords or email addresses."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    for name, value in attributes.items():
        if value is not None:
            span.set_attribute(f"emporium.{name}", value)
