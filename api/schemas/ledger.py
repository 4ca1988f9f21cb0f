"""Request and response schemas of ``api/routes/ledger.py``."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.pagination import Page
from models import LedgerKind, PayoutStatus


class CurrencyBalanceRead(BaseModel):
    currency: str
    balance: int = Field(description="What the platform owes the vendor: the sum of all entries")
    payable: int = Field(description="What a payout run now would pay (if positive)")
    frozen: int = Field(description="Unpaid entries of orders with an open dispute")


class LedgerEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: LedgerKind
    amount: int = Field(description="Signed, in minor units of currency")
    currency: str
    order_id: uuid.UUID | None
    refund_id: uuid.UUID | None
    dispute_id: uuid.UUID | None
    payout_id: uuid.UUID | None = Field(description="The payout that settled it; null: unpaid")
    available_at: datetime
    memo: str | None
    created_at: datetime


class LedgerPage(Page[LedgerEntryRead]):
    """The vendor's ledger entries, newest first, and the balances of all of them."""

    balances: list[CurrencyBalanceRead] = Field(description="Per currency, over every entry")


class PayoutRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    amount: int
    currency: str
    status: PayoutStatus
    run_key: str
    provider_reference: str | None
    paid_at: datetime | None
    created_at: datetime


class PayoutPage(Page[PayoutRead]):
    pass


class PayoutRunRead(BaseModel):
    workflow_id: str
    run_key: str
    finished: bool = Field(description="False: started, not waited for (?wait=false)")
    payouts: int | None = None
    paid: int | None = None
    amounts: dict[str, int] | None = Field(default=None, description="Currency -> total paid")
