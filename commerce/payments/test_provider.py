"""``TestPaymentProvider``: the built-in, deterministic payment provider for dev and tests.

Not for production. Its state lives in memory, in one process: idempotency, authorizations and
refunds hold within that process only. In the multi-process dev platform (API + worker) that is
enough for checkouts paying with ``tok_ok`` / ``tok_decline`` / ``tok_flaky_N``, since only the
worker calls the provider; a ``tok_3ds`` payment, however, is completed by a webhook, and the
process that parses the webhook must be the one that later captures (true in-process tests).

The payment token chooses the behaviour:

* ``tok_ok`` - authorizes.
* ``tok_decline`` - declines with decline code ``card_declined``.
* ``tok_insufficient_funds`` - declines with decline code ``insufficient_funds``.
* ``tok_3ds`` - ``requires_action`` with a client secret. The shopper "completes the challenge"
  when the test sends a signed webhook (``signed_webhook``) with status ``authorized`` (or
  ``failed``); ``parse_webhook`` applies it, then the payment can be captured.
* ``tok_flaky_<N>`` - raises ``TransientPaymentError`` on the first N attempts with a given
  idempotency key, then authorizes (exercises activity retries).

Webhooks are signed like Stripe's: header ``Emporium-Test-Signature: t=<unix>,v1=<hex>`` where
``v1 = HMAC-SHA256(secret, f"{t}.{payload}")``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from commerce.payments.provider import (
    Authorization,
    AuthorizeRequest,
    Capture,
    InvalidWebhook,
    PaymentDeclined,
    PaymentEventStatus,
    Refund,
    TransientPaymentError,
    WebhookEvent,
)

SIGNATURE_HEADER = "Emporium-Test-Signature"
DEFAULT_WEBHOOK_SECRET = "whsec_emporium_test"  # noqa: S105 - a public dev-only value
#: How old a signed webhook may be, as Stripe's default tolerance (replay protection).
WEBHOOK_TOLERANCE_S = 300

_FLAKY = re.compile(r"^tok_flaky_(\d+)$")
_DECLINES = {"tok_decline": "card_declined", "tok_insufficient_funds": "insufficient_funds"}
_EVENT_STATUSES: frozenset[str] = frozenset(
    ("authorized", "captured", "failed", "canceled", "refunded", "disputed")
)

PaymentState = Literal["requires_action", "authorized", "captured", "voided", "declined"]


@dataclass(frozen=True)
class SignedWebhook:
    """A webhook body and its headers, as the provider would POST them."""

    payload: bytes
    headers: dict[str, str]


@dataclass
class _Payment:
    id: str
    amount: int
    currency: str
    state: PaymentState
    client_secret: str
    captured: int = 0
    refunded: int = 0
    refunds: list[str] = field(default_factory=list)


def _digest(*parts: str) -> str:
    """A short stable id fragment: same inputs, same id, run after run (deterministic tests)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]


