"""Request and response schemas of ``api/routes/ledger.py``."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from api.schemas.money import Money
from api.schemas.pagination import Page
from models import LedgerEntry, LedgerKind, Payout, PayoutStatus


class CurrencyBalanceRead(BaseModel):
    currency: str
    balance: Money = Field(description="What the platform owes the vendor: the sum of all entries")
    payable: Money = Field(description="What a payout run now would pay (if positive)")
    frozen: Money = Field(description="Unpaid entries of orders with an open dispute")


class LedgerEntryRead(BaseModel):
    id: int
    kind: LedgerKind
    amount: Money = Field(description="Signed: what the vendor earns is positive")
    order_id: uuid.UUID | None
    refund_id: uuid.UUID | None
    dispute_id: uuid.UUID | None
    payout_id: uuid.UUID | None = Field(description="The payout that settled it; null: unpaid")
    available_at: datetime
    memo: str | None
    created_at: datetime

    @classmethod
    def from_domain(cls, entry: LedgerEntry) -> LedgerEntryRead:
        return cls(
            id=entry.id,
            kind=entry.kind,
            amount=Money.of(entry.amount, entry.currency),
            order_id=entry.order_id,
            refund_id=entry.refund_id,
            dispute_id=entry.dispute_id,
            payout_id=entry.payout_id,
            available_at=entry.available_at,
            memo=entry.memo,
            created_at=entry.created_at,
        )


class LedgerPage(Page[LedgerEntryRead]):
    """The vendor's ledger entries, newest first, and the balances of all of them."""

    balances: list[CurrencyBalanceRead] = Field(description="Per currency, over every entry")


class PayoutRead(BaseModel):
    id: uuid.UUID
    amount: Money
    status: PayoutStatus
    run_key: str
    provider_reference: str | None
    paid_at: datetime | None
    created_at: datetime

    @classmethod
    def from_domain(cls, payout: Payout) -> PayoutRead:
        return cls(
            id=payout.id,
            amount=Money.of(payout.amount, payout.currency),
            status=payout.status,
            run_key=payout.run_key,
            provider_reference=payout.provider_reference,
            paid_at=payout.paid_at,
            created_at=payout.created_at,
        )


class PayoutPage(Page[PayoutRead]):
    pass


class PayoutRunRead(BaseModel):
    workflow_id: str
    run_key: str
    finished: bool = Field(description="False: started, not waited for (?wait=false)")
    payouts: int | None = None
    paid: int | None = None
    amounts: list[Money] | None = Field(default=None, description="The total paid per currency")
