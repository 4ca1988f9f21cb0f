"""The order saga when things go wrong: the payment window runs out, 50 shoppers race for 10
units, the worker is killed between authorization and capture, the API dies between storing
an order and starting its workflow."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from commerce.orders import order_saga, orders
from commerce.payments import WebhookEvent
from models import Cart, Order, Payment, PaymentStatus
from tests.factories import Account
from tests.order_harness import Platform, Shop, make_shop, platform
from workflows.contracts.orders import order_workflow_id

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


async def test_payment_window_expiry_releases_everything(
    fresh_database_url: str, temporal_env: WorkflowEnvironment, temporal_address: str
) -> None:
    async with platform(
        fresh_database_url, temporal_env.client, temporal_address, checkout_payment_window_s=2.0
    ) as p:
        account = await p.shopper()
        await p.add(account, p.shop.tee, 2)
        await p.use_coupon(account)
        answer = await p.checkout(account, "tok_3ds")  # the shopper never completes it
        assert answer.json()["payment"]["status"] == "requires_action", answer.text
        order_id = answer.json()["order_id"]
        assert await p.stock(p.shop.tee) == (10, 2)
        assert await p.coupon_uses() == 1

        order = await p.wait_for(order_id, "payment_failed")
        assert order.cancel_reason == "payment_window_expired"
        assert await p.stock(p.shop.tee) == (10, 0)
        assert await p.coupon_uses() == 0
        payment = (await p.payments(order_id))[0]
        assert payment.status == PaymentStatus.VOIDED
        assert payment.provider_payment_id is not None
        state = await p.provider.inspect(payment.provider_payment_id)
        assert state is not None
        assert (state.state, state.captures) == ("voided", 0)
        # A late webhook for it is stored and changes nothing.
        late = p.provider.signed_webhook(
            WebhookEvent(
                f"evt_{uuid.uuid4().hex}",
                "payment.authorized",
                payment.provider_payment_id,
                "authorized",
            )
        )
        delivered = await p.client.post(
            "/webhooks/test", content=late.payload, headers=late.headers
        )
        assert delivered.status_code == 200, delivered.text
        assert (await p.order(order_id)).status.value == "payment_failed"
        assert await p.stock(p.shop.tee) == (10, 0)


async def test_fifty_concurrent_checkouts_for_ten_units_sell_exactly_ten(
    fresh_database_url: str, temporal_env: WorkflowEnvironment, temporal_address: str
) -> None:
    async def scarce(sessionmaker: async_sessionmaker[AsyncSession]) -> Shop:
        return await make_shop(sessionmaker, tee_stock=10)

    async with platform(
        fresh_database_url,
        temporal_env.client,
        temporal_address,
        shop=scarce,
        database_pool_size=10,
        checkout_response_wait_s=30.0,
    ) as p:
        shoppers: list[Account] = []
        for _ in range(50):
            account = await p.shopper()
            await p.add(account, p.shop.tee, 1)
            shoppers.append(account)

        answers = await asyncio.gather(*(p.checkout(a, "tok_ok") for a in shoppers))
        placed = [a for a in answers if a.status_code in (200, 201, 202)]
        refused = [a for a in answers if a.status_code == 409]
        assert len(placed) + len(refused) == 50, [a.text for a in answers if a not in placed]
        final = [
            (await p.wait_for(a.json()["order_id"], "confirmed", "cancelled")).status.value
            for a in placed
        ]
        assert final.count("confirmed") == 10
        assert await p.stock(p.shop.tee) == (0, 0)
        async with p.sessionmaker() as session:
            captured = (
                await session.scalars(
                    select(Payment).where(Payment.status == PaymentStatus.CAPTURED)
                )
            ).all()
        assert len(captured) == 10
        for payment in captured:
            assert payment.provider_payment_id is not None
            state = await p.provider.inspect(payment.provider_payment_id)
            assert state is not None
            assert state.captures == 1
        # Nobody who lost the race was charged or kept anything.
        async with p.sessionmaker() as session:
            held = (
                await session.scalars(
                    select(Payment).where(
                        Payment.status.in_([PaymentStatus.AUTHORIZED, PaymentStatus.PENDING])
                    )
                )
            ).all()
        assert held == []


@contextmanager
def worker_process(p: Platform, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The real worker as its own process (``emporium worker``), on the platform's queue."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPORIUM_")}
    env.update(
        EMPORIUM_ENVIRONMENT="test",
        EMPORIUM_DATABASE_URL=p.settings.database_url or "",
        EMPORIUM_TEMPORAL_ADDRESS=p.settings.temporal_address,
        EMPORIUM_TEMPORAL_TASK_QUEUE=p.settings.temporal_task_queue,
        EMPORIUM_LOG_LEVEL="INFO",
        EMPORIUM_WORKER_SHUTDOWN_GRACE_S="1",
        EMPORIUM_WORKER_METRICS_ADDRESS="127.0.0.1:0",
    )
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "worker"], cwd=REPO, env=env, stdout=log, stderr=log
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


async def test_worker_killed_between_authorization_and_capture(
    fresh_database_url: str,
    temporal_env: WorkflowEnvironment,
    temporal_address: str,
    tmp_path: Path,
) -> None:
    """The first worker captures at the provider and dies before hearing the answer (the
    ``tok_slow_capture`` token answers 4 s late); the second one finishes the order with the
    same idempotency key: exactly one capture, stock committed once."""
    async with platform(
        fresh_database_url,
        temporal_env.client,
        temporal_address,
        with_worker=False,
        activity_timeout_s=2.0,
        checkout_response_wait_s=0.5,
    ) as p:
        account = await p.shopper()
        await p.add(account, p.shop.tee, 3)
        log = tmp_path / "workers.log"
        with worker_process(p, log) as first:
            answer = await p.checkout(account, "tok_slow_capture_4000")
            assert answer.status_code in (201, 202), answer.text
            order_id = answer.json()["order_id"]

            async def captured_at_provider() -> bool:
                payments = await p.payments(order_id)
                if not payments or payments[0].provider_payment_id is None:
                    return False
                state = await p.provider.inspect(payments[0].provider_payment_id)
                return state is not None and state.captures == 1

            await p.eventually(captured_at_provider, within=30)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        payment = (await p.payments(order_id))[0]
        # Killed before it could record the capture.
        assert payment.status == PaymentStatus.AUTHORIZED
        assert (await p.order(order_id)).status.value == "awaiting_payment"

        with worker_process(p, log):
            order = await p.wait_for(order_id, "confirmed", within=60)
        assert order.status.value == "confirmed"
        payment = (await p.payments(order_id))[0]
        assert payment.status == PaymentStatus.CAPTURED
        assert payment.captured_amount == order.grand_total
        assert payment.provider_payment_id is not None
        state = await p.provider.inspect(payment.provider_payment_id)
        assert state is not None
        assert (state.captures, state.captured) == (1, order.grand_total)
        assert await p.stock(p.shop.tee) == (7, 0)
        events = await p.events(order_id)
        assert events.count("payment_captured") == 1
        assert events.count("confirmed") == 1


async def test_reconciler_undoes_an_order_whose_workflow_never_started(
    fresh_database_url: str, temporal_env: WorkflowEnvironment, temporal_address: str
) -> None:
    async with platform(fresh_database_url, temporal_env.client, temporal_address) as p:
        account = await p.shopper()
        await p.add(account, p.shop.tee, 1)
        await p.use_coupon(account)
        # POST /checkout stored the order, then died before starting the workflow.
        async with p.sessionmaker.begin() as session:
            cart = await session.scalar(select(Cart).where(Cart.user_id == uuid.UUID(account.id)))
            assert cart is not None
            now = datetime.now(UTC)
            placed = await orders.place_order(
                session,
                cart=cart,
                customer_id=uuid.UUID(account.id),
                contact_email=account.email,
                idempotency_key=f"key-{uuid.uuid4()}",
                request_hash="0" * 64,
                payment_provider="test",
                prices_include_tax=False,
                now=now,
                today=now.date(),
            )
            order_id = placed.order.id
        assert await p.coupon_uses() == 1

        # Too young: left alone (its API request may still be starting it).
        assert (
            await order_saga.reconcile_pending(
                p.sessionmaker, p.temporal, p.settings, now=datetime.now(UTC)
            )
            == 0
        )
        async with p.sessionmaker.begin() as session:
            await session.execute(
                update(Order)
                .where(Order.id == order_id)
                .values(created_at=Order.created_at - timedelta(minutes=5))
            )
        assert (
            await order_saga.reconcile_pending(
                p.sessionmaker, p.temporal, p.settings, now=datetime.now(UTC)
            )
            == 1
        )
        order = await p.wait_for(str(order_id), "cancelled")
        assert order.cancel_reason == "checkout_interrupted"
        assert await p.coupon_uses() == 0
        assert await p.stock(p.shop.tee) == (10, 0)
        # Once is enough: the saga has run, it is never started again.
        assert (
            await order_saga.reconcile_pending(
                p.sessionmaker, p.temporal, p.settings, now=datetime.now(UTC)
            )
            == 0
        )
        handle = p.temporal.get_workflow_handle(order_workflow_id(str(order_id)))
        assert (await handle.describe()).id == order_workflow_id(str(order_id))
