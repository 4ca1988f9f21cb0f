"""The payment provider contract: one small Protocol, frozen dataclasses in and out, three errors.

Amounts are integer minor units (cents) with an ISO 4217 currency, as everywhere in Emporium.
Every call that moves money takes an idempotency key: repeating a call with the same key (a
retried Temporal activity, a compensation run twice) returns the first result and never charges,
captures or refunds twice. Reusing a key with *different* arguments is a programming error and
raises ``ValueError``.

Errors, and what an activity does with them:

* ``PaymentDeclined`` - terminal: the card or the provider refused (a decline on capture, a refund
  above what was captured, a capture after a void). Becomes
  ``ApplicationError(type="CardDeclined", non_retryable=True)``. Note that ``authorize`` reports a
  card decline as ``Authorization(status="declined")`` rather than raising, so the workflow can
  tell the shopper why.
* ``TransientPaymentError`` - retryable: network failure, provider 5xx, rate limit. Let Temporal
  retry with the same idempotency key.
* ``InvalidWebhook`` - a webhook whose signature does not verify (or is malformed); the webhook
  route answers 400 and stores nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol, runtime_checkable

from commerce.errors import DomainError

AuthorizationStatus = Literal["authorized", "requires_action", "declined"]
RefundStatus = Literal["succeeded", "pending", "failed"]
#: A webhook's meaning, normalised across providers. ``None`` on a ``WebhookEvent`` means the
#: event type is not one the platform acts on (store it, acknowledge it, do nothing else).
#: ``approved``: the buyer approved a redirect payment (PayPal); it must now be authorized.
PaymentEventStatus = Literal[
    "approved", "authorized", "captured", "failed", "canceled", "refunded", "disputed"
]


class PaymentError(Exception):
    """Base class of every error a payment provider raises on purpose."""


class PaymentDeclined(DomainError, PaymentError):
    """The provider refused the operation for good; retrying with the same input cannot help.

    ``reason`` is a stable machine-readable code: the provider's decline code for a card decline
    (``card_declined``, ``insufficient_funds``...), or one of ours for a refused state change
    (``invalid_state``, ``amount_too_large``, ``already_captured``...).
    """

    status, code, title = 402, "payment_declined", "The payment was declined"

    def __init__(self, detail: str | None = None, *, reason: str = "card_declined") -> None:
        super().__init__(detail, reason=reason)
        self.reason = reason


class TransientPaymentError(PaymentError):
    """The provider could not be reached or asked us to slow down; retry with the same key."""


class InvalidWebhook(DomainError, PaymentError):
    """A webhook that fails signature verification or cannot be parsed."""

    status, code, title = 400, "invalid_webhook", "Invalid webhook"


@dataclass(frozen=True)
class AuthorizeRequest:
    """Reserve ``amount`` on the shopper's payment method, to be captured later."""

    order_id: str
    amount: int
    currency: str
    # The opaque token from the storefront (a Stripe PaymentMethod id, ``tok_ok`` for the test
    # provider). Not card data, but still kept out of reprs and therefore out of logs.
    payment_token: str = field(repr=False)
    idempotency_key: str
    customer_email: str | None = field(default=None, repr=False)
    description: str | None = None

    def __post_init__(self) -> None:
        if self.amount <= 0:
            raise ValueError("amount must be a positive number of minor units")
        if len(self.currency) != 3 or not self.currency.isalpha():
            raise ValueError("currency must be an ISO 4217 code")
        if not self.idempotency_key:
            raise ValueError("idempotency_key is required")


@dataclass(frozen=True)
class Authorization:
    """The outcome of ``authorize``.

    ``requires_action``: the shopper must complete a challenge (3-D Secure) in the browser with
    ``client_secret`` (Stripe.js) or at ``approval_url`` (redirect providers); the provider then
    sends a webhook with status ``authorized`` or ``failed``. ``provider_payment_id`` is ``None``
    only when a decline happened before the provider created anything to refer to.
    """

    status: AuthorizationStatus
    provider_payment_id: str | None
    amount: int
    currency: str
    client_secret: str | None = field(default=None, repr=False)
    approval_url: str | None = None
    decline_code: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class Capture:
    """Money actually taken: ``amount`` may be less than authorized (the rest is released)."""

    provider_payment_id: str
    amount: int
    currency: str


@dataclass(frozen=True)
class Refund:
    provider_refund_id: str
    provider_payment_id: str
    amount: int
    currency: str
    status: RefundStatus


@dataclass(frozen=True)
class WebhookEvent:
    """A verified provider notification.

    ``provider_event_id`` is unique per provider: the webhook route stores it under a unique
    constraint so a replayed delivery is a no-op. ``type`` is the provider's own event type
    (``payment_intent.succeeded``); ``status`` is its normalised meaning.
    """

    provider_event_id: str
    type: str
    payment_id: str | None
    status: PaymentEventStatus | None
    amount: int | None = None
    #: When the provider says the event happened (its lag to us is a metric), if it says.
    occurred_at: datetime | None = None


def event_time(value: object) -> datetime | None:
    """A provider's event time, as unix seconds (Stripe) or ISO 8601 (PayPal); ``None``
    when absent or unreadable (it only feeds a metric: never a reason to refuse an event)."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str) and value:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


@runtime_checkable
class PaymentProvider(Protocol):
    """What the platform needs from a payment provider (Stripe, PayPal, the built-in test one)."""

    name: str

    async def authorize(self, request: AuthorizeRequest) -> Authorization:
        """Reserve the money without taking it; card declines come back as ``declined``."""
        ...

    async def capture(
        self, payment_id: str, *, amount: int | None = None, idempotency_key: str
    ) -> Capture:
        """Take ``amount`` (default: all) of an authorized payment; the rest is released."""
        ...

    async def void(self, payment_id: str, *, idempotency_key: str) -> None:
        """Release an authorization that was not captured (a no-op if already released)."""
        ...

    async def refund(
        self,
        payment_id: str,
        *,
        amount: int | None = None,
        currency: str | None = None,
        idempotency_key: str,
    ) -> Refund:
        """Give back ``amount`` (default: all that remains) of a captured payment.
        ``currency`` (upper case, the payment's) spares a provider looking it up to convert
        ``amount`` to its own units."""
        ...

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """Verify the signature over the raw body and parse it; raise ``InvalidWebhook``."""
        ...
