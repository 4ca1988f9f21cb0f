"""What goes in and out of the order workflow: its input, signals, updates and queries.

Plain dataclasses with no I/O, so the API can import them to start, signal and update orders
(DESIGN.md: api/ imports workflow classes and their input types, nothing else).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ORDER_WORKFLOW = "OrderWorkflow"
SHIPMENT_WORKFLOW = "ShipmentWorkflow"

#: Signal carrying a verified provider webhook (sent by ``POST /webhooks/{provider}``).
PAYMENT_EVENT_SIGNAL = "payment_event"


def order_workflow_id(order_id: str) -> str:
    return f"order:{order_id}"


def shipment_workflow_id(order_id: str, vendor_id: str) -> str:
    return f"shipment:{order_id}:{vendor_id}"


@dataclass(frozen=True)
class CheckoutTimings:
    """Every duration the saga uses, from settings, so tests can shrink them to seconds."""

    payment_window_s: float = 1800.0
    max_payment_attempts: int = 3
    activity_timeout_s: float = 30.0
    retry_initial_s: float = 1.0
    retry_max_s: float = 60.0
    payment_retry_max_attempts: int = 8
    shipment_accept_within_s: float = 172_800.0
    tracking_recheck_s: float = 3600.0


@dataclass(frozen=True)
class OrderWorkflowInput:
    """Start an order's saga. The order row (prices frozen) exists already: the API wrote it
    in the same transaction that took the Idempotency-Key and counted the promotion uses."""

    order_id: str
    customer_id: str | None
    vendor_ids: list[str]
    grand_total: int
    currency: str
    payment_provider: str
    # Kept out of the workflow's repr; still in its history, like any input. It is a
    # provider token (tok_..., pm_...), never card data. None: the API stored the order but
    # never got to start its workflow, and the worker's reconciler started it to undo it.
    payment_token: str | None = field(repr=False)
    timings: CheckoutTimings = field(default_factory=CheckoutTimings)


@dataclass(frozen=True)
class PaymentEventSignal:
    """A verified provider webhook about one of the order's payments."""

    provider: str
    provider_payment_id: str
    status: str  # commerce.payments.PaymentEventStatus
    event_id: str
    amount: int | None = None


@dataclass(frozen=True)
class RetryPaymentRequest:
    """The shopper pays again after a decline (or a failed challenge), maybe another way."""

    payment_provider: str
    payment_token: str = field(repr=False)


@dataclass(frozen=True)
class CancelOrderRequest:
    reason: str
    by: str  # "customer" | "admin" | "operations"
    actor_id: str | None = None


@dataclass(frozen=True)
class CancelOrderResult:
    accepted: bool
    status: str


@dataclass(frozen=True)
class PaymentView:
    """The current payment attempt as the storefront needs it."""

    attempt: int
    provider: str
    status: str  # pending | requires_action | authorized | captured | declined | failed
    client_secret: str | None = field(default=None, repr=False)
    approval_url: str | None = None
    decline_code: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class OrderStatusView:
    """The workflow's live state: the ``status`` query and the checkout updates answer it."""

    order_id: str
    status: str
    payment: PaymentView | None
    attempts_left: int
    payment_deadline: str | None  # ISO 8601, while waiting for payment
    cancel_reason: str | None = None
