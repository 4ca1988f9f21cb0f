"""PayPal behind the ``PaymentProvider`` Protocol, with PayPal's official ``paypal-server-sdk``.

PayPal Checkout is a redirect flow, so one ``PaymentProvider.authorize`` becomes two steps:

1. ``authorize`` creates an Orders v2 order with intent ``AUTHORIZE`` and answers
   ``requires_action`` with the buyer's ``approval_url``; ``provider_payment_id`` is the PayPal
   *order* id.
2. Once the buyer approved (webhook ``CHECKOUT.ORDER.APPROVED``, or the buyer landing on the
   return URL), ``authorize_approved`` authorizes the order and answers ``authorized``;
   ``provider_payment_id`` is now the PayPal *authorization* id, the one ``capture`` and
   ``void`` take. ``capture`` returns the PayPal *capture* id, the one ``refund`` takes.

Every call sends the idempotency key as ``PayPal-Request-Id``, so PayPal replays the first result
of a retried call instead of doing it twice.

The SDK is synchronous (``requests``): each call runs in ``asyncio.to_thread``. It has no
setting for a custom base URL, only the PRODUCTION and SANDBOX environments, so
`_FixedBaseUrlConfiguration` overrides ``Configuration.get_base_uri``, the one hook every
request's URL goes through (the client hands it to the SDK core as its ``base_uri_executor``).
The SDK has no webhook-verification call either: `_WebhookVerification` is a controller built on
the SDK's own request builder, so it shares the client's OAuth token, HTTP client and errors.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import requests
from apimatic_core.authentication.multiple.single_auth import Single
from apimatic_core.exceptions.auth_validation_exception import AuthValidationException
from apimatic_core.request_builder import RequestBuilder
from apimatic_core.response_handler import ResponseHandler
from apimatic_core.types.parameter import Parameter
from paypalserversdk.api_helper import APIHelper
from paypalserversdk.configuration import Configuration, Server
from paypalserversdk.controllers.base_controller import BaseController
from paypalserversdk.exceptions.api_exception import ApiException
from paypalserversdk.exceptions.error_exception import ErrorException
from paypalserversdk.http.api_response import ApiResponse
from paypalserversdk.http.auth.o_auth_2 import ClientCredentialsAuthCredentials
from paypalserversdk.http.http_method_enum import HttpMethodEnum
from paypalserversdk.models.amount_with_breakdown import AmountWithBreakdown
from paypalserversdk.models.capture_request import CaptureRequest
from paypalserversdk.models.checkout_payment_intent import CheckoutPaymentIntent
from paypalserversdk.models.money import Money
from paypalserversdk.models.order_request import OrderRequest
from paypalserversdk.models.payment_source import PaymentSource
from paypalserversdk.models.paypal_wallet import PaypalWallet
from paypalserversdk.models.paypal_wallet_experience_context import (
    PaypalWalletExperienceContext,
)
from paypalserversdk.models.purchase_unit_request import PurchaseUnitRequest
from paypalserversdk.models.refund_request import RefundRequest
from paypalserversdk.paypal_serversdk_client import PaypalServersdkClient

from commerce.payments.provider import (
    Authorization,
    AuthorizeRequest,
    Capture,
    InvalidWebhook,
    PaymentDeclined,
    PaymentError,
    PaymentEventStatus,
    Refund,
    RefundStatus,
    TransientPaymentError,
    WebhookEvent,
    event_time,
)
from core import money as money_units

T = TypeVar("T")

#: PayPal's sandbox; production is ``https://api-m.paypal.com``.
SANDBOX_BASE_URL = "https://api-m.sandbox.paypal.com"

# PayPal issues that mean "the buyer's funding source refused", as opposed to a refused state
# change on our side (Orders v2 / Payments v2 error references).
_DECLINE_ISSUES = frozenset(
    {
        "INSTRUMENT_DECLINED",
        "PAYER_CANNOT_PAY",
        "TRANSACTION_REFUSED",
        "CARD_CLOSED",
        "CARD_EXPIRED",
        "PAYEE_BLOCKED_TRANSACTION",
        "PAYER_ACCOUNT_RESTRICTED",
        "PAYER_ACCOUNT_LOCKED_OR_CLOSED",
        "REDIRECT_PAYER_FOR_ALTERNATE_FUNDING",
        "MAX_NUMBER_OF_PAYMENT_ATTEMPTS_EXCEEDED",
        "AUTH_CAPTURE_NOT_ENABLED",
        "DECLINED_DUE_TO_RELATED_TXN",
    }
)
# The refused state changes, as the stable reasons ``PaymentDeclined`` documents.
_STATE_REASONS = {
    "REFUND_AMOUNT_EXCEEDED": "amount_too_large",
    "MAX_CAPTURE_AMOUNT_EXCEEDED": "amount_too_large",
    "PARTIAL_REFUND_NOT_ALLOWED": "amount_too_large",
    "AUTHORIZATION_ALREADY_CAPTURED": "already_captured",
    "PREVIOUSLY_CAPTURED": "already_captured",
    "CAPTURE_FULLY_REFUNDED": "already_refunded",
    "AUTHORIZATION_VOIDED": "invalid_state",
    "AUTHORIZATION_EXPIRED": "expired",
    "ORDER_NOT_APPROVED": "not_approved",
    "ORDER_ALREADY_AUTHORIZED": "invalid_state",
    "INVALID_RESOURCE_ID": "not_found",
}
_TRANSIENT_STATUSES = frozenset({408, 409, 429})

_EVENT_STATUSES: Mapping[str, PaymentEventStatus | None] = {
    # The buyer approved, nothing is reserved yet: the platform must call ``authorize_approved``.
    "CHECKOUT.ORDER.APPROVED": "approved",
    "PAYMENT.AUTHORIZATION.CREATED": "authorized",
    "PAYMENT.AUTHORIZATION.VOIDED": "canceled",
    "PAYMENT.CAPTURE.COMPLETED": "captured",
    "PAYMENT.CAPTURE.DENIED": "failed",
    "PAYMENT.CAPTURE.REFUNDED": "refunded",
    "CUSTOMER.DISPUTE.CREATED": "disputed",
}
_REFUND_STATUSES: Mapping[str, RefundStatus] = {
    "COMPLETED": "succeeded",
    "PENDING": "pending",
    "FAILED": "failed",
    "CANCELLED": "failed",
}
# The transmission headers PayPal sends with every webhook, and their verify-request fields.
_TRANSMISSION_HEADERS = {
    "paypal-auth-algo": "auth_algo",
    "paypal-cert-url": "cert_url",
    "paypal-transmission-id": "transmission_id",
    "paypal-transmission-sig": "transmission_sig",
    "paypal-transmission-time": "transmission_time",
}
# How many idempotency keys the in-process misuse check remembers.
_REMEMBERED_KEYS = 10_000


def to_paypal_value(amount: int, currency: str) -> str:
    """Minor units as PayPal's decimal string: 1999 EUR -> "19.99", 1500 JPY -> "1500",
    123400 HUF -> "1234" (PayPal takes HUF and TWD whole); ``core.money.UnpayableAmount``
    for an amount PayPal cannot take."""
    return money_units.provider_decimal_string(amount, currency, "paypal")


def from_paypal_value(value: str, currency: str) -> int:
    """PayPal's decimal string as minor units: "19.99" EUR -> 1999, "1234" HUF -> 123400."""
    return money_units.parse_provider_decimal(value, currency, "paypal")


