"""Payment webhooks over HTTP: verified, stored once, signalled to ``order:{id}``.

Real PostgreSQL (a database of each test's own: the route commits) and the real Temporal dev
server. The order workflow is played by a small recorder workflow registered under the order's
workflow id, so these tests see exactly which signals arrive, and in which order.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool
from temporalio import workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from api.app import create_app
from api.routes import webhooks as webhook_routes
from commerce.payments import WebhookEvent
from commerce.payments.test_provider import SIGNATURE_HEADER, TestPaymentProvider
from commerce.payments.webhooks import attach_early_events
from models import Order, OrderStatus, Payment, PaymentEvent, PaymentStatus
from tests.conftest import _client_for, make_settings
from tests.paypal_server import PayPalServer, paypal_server  # noqa: F401 - the session fixture
from workflows.contracts.orders import PAYMENT_EVENT_SIGNAL, PaymentEventSignal, order_workflow_id

T = TypeVar("T")
PROBLEM = "application/problem+json"
STRIPE_WEBHOOK_SECRET = "whsec_test_" + "w" * 24


@workflow.defn(name="WebhookRecorderWorkflow")
class WebhookRecorderWorkflow:
    """Stands in for the order workflow: records every payment event signal it receives."""

    def __init__(self) -> None:
        self._events: list[PaymentEventSignal] = []
        self._done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self._done)

    @workflow.signal(name=PAYMENT_EVENT_SIGNAL)
    def payment_event(self, signal: PaymentEventSignal) -> None:
        self._events.append(signal)

    @workflow.signal
    def finish(self) -> None:
        self._done = True

    @workflow.query
    def received(self) -> list[PaymentEventSignal]:
        return list(self._events)


# --- harness ---------------------------------------------------------------------------------


@dataclass
class Harness:
    app: FastAPI
    http: httpx.AsyncClient
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    temporal: Client
    task_queue: str

    @property
    def test_provider(self) -> TestPaymentProvider:
        return self.app.state.payment_providers["test"]  # type: ignore[no-any-return]

    async def deliver(self, provider: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return await self.http.post(f"/webhooks/{provider}", content=body, headers=headers)

    async def deliver_test(self, event: WebhookEvent) -> httpx.Response:
        signed = self.test_provider.signed_webhook(event)
        return await self.deliver("test", signed.payload, signed.headers)

    async def start_recorder(self, order_id: uuid.UUID) -> WorkflowHandle[Any, Any]:
        return await self.temporal.start_workflow(
            WebhookRecorderWorkflow.run,
            id=order_workflow_id(str(order_id)),
            task_queue=self.task_queue,
            execution_timeout=timedelta(minutes=5),
        )

    async def events(self) -> list[PaymentEvent]:
        async with self.sessionmaker() as session:
            return list(
                (await session.scalars(select(PaymentEvent).order_by(PaymentEvent.id))).all()
            )


@pytest.fixture
async def harness_for(
    fresh_database_url: str,
    temporal_address: str,
    temporal_env: WorkflowEnvironment,
    task_queue: str,
) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    """Builds the app (settings overridable) on this test's database, with a recorder worker."""
    engine = create_async_engine(fresh_database_url, poolclass=NullPool)
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    worker = Worker(
        temporal_env.client,
        task_queue=task_queue,
        workflows=[WebhookRecorderWorkflow],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    clients: list[AsyncIterator[httpx.AsyncClient]] = []

    async def build(**overrides: object) -> Harness:
        address = str(overrides.pop("temporal_address", temporal_address))
        app = create_app(make_settings(fresh_database_url, address, **overrides))
        client_iter = _client_for(app)
        clients.append(client_iter)
        http = await anext(client_iter)
        return Harness(app, http, engine, sessionmaker, temporal_env.client, task_queue)

    try:
        async with worker:
            yield build
            for client_iter in reversed(clients):
                await client_iter.aclose()
    finally:
        await engine.dispose()


@pytest.fixture
async def harness(harness_for: Callable[..., Awaitable[Harness]]) -> Harness:
    return await harness_for()


# --- data ------------------------------------------------------------------------------------


async def make_order(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    provider: str = "test",
    provider_payment_id: str | None = None,
    provider_reference: str | None = None,
    amount: int = 4200,
) -> uuid.UUID:
    """A guest order awaiting payment, with its first payment attempt."""
    order_id = uuid.uuid4()
    async with sessionmaker.begin() as session:
        session.add(
            Order(
                id=order_id,
                customer_id=None,
                idempotency_key=f"key-{uuid.uuid4().hex}",
                request_hash=hashlib.sha256(order_id.bytes).hexdigest(),
                status=OrderStatus.AWAITING_PAYMENT,
                currency="EUR",
                prices_include_tax=True,
                items_subtotal=amount,
                discount_total=0,
                shipping_total=0,
                tax_total=0,
                grand_total=amount,
                contact_email="guest@example.com",
                shipping_address={"name": "Ada", "line1": "1 Main St", "country": "FR"},
                payment_provider=provider,
                workflow_id=order_workflow_id(str(order_id)),
            )
        )
        await session.flush()
        session.add(
            Payment(
                order_id=order_id,
                attempt=1,
                provider=provider,
                provider_payment_id=provider_payment_id,
                provider_reference=provider_reference,
                status=PaymentStatus.REQUIRES_ACTION,
                amount=amount,
                currency="EUR",
            )
        )
    return order_id


def webhook_event(
    payment_id: str | None, status: str | None = "authorized", *, event_id: str | None = None
) -> WebhookEvent:
    return WebhookEvent(
        provider_event_id=event_id or f"evt_test_{uuid.uuid4().hex}",
        type=f"payment.{status}" if status else "payment.note",
        payment_id=payment_id,
        status=status,  # type: ignore[arg-type]
        amount=4200,
    )


def pay_id() -> str:
    return f"pay_test_{uuid.uuid4().hex[:20]}"


async def eventually(probe: Callable[[], Awaitable[T]], until: Callable[[T], bool]) -> T:
    deadline = time.monotonic() + 10
    while True:
        value = await probe()
        if until(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def received(handle: WorkflowHandle[Any, Any], count: int) -> list[PaymentEventSignal]:
    return await eventually(
        lambda: handle.query(WebhookRecorderWorkflow.received), lambda got: len(got) >= count
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the test provider -----------------------------------------------------------------------


async def test_a_verified_webhook_is_stored_and_signalled(harness: Harness) -> None:
    payment_id = pay_id()
    order_id = await make_order(harness.sessionmaker, provider_payment_id=payment_id)
    handle = await harness.start_recorder(order_id)
    event = webhook_event(payment_id)

    response = await harness.deliver_test(event)

    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "duplicate": False}
    assert await received(handle, 1) == [
        PaymentEventSignal(
            provider="test",
            provider_payment_id=payment_id,
            status="authorized",
            event_id=event.provider_event_id,
            amount=4200,
        )
    ]
    [stored] = await harness.events()
    assert (stored.provider, stored.provider_event_id, stored.type) == (
        "test",
        event.provider_event_id,
        "payment.authorized",
    )
    assert stored.provider_payment_id == payment_id
    assert stored.order_id == order_id
    assert stored.signalled_at is not None
    await handle.signal(WebhookRecorderWorkflow.finish)


async def test_the_same_delivery_twice_is_stored_and_signalled_once(harness: Harness) -> None:
    payment_id = pay_id()
    order_id = await make_order(harness.sessionmaker, provider_payment_id=payment_id)
    handle = await harness.start_recorder(order_id)
    signed = harness.test_provider.signed_webhook(webhook_event(payment_id))

    first = await harness.deliver("test", signed.payload, signed.headers)
    second = await harness.deliver("test", signed.payload, signed.headers)

    assert first.json() == {"received": True, "duplicate": False}
    assert second.status_code == 200
    assert second.json() == {"received": True, "duplicate": True}
    assert len(await harness.events()) == 1
    await received(handle, 1)
    # A later signal is processed after any earlier one: nothing else arrived in between.
    await asyncio.sleep(0.3)
    assert len(await handle.query(WebhookRecorderWorkflow.received)) == 1
    await handle.signal(WebhookRecorderWorkflow.finish)


async def test_concurrent_deliveries_store_one_row(harness: Harness) -> None:
    payment_id = pay_id()
    order_id = await make_order(harness.sessionmaker, provider_payment_id=payment_id)
    handle = await harness.start_recorder(order_id)
    signed = harness.test_provider.signed_webhook(webhook_event(payment_id))

    answers = await asyncio.gather(
        *(harness.deliver("test", signed.payload, signed.headers) for _ in range(4))
    )

    assert [a.status_code for a in answers] == [200] * 4
    assert sorted(a.json()["duplicate"] for a in answers) == [False, True, True, True]
    assert len(await harness.events()) == 1
    # At least once: concurrent redeliveries may each signal; the workflow dedupes by event id.
    got = await received(handle, 1)
    assert {signal.event_id for signal in got} == {json.loads(signed.payload)["id"]}
    await handle.signal(WebhookRecorderWorkflow.finish)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda body, headers: (body.replace(b"4200", b"1"), headers), id="body"),
        pytest.param(
            lambda body, headers: (body, {**headers, SIGNATURE_HEADER: "t=1,v1=00"}), id="sig"
        ),
        pytest.param(
            lambda body, headers: (body, {"Content-Type": "application/json"}), id="unsigned"
        ),
        pytest.param(
            lambda body, headers: (b"{not json", headers), id="garbage-with-old-signature"
        ),
    ],
)
async def test_a_bad_signature_is_refused_and_nothing_stored(
    harness: Harness, tamper: Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]]
) -> None:
    payment_id = pay_id()
    await make_order(harness.sessionmaker, provider_payment_id=payment_id)
    signed = harness.test_provider.signed_webhook(webhook_event(payment_id))
    body, headers = tamper(signed.payload, signed.headers)

    response = await harness.deliver("test", body, headers)

    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "invalid_webhook"
    assert await harness.events() == []


