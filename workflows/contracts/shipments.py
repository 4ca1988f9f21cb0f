"""A vendor's part of an order (``ShipmentWorkflow``, a child of the order's workflow): ids,
names, statuses, inputs and outputs, and the interface of its activities
(``activities.shipments``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from temporalio import activity

from workflows.contracts.timings import CheckoutTimings

SHIPMENT_WORKFLOW = "ShipmentWorkflow"

#: Signal: something changed in the database (accepted, shipped, tracking news): look now.
NUDGE_SIGNAL = "nudge"
#: Query: the part as last read (``ShipmentState``).
STATE_QUERY = "state"


def shipment_workflow_id(order_id: str, vendor_id: str) -> str:
    return f"shipment:{order_id}:{vendor_id}"


class ShipmentStatus(enum.StrEnum):
    """A part's status as stored (``shipments.status``)."""

    AWAITING_ACCEPTANCE = "awaiting_acceptance"  # the vendor has been notified
    ACCEPTED = "accepted"  # the vendor will ship it
    LABEL_CREATED = "label_created"  # a carrier label / tracking number exists
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    EXCEPTION = "exception"  # the carrier reports a problem; may go on to be delivered
    CANCELLED = "cancelled"  # not accepted in time, or every line cancelled


#: Statuses a part never leaves: its workflow ends there.
DONE: frozenset[ShipmentStatus] = frozenset({ShipmentStatus.DELIVERED, ShipmentStatus.CANCELLED})


@dataclass(frozen=True)
class ShipmentWorkflowInput:
    order_id: str
    vendor_id: str
    timings: CheckoutTimings
    accept_within_s: float = 172_800.0
    recheck_s: float = 3600.0


@dataclass(frozen=True)
class OpenShipmentInput:
    order_id: str
    vendor_id: str
    accept_within_s: float


@dataclass(frozen=True)
class ShipmentRef:
    order_id: str
    vendor_id: str


@dataclass(frozen=True)
class ShipmentState:
    status: str  # a ShipmentStatus value
    accept_by: str  # ISO 8601
    shipped: bool
    # Seconds until accept_by, by the application's clock when read (None in histories
    # recorded before it existed: the workflow then measures with its own clock).
    accept_in_s: float | None = None


@dataclass(frozen=True)
class UnacceptedOutput:
    cancelled: bool
    refund_id: str | None


@dataclass(frozen=True)
class CompletionInput:
    order_id: str


@dataclass(frozen=True)
class CompletionOutput:
    complete_at: str | None  # ISO 8601; None: nothing was delivered
    # Seconds until complete_at by the application's clock (None in older histories).
    complete_in_s: float | None = None


class ShipmentActivities:
    """Steps of ``ShipmentWorkflow`` and the order's end; implemented by
    ``activities.shipments.ShipmentActivities``."""

    @activity.defn
    async def open_shipment(self, params: OpenShipmentInput) -> ShipmentState:
        """Create the shipment once, with its acceptance deadline."""
        raise NotImplementedError

    @activity.defn
    async def shipment_state(self, ref: ShipmentRef) -> ShipmentState:
        raise NotImplementedError

    @activity.defn
    async def cancel_unaccepted(self, ref: ShipmentRef) -> UnacceptedOutput:
        """The deadline passed: cancel the part and create its refund, in one transaction."""
        raise NotImplementedError

    @activity.defn
    async def cancel_unshipped_parts(self, params: CompletionInput) -> bool:
        """Before a paid order is cancelled: every part cancelled, unless one has shipped."""
        raise NotImplementedError

    @activity.defn
    async def completion_date(self, params: CompletionInput) -> CompletionOutput:
        """When the order is complete: the last delivery plus its vendor's return window."""
        raise NotImplementedError

    @activity.defn
    async def complete_order(self, params: CompletionInput) -> bool:
        raise NotImplementedError
