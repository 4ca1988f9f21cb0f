"""The order saga's contract: ids, names, statuses, what goes in and out of ``OrderWorkflow``
and of its activities, and the interface those activities implement (``activities.orders``).

The API starts, signals and updates orders with these names and dataclasses; the workflow calls
its steps through ``OrderActivities``' methods; the worker registers their implementations.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from temporalio import activity

from workflows.contracts.timings import CheckoutTimings

ORDER_WORKFLOW = "OrderWorkflow"

#: Signal carrying a verified provider webhook (sent by ``POST /webhooks/{provider}``).
PAYMENT_EVENT_SIGNAL = "payment_event"
#: Signal from a vendor's ``ShipmentWorkflow``: its part has shipped (argument: vendor id).
SHIPMENT_SHIPPED_SIGNAL = "shipment_shipped"
#: Update answering once the first payment outcome is known (``POST /checkout`` waits on it).
CHECKOUT_OUTCOME_UPDATE = "checkout_outcome"
#: Update: pay again after a decline (``RetryPaymentRequest``).
RETRY_PAYMENT_UPDATE = "retry_payment"
#: Update: the shopper is back from the provider's approval page.
SHOPPER_RETURNED_UPDATE = "shopper_returned"
#: Update: cancel before shipping (``CancelOrderRequest`` -> ``CancelOrderResult``).
CANCEL_UPDATE = "cancel"
#: Query: the live state (``OrderStatusView``).
STATUS_QUERY = "status"


def order_workflow_id(order_id: str) -> str:
    return f"order:{order_id}"


class OrderStatus(enum.StrEnum):
    """An order's status as stored (``orders.status``) and in the ``OrderStatus`` search
    attribute. The workflow's live view may also say ``compensating`` (see ``LIVE_ONLY``)."""

    PENDING = "pending"  # placed, inventory being reserved
    AWAITING_PAYMENT = "awaiting_payment"  # waiting for authorization / customer action
    CONFIRMED = "confirmed"  # paid (captured), stock committed
    PAYMENT_FAILED = "payment_failed"
    CANCELLED = "cancelled"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    COMPLETED = "completed"


#: The forward path an order moves along (a status never moves back along it).
PROGRESSION: tuple[OrderStatus, ...] = (
    OrderStatus.PENDING,
    OrderStatus.AWAITING_PAYMENT,
    OrderStatus.CONFIRMED,
    OrderStatus.PARTIALLY_SHIPPED,
    OrderStatus.SHIPPED,
    OrderStatus.DELIVERED,
    OrderStatus.COMPLETED,
)
#: Statuses from which a shopper or admin may still cancel (nothing has shipped).
CANCELLABLE: frozenset[OrderStatus] = frozenset(
    {OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT, OrderStatus.CONFIRMED}
)
#: Statuses an order never leaves.
FINAL: frozenset[OrderStatus] = frozenset(
    {OrderStatus.CANCELLED, OrderStatus.PAYMENT_FAILED, OrderStatus.COMPLETED}
)
#: The workflow's live status while it undoes an order (never stored).
COMPENSATING = "compensating"


class PaymentStatus(enum.StrEnum):
    """A payment attempt's status as stored (``payments.status``); the live view's
    ``PaymentView.status`` is one of these."""

    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    VOIDED = "voided"
    DECLINED = "declined"
    FAILED = "failed"


# --- the workflow's input, signals, updates and queries ----------------------------------------


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
    status: str  # an OrderStatus value, or COMPENSATING


@dataclass(frozen=True)
class PaymentView:
    """The current payment attempt as the storefront needs it."""

    attempt: int
    provider: str
    status: str  # a PaymentStatus value (pending | requires_action | authorized | ...)
    client_secret: str | None = field(default=None, repr=False)
    approval_url: str | None = None
    decline_code: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class OrderStatusView:
    """The workflow's live state: the ``status`` query and the checkout updates answer it."""

    order_id: str
    status: str  # an OrderStatus value, or COMPENSATING
    payment: PaymentView | None
    attempts_left: int
    payment_deadline: str | None  # ISO 8601, while waiting for payment
    cancel_reason: str | None = None


# --- the activities' input and output ----------------------------------------------------------


@dataclass(frozen=True)
class OrderRef:
    order_id: str


@dataclass(frozen=True)
class ReserveInventoryOutput:
    units: int