async def test_a_stale_signature_is_refused(harness: Harness) -> None:
    signed = harness.test_provider.signed_webhook(
        webhook_event(pay_id()), timestamp=int(time.time()) - 3600
    )
    response = await harness.deliver("test", signed.payload, signed.headers)
    assert response.status_code == 400
    assert await harness.events() == []


async def test_an_unknown_provider_is_a_404_problem(harness: Harness) -> None:
    # Stripe is not configured in this app: same answer as a made-up name.
    for name in ("stripe", "nonsense"):
        response = await harness.deliver(name, b"{}", {"Content-Type": "application/json"})
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["code"] == "unknown_webhook_provider"
    assert await harness.events() == []


async def test_an_oversized_body_is_a_413_problem(harness: Harness) -> None:
    body = b'{"padding": "' + b"x" * (webhook_routes.MAX_BODY_BYTES + 1) + b'"}'
    response = await harness.deliver("test", body, {"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "webhook_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(5):
            yield b"x" * (webhook_routes.MAX_BODY_BYTES // 4)

    streamed = await harness.http.post("/webhooks/test", content=chunks())
    assert streamed.status_code == 413
    assert await harness.events() == []


async def test_an_event_for_an_unknown_payment_waits_for_attach_early_events(
    harness: Harness,
) -> None:
    payment_id = pay_id()
    early = webhook_event(payment_id, "authorized")
    note = webhook_event(payment_id, None)  # a type the platform does not act on

    for event in (early, note):
        response = await harness.deliver_test(event)
        assert response.status_code == 200
        assert response.json() == {"received": True, "duplicate": False}
    stored = await harness.events()
    assert [(row.order_id, row.signalled_at) for row in stored] == [(None, None), (None, None)]

    # The authorize activity stores the provider's id, then picks up what came early.
    order_id = await make_order(harness.sessionmaker, provider_payment_id=payment_id)
    async with harness.sessionmaker.begin() as session:
        attached = await attach_early_events(
            session,
            provider="test",
            payment_ids=[payment_id],
            order_id=order_id,
            now=datetime.now(UTC),
        )
    assert attached == [
        WebhookEvent(
            provider_event_id=early.provider_event_id,
            type="payment.authorized",
            payment_id=payment_id,
            status="authorized",
            amount=early.amount,
        )
    ]
    stored = await harness.events()
    assert {row.order_id for row in stored} == {order_id}
    assert all(row.signalled_at is not None for row in stored)

    # Idempotent: a retried activity gets the same events back; another order gets none.
    async with harness.sessionmaker.begin() as session:
        again = await attach_early_events(
            session,
            provider="test",
            payment_ids=[payment_id, "pay_other"],
            order_id=order_id,
            now=datetime.now(UTC),
        )
        other = await attach_early_events(
            session,
            provider="stripe",
            payment_ids=[payment_id],
            order_id=order_id,
            now=datetime.now(UTC),
        )
    assert again == attached
    assert other == []

    # A redelivery now is a no-op: the activity handed the event over already.
    handle = await harness.start_recorder(order_id)
    response = await harness.deliver_test(early)
    assert response.json() == {"received": True, "duplicate": True}
    await asyncio.sleep(0.3)
    assert await handle.query(WebhookRecorderWorkflow.received) == []
    await handle.signal(WebhookRecorderWorkflow.finish)


async def test_early_events_come_back_oldest_first(harness: Harness) -> None:
    payment_id = pay_id()
    events = [webhook_event(payment_id, status) for status in ("authorized", "captured", "failed")]
    for event in events:
        assert (await harness.deliver_test(event)).status_code == 200
    order_id = await make_order(harness.sessionmaker, provider_payment_id=payment_id)
    async with harness.sessionmaker.begin() as session:
        attached = await attach_early_events(
            session,
            provider="test",
            payment_ids=[payment_id],
            order_id=order_id,
            now=datetime.now(UTC),
        )
    assert [e.provider_event_id for e in attached] == [e.provider_event_id for e in events]
    assert [e.status for e in attached] == ["authorized", "captured", "failed"]


async def test_a_redelivery_after_the_payment_became_known_is_signalled(
    harness: Harness,
) -> None:
    payment_id = pay_id()
    event = webhook_event(payment_id)
    assert (await harness.deliver_test(event)).status_code == 200
    order_id = await make_order(harness.sessionmaker, provider_payment_id=payment_id)
    handle = await harness.start_recorder(order_id)

    # The provider delivers again before the activity looked for early events.
    response = await harness.deliver_test(event)

    assert response.json() == {"received": True, "duplicate": True}
    [signal] = await received(handle, 1)
    assert signal.event_id == event.provider_event_id
    [stored] = await harness.events()
    assert stored.order_id == order_id
    assert stored.signalled_at is not None
    # ... and the activity then finds it linked already: returned, not linked twice.
    async with harness.sessionmaker.begin() as session:
        attached = await attach_early_events(
            session,
            provider="test",
            payment_ids=[payment_id],
            order_id=order_id,
            now=datetime.now(UTC),
        )
    assert [e.provider_event_id for e in attached] == [event.provider_event_id]
    await handle.signal(WebhookRecorderWorkflow.finish)


async def test_a_webhook_racing_the_authorize_activity_is_not_lost(harness: Harness) -> None:
    """The activity's transaction writes the payment id and looks for early events; a webhook
    arriving meanwhile waits for it (advisory lock), then finds the payment and signals."""
    payment_id = pay_id()
    order_id = await make_order(harness.sessionmaker)  # the provider's id is not stored yet
    handle = await harness.start_recorder(order_id)
    event = webhook_event(payment_id)

    async with harness.sessionmaker.begin() as activity:
        await activity.execute(
            update(Payment)
            .where(Payment.order_id == order_id)
            .values(provider_payment_id=payment_id)
        )
        assert (
            await attach_early_events(
                activity,
                provider="test",
                payment_ids=[payment_id],
                order_id=order_id,
                now=datetime.now(UTC),
            )
            == []
        )
        delivery = asyncio.create_task(harness.deliver_test(event))
        await asyncio.sleep(0.5)
        assert not delivery.done()  # waiting for the activity's transaction
    response = await delivery

    assert response.status_code == 200
    [signal] = await received(handle, 1)
    assert signal.event_id == event.provider_event_id
    [stored] = await harness.events()
    assert stored.order_id == order_id
    await handle.signal(WebhookRecorderWorkflow.finish)


async def test_an_event_for_an_order_without_a_workflow_is_stored_and_acknowledged(
    harness: Harness,
) -> None:
    payment_id = pay_id()
    order_id = await make_order(harness.sessionmaker, provider_payment_id=payment_id)

    response = await harness.deliver_test(webhook_event(payment_id, "refunded"))

    assert response.status_code == 200
    assert response.json() == {"received": True, "duplicate": False}
    [stored] = await harness.events()
    assert stored.order_id == order_id
    # Nothing will ever take it: handled, so a redelivery does not try again.
    assert stored.signalled_at is not None


async def test_an_event_for_a_finished_workflow_is_acknowledged(harness: Harness) -> None:
    payment_id = pay_id()
    order_id = await make_order(harness.sessionmaker, provider_payment_id=payment_id)
    handle = await harness.start_recorder(order_id)
    await handle.signal(WebhookRecorderWorkflow.finish)
    await handle.result()

    response = await harness.deliver_test(webhook_event(payment_id, "disputed"))

    assert response.status_code == 200
    [stored] = await harness.events()
    assert stored.signalled_at is not None


async def test_out_of_order_events_reach_the_workflow_in_arrival_order(
    harness: Harness,
) -> None:
    payment_id = pay_id()
    order_id = await make_order(harness.sessionmaker, provider_payment_id=payment_id)
    handle = await harness.start_recorder(order_id)
    captured = webhook_event(payment_id, "captured")
    authorized = webhook_event(payment_id, "authorized")

    for event in (captured, authorized):
        assert (await harness.deliver_test(event)).status_code == 200

    got = await received(handle, 2)
    assert [(s.event_id, s.status) for s in got] == [
        (captured.provider_event_id, "captured"),
        (authorized.provider_event_id, "authorized"),
    ]
    await handle.signal(WebhookRecorderWorkflow.finish)


async def test_temporal_down_is_a_503_and_the_redelivery_signals(
    harness_for: Callable[..., Awaitable[Harness]],
) -> None:
    down = await harness_for(temporal_address=f"127.0.0.1:{_closed_port()}")
    payment_id = pay_id()
    order_id = await make_order(down.sessionmaker, provider_payment_id=payment_id)
    signed = down.test_provider.signed_webhook(webhook_event(payment_id))

    response = await down.deliver("test", signed.payload, signed.headers)

    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "webhook_not_delivered"
    assert "retry-after" in response.headers
    [stored] = await down.events()
    assert stored.order_id == order_id
    assert stored.signalled_at is None  # stored, not yet told

    up = await harness_for()
    handle = await up.start_recorder(order_id)
    again = await up.deliver("test", signed.payload, signed.headers)

    assert again.status_code == 200
    assert again.json() == {"received": True, "duplicate": True}
    [signal] = await received(handle, 1)
    assert signal.event_id == json.loads(signed.payload)["id"]
    [stored] = await up.events()
    assert stored.signalled_at is not None
    await handle.signal(WebhookRecorderWorkflow.finish)


async def test_webhook_bodies_and_signatures_are_not_logged(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    payment_id = pay_id()
    await make_order(harness.sessionmaker, provider_payment_id=payment_id)
    signed = harness.test_provider.signed_webhook(webhook_event(payment_id))
    signature = signed.headers[SIGNATURE_HEADER]
    with caplog.at_level("DEBUG"):
        await harness.deliver("test", signed.payload, signed.headers)
        await harness.deliver("test", signed.payload + b" ", signed.headers)
    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert any(record.name == "emporium.webhooks" for record in caplog.records)
    assert signature.split("v1=")[1] not in logged
    assert signed.payload.decode() not in logged


# --- Stripe and PayPal -----------------------------------------------------------------------


def stripe_signed(payload: bytes, secret: str = STRIPE_WEBHOOK_SECRET) -> dict[str, str]:
    """Sign exactly as Stripe does: t=<unix>,v1=HMAC-SHA256(secret, f"{t}.{payload}")."""
    timestamp = int(time.time())
    signature = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256
    ).hexdigest()
    return {"Stripe-Signature": f"t={timestamp},v1={signature}", "Content-Type": "application/json"}


async def test_a_stripe_webhook_is_verified_and_signalled(
    harness_for: Callable[..., Awaitable[Harness]],
) -> None:
    harness = await harness_for(
        stripe_secret_key="sk_test_webhooks", stripe_webhook_secret=STRIPE_WEBHOOK_SECRET
    )
    intent_id = f"pi_{uuid.uuid4().hex[:24]}"
    order_id = await make_order(
        harness.sessionmaker, provider="stripe", provider_payment_id=intent_id
    )
    handle = await harness.start_recorder(order_id)
    event_id = f"evt_{uuid.uuid4().hex[:24]}"
    payload = json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "payment_intent.amount_capturable_updated",
            "created": int(time.time()),
            "livemode": False,
            "api_version": "2024-06-20",
            "data": {
                "object": {"id": intent_id, "object": "payment_intent", "amount_capturable": 4200}
            },
        }
    ).encode()

    response = await harness.deliver("stripe", payload, stripe_signed(payload))
    refused = await harness.deliver("stripe", payload, stripe_signed(payload, "whsec_other"))

    assert response.status_code == 200, response.text
    assert refused.status_code == 400
    assert await received(handle, 1) == [
        PaymentEventSignal(
            provider="stripe",
            provider_payment_id=intent_id,
            status="authorized",
            event_id=event_id,
            amount=4200,
        )
    ]
    [stored] = await harness.events()
    assert (stored.provider, stored.order_id) == ("stripe", order_id)
    await handle.signal(WebhookRecorderWorkflow.finish)


async def test_a_paypal_webhook_is_verified_with_paypal_and_matched_by_reference(
    harness_for: Callable[..., Awaitable[Harness]],
    paypal_server: PayPalServer,  # noqa: F811
) -> None:
    harness = await harness_for(
        paypal_client_id=paypal_server.client_id,
        paypal_client_secret=paypal_server.client_secret,
        paypal_base_url=paypal_server.base_url,
        paypal_webhook_id=paypal_server.webhook_id,
    )
    paypal_order_id = f"ORD{uuid.uuid4().hex[:14].upper()}"
    authorization_id = f"AUTH{uuid.uuid4().hex[:13].upper()}"
    # What is captured is the authorization; webhooks name the PayPal order.
    order_id = await make_order(
        harness.sessionmaker,
        provider="paypal",
        provider_payment_id=authorization_id,
        provider_reference=paypal_order_id,
    )
    handle = await harness.start_recorder(order_id)
    delivery = paypal_server.emit_webhook(
        "PAYMENT.AUTHORIZATION.CREATED",
        {
            "id": authorization_id,
            "status": "CREATED",
            "amount": {"currency_code": "EUR", "value": "42.00"},
            "supplementary_data": {"related_ids": {"order_id": paypal_order_id}},
        },
    )

    response = await harness.deliver("paypal", delivery.body, delivery.headers)
    forged = await harness.deliver(
        "paypal", delivery.body.replace(b"42.00", b"0.01"), delivery.headers
    )

    assert response.status_code == 200, response.text
    assert forged.status_code == 400
    assert await received(handle, 1) == [
        PaymentEventSignal(
            provider="paypal",
            provider_payment_id=paypal_order_id,
            status="authorized",
            event_id=delivery.event["id"],
            amount=4200,
        )
    ]
    [stored] = await harness.events()
    assert (stored.provider, stored.order_id) == ("paypal", order_id)
    await handle.signal(WebhookRecorderWorkflow.finish)


async def test_paypal_unreachable_for_verification_is_a_503_and_nothing_stored(
    harness_for: Callable[..., Awaitable[Harness]],
    paypal_server: PayPalServer,  # noqa: F811
) -> None:
    harness = await harness_for(
        paypal_client_id=paypal_server.client_id,
        paypal_client_secret=paypal_server.client_secret,
        paypal_base_url=f"http://127.0.0.1:{_closed_port()}",
        paypal_webhook_id=paypal_server.webhook_id,
    )
    delivery = paypal_server.emit_webhook(
        "PAYMENT.CAPTURE.COMPLETED", {"id": "CAPTURE1", "status": "COMPLETED"}
    )

    response = await harness.deliver("paypal", delivery.body, delivery.headers)

    assert response.status_code == 503
    assert response.json()["code"] == "webhook_not_delivered"
    assert await harness.events() == []
