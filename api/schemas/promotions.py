"""Request and response bodies of the promotion routes (admins' and vendors' back offices)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.schemas.money import Money, money_or_none
from api.schemas.pagination import Page
from commerce.checkout.promotions import invalid_field
from models import Promotion, PromotionKind, PromotionScope

_PERCENT = Field(
    default=None, ge=1, le=10_000, description="For `percentage`: basis points, 1000 = 10% off"
)
_AMOUNT_OFF = Field(default=None, description="For `fixed`: what comes off")
_MIN_SUBTOTAL = Field(
    default=None,
    description="The subtotal a cart needs for it to apply; null: no minimum. In the currency "
    "of `amount_off` when both are given",
)


def _read_money(promotion: Promotion) -> tuple[int | None, Money | None, Money | None]:
    """(percent_bp, amount_off, min_subtotal) of a stored promotion."""
    percent = promotion.value if promotion.kind == PromotionKind.PERCENTAGE else None
    amount_off = (
        money_or_none(promotion.value, promotion.currency)
        if promotion.kind == PromotionKind.FIXED
        else None
    )
    floor = money_or_none(promotion.min_subtotal or None, promotion.currency)
    return percent, amount_off, floor


def _money_fields(
    kind: PromotionKind,
    percent_bp: int | None,
    amount_off: Money | None,
    min_subtotal: Money | None,
) -> dict[str, Any]:
    """The domain's ``value``, ``currency`` and ``min_subtotal`` for these API fields; a
    field the kind does not take, or two currencies, is ``InvalidPromotion`` (422)."""
    if kind != PromotionKind.PERCENTAGE and percent_bp is not None:
        raise invalid_field("percent_bp", "Only a percentage promotion takes percent_bp.")
    if kind != PromotionKind.FIXED and amount_off is not None:
        raise invalid_field("amount_off", "Only a fixed promotion takes amount_off.")
    if kind == PromotionKind.PERCENTAGE and percent_bp is None:
        raise invalid_field("percent_bp", "A percentage promotion needs percent_bp.")
    if kind == PromotionKind.FIXED and amount_off is None:
        raise invalid_field("amount_off", "A fixed promotion needs amount_off.")
    if amount_off and min_subtotal and amount_off.currency != min_subtotal.currency:
        raise invalid_field("min_subtotal", "min_subtotal must be in amount_off's currency.")
    money = amount_off or min_subtotal
    value = percent_bp if percent_bp is not None else amount_off.amount if amount_off else 0
    return {
        "value": value,
        # A percentage with no minimum applies in any currency.
        "currency": money.currency if money else None,
        "min_subtotal": min_subtotal.amount if min_subtotal else 0,
    }


class PromotionCreate(BaseModel):
    """A coupon when ``code`` is given, an automatic promotion when it is not. A
    ``percentage`` takes ``percent_bp``, a ``fixed`` one ``amount_off``, ``free_shipping``
    neither. A vendor's promotion applies to its own vendor (scope ``cart`` or ``vendor``) or
    its own products."""

    model_config = ConfigDict(extra="forbid")
    code: str | None = Field(default=None, min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=200)
    kind: PromotionKind
    percent_bp: int | None = _PERCENT
    amount_off: Money | None = _AMOUNT_OFF
    scope: PromotionScope = PromotionScope.CART
    scope_vendor_id: uuid.UUID | None = None
    scope_category_path: str | None = Field(default=None, max_length=800)
    scope_product_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    min_subtotal: Money | None = _MIN_SUBTOTAL
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    usage_limit_total: int | None = Field(default=None, ge=1)
    usage_limit_per_customer: int | None = Field(default=None, ge=1)
    stackable: bool = True
    priority: int = Field(default=0, ge=-32768, le=32767)

    def values(self) -> dict[str, Any]:
        """The domain's fields (``value``, ``currency``, ``min_subtotal`` in minor units)."""
        values = self.model_dump(exclude={"percent_bp", "amount_off", "min_subtotal"})
        values.update(_money_fields(self.kind, self.percent_bp, self.amount_off, self.min_subtotal))
        return values


class PromotionUpdate(BaseModel):
    """Only the fields sent change; ``null`` clears an optional one (e.g. ``code`` makes the
    promotion automatic, ``ends_at`` removes the end, ``min_subtotal`` the minimum). The
    result is validated as a whole."""

    model_config = ConfigDict(extra="forbid")
    code: str | None = Field(default=None, min_length=1, max_length=40)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: PromotionKind | None = None
    percent_bp: int | None = _PERCENT
    amount_off: Money | None = _AMOUNT_OFF
    scope: PromotionScope | None = None
    scope_vendor_id: uuid.UUID | None = None
    scope_category_path: str | None = Field(default=None, max_length=800)
    scope_product_ids: list[uuid.UUID] | None = Field(default=None, max_length=1000)
    min_subtotal: Money | None = _MIN_SUBTOTAL
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    usage_limit_total: int | None = Field(default=None, ge=1)
    usage_limit_per_customer: int | None = Field(default=None, ge=1)
    stackable: bool | None = None
    priority: int | None = Field(default=None, ge=-32768, le=32767)
    is_active: bool | None = None

    def changes(self, current: Promotion) -> dict[str, object]:
        """The domain's fields for what was sent, over ``current``. A ``null`` for a field that
        cannot be empty means "unchanged"."""
        money = {"percent_bp", "amount_off", "min_subtotal"}
        sent = self.model_dump(exclude_unset=True, exclude=money)
        required = {
            "name", "kind", "scope", "scope_product_ids", "stackable", "priority", "is_active",
        }  # fmt: skip
        changes: dict[str, object] = {
            k: v for k, v in sent.items() if v is not None or k not in required
        }
        if (money | {"kind"}) & self.model_fields_set:
            # The money fields are worked out again from the promotion as it would become.
            # A new kind drops the old kind's amount unless it is sent again.
            kind = self.kind or current.kind
            fresh = kind != current.kind
            sent_now = self.model_fields_set
            was = _read_money(current)
            percent = self.percent_bp if "percent_bp" in sent_now else None if fresh else was[0]
            amount_off = self.amount_off if "amount_off" in sent_now else None if fresh else was[1]
            floor = self.min_subtotal if "min_subtotal" in sent_now else was[2]
            changes.update(_money_fields(kind, percent, amount_off, floor))
        return changes


class PromotionRead(BaseModel):
    id: uuid.UUID
    vendor_id: uuid.UUID | None
    code: str | None
    name: str
    kind: PromotionKind
    percent_bp: int | None = Field(description="For `percentage`: basis points, 1000 = 10% off")
    amount_off: Money | None = Field(description="For `fixed`: what comes off")
    scope: PromotionScope
    scope_vendor_id: uuid.UUID | None
    scope_category_path: str | None
    scope_product_ids: list[uuid.UUID]
    min_subtotal: Money | None = Field(description="null: no minimum")
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
        percent, amount_off, min_subtotal = _read_money(promotion)
        return cls(
            id=promotion.id,
            vendor_id=promotion.vendor_id,
            code=promotion.code,
            name=promotion.name,
            kind=promotion.kind,
            percent_bp=percent,
            amount_off=amount_off,
            scope=promotion.scope,
            scope_vendor_id=promotion.scope_vendor_id,
            scope_category_path=promotion.scope_category_path,
            scope_product_ids=list(promotion.scope_product_ids or []),
            min_subtotal=min_subtotal,
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
