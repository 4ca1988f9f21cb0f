"""Refunds end to end: the admin API, the real worker running ``RefundWorkflow``, real
Temporal, real PostgreSQL, the durable test payment provider. Each test has a database and a
task queue of its own."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.refunds import RefundActivities
from commerce.orders.order_saga import timings
from core import database, temporal
from core.settings import Settings
from models import (
    Invoice,
    InvoiceKind,
    LedgerEntry,
    LedgerKind,
    Payment,
    PlatformRole,
    Refund,
    RefundLine,
    RefundStatus,
    User,
)
from tests.conftest import make_settings
from tests.factories import Account, sign_up
from tests.order_harness import Platform, platform
from workers.registry import Dependencies, build_worker
from workflows.contracts.refunds import (
    CreateRefundInput,
    RefundLineInput,
    RefundWorkflowInput,
    refund_workflow_id,
)
from workflows.contracts.search_attributes import ORDER_ID
from workflows.refunds import RefundWorkflow

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


# --- the platform ------------------------------------------------------------------------------


def refund_worker(
    client: Client, settings: Settings, deps: Dependencies, *, task_queue: str | None = None
) -> Worker:
    """The real worker (the registry has the refund workflow and activities)."""
    return build_worker(client, settings, deps, task_queue=task_queue)


@pytest.fixture
async def refunds_platform(
    fresh_database_url: str, temporal_env: WorkflowEnvironment, temporal_address: str
) -> AsyncIterator[Platform]:
    async with platform(fresh_database_url, temporal_env.client, temporal_address) as p:
        yield p


async def serve_worker(values: dict[str, Any]) -> None:
    """A worker process's body (see ``worker_process``): until SIGTERM or killed."""
    settings = make_settings(values.pop("database_url"), values.pop("temporal_address"), **values)
    engine = database.create_engine(settings)
    deps = Dependencies.build(settings, database.create_sessionmaker(engine))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        client = await temporal.connect(settings)
        async with refund_worker(client, settings, deps):
            print("worker started", flush=True)
            await stop.wait()
    finally:
        await deps.aclose()
        await engine.dispose()


@contextmanager
def worker_process(p: Platform, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The worker (with refunds) as its own process, on the platform's queue."""
    values = {
        "database_url": p.settings.database_url,
        "temporal_address": p.settings.temporal_address,
        "temporal_task_queue": p.settings.temporal_task_queue,
        "worker_shutdown_grace_s": 1.0,
        "activity_timeout_s": p.settings.activity_timeout_s,
        "activity_retry_initial_s": p.settings.activity_retry_initial_s,
        "activity_retry_max_s": p.settings.activity_retry_max_s,
    }
    code = (
        "import asyncio, json, sys\n"
        "from tests.integration.test_refunds import serve_worker\n"
        "asyncio.run(serve_worker(json.loads(sys.argv[1])))\n"
    )
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", code, json.dumps(values)],
            cwd=REPO,
            stdout=log,
            stderr=log,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


# --- helpers -------------------------------------------------------------------------------


async def admin(p: Platform) -> Account:
    async with p.sessionmaker() as session:
        account = await sign_up(p.client, session)
    async with p.sessionmaker.begin() as session:
        await session.execute(
            update(User)
            .where(User.id == uuid.UUID(account.id))
            .values(platform_role=PlatformRole.ADMIN)
        )
    return account


async def paid_order(
    p: Platform, *, tees: int = 3, mugs: int = 1, pay_with: str = "tok_ok"
) -> tuple[Account, dict[str, Any]]:
    """A shopper and their confirmed order (as ``GET /orders/{id}`` shows it)."""
    account = await p.shopper()
    if tees:
        await p.add(account, p.shop.tee, tees)
    if mugs:
        await p.add(account, p.shop.mug, mugs)
    answer = await p.checkout(account, pay_with)
    assert answer.status_code in (201, 202), answer.text
    order_id = answer.json()["order_id"]
    await p.wait_for(order_id, "confirmed", within=60)
    order = await p.client.get(f"/orders/{order_id}", headers=account.headers)
    assert order.status_code == 200, order.text
    return account, order.json()


def line_of(order: dict[str, Any], sku: str) -> dict[str, Any]:
    return next(line for line in order["lines"] if line["sku"] == sku)


async def refund_of(p: Platform, refund_id: str) -> Refund:
    async with p.sessionmaker() as session:
        refund = await session.get(Refund, uuid.UUID(refund_id))
        assert refund is not None
        return refund


async def settled(p: Platform, refund_id: str, *, within: float = 60.0) -> Refund:
    """The refund once its workflow has ended (succeeded or failed)."""
    handle = p.temporal.get_workflow_handle(refund_workflow_id(refund_id))
    await asyncio.wait_for(handle.result(), timeout=within)
    return await refund_of(p, refund_id)


async def captured(p: Platform, order_id: str) -> Payment:
    payments = [pay for pay in await p.payments(order_id) if pay.status.value == "captured"]
    assert len(payments) == 1
    return payments[0]


async def ledger_entries(p: Platform, refund_id: str) -> list[LedgerEntry]:
    async with p.sessionmaker() as session:
        rows = await session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.refund_id == uuid.UUID(refund_id))
            .order_by(LedgerEntry.id)
        )
        return list(rows.all())


