"""Request and response bodies of the promotion routes (admins' and vendors' back offices)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.schemas.pagination import Page
from models import Promotion, PromotionKind, PromotionScope


class PromotionCreate(BaseModel):
    """A coupon when ``code`` is given, an automatic promotion when it is not. ``value``:
    basis points for a percentage (1000 = 10%), minor units of ``currency`` for a fixed amount,
    0 for free shipping. ``min_subtotal`` is in minor units of ``currency``. A vendor's
    promotion applies to its own vendor (scope ``cart`` or ``vendor``) or its own products."""

    model_config = ConfigDict(extra="forbid")
    code: str | None = Field(default=None, min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=200)
    kind: PromotionKind
    value: int = Field(default=0, ge=0)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    scope: PromotionScope = PromotionScope.CART
    scope_vendor_id: uuid.UUID | None = None
    scope_category_path: str | None = Field(default=None, max_length=800)
    scope_product_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    min_subtotal: int = Field(default=0, ge=0)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    usage_limit_total: int | None = Field(default=None, ge=1)
    usage_limit_per_customer: int | None = Field(default=None, ge=1)
    stackable: bool = True
    priority: int = Field(default=0, ge=-32768, le=32767)


class PromotionUpdate(BaseModel):
    """Only the fields sent change; ``null`` clears an optional one (e.g. ``code`` makes the
    promotion automatic, ``ends_at`` removes the end). The result is validated as a whole."""

    model_config = ConfigDict(extra="forbid")
    code: str | None = Field(default=None, min_length=1, max_length=40)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: PromotionKind | None = None
    value: int | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    scope: PromotionScope | None = None
    scope_vendor_id: uuid.UUID | None = None
    scope_category_path: str | None = Field(default=None, max_length=800)
    scope_product_ids: list[uuid.UUID] | None = Field(default=None, max_length=1000)
    min_subtotal: int | None = Field(default=None, ge=0)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    usage_limit_total: int | None = Field(default=None, ge=1)
    usage_limit_per_customer: int | None = Field(default=None, ge=1)
    stackable: bool | None = None
    priority: int | None = Field(default=None, ge=-32768, le=32767)
    is_active: bool | None = None

    def changes(self) -> dict[str, object]:
        """The fields sent. A ``null`` for a field that cannot be empty means "unchanged"."""
        sent = self.model_dump(exclude_unset=True)
        required = {
            "name", "kind", "value", "scope", "scope_product_ids", "min_subtotal",
            "stackable", "priority", "is_active",
        }  # fmt: skip
        return {k: v for k, v in sent.items() if v is not None or k not in required}


class PromotionRead(BaseModel):
    id: uuid.UUID
    vendor_id: uuid.UUID | None
    code: str | None
    name: str
    kind: PromotionKind
    value: int
    currency: str | None
    scope: PromotionScope
    scope_vendor_id: uuid.UUID | None
    scope_category_path: str | None
    scope_product_ids: list[uuid.UUID]
    min_subtotal: int
    starts_at: datetime | None
    ends_at: datetime | None
    usage_limit_total: int | None
    usage_limit_per_customer: int | None
    times_used: int
    automatic: bool
    stackable: bool
    priority: int
    is_active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, promotion: Promotion) -> PromotionRead:
        return cls(
            id=promotion.id,
            vendor_id=promotion.vendor_id,
            code=promotion.code,
            name=promotion.name,
            kind=promotion.kind,
            value=promotion.value,
            currency=promotion.currency,
            scope=promotion.scope,
            scope_vendor_id=promotion.scope_vendor_id,
            scope_category_path=promotion.scope_category_path,
            scope_product_ids=list(promotion.scope_product_ids or []),
            min_subtotal=promotion.min_subtotal,
            starts_at=promotion.starts_at,
            ends_at=promotion.ends_at,
            usage_limit_total=promotion.usage_limit_total,
            usage_limit_per_customer=promotion.usage_limit_per_customer,
            times_used=promotion.times_used,
            automatic=promotion.automatic,
            stackable=promotion.stackable,
            priority=promotion.priority,
            is_active=promotion.is_active,
            created_at=promotion.created_at,
            updated_at=promotion.updated_at,
        )


class PromotionPage(Page[PromotionRead]):
    pass
