"""Refunds (``RefundWorkflow``, ``refund:{refund_id}``): ids, statuses, inputs and outputs,
and the interface of its activities (``activities.refunds``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from temporalio import activity

from workflows.contracts.timings import CheckoutTimings

REFUND_WORKFLOW = "RefundWorkflow"
#: Query: where the refund is now (``RefundProgress``).
PROGRESS_QUERY = "progress"


def refund_workflow_id(refund_id: str) -> str:
    return f"refund:{refund_id}"


class RefundStatus(enum.StrEnum):
    """A refund's status as stored (``refunds.status``)."""

    PENDING = "pending"  # counted against the payment, not yet confirmed by the provider
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the provider refused for good; the amount is available again


class RefundSource(enum.StrEnum):
    """Why a refund exists."""

    CANCELLATION = "cancellation"  # the shopper cancelled unshipped lines
    VENDOR_CANCELLATION = "vendor_cancellation"  # the vendor cannot fulfil lines
    UNACCEPTED = "unaccepted"  # the vendor missed the acceptance deadline
    RETURN = "return"
    GOODWILL = "goodwill"  # an admin's decision


@dataclass(frozen=True)
class RefundWorkflowInput:
    refund_id: str
    timings: CheckoutTimings = field(default_factory=CheckoutTimings)
    # The platform's commission in basis points (given back on what is refunded); None: the
    # worker's setting (``platform_commission_bp``).
    commission_bp: int | None = None


@dataclass(frozen=True)
class RefundWorkflowResult:
    refund_id: str
    status: str  # succeeded | failed
    amount: int
    currency: str
    provider_refund_id: str | None = None
    failure_reason: str | None = None


@dataclass(frozen=True)
class RefundProgress:
    """The ``progress`` query: where the refund is now."""

    refund_id: str
    step: str  # starting | refunding | restocking | ledger | credit_note | notifying | done
    status: str  # a RefundStatus value


@dataclass(frozen=True)
class RefundLineInput:
    order_line_id: str
    quantity: int


@dataclass(frozen=True)
class CreateRefundInput:
    """A refund another workflow decides on (a vendor missed its deadline, a return came
    back); ``request_key`` makes a retried activity find the refund it created."""

    order_id: str
    source: str  # a RefundSource value
    reason: str
    lines: list[RefundLineInput] = field(default_factory=list)
    amount: int | None = None
    vendor_id: str | None = None
    restock: bool = False
    request_key: str | None = None
    requested_by: str | None = None


@dataclass(frozen=True)
class RefundRef:
    refund_id: str


@dataclass(frozen=True)
class RefundFacts:
    """What the workflow needs to know about its refund."""

    refund_id: str
    order_id: str
    status: str  # a RefundStatus value
    amount: int
    currency: str
    amount_text: str  # "12.00 EUR"
    restock: bool


@dataclass(frozen=True)
class ProviderRefundOutput:
    status: str  # succeeded | failed
    provider_refund_id: str | None = None
    failure_reason: str | None = None


@dataclass(frozen=True)
class RecordRefundInput:
    refund_id: str
    commission_bp: int | None = None


class RefundActivities:
    """Steps of ``RefundWorkflow``, and ``create_refund`` for workflows that decide on one;
    implemented by ``activities.refunds.RefundActivities``."""

    @activity.defn
    async def create_refund(self, params: CreateRefundInput) -> str:
        """Create (or, with the same request key, find) a pending refund; its id."""
        raise NotImplementedError

    @activity.defn
    async def describe_refund(self, ref: RefundRef) -> RefundFacts:
        raise NotImplementedError

    @activity.defn
    async def refund_at_provider(self, ref: RefundRef) -> ProviderRefundOutput:
        """Refund at the payment provider (keyed by the refund) and record the outcome."""
        raise NotImplementedError

    @activity.defn
    async def restock_refund(self, ref: RefundRef) -> int:
        """Put the refunded units back in stock, once per refund line; units put back now."""
        raise NotImplementedError

    @activity.defn
    async def record_refund_in_ledger(self, params: RecordRefundInput) -> int:
        """Debit the vendors' share of a succeeded refund (keyed entries)."""
        raise NotImplementedError

    @activity.defn
    async def issue_refund_credit_notes(self, ref: RefundRef) -> int:
        """One credit note per vendor share; how many the refund has."""
        raise NotImplementedError

    @activity.defn
    async def notify_refund_issued(self, ref: RefundRef) -> bool:
        """Queue the shopper's "refund issued" email, once."""
        raise NotImplementedError
