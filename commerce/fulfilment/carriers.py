"""Carriers that buy labels and call back with tracking: the built-in simulated one.

``SimulatedCarrier`` is the embedded default, like the test payment provider: it prices from
the vendor's own rate tables, "buys" labels with deterministic tracking numbers (idempotent by
shipment), and signs the tracking webhooks it would send with HMAC-SHA256, so the whole
fulfilment path can be shown in dev and in tests. A real carrier (DHL, UPS, EasyPost...) is
another class with the same ``Carrier`` shape, chosen by settings.
"""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime

from commerce.errors import DomainError
from commerce.fulfilment.shipping import Label, LabelRequest, TrackingEvent
from core import webhook_signatures
from core.clock import SYSTEM_CLOCK, Clock

SIGNATURE_HEADER = "Emporium-Carrier-Signature"
WEBHOOK_TOLERANCE_S = 300


class TrackingStatus(enum.StrEnum):
    """What a carrier says of a parcel (its webhook's ``status``)."""

    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    EXCEPTION = "exception"


TRACKING_STATUSES = frozenset(TrackingStatus)


class InvalidCarrierWebhook(DomainError):
    status, code, title = 400, "invalid_carrier_webhook", "Invalid carrier webhook"


class SimulatedCarrier:
    """Labels and signed tracking webhooks without a real carrier (dev and tests)."""

    name = "simulated"

    def __init__(self, *, webhook_secret: str, clock: Clock = SYSTEM_CLOCK) -> None:
        self._secret = webhook_secret
        self._clock = clock

    async def create_label(self, request: LabelRequest) -> Label:
        """The same shipment always gets the same label: a retry buys nothing twice."""
        digest = hashlib.sha256(f"label:{request.shipment_id}".encode()).hexdigest()
        number = "SIM" + str(int(digest[:15], 16)).zfill(18)[:18]
        return Label(
            carrier=self.name,
            tracking_number=number,
            label_url=f"https://labels.simulated-carrier.invalid/{number}.pdf",
        )

    def signed_webhook(
        self,
        *,
        tracking_number: str,
        status: str,
        event_id: str | None = None,
        detail: str | None = None,
        location: str | None = None,
        estimated_delivery: date | None = None,
        timestamp: int | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers the carrier would POST, correctly signed."""
        signed_at = int(self._clock.now().timestamp()) if timestamp is None else timestamp
        body = {
            "id": event_id or f"trk_{uuid.uuid4().hex}",
            "tracking_number": tracking_number,
            "status": status,
            "occurred_at": datetime.fromtimestamp(signed_at, UTC).isoformat(),
            "detail": detail,
            "location": location,
            "estimated_delivery": estimated_delivery.isoformat() if estimated_delivery else None,
        }
        payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        return payload, {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: webhook_signatures.header(self._secret, payload, signed_at),
        }

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> TrackingEvent:
        """Verify the signature (constant time, within the tolerance), then parse."""
        lowered = {name.lower(): value for name, value in headers.items()}
        refused = webhook_signatures.problem(
            self._secret,
            body,
            lowered.get(SIGNATURE_HEADER.lower()),
            now=self._clock.now().timestamp(),
            tolerance_s=WEBHOOK_TOLERANCE_S,
        )
        if refused is not None:
            raise InvalidCarrierWebhook(f"Refused: {refused}.")
        try:
            data = json.loads(body)
            status = str(data["status"])
            if status not in TRACKING_STATUSES:
                raise ValueError(f"unknown status {status!r}")
            estimate = data.get("estimated_delivery")
            return TrackingEvent(
                carrier=self.name,
                event_id=str(data["id"])[:120],
                tracking_number=str(data["tracking_number"])[:80],
                status=status,
                occurred_at=datetime.fromisoformat(str(data["occurred_at"])),
                detail=(str(data["detail"])[:500] if data.get("detail") else None),
                location=(str(data["location"])[:200] if data.get("location") else None),
                estimated_delivery=date.fromisoformat(estimate) if estimate else None,
            )
        except (ValueError, KeyError, TypeError) as error:
            raise InvalidCarrierWebhook(f"Malformed carrier webhook: {error}") from None
