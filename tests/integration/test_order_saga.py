"""The order saga end to end: API over HTTP, real worker, real Temporal, real PostgreSQL, the
durable test payment provider. Each test has a database and a task queue of its own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from commerce.catalog.demo import seed_demo_catalog
from commerce.payments import WebhookEvent
from models import InventoryLevel, Variant, Vendor
from tests.order_harness import Platform, Shop, platform, vendor_owner
from workflows.contracts.orders import order_workflow_id
from workflows.contracts.shipments import shipment_workflow_id

pytestmark = pytest.mark.slow


@pytest.fixture
async def shop_platform(
    fresh_database_url: str, temporal_env: WorkflowEnvironment, temporal_address: str
) -> AsyncIterator[Platform]:
    async with platform(fresh_database_url, temporal_env.client, temporal_address) as built:
        yield built


async def _two_vendor_cart(p: Platform) -> tuple[object, int]:
    account = await p.shopper()
    await p.add(account, p.shop.tee, 2)
    await p.add(account, p.shop.mug, 1)
    return account, 0


async def test_happy_path_confirms_commits_stock_and_notifies(shop_platform: Platform) -> None:
    p = shop_platform
    account = await p.shopper()
    await p.add(account, p.shop.tee, 2)
    await p.add(account, p.shop.mug, 1)
    await p.use_coupon(account)

    response = await p.checkout(account, "tok_ok")
    assert response.status_code == 201, response.text
    body = response.json()
    order_id = body["order_id"]
    assert body["status"] == "confirmed"
    assert body["payment"]["status"] == "captured"
    # 2 x 25.00 + 12.00 = 62.00, 10% off = 55.80, shipping 4.90 + 5.90, 19% VAT on top.
    assert body["currency"] == "EUR"

    order = await p.wait_for(order_id, "confirmed")
    assert body["grand_total"] == {"amount": order.grand_total, "currency": "EUR"}
    assert await p.stock(p.shop.tee) == (8, 0)
    assert await p.stock(p.shop.mug) == (9, 0)
    assert await p.coupon_uses() == 1

    payments = await p.payments(order_id)
    assert [(x.attempt, x.status.value) for x in payments] == [(1, "captured")]
    assert payments[0].captured_amount == order.grand_total
    assert payments[0].provider_payment_id is not None
    state = await p.provider.inspect(payments[0].provider_payment_id)
    assert state is not None
    assert (state.state, state.captures, state.captured) == ("captured", 1, order.grand_total)

    # The shopper's view: detail with timeline, history, cart emptied, receipt queued.
    detail = (await p.client.get(f"/orders/{order_id}", headers=account.headers)).json()
    assert detail["status"] == "confirmed"
    assert sorted((line["sku"], line["quantity"]) for line in detail["lines"]) == [
        ("N-TEE", 2),
        ("S-MUG", 1),
    ]
    timeline = [event["type"] for event in detail["timeline"]]
    assert timeline[:4] == ["placed", "awaiting_payment", "payment_captured", "confirmed"]
    history = (await p.client.get("/orders", headers=account.headers)).json()
    assert [item["id"] for item in history["items"]] == [order_id]
    assert history["items"][0]["items"] == 3
    cart = (await p.client.get("/carts/current", headers=account.headers)).json()
    assert cart["vendors"] == []
    receipt = [m for m in await p.mails(account.email) if m.template == "order_confirmation"]
    assert len(receipt) == 1
    assert "Estimated delivery" in receipt[0].body_text

    # Each vendor's part is a child workflow that told the vendor (once).
    async def vendors_told() -> bool:
        events = await p.events(order_id)
        return sum(e.startswith("vendor_notified:") for e in events) == 2

    await p.eventually(vendors_told)
    for vendor in (p.shop.north, p.shop.south):
        mails = await p.mails(vendor.contact_email or "")
        assert [m.template for m in mails] == ["vendor_new_order"]
        child = p.temporal.get_workflow_handle(shipment_workflow_id(order_id, str(vendor.id)))
        assert (await child.describe()).status == WorkflowExecutionStatus.RUNNING

    # Operations find it in Temporal by its search attributes.
    handle = p.temporal.get_workflow_handle(order_workflow_id(order_id))
    description = await handle.describe()
    assert description.typed_search_attributes is not None

    async def findable() -> bool:
        query = f'OrderId = "{order_id}" AND OrderStatus = "confirmed"'
        return [w.id async for w in p.temporal.list_workflows(query)] == [
            order_workflow_id(order_id)
        ]

    await p.eventually(findable)


async def test_same_idempotency_key_returns_the_same_order(shop_platform: Platform) -> None:
    p = shop_platform
    account = await p.shopper()
    await p.add(account, p.shop.tee, 1)
    key = f"key-{uuid.uuid4()}"
    first = await p.checkout(account, "tok_ok", key=key)
    assert first.status_code == 201, first.text
    again = await p.checkout(account, "tok_ok", key=key)
    assert again.status_code == 200, again.text
    assert again.json()["order_id"] == first.json()["order_id"]
    other = await p.checkout(account, "tok_decline", key=key)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert await p.stock(p.shop.tee) == (9, 0)
    orders = (await p.client.get("/orders", headers=account.headers)).json()["items"]
    assert len(orders) == 1


async def test_concurrent_requests_with_one_key_place_one_order(shop_platform: Platform) -> None:
    p = shop_platform
    account = await p.shopper()
    await p.add(account, p.shop.tee, 1)
    key = f"key-{uuid.uuid4()}"
    answers = await asyncio.gather(*(p.checkout(account, "tok_ok", key=key) for _ in range(5)))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 201]
    assert len({a.json()["order_id"] for a in answers}) == 1
    assert await p.stock(p.shop.tee) == (9, 0)


async def test_decline_then_successful_retry(shop_platform: Platform) -> None:
    p = shop_platform
    account = await p.shopper()
    await p.add(account, p.shop.tee, 1)

    response = await p.checkout(account, "tok_decline")
    assert response.status_code == 201, response.text
    body = response.json()
    order_id = body["order_id"]
    assert body["status"] == "awaiting_payment"
    assert body["payment"]["status"] == "declined"
    assert body["payment"]["decline_code"] == "card_declined"
    assert body["attempts_left"] == 2
    assert await p.stock(p.shop.tee) == (10, 1)  # still held for the shopper

    retried = await p.client.post(
        f"/orders/{order_id}/payment",
        headers=account.headers,
        json={"payment_provider": "test", "payment_token": "tok_ok"},
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "confirmed"
    await p.wait_for(order_id, "confirmed")
    payments = await p.payments(order_id)
    assert [(x.attempt, x.status.value, x.decline_code) for x in payments] == [
        (1, "declined", "card_declined"),
        (2, "captured", None),
    ]
    assert await p.stock(p.shop.tee) == (9, 0)

    # No more retries once paid.
    late = await p.client.post(
        f"/orders/{order_id}/payment",
        headers=account.headers,
        json={"payment_provider": "test", "payment_token": "tok_ok"},
    )
    assert late.status_code == 409
    assert late.json()["code"] == "payment_retry_not_possible"


async def test_declines_up_to_the_limit_fail_the_order_and_restore_everything(
    shop_platform: Platform,
) -> None:
    p = shop_platform
    account = await p.shopper()
    await p.add(account, p.shop.tee, 3)
    await p.use_coupon(account)
    order_id = (await p.checkout(account, "tok_decline")).json()["order_id"]
    for token in ("tok_insufficient_funds", "tok_decline"):
        answer = await p.client.post(
            f"/orders/{order_id}/payment",
            headers=account.headers,
            json={"payment_provider": "test", "payment_token": token},
        )
        assert answer.status_code == 200, answer.text
    order = await p.wait_for(order_id, "payment_failed")
    assert order.cancel_reason == "payment_declined"
    assert await p.stock(p.shop.tee) == (10, 0)
    assert await p.coupon_uses() == 0
    assert [m.template for m in await p.mails(account.email) if m.template.startswith("order")] == [
        "order_payment_failed"
    ]


async def test_3ds_completed_by_webhook(shop_platform: Platform) -> None:
    p = shop_platform
    account = await p.shopper()
    await p.add(account, p.shop.mug, 2)
    response = await p.checkout(account, "tok_3ds")
    assert response.status_code == 201, response.text
    body = response.json()
    order_id = body["order_id"]
    assert body["status"] == "awaiting_payment"
    action = body["payment"]["next_action"]
    assert action["type"] == "confirm_card"
    assert action["client_secret"]

    payment_id = (await p.payments(order_id))[0].provider_payment_id
    assert payment_id is not None
    signed = await p.provider.complete_challenge(payment_id)
    delivered = await p.client.post(
        "/webhooks/test", content=signed.payload, headers=signed.headers
    )
    assert delivered.status_code == 200, delivered.text
    await p.wait_for(order_id, "confirmed")
    assert await p.stock(p.shop.mug) == (8, 0)
    state = await p.provider.inspect(payment_id)
    assert state is not None
    assert state.captures == 1


async def test_webhook_twice_and_out_of_order(shop_platform: Platform) -> None:
    p = shop_platform
    account = await p.shopper()
    await p.add(account, p.shop.mug, 1)
    order_id = (await p.checkout(account, "tok_3ds")).json()["order_id"]
    payment_id = (await p.payments(order_id))[0].provider_payment_id
    assert payment_id is not None
    authorized = await p.provider.complete_challenge(payment_id)
    # A later event (as if the provider's "captured" overtook "authorized") arrives first,
    # then the "authorized" one twice.
    early = p.provider.signed_webhook(
        WebhookEvent(f"evt_{uuid.uuid4().hex}", "payment.captured", payment_id, "captured", None)
    )
    answers = []
    for signed in (early, authorized, authorized):
        answer = await p.client.post(
            "/webhooks/test", content=signed.payload, headers=signed.headers
        )
        assert answer.status_code == 200, answer.text
        answers.append(answer.json())
    assert [a["duplicate"] for a in answers] == [False, False, True]
    await p.wait_for(order_id, "confirmed")
    state = await p.provider.inspect(payment_id)
    assert state is not None
    assert state.captures == 1
    assert await p.stock(p.shop.mug) == (9, 0)


async def test_failed_challenge_lets_the_shopper_retry(shop_platform: Platform) -> None:
    p = shop_platform
    account = await p.shopper()
    await p.add(account, p.shop.mug, 1)
    order_id = (await p.checkout(account, "tok_3ds")).json()["order_id"]
    payment_id = (await p.payments(order_id))[0].provider_payment_id
    assert payment_id is not None
    failed = await p.provider.complete_challenge(payment_id, succeeded=False)
    await p.client.post("/webhooks/test", content=failed.payload, headers=failed.headers)

    async def declined() -> bool:
        view = (await p.client.get(f"/orders/{order_id}/payment", headers=account.headers)).json()
        return view["payment"] is not None and view["payment"]["status"] == "declined"

    await p.eventually(declined)
    retried = await p.client.post(
        f"/orders/{order_id}/payment",
        headers=account.headers,
        json={"payment_provider": "test", "payment_token": "tok_ok"},
    )
    assert retried.json()["status"] == "confirmed", retried.text


async def test_customer_cancels_a_confirmed_order_with_compensation(
    shop_platform: Platform,
) -> None:
    p = shop_platform
    account = await p.shopper()
    await p.add(account, p.shop.tee, 2)
    await p.add(account, p.shop.mug, 1)
    await p.use_coupon(account)
    order_id = (await p.checkout(account, "tok_ok")).json()["order_id"]
    await p.wait_for(order_id, "confirmed")
    assert await p.stock(p.shop.tee) == (8, 0)

    cancelled = await p.client.post(
        f"/orders/{order_id}/cancel", headers=account.headers, json={"reason": "changed my mind"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    order = await p.order(order_id)
    assert (order.status.value, order.cancel_reason) == ("cancelled", "cancelled_by_customer")
    # Stock back on hand where it came from, uses given back, money refunded.
    assert await p.stock(p.shop.tee) == (10, 0)
    assert await p.stock(p.shop.mug) == (10, 0)
    assert await p.coupon_uses() == 0
    payment = (await p.payments(order_id))[0]
    assert (payment.captured_amount, payment.refunded_amount) == (order.grand_total,) * 2
    assert payment.provider_payment_id is not None
    state = await p.provider.inspect(payment.provider_payment_id)
    assert state is not None
    assert state.refunded == order.grand_total
    # The vendors' parts were cancelled too.
    for vendor in (p.shop.north, p.shop.south):
        child = p.temporal.get_workflow_handle(shipment_workflow_id(order_id, str(vendor.id)))
        assert (await child.describe()).status == WorkflowExecutionStatus.CANCELED
    # A second cancellation is refused, and says why.
    again = await p.client.post(f"/orders/{order_id}/cancel", headers=account.headers, json={})
    assert again.status_code == 409
    assert again.json()["code"] == "order_not_cancellable"
    mails = [m.template for m in await p.mails(account.email) if m.template.startswith("order")]
    assert mails == ["order_confirmation", "order_cancelled"]


async def test_cancel_while_waiting_for_payment_voids_and_releases(
    shop_platform: Platform,
) -> None:
    p = shop_platform
    account = await p.shopper()
    await p.add(account, p.shop.tee, 1)
    order_id = (await p.checkout(account, "tok_3ds")).json()["order_id"]
    assert await p.stock(p.shop.tee) == (10, 1)
    cancelled = await p.client.post(f"/orders/{order_id}/cancel", headers=account.headers, json={})
    assert cancelled.status_code == 200, cancelled.text
    assert await p.stock(p.shop.tee) == (10, 0)
    payment = (await p.payments(order_id))[0]
    assert payment.status.value == "voided"
    assert payment.provider_payment_id is not None
    state = await p.provider.inspect(payment.provider_payment_id)
    assert state is not None
    assert state.state == "voided"


async def test_another_customers_order_is_not_found(shop_platform: Platform) -> None:
    p = shop_platform
    owner = await p.shopper()
    await p.add(owner, p.shop.tee, 1)
    order_id = (await p.checkout(owner, "tok_ok")).json()["order_id"]
    stranger = await p.shopper()
    for method, path in (
        ("GET", f"/orders/{order_id}"),
        ("GET", f"/orders/{order_id}/payment"),
        ("POST", f"/orders/{order_id}/cancel"),
    ):
        answer = await p.client.request(method, path, headers=stranger.headers, json={})
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["code"] == "order_not_found"
    assert (await p.order(order_id)).status.value == "confirmed"


async def test_out_of_stock_at_reservation_cancels_the_order(shop_platform: Platform) -> None:
    p = shop_platform
    first, second = await p.shopper(), await p.shopper()
    await p.add(first, p.shop.tee, 8)
    await p.add(second, p.shop.tee, 8)  # both carts fit the stock alone, not together
    await p.use_coupon(second)
    one = await p.checkout(first, "tok_ok")
    two = await p.checkout(second, "tok_ok")
    assert one.json()["status"] == "confirmed"
    assert two.status_code == 409 or two.json()["status"] == "cancelled", two.text
    if two.status_code != 409:
        order = await p.wait_for(two.json()["order_id"], "cancelled")
        assert order.cancel_reason == "out_of_stock"
        assert await p.coupon_uses() == 0
    assert await p.stock(p.shop.tee) == (2, 0)


async def test_checkout_refuses_bad_requests(shop_platform: Platform) -> None:
    p = shop_platform
    account = await p.shopper()
    no_key = await p.client.post(
        "/checkout",
        headers=account.headers,
        json={"payment_provider": "test", "payment_token": "t"},
    )
    assert (no_key.status_code, no_key.json()["code"]) == (400, "invalid_idempotency_key")
    empty = await p.checkout(account, "tok_ok")
    assert (empty.status_code, empty.json()["code"]) == (409, "checkout_not_possible")
    await p.add(account, p.shop.tee, 1)
    card = await p.checkout(account, "4242 4242 4242 4242")
    assert (card.status_code, card.json()["code"]) == (422, "invalid_payment_choice")
    unknown = await p.checkout(account, "tok_ok", provider="bitcoin")
    assert (unknown.status_code, unknown.json()["code"]) == (422, "unknown_payment_provider")
    assert (await p.client.get("/orders", headers=account.headers)).json()["items"] == []


async def test_3ds_completed_on_the_test_providers_challenge_page(shop_platform: Platform) -> None:
    p = shop_platform
    account = await p.shopper()
    await p.add(account, p.shop.mug, 1)
    body = (await p.checkout(account, "tok_3ds")).json()
    secret = body["payment"]["next_action"]["client_secret"]

    wrong = await p.client.post(
        "/test-payments/challenge", json={"client_secret": secret[:-4] + "0000"}
    )
    assert (wrong.status_code, wrong.json()["code"]) == (404, "test_payment_not_found")
    passed = await p.client.post("/test-payments/challenge", json={"client_secret": secret})
    assert passed.status_code == 200, passed.text
    await p.wait_for(body["order_id"], "confirmed")
    again = await p.client.post("/test-payments/challenge", json={"client_secret": secret})
    assert (again.status_code, again.json()["code"]) == (409, "no_challenge_pending")


async def test_the_demo_catalog_can_be_bought_from_out_of_the_box(
    fresh_database_url: str, temporal_env: WorkflowEnvironment, temporal_address: str
) -> None:
    """`emporium dev` seeds tax rates and shipping with the demo catalog: a checkout works."""

    async def demo(sessionmaker: async_sessionmaker[AsyncSession]) -> Shop:
        async with sessionmaker.begin() as session:
            await seed_demo_catalog(session, now=datetime.now(UTC))
            vendors = (await session.scalars(select(Vendor).order_by(Vendor.slug))).all()
            first, second = vendors[0], vendors[1]
            variants = {
                vendor.id: await session.scalar(
                    select(Variant.id)
                    .join(InventoryLevel, InventoryLevel.variant_id == Variant.id)
                    .where(Variant.vendor_id == vendor.id, InventoryLevel.on_hand > 5)
                    .order_by(Variant.sku)
                    .limit(1)
                )
                for vendor in (first, second)
            }
        return Shop(first, second, variants[first.id], variants[second.id], coupon="NONE")

    async with platform(fresh_database_url, temporal_env.client, temporal_address, shop=demo) as p:
        account = await p.shopper()
        await p.add(account, p.shop.tee, 1)
        await p.add(account, p.shop.mug, 1)
        summary = (await p.client.get("/checkout/summary", headers=account.headers)).json()
        assert summary["problems"] == []
        answer = await p.checkout(account, "tok_ok")
        assert answer.status_code == 201, answer.text
        assert answer.json()["status"] == "confirmed"
        assert answer.json()["grand_total"] == summary["grand_total"]


async def test_transient_provider_errors_are_retried_then_give_up(
    shop_platform: Platform,
) -> None:
    p = shop_platform
    account = await p.shopper()
    await p.add(account, p.shop.tee, 1)
    # Two network failures, then the authorization goes through on the same key.
    flaky = await p.checkout(account, "tok_flaky_2")
    assert flaky.json()["status"] == "confirmed", flaky.text
    payment = (await p.payments(flaky.json()["order_id"]))[0]
    assert (payment.attempt, payment.status.value) == (1, "captured")

    # A provider down for longer than the retry budget (8 tries) fails the attempt, which the
    # shopper may retry like a decline.
    await p.add(account, p.shop.tee, 1)
    down = await p.checkout(account, "tok_flaky_11")
    body = down.json()
    assert body["status"] == "awaiting_payment", down.text
    assert body["payment"]["status"] == "failed"
    retried = await p.client.post(
        f"/orders/{body['order_id']}/payment",
        headers=account.headers,
        json={"payment_provider": "test", "payment_token": "tok_ok"},
    )
    assert retried.json()["status"] == "confirmed", retried.text
    assert await p.stock(p.shop.tee) == (8, 0)

    # Whatever the unanswered attempt may have held is asked for again (same key) and
    # released: here the provider, back up, had authorized it; it ends voided.
    async def first_attempt_released() -> bool:
        first = (await p.payments(body["order_id"]))[0]
        return first.status.value == "voided"

    await p.eventually(first_attempt_released)
    first = (await p.payments(body["order_id"]))[0]
    assert first.provider_payment_id is not None
    state = await p.provider.inspect(first.provider_payment_id)
    assert state is not None
    assert (state.state, state.captures) == ("voided", 0)


async def test_an_order_with_a_shipped_part_cannot_be_cancelled(shop_platform: Platform) -> None:
    p = shop_platform
    account = await p.shopper()
    await p.add(account, p.shop.tee, 1)
    await p.add(account, p.shop.mug, 1)
    order_id = (await p.checkout(account, "tok_ok")).json()["order_id"]
    await p.wait_for(order_id, "confirmed")
    owner = await vendor_owner(p, p.shop.north)

    async def part_listed() -> bool:
        found = await p.client.get(f"/vendors/{p.shop.north.id}/shipments", headers=owner.headers)
        return len(found.json()["items"]) == 1

    await p.eventually(part_listed)
    [part] = (
        await p.client.get(f"/vendors/{p.shop.north.id}/shipments", headers=owner.headers)
    ).json()["items"]
    base = f"/vendors/{p.shop.north.id}/shipments/{part['id']}"
    assert (await p.client.post(f"{base}/accept", headers=owner.headers)).status_code == 200
    shipped = await p.client.post(f"{base}/label", headers=owner.headers)
    assert shipped.json()["status"] == "label_created", shipped.text

    # The database says shipped even before the part's workflow has told the order.
    answer = await p.client.post(f"/orders/{order_id}/cancel", headers=account.headers, json={})
    assert (answer.status_code, answer.json()["code"]) == (409, "order_not_cancellable")
    assert (await p.order(order_id)).status.value == "partially_shipped"
    assert await p.stock(p.shop.tee) == (9, 0)
