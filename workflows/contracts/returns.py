"""Returns (``ReturnWorkflow``, ``return:{return_id}``): ids, names, statuses, inputs and
outputs, and the interface of its activities (``activities.returns``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from temporalio import activity

from workflows.contracts.timings import CheckoutTimings

RETURN_WORKFLOW = "ReturnWorkflow"
#: Signal: the API moved the return in the database; the workflow looks again.
RETURN_CHANGED_SIGNAL = "return_changed"
#: Query: what the workflow waits for now (``ReturnProgress``).
PROGRESS_QUERY = "progress"
#: ``ApplicationError`` type of ``create_return_refund`` when nothing is left to refund.
NOT_REFUNDABLE = "ReturnNotRefundable"


def return_workflow_id(return_id: str) -> str:
    return f"return:{return_id}"


class ReturnStatus(enum.StrEnum):
    """A return's status as stored (``returns.status``)."""

    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    RECEIVED = "received"
    REFUNDED = "refunded"  # inspected, refund issued
    CANCELLED = "cancelled"  # withdrawn by the shopper before it was received


@dataclass(frozen=True)
class ReturnWorkflowInput:
    return_id: str
    respond_by: str  # ISO 8601 with its offset: when the return is approved automatically
    timings: CheckoutTimings = field(default_factory=CheckoutTimings)
    # How often the state is re-read without a nudge (a nudge lost while Temporal was away).
    recheck_s: float = 3600.0
    # Handed to the refund (commission given back); None: the worker's setting.
    commission_bp: int | None = None


@dataclass(frozen=True)
class ReturnRef:
    return_id: str


@dataclass(frozen=True)
class ReturnState:
    """The return as stored."""

    return_id: str
    status: str  # a ReturnStatus value
    refund_id: str | None = None
    refund_status: str | None = None  # a RefundStatus value
    auto_approved: bool = False
    # Seconds until respond_by, by the application's clock when read (None in histories
    # recorded before it existed: the workflow then measures with its own clock).
    respond_in_s: float | None = None


@dataclass(frozen=True)
class ReturnWorkflowResult:
    return_id: str
    status: str  # rejected | cancelled | refunded | received (its refund failed or was refused)
    refund_id: str | None = None
    auto_approved: bool = False


@dataclass(frozen=True)
class ReturnProgress:
    """The ``progress`` query: what the workflow waits for now."""

    return_id: str
    step: str  # starting | awaiting_decision | approving | awaiting_parcel | refunding | done
    status: str  # a ReturnStatus value


class ReturnActivities:
    """Steps of ``ReturnWorkflow``; implemented by ``activities.returns.ReturnActivities``."""

    @activity.defn
    async def read_return(self, ref: ReturnRef) -> ReturnState:
        raise NotImplementedError

    @activity.defn
    async def auto_approve_return(self, ref: ReturnRef) -> ReturnState:
        """The vendor did not answer by ``respond_by``: approved (a conditional update)."""
        raise NotImplementedError

    @activity.defn
    async def create_return_refund(self, ref: ReturnRef) -> str:
        """The received return's refund (created once, keyed by the return); its id."""
        raise NotImplementedError

    @activity.defn
    async def complete_return(self, ref: ReturnRef) -> ReturnState:
        """``received`` -> ``refunded`` once its refund succeeded."""
        raise NotImplementedError