async def credit_notes(p: Platform, refund_id: str) -> list[Invoice]:
    async with p.sessionmaker() as session:
        rows = await session.scalars(
            select(Invoice).where(
                Invoice.refund_id == uuid.UUID(refund_id), Invoice.kind == InvoiceKind.CREDIT_NOTE
            )
        )
        return list(rows.all())


async def post_refund(
    p: Platform, account: Account, order_id: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    """POST a refund; a bare integer ``amount`` is sent as that many euro cents."""
    if isinstance(body.get("amount"), int):
        body = {**body, "amount": {"amount": body["amount"], "currency": "EUR"}}
    return await p.client.post(
        f"/admin/orders/{order_id}/refunds", headers={**account.headers, **headers}, json=body
    )


# --- the tests -----------------------------------------------------------------------------


async def test_partial_refund_of_lines_restocks_and_accounts_for_it(
    refunds_platform: Platform,
) -> None:
    p = refunds_platform
    shopper, order = await paid_order(p, tees=3, mugs=1)
    order_id = order["id"]
    tee = line_of(order, "N-TEE")
    boss = await admin(p)
    assert await p.stock(p.shop.tee) == (7, 0)

    answer = await post_refund(
        p,
        boss,
        order_id,
        {
            "reason": "Two tees arrived torn",
            "lines": [{"order_line_id": tee["id"], "quantity": 2}],
            "restock": True,
        },
    )
    assert answer.status_code == 201, answer.text
    created = answer.json()
    two_thirds = (tee["total"]["amount"] * 2 * 2 + 3) // (2 * 3)  # round half up of total * 2/3
    assert created["amount"]["amount"] == two_thirds
    assert created["status"] == "pending"
    assert created["source"] == "goodwill"
    assert created["vendor_id"] is None
    assert created["lines"] == [
        {
            "order_line_id": tee["id"],
            "quantity": 2,
            "amount": {"amount": two_thirds, "currency": "EUR"},
        }
    ]
    refund_id = created["id"]

    refund = await settled(p, refund_id)
    assert refund.status == RefundStatus.SUCCEEDED
    assert refund.provider_refund_id is not None
    # Stock back, once.
    assert await p.stock(p.shop.tee) == (9, 0)
    # The provider refunded exactly that, once; the payment row agrees.
    payment = await captured(p, order_id)
    assert payment.refunded_amount == two_thirds
    assert payment.provider_payment_id is not None
    state = await p.provider.inspect(payment.provider_payment_id)
    assert state is not None
    assert (len(state.refunds), state.refunded) == (1, two_thirds)
    assert state.refunds[0] == refund.provider_refund_id
    # The vendor's ledger is debited, the commission given back; one credit note; one email.
    entries = await ledger_entries(p, refund_id)
    kinds = {entry.kind: entry for entry in entries}
    assert kinds[LedgerKind.REFUND].amount == -two_thirds
    assert kinds[LedgerKind.REFUND].vendor_id == p.shop.north.id
    assert kinds[LedgerKind.COMMISSION_REFUND].amount > 0
    notes = await credit_notes(p, refund_id)
    assert [note.vendor_id for note in notes] == [p.shop.north.id]
    mails = [m for m in await p.mails(shopper.email) if m.template == "refund_issued"]
    assert len(mails) == 1
    assert "torn" in mails[0].body_text
    assert "2 x Tee" in mails[0].body_text

    # The shopper sees it; nobody else does.
    mine = await p.client.get(f"/orders/{order_id}/refunds", headers=shopper.headers)
    assert mine.status_code == 200, mine.text
    assert [(r["id"], r["status"]) for r in mine.json()["items"]] == [(refund_id, "succeeded")]
    assert mine.json()["remaining"]["amount"] == order["grand_total"]["amount"] - two_thirds
    stranger = await p.shopper()
    hidden = await p.client.get(f"/orders/{order_id}/refunds", headers=stranger.headers)
    assert hidden.status_code == 404
    seen = await p.client.get(f"/admin/refunds/{refund_id}", headers=boss.headers)
    assert seen.status_code == 200, seen.text
    assert seen.json()["provider_refund_id"] == refund.provider_refund_id
    assert seen.json()["requested_by"] == boss.id
    refused = await p.client.get(f"/admin/refunds/{refund_id}", headers=shopper.headers)
    assert refused.status_code == 403

    # Only one tee is left to refund; refunding it takes exactly what is left of the line.
    too_many = await post_refund(
        p,
        boss,
        order_id,
        {"reason": "More", "lines": [{"order_line_id": tee["id"], "quantity": 2}]},
    )
    assert too_many.status_code == 409, too_many.text
    assert too_many.json()["code"] == "refund_lines_exceed_remaining"
    last = await post_refund(
        p,
        boss,
        order_id,
        {"reason": "The third one too", "lines": [{"order_line_id": tee["id"], "quantity": 1}]},
    )
    assert last.status_code == 201, last.text
    assert last.json()["amount"]["amount"] == tee["total"]["amount"] - two_thirds
    assert (await settled(p, last.json()["id"])).status == RefundStatus.SUCCEEDED
    assert await p.stock(p.shop.tee) == (9, 0)  # not restocked: restock was not asked
    async with p.sessionmaker() as session:
        refunded = await session.scalars(
            select(RefundLine.amount).where(RefundLine.order_line_id == uuid.UUID(tee["id"]))
        )
        assert sum(refunded.all()) == tee["total"]["amount"]


async def test_goodwill_amount_is_spread_over_the_vendors(refunds_platform: Platform) -> None:
    p = refunds_platform
    shopper, order = await paid_order(p, tees=1, mugs=1)
    order_id = order["id"]
    boss = await admin(p)

    bad = await post_refund(p, boss, order_id, {"reason": "x", "amount": 100, "restock": True})
    assert bad.status_code == 422, bad.text
    neither = await post_refund(p, boss, order_id, {"reason": "x"})
    assert neither.status_code == 422, neither.text

    key = f"goodwill-{uuid.uuid4()}"
    answer = await post_refund(
        p, boss, order_id, {"reason": "Late delivery", "amount": 500}, **{"Idempotency-Key": key}
    )
    assert answer.status_code == 201, answer.text
    assert (answer.json()["amount"]["amount"], answer.json()["lines"]) == (500, [])
    again = await post_refund(
        p, boss, order_id, {"reason": "Late delivery", "amount": 500}, **{"Idempotency-Key": key}
    )
    assert again.json()["id"] == answer.json()["id"]
    refund = await settled(p, answer.json()["id"])
    assert refund.status == RefundStatus.SUCCEEDED
    # Operations find it by order in the Temporal UI, and read what it is.
    described = await p.temporal.get_workflow_handle(refund_workflow_id(str(refund.id))).describe()
    assert described.typed_search_attributes.get(ORDER_ID) == order_id
    assert await described.static_summary() == f"Refund 5.00 EUR of order {order_id} (goodwill)"

    payment = await captured(p, order_id)
    assert payment.refunded_amount == 500
    assert payment.provider_payment_id is not None
    state = await p.provider.inspect(payment.provider_payment_id)
    assert state is not None
    assert (len(state.refunds), state.refunded) == (1, 500)
    debits = [e for e in await ledger_entries(p, str(refund.id)) if e.kind == LedgerKind.REFUND]
    assert sum(e.amount for e in debits) == -500
    assert {e.vendor_id for e in debits} == {p.shop.north.id, p.shop.south.id}
    assert {n.vendor_id for n in await credit_notes(p, str(refund.id))} == {
        p.shop.north.id,
        p.shop.south.id,
    }
    assert [m.template for m in await p.mails(shopper.email)].count("refund_issued") == 1
    assert await p.stock(p.shop.tee) == (9, 0)


async def test_a_refund_above_what_remains_is_refused_by_the_api_and_the_database(
    refunds_platform: Platform,
) -> None:
    p = refunds_platform
    _, order = await paid_order(p, tees=1, mugs=0)
    order_id = order["id"]
    boss = await admin(p)

    answer = await post_refund(
        p, boss, order_id, {"reason": "Too much", "amount": order["grand_total"]["amount"] + 1}
    )
    assert answer.status_code == 409, answer.text
    problem = answer.json()
    assert problem["code"] == "refund_exceeds_remaining"
    assert problem["remaining"] == order["grand_total"]["amount"]
    payment = await captured(p, order_id)
    assert payment.refunded_amount == 0
    async with p.sessionmaker() as session:
        assert (
            await session.scalar(select(Refund.id).where(Refund.order_id == uuid.UUID(order_id)))
        ) is None

    # Whatever the code does, the database keeps refunds within what was captured.
    with pytest.raises(IntegrityError, match="refund_within_capture"):
        async with p.sessionmaker.begin() as session:
            await session.execute(
                update(Payment)
                .where(Payment.id == payment.id)
                .values(refunded_amount=Payment.captured_amount + 1)
            )

    # Money in another currency than the order's is not a refund of it.
    dollars = await post_refund(
        p, boss, order_id, {"reason": "x", "amount": {"amount": 100, "currency": "USD"}}
    )
    assert dollars.status_code == 422, dollars.text
    assert dollars.json()["code"] == "invalid_refund"

    # An unknown order is not found.
    unknown = await post_refund(p, boss, str(uuid.uuid4()), {"reason": "x", "amount": 1})
    assert unknown.status_code == 404, unknown.text


async def test_concurrent_refunds_for_the_last_amount_accept_exactly_one(
    refunds_platform: Platform,
) -> None:
    p = refunds_platform
    _, order = await paid_order(p, tees=1, mugs=1)
    order_id = order["id"]
    boss = await admin(p)
    first = await post_refund(
        p, boss, order_id, {"reason": "Most of it", "amount": order["grand_total"]["amount"] - 1000}
    )
    assert first.status_code == 201, first.text

    answers = await asyncio.gather(
        *(
            post_refund(p, boss, order_id, {"reason": f"Racer {n}", "amount": 1000})
            for n in range(6)
        )
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201, 409, 409, 409, 409, 409], [a.text for a in answers]
    assert all(
        a.json()["code"] == "refund_exceeds_remaining" for a in answers if a.status_code == 409
    )
    winner = next(a.json()["id"] for a in answers if a.status_code == 201)
    for refund_id in (first.json()["id"], winner):
        assert (await settled(p, refund_id)).status == RefundStatus.SUCCEEDED
    payment = await captured(p, order_id)
    assert payment.refunded_amount == payment.captured_amount == order["grand_total"]["amount"]
    assert payment.provider_payment_id is not None
    state = await p.provider.inspect(payment.provider_payment_id)
    assert state is not None
    assert (len(state.refunds), state.refunded) == (2, order["grand_total"]["amount"])


async def test_a_provider_refusal_ends_failed_and_gives_the_amount_back(
    refunds_platform: Platform,
) -> None:
    p = refunds_platform
    shopper, order = await paid_order(p, tees=1, mugs=0)
    order_id = order["id"]
    boss = await admin(p)
    payment = await captured(p, order_id)
    assert payment.provider_payment_id is not None
    # Refunded at the provider's dashboard, behind the platform's back: the provider will
    # refuse any further refund.
    await p.provider.refund(payment.provider_payment_id, idempotency_key="dashboard-1")

    answer = await post_refund(p, boss, order_id, {"reason": "Goodwill", "amount": 700})
    assert answer.status_code == 201, answer.text
    refund = await settled(p, answer.json()["id"])
    assert refund.status == RefundStatus.FAILED
    assert refund.failure_reason == "already_refunded"
    assert (await captured(p, order_id)).refunded_amount == 0
    assert await ledger_entries(p, str(refund.id)) == []
    assert await credit_notes(p, str(refund.id)) == []
    assert "refund_issued" not in [m.template for m in await p.mails(shopper.email)]
    listed = await p.client.get(f"/orders/{order_id}/refunds", headers=shopper.headers)
    assert listed.json()["remaining"]["amount"] == order["grand_total"]["amount"]
    assert listed.json()["items"][0]["status"] == "failed"
    assert "refund_failed" in await p.events(order_id)

    # The amount is available again (and the refund's workflow gave it back only once).
    retry = await post_refund(
        p, boss, order_id, {"reason": "Goodwill", "amount": order["grand_total"]["amount"]}
    )
    assert retry.status_code == 201, retry.text
    assert (await settled(p, retry.json()["id"])).status == RefundStatus.FAILED
    assert (await captured(p, order_id)).refunded_amount == 0


async def test_the_create_refund_activity_is_idempotent_and_refuses_for_good(
    refunds_platform: Platform,
) -> None:
    p = refunds_platform
    _, order = await paid_order(p, tees=2, mugs=0)
    tee = line_of(order, "N-TEE")
    deps = Dependencies.build(p.settings, p.sessionmaker)
    try:
        acts = RefundActivities(deps.sessionmaker, deps.providers, deps.storefront_url)
        env = ActivityEnvironment()
        request = CreateRefundInput(
            order_id=order["id"],
            source="return",
            reason="Returned",
            lines=[RefundLineInput(order_line_id=tee["id"], quantity=1)],
            vendor_id=str(p.shop.north.id),
            restock=True,
            request_key=f"return:{uuid.uuid4()}",
        )
        first = await env.run(acts.create_refund, request)
        assert await env.run(acts.create_refund, request) == first
        refund = await refund_of(p, first)
        assert (refund.amount, refund.vendor_id) == (tee["total"]["amount"] // 2, p.shop.north.id)

        # Run as another workflow's child would start it: no search attributes given.
        handle = await p.temporal.start_workflow(
            RefundWorkflow.run,
            RefundWorkflowInput(refund_id=first, timings=timings(p.settings)),
            id=refund_workflow_id(first),
            task_queue=p.settings.temporal_task_queue,
        )
        result = await handle.result()
        assert (result.status, result.amount) == ("succeeded", tee["total"]["amount"] // 2)
        described = await handle.describe()
        assert described.typed_search_attributes.get(ORDER_ID) == order["id"]
        assert await p.stock(p.shop.tee) == (9, 0)

        too_much = CreateRefundInput(
            order_id=order["id"],
            source="goodwill",
            reason="Everything",
            amount=order["grand_total"]["amount"],
        )
        with pytest.raises(ApplicationError) as refused:
            await env.run(acts.create_refund, too_much)
        assert refused.value.type == "RefundExceedsRemaining"
        assert refused.value.non_retryable
    finally:
        await deps.aclose()


async def test_worker_killed_mid_refund_refunds_exactly_once(
    fresh_database_url: str,
    temporal_env: WorkflowEnvironment,
    temporal_address: str,
    tmp_path: Path,
) -> None:
    """The first worker's refund is stored at the provider, whose answer comes 4 s late
    (``tok_slow_capture_4000`` slows refunds too); the worker is killed in that gap. The
    second worker replays the call with the same idempotency key: one refund at the provider,
    the refund succeeded, stock and ledger written once."""
    async with platform(
        fresh_database_url,
        temporal_env.client,
        temporal_address,
        with_worker=False,
        activity_timeout_s=2.0,
        checkout_response_wait_s=0.5,
    ) as p:
        log = tmp_path / "workers.log"
        with worker_process(p, log) as first:
            shopper, order = await paid_order(p, tees=2, mugs=0, pay_with="tok_slow_capture_4000")
            order_id = order["id"]
            tee = line_of(order, "N-TEE")
            boss = await admin(p)
            payment = await captured(p, order_id)
            assert payment.provider_payment_id is not None
            provider_payment_id = payment.provider_payment_id
            answer = await post_refund(
                p,
                boss,
                order_id,
                {
                    "reason": "Both tees returned",
                    "lines": [{"order_line_id": tee["id"], "quantity": 2}],
                    "restock": True,
                },
            )
            assert answer.status_code == 201, answer.text
            refund_id = answer.json()["id"]

            async def refunded_at_provider() -> bool:
                state = await p.provider.inspect(provider_payment_id)
                return state is not None and len(state.refunds) == 1

            await p.eventually(refunded_at_provider, within=30)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        # Killed before it heard the provider's answer.
        assert (await refund_of(p, refund_id)).status == RefundStatus.PENDING
        assert await p.stock(p.shop.tee) == (8, 0)

        with worker_process(p, log):
            refund = await settled(p, refund_id, within=90)
        assert refund.status == RefundStatus.SUCCEEDED
        state = await p.provider.inspect(provider_payment_id)
        assert state is not None
        assert (len(state.refunds), state.refunded) == (1, tee["total"]["amount"])
        assert state.refunds[0] == refund.provider_refund_id
        assert (await captured(p, order_id)).refunded_amount == tee["total"]["amount"]
        assert await p.stock(p.shop.tee) == (10, 0)
        debits = [e for e in await ledger_entries(p, refund_id) if e.kind == LedgerKind.REFUND]
        assert [e.amount for e in debits] == [-tee["total"]["amount"]]
        assert [m.template for m in await p.mails(shopper.email)].count("refund_issued") == 1