class _FixedBaseUrlConfiguration(Configuration):
    """The SDK configuration with any base URL, not only PayPal's two environments."""

    def __init__(self, *, base_url: str, **kwargs: Any) -> None:
        # Set before super().__init__, which may already build URLs through get_base_uri.
        self._base_url = base_url.rstrip("/")
        super().__init__(**kwargs)

    def get_base_uri(self, server: Server = Server.DEFAULT) -> str:
        return self._base_url


class _WebhookVerification(BaseController):
    """``POST /v1/notifications/verify-webhook-signature``, which the SDK does not wrap."""

    def verify_webhook_signature(self, body: dict[str, Any]) -> ApiResponse:
        return (
            self.new_api_call_builder.request(
                RequestBuilder()
                .server(Server.DEFAULT)
                .path("/v1/notifications/verify-webhook-signature")
                .http_method(HttpMethodEnum.POST)
                .header_param(Parameter().key("Content-Type").value("application/json"))
                .header_param(Parameter().key("accept").value("application/json"))
                .body_param(Parameter().value(body))
                .body_serializer(APIHelper.json_serialize)
                .auth(Single("Oauth2"))
            )
            .response(
                ResponseHandler()
                .deserializer(APIHelper.json_deserialize)
                .is_api_response(True)
                .local_error("default", "The error response.", ErrorException)
            )
            .execute()
        )


