"""The PayPal provider, through the official SDK, against the test server in tests/paypal_server."""

from __future__ import annotations

import json
import uuid

import pytest

from commerce.payments.paypal_provider import (
    PayPalPaymentProvider,
    from_paypal_value,
    to_paypal_value,
)
from commerce.payments.provider import (
    AuthorizeRequest,
    InvalidWebhook,
    PaymentDeclined,
    PaymentProvider,
    TransientPaymentError,
)
from tests.paypal_server import PayPalServer, paypal_server  # noqa: F401


@pytest.fixture
def provider(paypal_server: PayPalServer) -> PayPalPaymentProvider:  # noqa: F811
    return PayPalPaymentProvider(
        client_id=paypal_server.client_id,
        client_secret=paypal_server.client_secret,
        base_url=paypal_server.base_url,
        webhook_id=paypal_server.webhook_id,
        return_url="https://shop.example/paypal/return",
        cancel_url="https://shop.example/paypal/cancel",
    )


def _key() -> str:
    return str(uuid.uuid4())


def _request(
    amount: int = 12_345, currency: str = "EUR", key: str | None = None
) -> AuthorizeRequest:
    return AuthorizeRequest(
        order_id=str(uuid.uuid4()),
        amount=amount,
        currency=currency,
        payment_token="paypal",
        idempotency_key=key or _key(),
        customer_email="shopper@example.com",
        description="Emporium order",
    )


async def _authorized(
    provider: PayPalPaymentProvider,
    server: PayPalServer,
    amount: int = 12_345,
    currency: str = "EUR",
) -> str:
    created = await provider.authorize(_request(amount, currency))
    assert created.approval_url is not None
    await server.approve(created.approval_url)
    assert created.provider_payment_id is not None
    authorized = await provider.authorize_approved(
        created.provider_payment_id, idempotency_key=_key()
    )
    assert authorized.status == "authorized"
    assert authorized.provider_payment_id is not None
    return authorized.provider_payment_id


def test_amounts_use_the_currency_exponent() -> None:
    assert to_paypal_value(1999, "EUR") == "19.99"
    assert to_paypal_value(5, "USD") == "0.05"
    assert to_paypal_value(1500, "JPY") == "1500"
    assert from_paypal_value("19.99", "EUR") == 1999
    assert from_paypal_value("1500", "JPY") == 1500


def test_it_is_a_payment_provider(provider: PayPalPaymentProvider) -> None:
    assert isinstance(provider, PaymentProvider)
    assert provider.name == "paypal"
    assert "secret" not in repr(provider)


async def test_full_flow_authorize_approve_capture_refund(
    provider: PayPalPaymentProvider,
    paypal_server: PayPalServer,  # noqa: F811
) -> None:
    created = await provider.authorize(_request(12_345, "EUR"))
    assert created.status == "requires_action"
    assert created.amount == 12_345
    order_id = created.provider_payment_id
    assert order_id is not None
    assert created.approval_url == f"{paypal_server.base_url}/checkoutnow?token={order_id}"
    order = paypal_server.order(order_id)
    assert order["intent"] == "AUTHORIZE"
    assert order["purchase_units"][0]["amount"] == {"currency_code": "EUR", "value": "123.45"}

    # Authorizing before the buyer approved is refused, as PayPal does.
    with pytest.raises(PaymentDeclined) as not_approved:
        await provider.authorize_approved(order_id, idempotency_key=_key())
    assert not_approved.value.reason == "not_approved"

    landing = await paypal_server.approve(created.approval_url)
    assert landing.status_code == 302
    assert landing.headers["location"].startswith("https://shop.example/paypal/return?token=")

    authorized = await provider.authorize_approved(order_id, idempotency_key=_key())
    assert authorized.status == "authorized"
    assert (authorized.amount, authorized.currency) == (12_345, "EUR")
    authorization_id = authorized.provider_payment_id
    assert authorization_id is not None
    assert paypal_server.order(order_id)["status"] == "COMPLETED"

    capture = await provider.capture(authorization_id, amount=10_000, idempotency_key=_key())
    assert (capture.amount, capture.currency) == (10_000, "EUR")
    assert paypal_server.authorization(authorization_id)["status"] == "CAPTURED"

    partial = await provider.refund(
        capture.provider_payment_id, amount=2_500, idempotency_key=_key()
    )
    assert (partial.amount, partial.currency, partial.status) == (2_500, "EUR", "succeeded")
    assert partial.provider_payment_id == capture.provider_payment_id
    assert paypal_server.capture(capture.provider_payment_id)["status"] == "PARTIALLY_REFUNDED"

    with pytest.raises(PaymentDeclined) as too_much:
        await provider.refund(capture.provider_payment_id, amount=7_501, idempotency_key=_key())
    assert too_much.value.reason == "amount_too_large"

    rest = await provider.refund(capture.provider_payment_id, idempotency_key=_key())
    assert rest.amount == 7_500
    assert paypal_server.capture(capture.provider_payment_id)["status"] == "REFUNDED"


