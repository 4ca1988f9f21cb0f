"""The order saga with the real payment providers: Stripe (the official SDK against localstripe)
and PayPal (the official SDK against the PayPal test server), end to end through the API, the
worker and Temporal. Each test has a database and a task queue of its own.

localstripe sends none of the ``payment_intent.*`` webhooks the saga listens to (see
tests/stripe_server.py), so the tests build them from the PaymentIntent as localstripe has it
and sign them with the endpoint secret exactly as Stripe does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.factories import Account
from tests.order_harness import Platform, platform
from tests.paypal_server import PayPalServer, paypal_server  # noqa: F401
from tests.stripe_server import (
    CARD_3DS_REQUIRED,
    CARD_OK,
    LocalStripe,
    localstripe,  # noqa: F401 - the session fixture
    stripe_event,
)
from tests.stripe_server import stripe_signed as sign_like_stripe

pytestmark = [
    pytest.mark.slow,
    # stripe 16's HTTPXClient posts its form body as data=bytes, which httpx 0.28 deprecates.
    pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"),
]

STRIPE_WEBHOOK_SECRET = "whsec_saga_" + "s" * 24


# --- platforms ----------------------------------------------------------------------------


@pytest.fixture
async def stripe_platform(
    fresh_database_url: str,
    temporal_env: WorkflowEnvironment,
    temporal_address: str,
    localstripe: LocalStripe,  # noqa: F811
) -> AsyncIterator[Platform]:
    async with platform(
        fresh_database_url,
        temporal_env.client,
        temporal_address,
        stripe_secret_key=localstripe.secret_key,
        stripe_webhook_secret=STRIPE_WEBHOOK_SECRET,
        stripe_api_base=localstripe.base_url,
        # localstripe refuses description / receipt_email on PaymentIntents.
        stripe_send_receipt_fields=False,
    ) as built:
        yield built


@pytest.fixture
async def paypal_platform(
    fresh_database_url: str,
    temporal_env: WorkflowEnvironment,
    temporal_address: str,
    paypal_server: PayPalServer,  # noqa: F811
) -> AsyncIterator[Platform]:
    async with platform(
        fresh_database_url,
        temporal_env.client,
        temporal_address,
        paypal_client_id=paypal_server.client_id,
        paypal_client_secret=paypal_server.client_secret,
        paypal_base_url=paypal_server.base_url,
        paypal_webhook_id=paypal_server.webhook_id,
    ) as built:
        yield built


# --- Stripe helpers -----------------------------------------------------------------------


def stripe_signed(payload: bytes, secret: str = STRIPE_WEBHOOK_SECRET) -> dict[str, str]:
    return sign_like_stripe(payload, secret)


def stripe_get(server: LocalStripe, path: str, **params: str) -> dict[str, Any]:
    response = httpx.get(
        f"{server.base_url}{path}", params=params, auth=(server.secret_key, ""), timeout=10
    )
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


async def stripe_cart(p: Platform) -> Account:
    account = await p.shopper()
    await p.add(account, p.shop.tee, 2)
    await p.add(account, p.shop.mug, 1)
    return account


async def confirmed_stripe_order(p: Platform, server: LocalStripe) -> tuple[Account, str, str]:
    """A paid Stripe order: (account, order id, PaymentIntent id)."""
    account = await stripe_cart(p)
    response = await p.checkout(account, server.payment_method(CARD_OK), provider="stripe")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "confirmed", json.dumps(body)
    order_id = body["order_id"]
    await p.wait_for(order_id, "confirmed")
    payments = await p.payments(order_id)
    assert len(payments) == 1
    intent_id = payments[0].provider_payment_id
    assert intent_id is not None
    assert intent_id.startswith("pi_")
    return account, order_id, intent_id


# --- Stripe -------------------------------------------------------------------------------


async def test_stripe_checkout_captures_once_and_confirms(
    stripe_platform: Platform,
    localstripe: LocalStripe,  # noqa: F811
) -> None:
    p = stripe_platform
    account, order_id, intent_id = await confirmed_stripe_order(p, localstripe)
    order = await p.order(order_id)

    intent = localstripe.payment_intent(intent_id)
    assert (intent["status"], intent["capture_method"]) == ("succeeded", "manual")
    assert intent["amount"] == order.grand_total
    assert intent["currency"] == order.currency.lower()
    assert intent["metadata"]["order_id"] == order_id
    # One charge, captured, for the whole amount (localstripe has no amount_received).
    assert [
        (c["amount"], c["captured"], c["status"], c["amount_refunded"])
        for c in intent["charges"]["data"]
    ] == [(order.grand_total, True, "succeeded", 0)]

    assert await p.stock(p.shop.tee) == (8, 0)
    assert await p.stock(p.shop.mug) == (9, 0)
    payments = await p.payments(order_id)
    assert [(x.provider, x.status.value) for x in payments] == [("stripe", "captured")]
    assert payments[0].captured_amount == order.grand_total
    assert "payment_captured" in await p.events(order_id)
    assert (await p.client.get(f"/orders/{order_id}", headers=account.headers)).json()[
        "status"
    ] == "confirmed"


async def test_stripe_3ds_completed_by_a_signed_webhook(
    stripe_platform: Platform,
    localstripe: LocalStripe,  # noqa: F811
) -> None:
    p = stripe_platform
    account = await p.shopper()
    await p.add(account, p.shop.mug, 2)
    response = await p.checkout(
        account, localstripe.payment_method(CARD_3DS_REQUIRED), provider="stripe"
    )
    assert response.status_code == 201, response.text
    body = response.json()
    order_id = body["order_id"]
    assert body["status"] == "awaiting_payment", body
    action = body["payment"]["next_action"]
    assert action["type"] == "confirm_card"
    client_secret = action["client_secret"]
    assert client_secret
    assert await p.stock(p.shop.mug) == (10, 2)

    intent_id = (await p.payments(order_id))[0].provider_payment_id
    assert intent_id is not None
    assert localstripe.payment_intent(intent_id)["status"] == "requires_action"

    # The shopper passes the challenge (Stripe.js), then Stripe tells the endpoint.
    localstripe.complete_3ds(intent_id, client_secret, success=True)
    intent = localstripe.payment_intent(intent_id)
    assert intent["status"] == "requires_capture"
    payload = stripe_event(
        "payment_intent.amount_capturable_updated",
        {**intent, "amount_capturable": intent["amount"]},
    )

    # A delivery whose signature does not verify is refused and changes nothing.
    forged = await p.client.post(
        "/webhooks/stripe",
        content=payload,
        headers=stripe_signed(payload, secret="whsec_someone_else"),
    )
    assert forged.status_code == 400, forged.text
    assert forged.json()["code"] == "invalid_webhook"
    unsigned = await p.client.post(
        "/webhooks/stripe", content=payload, headers={"Content-Type": "application/json"}
    )
    assert (unsigned.status_code, unsigned.json()["code"]) == (400, "invalid_webhook")
    assert (await p.order(order_id)).status.value == "awaiting_payment"

    delivered = await p.client.post(
        "/webhooks/stripe", content=payload, headers=stripe_signed(payload)
    )
    assert delivered.status_code == 200, delivered.text
    assert delivered.json() == {"received": True, "duplicate": False}
    order = await p.wait_for(order_id, "confirmed")

    intent = localstripe.payment_intent(intent_id)
    assert intent["status"] == "succeeded"
    assert intent["amount"] == order.grand_total
    assert await p.stock(p.shop.mug) == (8, 0)
    payments = await p.payments(order_id)
    assert [(x.status.value, x.captured_amount) for x in payments] == [
        ("captured", order.grand_total)
    ]

    # Stripe redelivers: a no-op.
    again = await p.client.post("/webhooks/stripe", content=payload, headers=stripe_signed(payload))
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True


async def test_stripe_cancel_after_confirmation_refunds_in_full(
    stripe_platform: Platform,
    localstripe: LocalStripe,  # noqa: F811
) -> None:
    p = stripe_platform
    account, order_id, intent_id = await confirmed_stripe_order(p, localstripe)
    order = await p.order(order_id)

    cancelled = await p.client.post(
        f"/orders/{order_id}/cancel", headers=account.headers, json={"reason": "changed my mind"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"

    refunds = stripe_get(localstripe, "/v1/refunds", payment_intent=intent_id)["data"]
    assert [(r["amount"], r["currency"], r["status"]) for r in refunds] == [
        (order.grand_total, order.currency.lower(), "succeeded")
    ]
    charge = localstripe.payment_intent(intent_id)["latest_charge"]
    assert (charge["amount_refunded"], charge["refunded"]) == (order.grand_total, True)

    order = await p.order(order_id)
    assert (order.status.value, order.cancel_reason) == ("cancelled", "cancelled_by_customer")
    payment = (await p.payments(order_id))[0]
    assert (payment.captured_amount, payment.refunded_amount) == (order.grand_total,) * 2
    assert await p.stock(p.shop.tee) == (10, 0)
    assert await p.stock(p.shop.mug) == (10, 0)
    assert "payment_refunded" in await p.events(order_id)


# --- PayPal -------------------------------------------------------------------------------


async def paypal_checkout(p: Platform) -> tuple[Account, str, str, str]:
    """Check out with PayPal: (account, order id, approval URL, PayPal order id)."""
    account = await p.shopper()
    await p.add(account, p.shop.tee, 1)
    await p.add(account, p.shop.mug, 2)
    response = await p.checkout(account, "paypal", provider="paypal")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "awaiting_payment", body
    action = body["payment"]["next_action"]
    assert action["type"] == "redirect"
    approval_url = action["approval_url"]
    assert approval_url
    order_id = body["order_id"]
    payments = await p.payments(order_id)
    assert [(x.provider, x.status.value) for x in payments] == [("paypal", "requires_action")]
    paypal_order_id = payments[0].provider_reference
    assert paypal_order_id is not None
    assert paypal_order_id in approval_url
    return account, order_id, approval_url, paypal_order_id


async def assert_paypal_captured_once(
    p: Platform, server: PayPalServer, order_id: str, paypal_order_id: str
) -> None:
    order = await p.order(order_id)
    payments = await p.payments(order_id)
    assert [(x.status.value, x.captured_amount) for x in payments] == [
        ("captured", order.grand_total)
    ]
    authorization_id = payments[0].provider_payment_id
    assert authorization_id is not None
    assert authorization_id != paypal_order_id
    assert server.order(paypal_order_id)["status"] == "COMPLETED"
    authorization = server.authorization(authorization_id)
    assert authorization["status"] == "CAPTURED"
    captures = [
        request
        for request in server.requests
        if request[:2] == ("POST", f"/v2/payments/authorizations/{authorization_id}/capture")
    ]
    # Once (a retried activity would resend the same PayPal-Request-Id, which is harmless).
    assert len({request_id for *_, request_id in captures}) == 1, captures
    assert await p.stock(p.shop.tee) == (9, 0)
    assert await p.stock(p.shop.mug) == (8, 0)


async def test_paypal_approved_by_webhook_confirms(
    paypal_platform: Platform,
    paypal_server: PayPalServer,  # noqa: F811
) -> None:
    p = paypal_platform
    _, order_id, approval_url, paypal_order_id = await paypal_checkout(p)
    assert paypal_server.order(paypal_order_id)["intent"] == "AUTHORIZE"

    landing = await paypal_server.approve(approval_url)
    assert landing.status_code == 302
    approved = paypal_server.emit_webhook(
        "CHECKOUT.ORDER.APPROVED", paypal_server.order(paypal_order_id)
    )
    delivered = await p.client.post(
        "/webhooks/paypal", content=approved.body, headers=approved.headers
    )
    assert delivered.status_code == 200, delivered.text
    assert delivered.json() == {"received": True, "duplicate": False}

    await p.wait_for(order_id, "confirmed")
    await assert_paypal_captured_once(p, paypal_server, order_id, paypal_order_id)

    # A forged delivery is refused.
    forged_headers = {**approved.headers, "paypal-transmission-sig": "Zm9yZ2Vk"}
    forged = await p.client.post("/webhooks/paypal", content=approved.body, headers=forged_headers)
    assert (forged.status_code, forged.json()["code"]) == (400, "invalid_webhook")


async def test_paypal_approved_by_the_shoppers_return_confirms(
    paypal_platform: Platform,
    paypal_server: PayPalServer,  # noqa: F811
) -> None:
    p = paypal_platform
    account, order_id, approval_url, paypal_order_id = await paypal_checkout(p)

    landing = await paypal_server.approve(approval_url)
    assert landing.status_code == 302
    assert landing.headers["location"].startswith(
        f"{p.settings.storefront_url}/checkout/paypal/return?token={paypal_order_id}"
    )
    returned = await p.client.post(f"/orders/{order_id}/payment/return", headers=account.headers)
    assert returned.status_code == 200, returned.text
    assert returned.json()["order_id"] == order_id

    await p.wait_for(order_id, "confirmed")
    await assert_paypal_captured_once(p, paypal_server, order_id, paypal_order_id)

    # Coming back a second time (a reload) is refused: nothing waits for the shopper any more.
    again = await p.client.post(f"/orders/{order_id}/payment/return", headers=account.headers)
    assert (again.status_code, again.json()["code"]) == (409, "not_awaiting_approval")
    # PayPal's webhook, arriving after the return did the work, changes nothing.
    late = paypal_server.emit_webhook(
        "CHECKOUT.ORDER.APPROVED", paypal_server.order(paypal_order_id)
    )
    delivered = await p.client.post("/webhooks/paypal", content=late.body, headers=late.headers)
    assert delivered.status_code == 200, delivered.text
    live = (await p.client.get(f"/orders/{order_id}/payment", headers=account.headers)).json()
    assert (live["status"], live["payment"]["status"]) == ("confirmed", "captured")
    assert (await p.order(order_id)).status.value == "confirmed"
    await assert_paypal_captured_once(p, paypal_server, order_id, paypal_order_id)


async def test_paypal_return_answers_with_the_outcome(
    paypal_platform: Platform,
    paypal_server: PayPalServer,  # noqa: F811
) -> None:
    p = paypal_platform
    account, order_id, approval_url, _ = await paypal_checkout(p)
    await paypal_server.approve(approval_url)
    returned = await p.client.post(f"/orders/{order_id}/payment/return", headers=account.headers)
    assert returned.status_code == 200, returned.text
    body = returned.json()
    # What the storefront shows next: paid, and not "go to PayPal" again.
    assert body["payment"]["next_action"] is None, body
    assert body["status"] == "confirmed", body
