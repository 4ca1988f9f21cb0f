"""Orders as the shopper sees them: checkout request and answer, detail, history."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas.money import Money, money_fields
from api.schemas.pagination import Page
from commerce.orders.orders import OrderDetail
from models import Order, OrderDiscount, OrderLine, OrderVendorPart
from workflows.contracts.orders import OrderStatus, OrderStatusView, PaymentStatus

#: A line's amounts, in the order's currency.
LINE_AMOUNTS = ("unit_price", "subtotal", "discount", "tax", "total")
#: An order's (and an order summary's) totals.
ORDER_TOTALS = ("items_subtotal", "discount_total", "shipping_total", "tax_total", "grand_total")


class CheckoutCreate(BaseModel):
    """Pay for the current cart. Exactly one of ``payment_token`` (a provider token: a Stripe
    PaymentMethod id, ``tok_ok`` with the test provider; never card data) or
    ``payment_method_id`` (a saved payment method) is needed."""

    payment_provider: str = Field(min_length=2, max_length=20, pattern=r"^[a-z]+$")
    payment_token: str | None = Field(default=None, min_length=1, max_length=255, repr=False)
    payment_method_id: uuid.UUID | None = None


class PaymentRetry(BaseModel):
    payment_provider: str = Field(min_length=2, max_length=20, pattern=r"^[a-z]+$")
    payment_token: str | None = Field(default=None, min_length=1, max_length=255, repr=False)
    payment_method_id: uuid.UUID | None = None


class OrderCancel(BaseModel):
    reason: str | None = Field(default=None, max_length=300)


class NextActionRead(BaseModel):
    """What the storefront must do for the payment to go on."""

    type: str = Field(description="`confirm_card` (3-D Secure via Stripe.js) or `redirect`")
    client_secret: str | None = None
    approval_url: str | None = None


class PaymentStateRead(BaseModel):
    attempt: int
    provider: str
    status: PaymentStatus
    decline_code: str | None = None
    message: str | None = None
    next_action: NextActionRead | None = None


class CheckoutRead(BaseModel):
    """The order and, while it waits for the shopper, what to do next."""

    order_id: uuid.UUID
    status: OrderStatus | Literal["compensating"] = Field(
        description="The order's status; `compensating` while a cancelled or failed order is "
        "being undone"
    )
    grand_total: Money
    currency: str
    payment: PaymentStateRead | None
    attempts_left: int | None = None
    payment_deadline: datetime | None = None
    cancel_reason: str | None = None

    @classmethod
    def build(cls, order: Order, live: OrderStatusView | None) -> CheckoutRead:
        payment = None
        if live is not None and live.payment is not None:
            view = live.payment
            action = None
            if view.status == "requires_action":
                action = NextActionRead(
                    type="redirect" if view.approval_url else "confirm_card",
                    client_secret=view.client_secret,
                    approval_url=view.approval_url,
                )
            payment = PaymentStateRead(
                attempt=view.attempt,
                provider=view.provider,
                status=view.status,
                decline_code=view.decline_code,
                message=view.message,
                next_action=action,
            )
        return cls(
            order_id=order.id,
            # The workflow's live status is fresher than the row while it runs.
            status=live.status if live is not None else order.status.value,
            grand_total=Money.of(order.grand_total, order.currency),
            currency=order.currency,
            payment=payment,
            attempts_left=live.attempts_left if live is not None else None,
            payment_deadline=(
                datetime.fromisoformat(live.payment_deadline)
                if live is not None and live.payment_deadline
                else None
            ),
            cancel_reason=(live.cancel_reason if live is not None else None) or order.cancel_reason,
        )


class OrderLineRead(BaseModel):
    id: uuid.UUID
    vendor_id: uuid.UUID
    product_id: uuid.UUID | None
    variant_id: uuid.UUID | None
    sku: str
    title: str
    options: dict[str, str]
    quantity: int
    unit_price: Money
    subtotal: Money
    discount: Money
    tax: Money
    tax_rate_bp: int = Field(description="The tax rate in basis points (1900 = 19%)")
    total: Money

    @classmethod
    def build(cls, line: OrderLine, currency: str) -> OrderLineRead:
        return cls(
            id=line.id,
            vendor_id=line.vendor_id,
            product_id=line.product_id,
            variant_id=line.variant_id,
            sku=line.sku,
            title=line.title,
            options=line.options,
            quantity=line.quantity,
            tax_rate_bp=line.tax_rate_bp,
            **money_fields(line, currency, *LINE_AMOUNTS),
        )


class OrderVendorPartRead(BaseModel):
    vendor_id: uuid.UUID
    shipping_method_code: str
    shipping_method_name: str
    shipping_amount: Money
    items_subtotal: Money
    discount: Money
    tax: Money
    total: Money
    estimated_delivery_earliest: date | None
    estimated_delivery_latest: date | None

    @classmethod
    def build(cls, part: OrderVendorPart, currency: str) -> OrderVendorPartRead:
        return cls(
            vendor_id=part.vendor_id,
            shipping_method_code=part.shipping_method_code,
            shipping_method_name=part.shipping_method_name,
            **money_fields(
                part, currency, "shipping_amount", "items_subtotal", "discount", "tax", "total"
            ),
            estimated_delivery_earliest=part.estimated_delivery_earliest,
            estimated_delivery_latest=part.estimated_delivery_latest,
        )


class OrderDiscountRead(BaseModel):
    promotion_id: uuid.UUID
    label: str
    kind: str
    amount: Money

    @classmethod
    def build(cls, discount: OrderDiscount, currency: str) -> OrderDiscountRead:
        return cls(
            promotion_id=discount.promotion_id,
            label=discount.label,
            kind=discount.kind,
            amount=Money.of(discount.amount, currency),
        )


class PaymentRead(BaseModel):
    attempt: int
    provider: str
    status: PaymentStatus
    amount: Money
    captured_amount: Money
    refunded_amount: Money
    decline_code: str | None


class OrderEventRead(BaseModel):
    type: str
    detail: str | None
    data: dict[str, Any]
    at: datetime


class OrderRead(BaseModel):
    id: uuid.UUID
    status: OrderStatus
    currency: str
    prices_include_tax: bool
    items_subtotal: Money
    discount_total: Money
    shipping_total: Money
    tax_total: Money
    grand_total: Money
    shipping_address: dict[str, Any]
    payment_provider: str
    placed_at: datetime
    confirmed_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    vendors: list[OrderVendorPartRead]
    lines: list[OrderLineRead]
    discounts: list[OrderDiscountRead]
    payments: list[PaymentRead]
    timeline: list[OrderEventRead]

    @classmethod
    def from_domain(cls, detail: OrderDetail) -> OrderRead:
        order = detail.order
        return cls(
            id=order.id,
            status=order.status.value,
            currency=order.currency,
            prices_include_tax=order.prices_include_tax,
            **money_fields(order, order.currency, *ORDER_TOTALS),
            shipping_address=order.shipping_address,
            payment_provider=order.payment_provider,
            placed_at=order.created_at,
            confirmed_at=order.confirmed_at,
            cancelled_at=order.cancelled_at,
            cancel_reason=order.cancel_reason,
            vendors=[OrderVendorPartRead.build(p, order.currency) for p in detail.parts],
            lines=[OrderLineRead.build(line, order.currency) for line in detail.lines],
            discounts=[OrderDiscountRead.build(d, order.currency) for d in detail.discounts],
            payments=[
                PaymentRead(
                    attempt=p.attempt,
                    provider=p.provider,
                    status=p.status.value,
                    amount=Money.of(p.amount, p.currency),
                    captured_amount=Money.of(p.captured_amount, p.currency),
                    refunded_amount=Money.of(p.refunded_amount, p.currency),
                    decline_code=p.decline_code,
                )
                for p in detail.payments
            ],
            timeline=[
                OrderEventRead(type=e.type, detail=e.detail, data=e.data, at=e.created_at)
                for e in detail.events
            ],
        )


class OrderSummaryRead(BaseModel):
    id: uuid.UUID
    status: OrderStatus
    grand_total: Money
    currency: str
    items: int
    placed_at: datetime


class OrderPage(Page[OrderSummaryRead]):
    pass