async def test_capture_and_refund_replay_with_the_same_key(
    provider: PayPalPaymentProvider,
    paypal_server: PayPalServer,  # noqa: F811
) -> None:
    authorization_id = await _authorized(provider, paypal_server, 1_500, "JPY")
    key = _key()
    first = await provider.capture(authorization_id, idempotency_key=key)
    again = await provider.capture(authorization_id, idempotency_key=key)
    assert first == again
    assert (first.amount, first.currency) == (1_500, "JPY")

    refund_key = _key()
    refund = await provider.refund(
        first.provider_payment_id, amount=500, idempotency_key=refund_key
    )
    replay = await provider.refund(
        first.provider_payment_id, amount=500, idempotency_key=refund_key
    )
    assert refund == replay
    assert paypal_server.capture(first.provider_payment_id)["status"] == "PARTIALLY_REFUNDED"

    with pytest.raises(ValueError, match="different arguments"):
        await provider.refund(first.provider_payment_id, amount=600, idempotency_key=refund_key)


async def test_void(provider: PayPalPaymentProvider, paypal_server: PayPalServer) -> None:  # noqa: F811
    authorization_id = await _authorized(provider, paypal_server)
    await provider.void(authorization_id, idempotency_key=_key())
    assert paypal_server.authorization(authorization_id)["status"] == "VOIDED"
    # Voiding twice is a no-op, as the Protocol asks; capturing a voided one is refused.
    await provider.void(authorization_id, idempotency_key=_key())
    with pytest.raises(PaymentDeclined) as voided:
        await provider.capture(authorization_id, idempotency_key=_key())
    assert voided.value.reason == "invalid_state"


async def test_void_after_capture_is_refused(
    provider: PayPalPaymentProvider,
    paypal_server: PayPalServer,  # noqa: F811
) -> None:
    authorization_id = await _authorized(provider, paypal_server)
    await provider.capture(authorization_id, idempotency_key=_key())
    with pytest.raises(PaymentDeclined) as captured:
        await provider.void(authorization_id, idempotency_key=_key())
    assert captured.value.reason == "already_captured"


async def test_create_with_the_same_request_id_is_the_same_order(
    provider: PayPalPaymentProvider,
    paypal_server: PayPalServer,  # noqa: F811
) -> None:
    request = _request()
    first = await provider.authorize(request)
    second = await provider.authorize(request)
    assert first == second
    creates = [r for r in paypal_server.requests if r[2] == request.idempotency_key]
    assert creates == [("POST", "/v2/checkout/orders", request.idempotency_key)] * 2

    other = await provider.authorize(_request())
    assert other.provider_payment_id != first.provider_payment_id


async def test_instrument_declined(
    provider: PayPalPaymentProvider,
    paypal_server: PayPalServer,  # noqa: F811
) -> None:
    created = await provider.authorize(_request())
    assert created.approval_url is not None
    assert created.provider_payment_id is not None
    await paypal_server.approve(created.approval_url)

    paypal_server.fail_next("decline")
    declined = await provider.authorize_approved(
        created.provider_payment_id, idempotency_key=_key()
    )
    assert declined.status == "declined"
    assert declined.decline_code == "INSTRUMENT_DECLINED"
    assert (declined.amount, declined.currency) == (12_345, "EUR")

    # The buyer may pick another funding source and the order be authorized after all.
    authorized = await provider.authorize_approved(
        created.provider_payment_id, idempotency_key=_key()
    )
    assert authorized.status == "authorized"
    assert authorized.provider_payment_id is not None

    paypal_server.fail_next("decline")
    with pytest.raises(PaymentDeclined) as on_capture:
        await provider.capture(authorized.provider_payment_id, idempotency_key=_key())
    assert on_capture.value.reason == "card_declined"
    assert on_capture.value.extra["issue"] == "INSTRUMENT_DECLINED"


async def test_decline_on_create_is_a_declined_authorization(
    provider: PayPalPaymentProvider,
    paypal_server: PayPalServer,  # noqa: F811
) -> None:
    paypal_server.fail_next("decline")
    declined = await provider.authorize(_request(1_000, "USD"))
    assert declined.status == "declined"
    assert declined.provider_payment_id is None
    assert declined.decline_code == "INSTRUMENT_DECLINED"


async def test_server_error_is_transient_and_a_retry_succeeds(
    provider: PayPalPaymentProvider,
    paypal_server: PayPalServer,  # noqa: F811
) -> None:
    request = _request()
    paypal_server.fail_next("server_error")
    with pytest.raises(TransientPaymentError, match="500 INTERNAL_SERVER_ERROR"):
        await provider.authorize(request)
    retried = await provider.authorize(request)
    assert retried.status == "requires_action"

    authorization_id = await _authorized(provider, paypal_server)
    paypal_server.fail_next("server_error")
    with pytest.raises(TransientPaymentError):
        await provider.capture(authorization_id, idempotency_key=_key())


