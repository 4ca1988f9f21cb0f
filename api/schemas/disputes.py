"""Request and response schemas of ``api/routes/disputes.py``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.money import Money
from api.schemas.pagination import Page
from models import Dispute, DisputeStatus


class DisputeOutcomeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["won", "lost"] = Field(description="The bank's decision")


class VendorDebitRead(BaseModel):
    vendor_id: uuid.UUID
    amount: Money = Field(description="The DISPUTE ledger entry: negative")


class DisputeRead(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    payment_id: uuid.UUID
    provider: str
    provider_dispute_id: str
    amount: Money = Field(description="Disputed")
    reason: str | None
    status: DisputeStatus = Field(description="open: the order's payouts are frozen")
    evidence_due_at: datetime
    closed_at: datetime | None
    created_at: datetime
    debits: list[VendorDebitRead] = Field(description="What a lost dispute took from vendors")

    @classmethod
    def build(cls, dispute: Dispute, debits: dict[uuid.UUID, int]) -> DisputeRead:
        return cls(
            id=dispute.id,
            order_id=dispute.order_id,
            payment_id=dispute.payment_id,
            provider=dispute.provider,
            provider_dispute_id=dispute.provider_dispute_id,
            amount=Money.of(dispute.amount, dispute.currency),
            reason=dispute.reason,
            status=dispute.status,
            evidence_due_at=dispute.evidence_due_at,
            closed_at=dispute.closed_at,
            created_at=dispute.created_at,
            debits=[
                VendorDebitRead(vendor_id=vendor_id, amount=Money.of(amount, dispute.currency))
                for vendor_id, amount in sorted(debits.items(), key=lambda item: str(item[0]))
            ],
        )


class DisputePage(Page[DisputeRead]):
    pass


class VendorDisputeRead(BaseModel):
    """A dispute on one of the vendor's orders, as the vendor sees it."""

    id: uuid.UUID
    order_id: uuid.UUID
    amount: Money = Field(description="Disputed, over the whole order")
    status: DisputeStatus = Field(description="open: this order's earnings are on hold")
    evidence_due_at: datetime
    closed_at: datetime | None
    created_at: datetime
    debit: Money = Field(description="What the dispute took from this vendor (0 unless lost)")


class VendorDisputePage(Page[VendorDisputeRead]):
    pass