class PayPalPaymentProvider:
    """`PaymentProvider` for PayPal Checkout (Orders v2 + Payments v2), see the module docstring.

    ``return_url``/``cancel_url`` are where PayPal sends the buyer after approving or cancelling;
    without them PayPal's own pages close the flow and the platform relies on the webhook.
    """

    name = "paypal"

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        base_url: str = SANDBOX_BASE_URL,
        webhook_id: str | None = None,
        *,
        return_url: str | None = None,
        cancel_url: str | None = None,
        timeout: float = 30,
    ) -> None:
        self._webhook_id = webhook_id
        self._return_url = return_url
        self._cancel_url = cancel_url
        config = _FixedBaseUrlConfiguration(
            base_url=base_url,
            timeout=timeout,
            # Retries belong to Temporal, with the same PayPal-Request-Id; none in the SDK.
            max_retries=0,
            # No SDK logging: its request logs would carry the Basic and Bearer headers.
            logging_configuration=None,
            client_credentials_auth_credentials=ClientCredentialsAuthCredentials(
                o_auth_client_id=client_id, o_auth_client_secret=client_secret
            ),
        )
        self._client = PaypalServersdkClient(config=config)
        self._webhooks = _WebhookVerification(self._client.global_configuration)
        self._keys: OrderedDict[str, str] = OrderedDict()
        self._keys_lock = threading.Lock()

    def __repr__(self) -> str:
        # The client holds the secret and the access token: never let a repr show them.
        return f"PayPalPaymentProvider(base_url={self._client.config.get_base_uri()!r})"

    # --- PaymentProvider ------------------------------------------------------------------

    async def authorize(self, request: AuthorizeRequest) -> Authorization:
        """Create the PayPal order; the buyer must approve it at ``approval_url``."""
        self._check_key(
            "authorize", request.idempotency_key, request.order_id, request.amount, request.currency
        )
        value = to_paypal_value(request.amount, request.currency)
        unit = PurchaseUnitRequest(
            amount=AmountWithBreakdown(currency_code=request.currency, value=value),
            reference_id=request.order_id,
            custom_id=request.order_id,
            invoice_id=request.order_id,
            # PayPal caps descriptions at 127 characters; SKIP leaves the field out (not null).
            description=request.description[:127] if request.description else APIHelper.SKIP,
        )
        body = OrderRequest(intent=CheckoutPaymentIntent.AUTHORIZE, purchase_units=[unit])
        if self._return_url or self._cancel_url:
            context = PaypalWalletExperienceContext(
                return_url=self._return_url or APIHelper.SKIP,
                cancel_url=self._cancel_url or APIHelper.SKIP,
                shipping_preference="NO_SHIPPING",
            )
            body.payment_source = PaymentSource(paypal=PaypalWallet(experience_context=context))
        try:
            response = await self._call(
                self._client.orders.create_order,
                {"body": body, "paypal_request_id": request.idempotency_key},
            )
        except PaymentDeclined as declined:
            if declined.reason != "card_declined":
                raise
            return Authorization(
                status="declined",
                provider_payment_id=None,
                amount=request.amount,
                currency=request.currency,
                decline_code=declined.extra.get("issue") or "INSTRUMENT_DECLINED",
                message=declined.detail,
            )
        order = response.body
        approve = next((link.href for link in order.links or [] if link.rel == "approve"), None)
        return Authorization(
            status="requires_action",
            provider_payment_id=order.id,
            amount=request.amount,
            currency=request.currency,
            approval_url=approve,
        )

    async def authorize_approved(self, order_id: str, *, idempotency_key: str) -> Authorization:
        """Authorize an order the buyer approved: ``authorized`` with the authorization id.

        A buyer whose funding source is refused comes back as ``declined`` (PayPal's
        ``INSTRUMENT_DECLINED``: the platform may send the buyer back to PayPal to pick another).
        An order not approved yet raises ``PaymentDeclined(reason="not_approved")``.
        """
        self._check_key("authorize_approved", idempotency_key, order_id)
        try:
            response = await self._call(
                self._client.orders.authorize_order,
                {"id": order_id, "paypal_request_id": idempotency_key},
            )
        except PaymentDeclined as declined:
            if declined.reason != "card_declined":
                raise
            order = (await self._call(self._client.orders.get_order, {"id": order_id})).body
            money = order.purchase_units[0].amount
            return Authorization(
                status="declined",
                provider_payment_id=order_id,
                amount=from_paypal_value(money.value, money.currency_code),
                currency=money.currency_code,
                decline_code=declined.extra.get("issue") or "INSTRUMENT_DECLINED",
                message=declined.detail,
            )
        order = response.body
        authorization = order.purchase_units[0].payments.authorizations[0]
        currency = authorization.amount.currency_code
        return Authorization(
            status="authorized",
            provider_payment_id=authorization.id,
            amount=from_paypal_value(authorization.amount.value, currency),
            currency=currency,
        )

    async def capture(
        self, payment_id: str, *, amount: int | None = None, idempotency_key: str
    ) -> Capture:
        """Capture the authorization ``payment_id``; the result's id is the capture id."""
        self._check_key("capture", idempotency_key, payment_id, amount)
        body = CaptureRequest(final_capture=True)
        if amount is not None:
            currency = await self._authorization_currency(payment_id)
            body.amount = Money(currency_code=currency, value=to_paypal_value(amount, currency))
        response = await self._call(
            self._client.payments.capture_authorized_payment,
            {
                "authorization_id": payment_id,
                "body": body,
                "paypal_request_id": idempotency_key,
                "prefer": "return=representation",
            },
        )
        captured = response.body
        if captured.status in ("DECLINED", "FAILED"):
            raise PaymentDeclined(f"PayPal capture {captured.status.lower()}")
        currency = captured.amount.currency_code
        return Capture(
            provider_payment_id=captured.id,
            amount=from_paypal_value(captured.amount.value, currency),
            currency=currency,
        )

    async def void(self, payment_id: str, *, idempotency_key: str) -> None:
        """Void the authorization ``payment_id``; voiding it again is a no-op."""
        self._check_key("void", idempotency_key, payment_id)
        try:
            await self._call(
                self._client.payments.void_payment,
                {"authorization_id": payment_id, "paypal_request_id": idempotency_key},
            )
        except PaymentDeclined as declined:
            if declined.extra.get("issue") != "PREVIOUSLY_VOIDED":
                raise

    async def refund(
        self,
        payment_id: str,
        *,
        amount: int | None = None,
        currency: str | None = None,
        idempotency_key: str,
    ) -> Refund:
        """Refund the capture ``payment_id`` (the id ``capture`` returned), all or part of it."""
        self._check_key("refund", idempotency_key, payment_id, amount)
        body = RefundRequest()
        if amount is not None:
            currency = currency or await self._capture_currency(payment_id)
            body.amount = Money(currency_code=currency, value=to_paypal_value(amount, currency))
        response = await self._call(
            self._client.payments.refund_captured_payment,
            {
                "capture_id": payment_id,
                "body": body,
                "paypal_request_id": idempotency_key,
                "prefer": "return=representation",
            },
        )
        refund = response.body
        refunded_in = refund.amount.currency_code
        return Refund(
            provider_refund_id=refund.id,
            provider_payment_id=payment_id,
            amount=from_paypal_value(refund.amount.value, refunded_in),
            currency=refunded_in,
            status=_REFUND_STATUSES.get(refund.status, "pending"),
        )

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """Verify a webhook with PayPal, then parse it; raise ``InvalidWebhook`` if unverified.

        PayPal verifies signatures server-side, so this makes a (blocking) HTTP call, unlike
        Stripe's local check; from async code use `parse_webhook_async`.
        """
        if not self._webhook_id:
            raise InvalidWebhook("No PayPal webhook id is configured")
        try:
            event = json.loads(payload)
        except ValueError as error:
            raise InvalidWebhook("The webhook body is not JSON") from error
        if not isinstance(event, dict) or not isinstance(event.get("event_type"), str):
            raise InvalidWebhook("The webhook body is not a PayPal event")
        lowered = {key.lower(): value for key, value in headers.items()}
        missing = [name for name in _TRANSMISSION_HEADERS if not lowered.get(name)]
        if missing:
            raise InvalidWebhook(f"Missing PayPal transmission headers: {', '.join(missing)}")
        verify: dict[str, object] = {
            field: lowered[header] for header, field in _TRANSMISSION_HEADERS.items()
        }
        verify["webhook_id"] = self._webhook_id
        verify["webhook_event"] = event
        response = self._call_sync(self._webhooks.verify_webhook_signature, verify)
        status = (response.body or {}).get("verification_status")
        if status != "SUCCESS":
            raise InvalidWebhook("PayPal did not verify the webhook signature")
        return _webhook_event(event)

    async def parse_webhook_async(self, payload: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """`parse_webhook` off the event loop (it waits for PayPal's verification)."""
        return await asyncio.to_thread(self.parse_webhook, payload, headers)

    # --- internals ------------------------------------------------------------------------

    def _check_key(self, operation: str, key: str, *arguments: object) -> None:
        """Refuse a key reused with other arguments (the Protocol's rule; PayPal would replay).

        Only this process's recent keys are known: a best-effort guard against programming
        errors, not a substitute for PayPal's own replay of a PayPal-Request-Id.
        """
        if not key:
            raise ValueError("idempotency_key is required")
        fingerprint = hashlib.sha256(repr((operation, arguments)).encode()).hexdigest()
        with self._keys_lock:
            seen = self._keys.get(key)
            if seen is not None and seen != fingerprint:
                raise ValueError("idempotency key reused with different arguments")
            self._keys[key] = fingerprint
            self._keys.move_to_end(key)
            while len(self._keys) > _REMEMBERED_KEYS:
                self._keys.popitem(last=False)

    async def _authorization_currency(self, authorization_id: str) -> str:
        response = await self._call(
            self._client.payments.get_authorized_payment, {"authorization_id": authorization_id}
        )
        return response.body.amount.currency_code

    async def _capture_currency(self, capture_id: str) -> str:
        response = await self._call(
            self._client.payments.get_captured_payment, {"capture_id": capture_id}
        )
        return response.body.amount.currency_code

    async def _call(self, method: Callable[[Any], T], options: Any) -> T:
        return await asyncio.to_thread(self._call_sync, method, options)

    @staticmethod
    def _call_sync(method: Callable[[Any], T], options: Any) -> T:
        """Run one SDK call, turning PayPal's failures into the Protocol's errors."""
        try:
            return method(options)
        except ApiException as error:
            raise _map_error(error) from None
        except AuthValidationException as error:
            # The SDK could not get an access token: PayPal down, or wrong credentials. The
            # exception text names neither the id nor the secret.
            raise TransientPaymentError("PayPal refused or failed the OAuth token call") from error
        except (requests.RequestException, OSError) as error:
            raise TransientPaymentError(f"PayPal unreachable: {type(error).__name__}") from None


def _map_error(error: ApiException) -> PaymentError:
    """PayPal's error (status, ``name``, ``details[].issue``) as a Protocol error."""
    status = error.response_code
    name = getattr(error, "name", None) or "UNKNOWN_ERROR"
    details = getattr(error, "details", None) or []
    issue = next((detail.issue for detail in details if getattr(detail, "issue", None)), None)
    debug_id = getattr(error, "debug_id", None)
    # PayPal's debug_id is what its support asks for; the message never holds credentials.
    message = f"PayPal {status} {name}" + (f" {issue}" if issue else "")
    message += f" (debug_id {debug_id})" if debug_id else ""
    if status >= 500 or status in _TRANSIENT_STATUSES:
        return TransientPaymentError(message)
    if issue in _DECLINE_ISSUES:
        return _declined(message, "card_declined", issue)
    if issue in _STATE_REASONS:
        return _declined(message, _STATE_REASONS[issue], issue)
    if status == 404:
        return _declined(message, "not_found", issue)
    if status == 422:
        return _declined(message, "invalid_state", issue)
    # 400 (a malformed request) or 401/403 (credentials, permissions): our bug or our setup,
    # which no retry fixes and no shopper caused.
    return PaymentError(message)


def _declined(message: str, reason: str, issue: str | None) -> PaymentDeclined:
    """``PaymentDeclined`` with PayPal's issue kept in ``extra`` (problem details show it)."""
    declined = PaymentDeclined(message, reason=reason)
    declined.extra["issue"] = issue
    return declined


def _webhook_event(event: dict[str, Any]) -> WebhookEvent:
    """A verified PayPal event, normalised; ``payment_id`` is the PayPal order id if known."""
    event_type = event["event_type"]
    resource = event.get("resource") or {}
    related = (resource.get("supplementary_data") or {}).get("related_ids") or {}
    payment_id = related.get("order_id") or resource.get("id")
    money = resource.get("amount")
    if event_type.startswith("CUSTOMER.DISPUTE."):
        transactions = resource.get("disputed_transactions") or [{}]
        payment_id = transactions[0].get("seller_transaction_id") or payment_id
        money = resource.get("dispute_amount")
    elif event_type.startswith("CHECKOUT.ORDER."):
        units = resource.get("purchase_units") or [{}]
        money = units[0].get("amount")
    amount = None
    if isinstance(money, dict) and money.get("value") and money.get("currency_code"):
        amount = from_paypal_value(str(money["value"]), str(money["currency_code"]))
    return WebhookEvent(
        provider_event_id=str(event.get("id")),
        type=event_type,
        payment_id=payment_id,
        status=_EVENT_STATUSES.get(event_type),
        amount=amount,
        occurred_at=event_time(event.get("create_time")),
    )