async def test_unreachable_paypal_is_transient(paypal_server: PayPalServer) -> None:  # noqa: F811
    nowhere = PayPalPaymentProvider(
        client_id=paypal_server.client_id,
        client_secret=paypal_server.client_secret,
        base_url="http://127.0.0.1:9",
        webhook_id=paypal_server.webhook_id,
        timeout=2,
    )
    with pytest.raises(TransientPaymentError):
        await nowhere.authorize(_request())


async def test_wrong_credentials_are_not_a_decline(paypal_server: PayPalServer) -> None:  # noqa: F811
    wrong = PayPalPaymentProvider(
        client_id=paypal_server.client_id,
        client_secret="not-the-secret",
        base_url=paypal_server.base_url,
        webhook_id=paypal_server.webhook_id,
    )
    with pytest.raises(TransientPaymentError) as error:
        await wrong.authorize(_request())
    assert "not-the-secret" not in str(error.value)


async def test_webhook_verified_and_mapped(
    provider: PayPalPaymentProvider,
    paypal_server: PayPalServer,  # noqa: F811
) -> None:
    created = await provider.authorize(_request(2_000, "USD"))
    assert created.approval_url is not None
    assert created.provider_payment_id is not None
    await paypal_server.approve(created.approval_url)
    order_id = created.provider_payment_id

    approved = paypal_server.emit_webhook("CHECKOUT.ORDER.APPROVED", paypal_server.order(order_id))
    event = await provider.parse_webhook_async(approved.body, approved.headers)
    assert event.provider_event_id == approved.event["id"]
    assert (event.type, event.payment_id, event.status, event.amount) == (
        "CHECKOUT.ORDER.APPROVED",
        order_id,
        "approved",
        2_000,
    )

    authorized = await provider.authorize_approved(order_id, idempotency_key=_key())
    assert authorized.provider_payment_id is not None
    capture = await provider.capture(authorized.provider_payment_id, idempotency_key=_key())
    completed = paypal_server.emit_webhook(
        "PAYMENT.CAPTURE.COMPLETED", paypal_server.capture(capture.provider_payment_id)
    )
    event = await provider.parse_webhook_async(completed.body, completed.headers)
    assert (event.status, event.payment_id, event.amount) == ("captured", order_id, 2_000)

    voided = paypal_server.emit_webhook(
        "PAYMENT.AUTHORIZATION.VOIDED", paypal_server.authorization(authorized.provider_payment_id)
    )
    assert (await provider.parse_webhook_async(voided.body, voided.headers)).status == "canceled"

    dispute = paypal_server.emit_webhook(
        "CUSTOMER.DISPUTE.CREATED",
        {
            "dispute_id": "PP-D-1234",
            "disputed_transactions": [{"seller_transaction_id": capture.provider_payment_id}],
            "dispute_amount": {"currency_code": "USD", "value": "20.00"},
        },
    )
    event = await provider.parse_webhook_async(dispute.body, dispute.headers)
    assert (event.status, event.payment_id, event.amount) == (
        "disputed",
        capture.provider_payment_id,
        2_000,
    )


async def test_forged_webhooks_are_refused(
    provider: PayPalPaymentProvider,
    paypal_server: PayPalServer,  # noqa: F811
) -> None:
    genuine = paypal_server.emit_webhook(
        "PAYMENT.CAPTURE.REFUNDED",
        {"id": "REFUND1", "status": "COMPLETED", "amount": {"currency_code": "EUR", "value": "1"}},
    )
    event = await provider.parse_webhook_async(genuine.body, genuine.headers)
    assert event.status == "refunded"

    # The body changed after signing (a bigger refund).
    tampered = json.loads(genuine.body)
    tampered["resource"]["amount"]["value"] = "1000.00"
    with pytest.raises(InvalidWebhook):
        await provider.parse_webhook_async(json.dumps(tampered).encode(), genuine.headers)

    # A made-up signature.
    forged_headers = {**genuine.headers, "paypal-transmission-sig": "Zm9yZ2Vk"}
    with pytest.raises(InvalidWebhook):
        await provider.parse_webhook_async(genuine.body, forged_headers)

    # Signature headers missing altogether, or a body that is not JSON.
    with pytest.raises(InvalidWebhook):
        await provider.parse_webhook_async(genuine.body, {"content-type": "application/json"})
    with pytest.raises(InvalidWebhook):
        await provider.parse_webhook_async(b"not json", genuine.headers)

    # Genuine, but for another webhook id than the one this provider listens to.
    other = PayPalPaymentProvider(
        client_id=paypal_server.client_id,
        client_secret=paypal_server.client_secret,
        base_url=paypal_server.base_url,
        webhook_id="SOME-OTHER-WEBHOOK",
    )
    with pytest.raises(InvalidWebhook):
        await other.parse_webhook_async(genuine.body, genuine.headers)
