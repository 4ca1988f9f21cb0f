"""The order summary shown before paying."""

from __future__ import annotations

import uuid
from datetime import date

from pydantic import BaseModel, Field

from commerce.checkout.checkout_summary import CheckoutSummary


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
    unit_price: int
    subtotal: int
    discount: int
    tax: int
    tax_rate_bp: int
    total: int
    problems: list[str]


class ShippingOptionRead(BaseModel):
    method_code: str
    name: str
    amount: int
    free: bool
    estimated_delivery_earliest: date
    estimated_delivery_latest: date


class VendorSummaryRead(BaseModel):
    vendor_id: uuid.UUID
    vendor_name: str
    lines: list[SummaryLineRead]
    shipping: ShippingOptionRead | None = Field(description="The chosen (or cheapest) method")
    shipping_options: list[ShippingOptionRead]
    items_subtotal: int
    discount: int
    shipping_amount: int
    tax: int
    total: int


class AppliedPromotionRead(BaseModel):
    promotion_id: str
    label: str
    kind: str
    amount: int = Field(description="What it took off, in minor units")


class CheckoutSummaryRead(BaseModel):
    """All amounts are integer minor units of `currency`."""

    currency: str | None
    prices_include_tax: bool
    vendors: list[VendorSummaryRead]
    promotions: list[AppliedPromotionRead]
    items_subtotal: int
    discount_total: int
    shipping_total: int
    tax_total: int
    grand_total: int
    estimated_delivery_earliest: date | None
    estimated_delivery_latest: date | None
    problems: list[SummaryProblemRead]
    can_check_out: bool

    @classmethod
    def from_domain(cls, summary: CheckoutSummary) -> CheckoutSummaryRead:
        return cls(
            currency=summary.currency,
            prices_include_tax=summary.prices_include_tax,
            vendors=[
                VendorSummaryRead(
                    vendor_id=vendor.vendor_id,
                    vendor_name=vendor.vendor_name,
                    lines=[
                        SummaryLineRead(**vars(line) | {"problems": list(line.problems)})
                        for line in vendor.lines
                    ],
                    shipping=ShippingOptionRead(**vars(vendor.shipping))
                    if vendor.shipping
                    else None,
                    shipping_options=[
                        ShippingOptionRead(**vars(o)) for o in vendor.shipping_options
                    ],
                    items_subtotal=vendor.items_subtotal,
                    discount=vendor.discount,
                    shipping_amount=vendor.shipping_amount,
                    tax=vendor.tax,
                    total=vendor.total,
                )
                for vendor in summary.vendors
            ],
            promotions=[AppliedPromotionRead(**vars(p)) for p in summary.promotions],
            items_subtotal=summary.items_subtotal,
            discount_total=summary.discount_total,
            shipping_total=summary.shipping_total,
            tax_total=summary.tax_total,
            grand_total=summary.grand_total,
            estimated_delivery_earliest=summary.estimated_delivery_earliest,
            estimated_delivery_latest=summary.estimated_delivery_latest,
            problems=[SummaryProblemRead(**vars(p)) for p in summary.problems],
            can_check_out=summary.can_check_out,
        )
