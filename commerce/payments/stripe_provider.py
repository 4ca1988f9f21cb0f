"""``StripePaymentProvider``: Stripe PaymentIntents with manual capture, via the official SDK.

Uses a ``StripeClient`` instance (never the SDK's global configuration, so several providers with
different keys can live in one process) and the SDK's native async methods over httpx, so no call
blocks the event loop and no thread pool is involved.

Every request carries our idempotency key as Stripe's ``Idempotency-Key``: a retried activity gets
the first response back (the same PaymentIntent, the same refund) instead of a second charge.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

import stripe
from stripe.params import PaymentIntentCaptureParams, RefundCreateParams

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
from core.money import from_provider_units, to_provider_units

SIGNATURE_HEADER = "Stripe-Signature"

# The webhook types the platform acts on, and what they mean to an order.
_EVENT_STATUS: dict[str, PaymentEventStatus] = {
    "payment_intent.amount_capturable_updated": "authorized",
    "payment_intent.succeeded": "captured",
    "payment_intent.payment_failed": "failed",
    "payment_intent.canceled": "canceled",
    "charge.refunded": "refunded",
    "charge.dispute.created": "disputed",
}


def _error_body(error: stripe.StripeError) -> dict[str, Any]:
    body = error.json_body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"]
    return {}


def _is_transient(error: stripe.StripeError) -> bool:
    if isinstance(error, stripe.APIConnectionError | stripe.RateLimitError):
        return True
    # Stripe answers 5xx (APIError) when it is having trouble; 409 "lock_timeout" when the same
    # object is being changed concurrently. Both succeed on retry with the same key.
    status = error.http_status or 0
    return status >= 500 or (status == 409 and not isinstance(error, stripe.IdempotencyError))


def _raise_mapped(error: stripe.StripeError, what: str) -> NoReturn:
    """Turn an SDK error into one of ours; the message carries no card data, only codes."""
    if _is_transient(error):
        raise TransientPaymentError(f"stripe {what}: {type(error).__name__}") from error
    if isinstance(error, stripe.IdempotencyError):
        # Same key, different parameters: a bug on our side, never something to retry.
        raise ValueError(f"stripe {what}: idempotency key reused with other parameters") from error
    if isinstance(error, stripe.CardError | stripe.InvalidRequestError):
        body = _error_body(error)
        reason = body.get("decline_code") or body.get("code") or error.code or "invalid_request"
        raise PaymentDeclined(f"stripe {what} refused: {reason}", reason=str(reason)) from error
    raise PaymentError(f"stripe {what}: {type(error).__name__}") from error


def _is_shoppers_payment_method(error: stripe.StripeError) -> bool:
    if _is_transient(error) or not isinstance(error, stripe.InvalidRequestError):
        return False
    body = _error_body(error)
    code = str(body.get("code") or error.code or "")
    param = str(body.get("param") or getattr(error, "param", None) or "")
    message = str(body.get("message") or "").lower()
    return (
        param == "payment_method"
        or code.startswith("payment_method")
        or "no such paymentmethod" in message
        # Creating an intent refers to one resource only, the PaymentMethod: a 404 is it.
        or error.http_status == 404
    )


def _get(obj: Any, name: str) -> Any:
    """An optional field of a StripeObject (they raise AttributeError for absent fields)."""
    return getattr(obj, name, None) if obj is not None else None


class StripePaymentProvider:
    """``PaymentProvider`` over Stripe PaymentIntents (authorize = confirm with manual capture).

    ``api_base`` points the SDK elsewhere (localstripe in tests). ``send_receipt_fields``: real
    Stripe takes ``description`` and ``receipt_email`` on a PaymentIntent; localstripe rejects
    both ("Unexpected description"), so the test fixture turns them off.
    """

    name = "stripe"

    def __init__(
        self,
        secret_key: str,
        webhook_secret: str,
        api_base: str | None = None,
        *,
        max_network_retries: int = 2,
        send_receipt_fields: bool = True,
        webhook_tolerance_s: int = 300,
    ) -> None:
        self._webhook_secret = webhook_secret
        self._send_receipt_fields = send_receipt_fields
        self._webhook_tolerance_s = webhook_tolerance_s
        # httpx gives the SDK's *_async methods a real async transport. The SDK's own retries
        # re-send the same Idempotency-Key, so they are safe; Temporal retries on top of them.
        self._http = stripe.HTTPXClient(timeout=30)
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=self._http,
            max_network_retries=max_network_retries,
        )

    async def aclose(self) -> None:
        """Close the HTTP connection pool (at worker shutdown)."""
        await self._http.close_async()

    async def authorize(self, request: AuthorizeRequest) -> Authorization:
        """Create and confirm a manual-capture PaymentIntent with the shopper's PaymentMethod."""
        params: dict[str, Any] = {
            "amount": to_provider_units(request.amount, request.currency.upper(), "stripe"),
            "currency": request.currency.lower(),
            "payment_method": request.payment_token,
            # Cards only: with automatic payment methods Stripe would demand a return_url for
            # redirect-based methods the storefront does not offer.
            "payment_method_types": ["card"],
            "capture_method": "manual",
            "confirm": True,
            "metadata": {"order_id": request.order_id},
        }
        if self._send_receipt_fields:
            if request.description:
                params["description"] = request.description
            if request.customer_email:
                params["receipt_email"] = request.customer_email
        try:
            intent = await self._client.v1.payment_intents.create_async(
                # A plain dict: the SDK's typed params omit payment_method_types, which the
                # API (and localstripe) still take.
                params,  # type: ignore[arg-type]
                {"idempotency_key": request.idempotency_key},
            )
        except stripe.CardError as error:
            # A decline is an answer, not a failure: the workflow tells the shopper.
            body = _error_body(error)
            intent_body = body.get("payment_intent") or {}
            return Authorization(
                status="declined",
                provider_payment_id=intent_body.get("id"),
                amount=request.amount,
                currency=request.currency.lower(),
                decline_code=body.get("decline_code") or body.get("code") or error.code,
                message=error.user_message or body.get("message"),
            )
        except stripe.StripeError as error:
            if _is_shoppers_payment_method(error):
                # An unknown or unusable PaymentMethod comes from the shopper's side: decline.
                # Any other invalid request is ours (a parameter Stripe refuses): an error for
                # operations, not a decline the shopper could fix by paying again.
                body = _error_body(error)
                return Authorization(
                    status="declined",
                    provider_payment_id=None,
                    amount=request.amount,
                    currency=request.currency.lower(),
                    decline_code=body.get("code") or error.code or "invalid_payment_method",
                    message=body.get("message"),
                )
            _raise_mapped(error, "authorize")
        return self._authorization(intent, request)

    def _authorization(self, intent: Any, request: AuthorizeRequest) -> Authorization:
        status = intent.status
        common = {
            "provider_payment_id": intent.id,
            "amount": request.amount,
            "currency": request.currency.lower(),
        }
        if status in ("requires_capture", "succeeded"):
            return Authorization(status="authorized", **common)
        if status in ("requires_action", "processing"):
            # "processing" (asynchronous methods) also ends with a webhook, like a challenge.
            next_action = _get(intent, "next_action")
            redirect = _get(next_action, "redirect_to_url")
            return Authorization(
                status="requires_action",
                client_secret=intent.client_secret,
                approval_url=_get(redirect, "url"),
                **common,
            )
        error = _get(intent, "last_payment_error")
        return Authorization(
            status="declined",
            decline_code=_get(error, "decline_code") or _get(error, "code") or status,
            message=_get(error, "message"),
            **common,
        )

    async def capture(
        self, payment_id: str, *, amount: int | None = None, idempotency_key: str
    ) -> Capture:
        """Capture a ``requires_capture`` PaymentIntent; Stripe releases any remainder."""
        params: PaymentIntentCaptureParams = {}
        try:
            if amount is not None:
                currency = await self._currency(payment_id)
                params["amount_to_capture"] = to_provider_units(amount, currency, "stripe")
            intent = await self._client.v1.payment_intents.capture_async(
                payment_id,
                params,
                {"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as error:
            _raise_mapped(error, "capture")
        if intent.status != "succeeded":
            raise PaymentDeclined(
                f"stripe capture left the payment {intent.status}", reason="invalid_state"
            )
        received = _get(intent, "amount_received")
        currency = str(intent.currency).upper()
        return Capture(
            provider_payment_id=intent.id,
            amount=(
                from_provider_units(received, currency, "stripe")
                if received is not None
                else amount or from_provider_units(intent.amount, currency, "stripe")
            ),
            currency=intent.currency,
        )

    async def void(self, payment_id: str, *, idempotency_key: str) -> None:
        """Cancel the PaymentIntent; already canceled counts as done (compensations rerun)."""
        try:
            await self._client.v1.payment_intents.cancel_async(
                payment_id, {}, {"idempotency_key": idempotency_key}
            )
            return
        except stripe.InvalidRequestError as error:
            refused = error
        except stripe.StripeError as error:
            _raise_mapped(error, "void")
        try:
            intent = await self._client.v1.payment_intents.retrieve_async(payment_id)
        except stripe.StripeError as error:
            _raise_mapped(error, "void")
        if intent.status == "canceled":
            return
        if intent.status == "succeeded":
            raise PaymentDeclined(
                "cannot void a captured payment; refund it", reason="already_captured"
            ) from refused
        _raise_mapped(refused, "void")

    async def refund(
        self,
        payment_id: str,
        *,
        amount: int | None = None,
        currency: str | None = None,
        idempotency_key: str,
    ) -> Refund:
        """Refund part or all of a captured PaymentIntent."""
        params: RefundCreateParams = {"payment_intent": payment_id}
        try:
            if amount is not None:
                currency = currency or await self._currency(payment_id)
                params["amount"] = to_provider_units(amount, currency, "stripe")
            refund = await self._client.v1.refunds.create_async(
                params,
                {"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as error:
            _raise_mapped(error, "refund")
        status: RefundStatus
        if refund.status == "succeeded":
            status = "succeeded"
        elif refund.status in ("failed", "canceled"):
            status = "failed"
        else:
            status = "pending"
        return Refund(
            provider_refund_id=refund.id,
            provider_payment_id=payment_id,
            amount=from_provider_units(refund.amount, str(refund.currency).upper(), "stripe"),
            currency=refund.currency,
            status=status,
        )

    async def _currency(self, payment_id: str) -> str:
        """The currency of a PaymentIntent (upper case), to convert an amount to Stripe's
        units: one retrieve before a partial capture or a refund (as the PayPal integration
        reads its capture's currency)."""
        intent = await self._client.v1.payment_intents.retrieve_async(payment_id)
        return str(intent.currency).upper()

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """Verify ``Stripe-Signature`` with the endpoint secret and normalise the event."""
        signature = next(
            (value for name, value in headers.items() if name.lower() == SIGNATURE_HEADER.lower()),
            None,
        )
        if not signature:
            raise InvalidWebhook("missing Stripe-Signature header")
        try:
            event = stripe.Webhook.construct_event(
                payload, signature, self._webhook_secret, tolerance=self._webhook_tolerance_s
            )
        except stripe.SignatureVerificationError:
            raise InvalidWebhook("Stripe signature does not verify") from None
        except ValueError:  # the SDK's way to say the body is not JSON
            raise InvalidWebhook("webhook body is not JSON") from None
        # The verified raw body, read as plain JSON: simpler than walking typed StripeObjects.
        body = json.loads(payload)
        obj = (body.get("data") or {}).get("object") or {}
        event_type = str(event.type)
        status = _EVENT_STATUS.get(event_type)
        payment_id: str | None
        amount: int | None
        if event_type.startswith("payment_intent."):
            payment_id = obj.get("id")
            if status == "authorized":
                amount = obj.get("amount_capturable")
            elif status == "captured":
                # localstripe leaves amount_received out; Stripe always sends it.
                amount = obj.get("amount_received", obj.get("amount"))
            else:
                amount = obj.get("amount")
        elif event_type.startswith("charge.dispute."):
            payment_id, amount = obj.get("payment_intent"), obj.get("amount")
        elif event_type.startswith("charge."):
            payment_id = obj.get("payment_intent")
            amount = obj.get("amount_refunded") if status == "refunded" else obj.get("amount")
        else:
            payment_id, amount = None, None
        currency = obj.get("currency")
        if amount is not None and isinstance(currency, str) and len(currency) == 3:
            amount = from_provider_units(int(amount), currency.upper(), "stripe")
        return WebhookEvent(
            provider_event_id=str(event.id),
            type=event_type,
            payment_id=payment_id,
            status=status,
            amount=amount,
            occurred_at=event_time(body.get("created")),
        )
