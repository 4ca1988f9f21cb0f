"""Request and response bodies of carts.

Limits here keep absurd input out; the real rules (stock, currency, address per country,
coupon normalisation) live in ``commerce.checkout.carts`` and answer problems a shopper can act on.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.money import Money
from api.schemas.text import line
from commerce.accounts.address_rules import AddressInput
from commerce.catalog.inventory import StockStatus
from commerce.checkout.carts import (
    MAX_COUPON_LENGTH,
    MAX_COUPONS,
    MAX_LINE_QUANTITY,
    MAX_METHOD_CODE_LENGTH,
    MAX_TOKEN_LENGTH,
    CartLine,
    CartView,
    MergeReport,
    VendorLines,
)

_TEXT = 500  # a few times the widest address column
_CODE = 100


class CartItemAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    variant_id: uuid.UUID
    quantity: int = Field(default=1, ge=1, le=MAX_LINE_QUANTITY)


class CartItemUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quantity: int = Field(ge=0, le=MAX_LINE_QUANTITY, description="0 removes the line")


class CouponCodes(BaseModel):
    model_config = ConfigDict(extra="forbid")
    codes: list[Annotated[str, line(MAX_COUPON_LENGTH)]] = Field(
        max_length=MAX_COUPONS,
        description="Replaces the cart's codes; stored trimmed and upper-case",
    )


class ShippingAddress(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=_TEXT)
    company: str | None = Field(default=None, max_length=_TEXT)
    line1: str = Field(max_length=_TEXT)
    line2: str | None = Field(default=None, max_length=_TEXT)
    city: str = Field(max_length=_TEXT)
    region: str | None = Field(default=None, max_length=_TEXT)
    postal_code: str | None = Field(default=None, max_length=_CODE)
    country: str = Field(max_length=_CODE, description="ISO 3166-1 alpha-2 (alpha-3 accepted)")
    phone: str | None = Field(default=None, max_length=_CODE)


class ShippingChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method_code: str = line(MAX_METHOD_CODE_LENGTH)


class CartMerge(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cart_token: str = Field(min_length=1, max_length=MAX_TOKEN_LENGTH)


class LineProblemRead(BaseModel):
    code: str = Field(
        description="out_of_stock, insufficient_stock, not_available, price_changed, "
        "currency_mismatch"
    )
    available: int | None = None


class CartLineRead(BaseModel):
    variant_id: uuid.UUID
    product_id: uuid.UUID
    product_slug: str
    title: str
    sku: str
    options: dict[str, str]
    unit_price: Money = Field(description="The current price")
    unit_price_seen: Money = Field(description="The price when the line was added")
    price_changed: bool
    quantity: int
    subtotal: Money = Field(description="quantity * unit_price")
    available: int
    stock_status: StockStatus
    problems: list[LineProblemRead]

    @classmethod
    def from_domain(cls, line: CartLine) -> CartLineRead:
        return cls(
            variant_id=line.variant_id,
            product_id=line.product_id,
            product_slug=line.product_slug,
            title=line.title,
            sku=line.sku,
            options=line.options,
            unit_price=Money.of(line.unit_price, line.currency),
            unit_price_seen=Money.of(line.unit_price_seen, line.currency),
            price_changed=line.price_changed,
            quantity=line.quantity,
            subtotal=Money.of(line.subtotal, line.currency),
            available=line.available,
            stock_status=line.stock_status.value,
            problems=[LineProblemRead(code=p.code, available=p.available) for p in line.problems],
        )


class VendorLinesRead(BaseModel):
    vendor_id: uuid.UUID
    vendor_slug: str
    vendor_name: str
    shipping_method: str | None
    subtotal: Money
    lines: list[CartLineRead]

    @classmethod
    def from_domain(cls, group: VendorLines, currency: str) -> VendorLinesRead:
        return cls(
            vendor_id=group.vendor_id,
            vendor_slug=group.vendor_slug,
            vendor_name=group.vendor_name,
            shipping_method=group.shipping_method,
            subtotal=Money.of(group.subtotal, currency),
            lines=[CartLineRead.from_domain(line) for line in group.lines],
        )


class CartRead(BaseModel):
    id: uuid.UUID
    is_guest: bool
    currency: str | None
    vendors: list[VendorLinesRead]
    item_count: int
    subtotal: Money | None = Field(
        description="Sum of line subtotals before discounts, shipping, tax; null while empty"
    )
    has_problems: bool
    coupon_codes: list[str]
    shipping_address: dict[str, Any] | None
    shipping_choices: dict[str, str]
    expires_at: datetime | None

    @classmethod
    def from_domain(cls, view: CartView) -> CartRead:
        return cls(
            id=view.id,
            is_guest=view.is_guest,
            currency=view.currency,
            vendors=[
                VendorLinesRead.from_domain(group, view.currency or group.lines[0].currency)
                for group in view.vendors
            ],
            item_count=view.item_count,
            subtotal=Money.of(view.subtotal, view.currency) if view.currency else None,
            has_problems=view.has_problems,
            coupon_codes=list(view.coupon_codes),
            shipping_address=view.shipping_address,
            shipping_choices=view.shipping_choices,
            expires_at=view.expires_at,
        )


class GuestCartCreated(BaseModel):
    cart_token: str = Field(
        description="Send as X-Cart-Token. Shown once: only its digest is stored."
    )
    cart: CartRead


class MergedLineRead(BaseModel):
    variant_id: uuid.UUID
    sku: str
    requested: int
    added: int
    quantity: int


class UnmergedLineRead(BaseModel):
    variant_id: uuid.UUID
    sku: str
    quantity: int
    reason: str
    available: int | None = None


class CartMergeRead(BaseModel):
    cart: CartRead
    merged: list[MergedLineRead]
    not_merged: list[UnmergedLineRead] = Field(
        description="Guest lines that could not be added, and why; they are not in the cart"
    )

    @classmethod
    def from_domain(cls, view: CartView) -> CartMergeRead:
        report = view.merge or MergeReport((), ())
        return cls(
            cart=CartRead.from_domain(view),
            merged=[MergedLineRead(**vars(line)) for line in report.merged],
            not_merged=[UnmergedLineRead(**vars(line)) for line in report.not_merged],
        )


def address_fields(body: ShippingAddress) -> dict[str, Any]:
    """The body as the service's address dict (the fields of ``AddressInput``)."""
    return {name: getattr(body, name) for name in AddressInput.__dataclass_fields__}