@dataclass(frozen=True)
class SetOrderStatusInput:
    order_id: str
    status: str  # an OrderStatus value
    event: str
    detail: str | None = None


@dataclass(frozen=True)
class AuthorizePaymentInput:
    order_id: str
    attempt: int
    provider: str
    payment_token: str = field(repr=False)


@dataclass(frozen=True)
class PaymentRef:
    order_id: str
    attempt: int


@dataclass(frozen=True)
class AuthorizationOutput:
    status: str  # authorized | requires_action | declined
    provider_payment_id: str | None
    client_secret: str | None = field(default=None, repr=False)
    approval_url: str | None = None
    decline_code: str | None = None
    message: str | None = None
    # Webhooks about this payment that arrived before we knew its id (stored, not signalled).
    early_events: list[PaymentEventSignal] = field(default_factory=list)


@dataclass(frozen=True)
class PaymentOutcomeInput:
    order_id: str
    attempt: int
    status: str  # authorized | declined
    decline_code: str | None = None


@dataclass(frozen=True)
class CaptureOutput:
    amount: int
    currency: str


@dataclass(frozen=True)
class CompensatePaymentInput:
    order_id: str
    attempt: int
    payment_token: str = field(repr=False)


@dataclass(frozen=True)
class CompensatePaymentOutput:
    action: str  # voided | refunded | nothing


@dataclass(frozen=True)
class ConfirmOrderOutput:
    estimated_delivery_earliest: str | None  # ISO dates
    estimated_delivery_latest: str | None


@dataclass(frozen=True)
class CloseOrderInput:
    order_id: str
    status: str  # payment_failed | cancelled
    reason: str
    paid: bool


@dataclass(frozen=True)
class NotifyVendorInput:
    order_id: str
    vendor_id: str


@dataclass(frozen=True)
class NotifyVendorOutput:
    recipients: int


class OrderActivities:
    """The order saga's steps; implemented by ``activities.orders.OrderActivities``."""

    @activity.defn
    async def reserve_inventory(self, ref: OrderRef) -> ReserveInventoryOutput:
        """Hold every line's units under the order's key, all or nothing."""
        raise NotImplementedError

    @activity.defn
    async def commit_inventory(self, ref: OrderRef) -> None:
        """Reserved units become sold."""
        raise NotImplementedError

    @activity.defn
    async def restore_inventory(self, ref: OrderRef) -> None:
        """Compensation of reserve and commit: held units released, sold ones put back."""
        raise NotImplementedError

    @activity.defn
    async def release_promotions(self, ref: OrderRef) -> int:
        """Compensation: the promotion uses counted at checkout are given back."""
        raise NotImplementedError

    @activity.defn
    async def set_order_status(self, params: SetOrderStatusInput) -> bool:
        """Move the order forward along ``PROGRESSION``; a retry finds it moved."""
        raise NotImplementedError

    @activity.defn
    async def confirm_order(self, ref: OrderRef) -> ConfirmOrderOutput:
        """Paid and committed: confirmed, with its ledger entries, invoices and email."""
        raise NotImplementedError

    @activity.defn
    async def close_order(self, params: CloseOrderInput) -> bool:
        """The end of an order that will not go ahead, after its compensations ran."""
        raise NotImplementedError

    @activity.defn
    async def authorize_payment(self, params: AuthorizePaymentInput) -> AuthorizationOutput:
        """Authorize the order's total; a decline is a result, not an error."""
        raise NotImplementedError

    @activity.defn
    async def authorize_approved(self, ref: PaymentRef) -> AuthorizationOutput:
        """A redirect payment (PayPal) the buyer approved: now authorize it."""
        raise NotImplementedError

    @activity.defn
    async def record_payment_outcome(self, params: PaymentOutcomeInput) -> None:
        """What the provider's webhook said about a payment that needed the shopper."""
        raise NotImplementedError

    @activity.defn
    async def capture_payment(self, ref: PaymentRef) -> CaptureOutput:
        """Take the authorized money; a refusal (``CaptureRefused``) is final."""
        raise NotImplementedError

    @activity.defn
    async def compensate_payment(self, params: CompensatePaymentInput) -> CompensatePaymentOutput:
        """Undo one attempt: void an authorization, refund a capture, nothing for a decline."""
        raise NotImplementedError

    @activity.defn
    async def notify_vendor(self, params: NotifyVendorInput) -> NotifyVendorOutput:
        """Tell the vendor what to ship, once per order and vendor."""
        raise NotImplementedError
