"""Request and response schemas of ``api/routes/invoices.py``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.schemas.money import Money
from api.schemas.pagination import Page


class InvoiceSummaryRead(BaseModel):
    """An invoice (kind ``invoice``) or credit note (``credit_note``); a credit note's amounts
    are what is credited, positive."""

    id: uuid.UUID
    kind: str = Field(description="`invoice` or `credit_note`")
    number: str = Field(description="As printed, e.g. `NORTH-INV-000123`")
    sequence_number: int = Field(description="The vendor's gapless sequence number per kind")
    vendor_id: uuid.UUID
    order_id: uuid.UUID
    refund_id: uuid.UUID | None
    currency: str
    subtotal: Money
    tax: Money
    total: Money
    issued_at: datetime


class InvoiceRead(InvoiceSummaryRead):
    document: dict[str, Any] = Field(
        description="The document as issued: seller, buyer, lines, shipping, totals "
        "(lines' net + shipping = subtotal; total = subtotal + tax, or subtotal when prices "
        "include tax); a credit note's refunded lines, adjustment and the invoice it corrects. "
        "The document is kept exactly as it was issued: its amounts are integers in minor units "
        "of `currency`"
    )


class InvoiceList(Page[InvoiceSummaryRead]):
    pass


class InvoicePage(Page[InvoiceSummaryRead]):
    pass
