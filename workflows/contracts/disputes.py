"""Disputes (chargebacks; ``DisputeWorkflow``, ``dispute:{dispute_id}``): ids, names,
statuses, inputs and outputs, and the interface of its activities (``activities.disputes``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from temporalio import activity

from workflows.contracts.timings import CheckoutTimings

DISPUTE_WORKFLOW = "DisputeWorkflow"
#: Signal carrying the dispute's outcome (``DisputeOutcome``).
OUTCOME_SIGNAL = "outcome"
#: Query: where the workflow is (``DisputeView``).
STATUS_QUERY = "status"


def dispute_workflow_id(dispute_id: str) -> str:
    return f"dispute:{dispute_id}"


class DisputeStatus(enum.StrEnum):
    """A dispute's status as stored (``disputes.status``)."""

    OPEN = "open"
    WON = "won"
    LOST = "lost"


#: The outcomes a dispute can end with.
OUTCOMES: tuple[str, ...] = (DisputeStatus.WON.value, DisputeStatus.LOST.value)


@dataclass(frozen=True)
class DisputeWorkflowInput:
    dispute_id: str
    order_id: str
    # From the start to the evidence deadline (``disputes.evidence_due_at``), in seconds.
    evidence_within_s: float
    # After the deadline: how often the stored status is looked at, for an outcome whose
    # signal was lost.
    recheck_s: float = 86_400.0
    timings: CheckoutTimings = field(default_factory=CheckoutTimings)
    # Set when the workflow continues as new after the deadline: nothing to announce again.
    reminded: bool = False


@dataclass(frozen=True)
class DisputeOutcome:
    """How the dispute ended; sent once the outcome is stored."""

    outcome: str  # won | lost
    source: str = "operations"  # operations | webhook


@dataclass(frozen=True)
class DisputeRef:
    dispute_id: str


@dataclass(frozen=True)
class DisputeNotified:
    recipients: int  # emails queued now (0 when an earlier try did it)
    status: str = "open"  # as stored: decided already when the workflow started late


@dataclass(frozen=True)
class DisputeState:
    status: str  # a DisputeStatus value


@dataclass(frozen=True)
class SettleDisputeInput:
    dispute_id: str
    outcome: str  # won | lost: used if the stored dispute is still open


@dataclass(frozen=True)
class DisputeSettled:
    status: str  # won | lost: what is stored (the first outcome recorded wins)
    ledger_entries: int  # DISPUTE entries written now
    recipients: int  # vendor emails queued now


@dataclass(frozen=True)
class DisputeView:
    """The ``status`` query: where the workflow is."""

    dispute_id: str
    phase: str  # announcing | awaiting_evidence | awaiting_outcome | settling | closed
    outcome: str | None
    evidence_due_at: str | None  # ISO 8601
    reminded: bool


class DisputeActivities:
    """Steps of ``DisputeWorkflow``; implemented by ``activities.disputes.DisputeActivities``."""

    @activity.defn
    async def record_dispute_opened(self, ref: DisputeRef) -> DisputeNotified:
        """Put the dispute on the order's timeline; email the vendors and operations."""
        raise NotImplementedError

    @activity.defn
    async def remind_dispute_deadline(self, ref: DisputeRef) -> DisputeState:
        """The evidence deadline passed: remind operations once, if still open."""
        raise NotImplementedError

    @activity.defn
    async def read_dispute_status(self, ref: DisputeRef) -> DisputeState:
        """The stored status: an outcome recorded whose signal did not arrive."""
        raise NotImplementedError

    @activity.defn
    async def settle_dispute(self, params: SettleDisputeInput) -> DisputeSettled:
        """Record the outcome; lost: debit the vendors; either way tell them."""
        raise NotImplementedError