def _sign(secret: str, payload: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


class TestPaymentProvider:
    """The embedded default ``PaymentProvider``: deterministic, stateful, in memory."""

    # Not a pytest test class, whatever its name says.
    __test__ = False

    name = "test"

    def __init__(
        self,
        *,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._webhook_secret = webhook_secret
        self._clock = clock
        self._payments: dict[str, _Payment] = {}
        # (operation, idempotency key) -> (fingerprint of the arguments, first result).
        self._replies: dict[tuple[str, str], tuple[tuple[Any, ...], Any]] = {}
        self._flaky_attempts: dict[str, int] = {}

    # --- idempotency --------------------------------------------------------------------

    def _replay(self, operation: str, key: str, fingerprint: tuple[Any, ...]) -> Any | None:
        """The stored result of an earlier call with this key, or ``None`` for a new call."""
        stored = self._replies.get((operation, key))
        if stored is None:
            return None
        if stored[0] != fingerprint:
            raise ValueError(f"idempotency key reused for a different {operation} request")
        outcome = stored[1]
        # A refused call is refused again, identically, as Stripe replays stored errors.
        if isinstance(outcome, PaymentDeclined):
            raise outcome
        return outcome

    def _remember(
        self, operation: str, key: str, fingerprint: tuple[Any, ...], outcome: Any
    ) -> None:
        self._replies[(operation, key)] = (fingerprint, outcome)

    def _payment(self, payment_id: str) -> _Payment:
        payment = self._payments.get(payment_id)
        if payment is None:
            raise PaymentDeclined(f"no such payment {payment_id}", reason="resource_missing")
        return payment

    # --- PaymentProvider ----------------------------------------------------------------

    async def authorize(self, request: AuthorizeRequest) -> Authorization:
        """Authorize according to the token (see the module docstring)."""
        fingerprint = (request.amount, request.currency.lower(), request.payment_token)
        replayed = self._replay("authorize", request.idempotency_key, fingerprint)
        if replayed is not None:
            return replayed  # type: ignore[no-any-return]

        behaviour = request.payment_token
        flaky = _FLAKY.match(behaviour)
        if flaky is not None:
            attempts = self._flaky_attempts.get(request.idempotency_key, 0)
            if attempts < int(flaky.group(1)):
                # Not remembered: like a dropped connection, nothing happened on the provider.
                self._flaky_attempts[request.idempotency_key] = attempts + 1
                raise TransientPaymentError("test provider: simulated network failure")

        payment_id = f"pay_test_{_digest(request.idempotency_key)}"
        currency = request.currency.lower()
        client_secret = f"{payment_id}_secret_{_digest('secret', request.idempotency_key)}"
        authorization: Authorization
        if behaviour in _DECLINES:
            state: PaymentState = "declined"
            authorization = Authorization(
                status="declined",
                provider_payment_id=payment_id,
                amount=request.amount,
                currency=currency,
                decline_code=_DECLINES[behaviour],
                message="The card was declined.",
            )
        elif behaviour == "tok_3ds":
            state = "requires_action"
            authorization = Authorization(
                status="requires_action",
                provider_payment_id=payment_id,
                amount=request.amount,
                currency=currency,
                client_secret=client_secret,
            )
        elif behaviour == "tok_ok" or flaky is not None:
            state = "authorized"
            authorization = Authorization(
                status="authorized",
                provider_payment_id=payment_id,
                amount=request.amount,
                currency=currency,
            )
        else:
            state = "declined"
            authorization = Authorization(
                status="declined",
                provider_payment_id=payment_id,
                amount=request.amount,
                currency=currency,
                decline_code="invalid_payment_method",
                message="Unknown test payment token.",
            )
        self._payments[payment_id] = _Payment(
            id=payment_id,
            amount=request.amount,
            currency=currency,
            state=state,
            client_secret=client_secret,
        )
        self._remember("authorize", request.idempotency_key, fingerprint, authorization)
        return authorization

    async def capture(
        self, payment_id: str, *, amount: int | None = None, idempotency_key: str
    ) -> Capture:
        """Capture once (as Stripe): a partial capture releases the rest of the authorization."""
        fingerprint = (payment_id, amount)
        replayed = self._replay("capture", idempotency_key, fingerprint)
        if replayed is not None:
            return replayed  # type: ignore[no-any-return]
        payment = self._payment(payment_id)
        to_capture = payment.amount if amount is None else amount
        try:
            if payment.state != "authorized":
                reason = "already_captured" if payment.state == "captured" else "invalid_state"
                raise PaymentDeclined(
                    f"cannot capture a payment that is {payment.state}", reason=reason
                )
            if not 0 < to_capture <= payment.amount:
                raise PaymentDeclined(
                    "capture amount must be positive and at most the authorized amount",
                    reason="amount_too_large",
                )
        except PaymentDeclined as declined:
            self._remember("capture", idempotency_key, fingerprint, declined)
            raise
        payment.state = "captured"
        payment.captured = to_capture
        capture = Capture(
            provider_payment_id=payment_id, amount=to_capture, currency=payment.currency
        )
        self._remember("capture", idempotency_key, fingerprint, capture)
        return capture

    async def void(self, payment_id: str, *, idempotency_key: str) -> None:
        """Release an uncaptured authorization; voiding a declined or voided payment is a no-op."""
        fingerprint = (payment_id,)
        if self._replay("void", idempotency_key, fingerprint) is not None:
            return
        payment = self._payment(payment_id)
        if payment.state == "captured":
            declined = PaymentDeclined(
                "cannot void a captured payment; refund it", reason="already_captured"
            )
            self._remember("void", idempotency_key, fingerprint, declined)
            raise declined
        if payment.state in ("authorized", "requires_action"):
            payment.state = "voided"
        self._remember("void", idempotency_key, fingerprint, True)

    async def refund(
        self, payment_id: str, *, amount: int | None = None, idempotency_key: str
    ) -> Refund:
        """Refund up to what was captured and not yet refunded, in as many refunds as needed."""
        fingerprint = (payment_id, amount)
        replayed = self._replay("refund", idempotency_key, fingerprint)
        if replayed is not None:
            return replayed  # type: ignore[no-any-return]
        payment = self._payment(payment_id)
        remaining = payment.captured - payment.refunded
        to_refund = remaining if amount is None else amount
        try:
            if payment.state != "captured":
                raise PaymentDeclined(
                    f"cannot refund a payment that is {payment.state}", reason="invalid_state"
                )
            if remaining == 0:
                raise PaymentDeclined("payment already fully refunded", reason="already_refunded")
            if not 0 < to_refund <= remaining:
                raise PaymentDeclined(
                    f"refund of {to_refund} exceeds the {remaining} left to refund",
                    reason="amount_too_large",
                )
        except PaymentDeclined as declined:
            self._remember("refund", idempotency_key, fingerprint, declined)
            raise
        payment.refunded += to_refund
        refund = Refund(
            provider_refund_id=f"re_test_{_digest(idempotency_key)}",
            provider_payment_id=payment_id,
            amount=to_refund,
            currency=payment.currency,
            status="succeeded",
        )
        payment.refunds.append(refund.provider_refund_id)
        self._remember("refund", idempotency_key, fingerprint, refund)
        return refund

    # --- webhooks -----------------------------------------------------------------------

    def signed_webhook(self, event: WebhookEvent, *, timestamp: int | None = None) -> SignedWebhook:
        """Build the body and headers the provider would send for ``event``, correctly signed.

        Tests use it to play the shopper completing 3-D Secure (status ``authorized``/``failed``)
        or to feed the webhook route; ``timestamp`` lets a test send a stale one.
        """
        body = {
            "id": event.provider_event_id,
            "type": event.type,
            "payment_id": event.payment_id,
            "status": event.status,
            "amount": event.amount,
        }
        payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        signed_at = int(self._clock()) if timestamp is None else timestamp
        signature = _sign(self._webhook_secret, payload, signed_at)
        return SignedWebhook(
            payload=payload,
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: f"t={signed_at},v1={signature}",
            },
        )

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """Verify the signature, parse the event and apply it to the payment it is about.

        Applying it is what makes ``tok_3ds`` completable: the webhook *is* the provider's word
        that the shopper passed (or failed) the challenge.
        """
        self._verify(payload, headers)
        try:
            body = json.loads(payload)
            status = body.get("status")
            if status is not None and status not in _EVENT_STATUSES:
                raise ValueError(f"unknown status {status!r}")
            amount = body.get("amount")
            event = WebhookEvent(
                provider_event_id=str(body["id"]),
                type=str(body["type"]),
                payment_id=body.get("payment_id"),
                status=status,
                amount=int(amount) if amount is not None else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise InvalidWebhook(f"malformed test webhook: {error}") from None
        self._apply(event)
        return event

    def _verify(self, payload: bytes, headers: Mapping[str, str]) -> None:
        lowered = {name.lower(): value for name, value in headers.items()}
        header = lowered.get(SIGNATURE_HEADER.lower())
        if not header:
            raise InvalidWebhook(f"missing {SIGNATURE_HEADER} header")
        parts: dict[str, list[str]] = {}
        for item in header.split(","):
            key, _, value = item.strip().partition("=")
            parts.setdefault(key, []).append(value)
        try:
            timestamp = int(parts["t"][0])
        except (KeyError, ValueError):
            raise InvalidWebhook("signature header has no timestamp") from None
        expected = _sign(self._webhook_secret, payload, timestamp)
        # compare_digest: no timing oracle on the signature.
        if not any(hmac.compare_digest(expected, given) for given in parts.get("v1", [])):
            raise InvalidWebhook("signature does not match")
        if abs(self._clock() - timestamp) > WEBHOOK_TOLERANCE_S:
            raise InvalidWebhook("signature timestamp outside the tolerance")

    def _apply(self, event: WebhookEvent) -> None:
        payment = self._payments.get(event.payment_id or "")
        if payment is None or payment.state != "requires_action":
            return
        status: PaymentEventStatus | None = event.status
        if status == "authorized":
            payment.state = "authorized"
        elif status in ("failed", "canceled"):
            payment.state = "declined" if status == "failed" else "voided"
