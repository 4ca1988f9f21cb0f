"""The order summary shown before paying."""

from __future__ import annotations

import uuid
from datetime import date

from pydantic import BaseModel, Field

from api.schemas.money import Money, money_fields
from api.schemas.orders import LINE_AMOUNTS, ORDER_TOTALS
from commerce.checkout.checkout_summary import CheckoutSummary, ShippingOption, SummaryLine


class SummaryProblemRead(BaseModel):
    code: str = Field(description="Stable code, e.g. out_of_stock, coupon_expired")
    detail: str
    vendor_id: uuid.UUID | None
    variant_id: uuid.UUID | None


class SummaryLineRead(BaseModel):
    variant_id: uuid.UUID
    product_slug: str
    title: str
    sku: str
    options: dict[str, str]
    quantity: int
    unit_price: Money
    subtotal: Money
    discount: Money
    tax: Money
    tax_rate_bp: int = Field(description="The tax rate in basis points (1900 = 19%)")
    total: Money
    problems: list[str]

    @classmethod
    def build(cls, line: SummaryLine, currency: str) -> SummaryLineRead:
        return cls(
            variant_id=line.variant_id,
            product_slug=line.product_slug,
            title=line.title,
            sku=line.sku,
            options=line.options,
            quantity=line.quantity,
            tax_rate_bp=line.tax_rate_bp,
            **money_fields(line, currency, *LINE_AMOUNTS),
            problems=list(line.problems),
        )


class ShippingOptionRead(BaseModel):
    method_code: str
    name: str
    amount: Money
    free: bool
    estimated_delivery_earliest: date
    estimated_delivery_latest: date

    @classmethod
    def build(cls, option: ShippingOption, currency: str) -> ShippingOptionRead:
        return cls(
            method_code=option.method_code,
            name=option.name,
            amount=Money.of(option.amount, currency),
            free=option.free,
            estimated_delivery_earliest=option.estimated_delivery_earliest,
            estimated_delivery_latest=option.estimated_delivery_latest,
        )


class VendorSummaryRead(BaseModel):
    vendor_id: uuid.UUID
    vendor_name: str
    lines: list[SummaryLineRead]
    shipping: ShippingOptionRead | None = Field(description="The chosen (or cheapest) method")
    shipping_options: list[ShippingOptionRead]
    items_subtotal: Money
    discount: Money
    shipping_amount: Money
    tax: Money
    total: Money


class AppliedPromotionRead(BaseModel):
    promotion_id: str
    label: str
    kind: str
    amount: Money = Field(description="What it took off")


class CheckoutSummaryRead(BaseModel):
    """What paying now would cost. Amounts are null only while the cart is empty (it has no
    currency yet)."""

    currency: str | None
    prices_include_tax: bool
    vendors: list[VendorSummaryRead]
    promotions: list[AppliedPromotionRead]
    items_subtotal: Money | None
    discount_total: Money | None
    shipping_total: Money | None
    tax_total: Money | None
    grand_total: Money | None
    estimated_delivery_earliest: date | None
    estimated_delivery_latest: date | None
    problems: list[SummaryProblemRead]
    can_check_out: bool

    @classmethod
    def from_domain(cls, summary: CheckoutSummary) -> CheckoutSummaryRead:
        if summary.currency is None:
            # An empty cart: nothing to price yet, no vendors, no promotions.
            return cls(
                currency=None,
                prices_include_tax=summary.prices_include_tax,
                vendors=[],
                promotions=[],
                items_subtotal=None,
                discount_total=None,
                shipping_total=None,
                tax_total=None,
                grand_total=None,
                estimated_delivery_earliest=summary.estimated_delivery_earliest,
                estimated_delivery_latest=summary.estimated_delivery_latest,
                problems=[SummaryProblemRead(**vars(p)) for p in summary.problems],
                can_check_out=summary.can_check_out,
            )
        currency = summary.currency

        def of(amount: int) -> Money:
            return Money.of(amount, currency)

        return cls(
            currency=summary.currency,
            prices_include_tax=summary.prices_include_tax,
            vendors=[
                VendorSummaryRead(
                    vendor_id=vendor.vendor_id,
                    vendor_name=vendor.vendor_name,
                    lines=[SummaryLineRead.build(line, currency) for line in vendor.lines],
                    shipping=ShippingOptionRead.build(vendor.shipping, currency)
                    if vendor.shipping
                    else None,
                    shipping_options=[
                        ShippingOptionRead.build(o, currency) for o in vendor.shipping_options
                    ],
                    **money_fields(
                        vendor,
                        currency,
                        "items_subtotal",
                        "discount",
                        "shipping_amount",
                        "tax",
                        "total",
                    ),
                )
                for vendor in summary.vendors
            ],
            promotions=[
                AppliedPromotionRead(
                    promotion_id=p.promotion_id, label=p.label, kind=p.kind, amount=of(p.amount)
                )
                for p in summary.promotions
            ],
            **money_fields(summary, currency, *ORDER_TOTALS),
            estimated_delivery_earliest=summary.estimated_delivery_earliest,
            estimated_delivery_latest=summary.estimated_delivery_latest,
            problems=[SummaryProblemRead(**vars(p)) for p in summary.problems],
            can_check_out=summary.can_check_out,
        )
