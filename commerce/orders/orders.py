"""Orders: placing one from the checkout summary, its status, its timeline, the shopper's history.

Placing an order freezes what the shopper saw (lines, prices, discounts, tax, shipping) and
counts the promotion uses, in the request's transaction, under the request's Idempotency-Key;
everything after that is the order workflow's (reserve, pay, capture, commit, ship), and its
activities change the status here with conditional updates so a retried activity never moves
an order backwards.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.accounts.payment_tokens import looks_like_card_number
from commerce.checkout import promotions
from commerce.checkout.checkout_summary import CheckoutSummary, summarize
from commerce.errors import Conflict, DomainError, NotFound
from core import pagination
from core.locks import advisory_lock
from core.money import format_money
from models import (
    Cart,
    CartItem,
    Order,
    OrderDiscount,
    OrderEvent,
    OrderLine,
    OrderStatus,
    OrderVendorPart,
    Payment,
    SavedPaymentMethod,
    Variant,
)
from workflows.contracts.orders import PROGRESSION

MAX_IDEMPOTENCY_KEY = 200


#: Statuses an order moves through, in order; a conditional update never goes back along it.
#: ``payment_failed`` and ``cancelled`` are ends reachable from any status before shipping.
class IdempotencyKeyReused(DomainError):
    status, code, title = 422, "idempotency_key_reused", "Idempotency-Key used for another request"


class InvalidIdempotencyKey(DomainError):
    status, code, title = 400, "invalid_idempotency_key", "A valid Idempotency-Key is required"


class CheckoutNotPossible(DomainError):
    status, code, title = 409, "checkout_not_possible", "The cart cannot be checked out as it is"


class OrderNotFound(NotFound):
    code, title = "order_not_found", "Order not found"


class OrderNotCancellable(Conflict):
    code, title = "order_not_cancellable", "The order can no longer be cancelled"


def check_idempotency_key(key: str | None) -> str:
    """Printable ASCII, 8 to 200 characters: long enough to be unique, safe to store and log."""
    if key is None or not key.strip():
        raise InvalidIdempotencyKey("Send an Idempotency-Key header (e.g. a UUID) with checkout.")
    key = key.strip()
    if not 8 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isascii() or not key.isprintable():
        raise InvalidIdempotencyKey(
            f"The Idempotency-Key must be 8 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters."
        )
    return key


def request_fingerprint(body: Mapping[str, Any]) -> str:
    """SHA-256 of the request's canonical JSON: the same key with another body is refused."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class PlacedOrder:
    order: Order
    created: bool


async def find_by_idempotency_key(
    session: AsyncSession, *, customer_id: uuid.UUID, idempotency_key: str
) -> Order | None:
    return await session.scalar(
        select(Order).where(
            Order.customer_id == customer_id, Order.idempotency_key == idempotency_key
        )
    )


async def place_order(
    session: AsyncSession,
    *,
    cart: Cart,
    customer_id: uuid.UUID,
    contact_email: str,
    idempotency_key: str,
    request_hash: str,
    payment_provider: str,
    prices_include_tax: bool,
    now: datetime,
    today: date,
) -> PlacedOrder:
    """Freeze the cart's summary into a ``pending`` order and count its promotion uses.

    The same (customer, key) returns the order it placed (``created=False``) whatever the cart
    holds now; the same key with another request hash is ``IdempotencyKeyReused``. Two
    requests with one key wait for each other (an advisory lock), so only one order is placed.
    A cart with any problem is ``CheckoutNotPossible`` listing them all; a promotion out of
    uses is ``PromotionExhausted`` and nothing is kept.
    """
    await advisory_lock(session, "checkout", customer_id, idempotency_key)
    existing = await find_by_idempotency_key(
        session, customer_id=customer_id, idempotency_key=idempotency_key
    )
    if existing is not None:
        if existing.request_hash != request_hash:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was used for a different checkout request; "
                "use a new key for a new order.",
                order_id=str(existing.id),
            )
        return PlacedOrder(existing, created=False)

    summary = await summarize(
        session,
        cart=cart,
        user_id=customer_id,
        prices_include_tax=prices_include_tax,
        now=now,
        today=today,
    )
    if not summary.can_check_out or summary.currency is None:
        raise CheckoutNotPossible(
            "Fix these first: " + "; ".join(problem.detail for problem in summary.problems),
            problems=[
                {
                    "code": problem.code,
                    "detail": problem.detail,
                    "vendor_id": str(problem.vendor_id) if problem.vendor_id else None,
                    "variant_id": str(problem.variant_id) if problem.variant_id else None,
                }
                for problem in summary.problems
            ]
            or [{"code": "empty_cart", "detail": "The cart is empty."}],
        )
    if summary.grand_total <= 0:
        raise CheckoutNotPossible(
            "Orders that cost nothing cannot be paid for yet.",
            problems=[{"code": "nothing_to_pay", "detail": "The total is zero."}],
        )
    order = await _freeze(
        session,
        summary=summary,
        cart=cart,
        customer_id=customer_id,
        contact_email=contact_email,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        payment_provider=payment_provider,
        now=now,
    )
    applied = [uuid.UUID(promotion.promotion_id) for promotion in summary.promotions]
    if applied:
        await promotions.reserve_usage(
            session,
            promotion_ids=applied,
            order_id=order.id,
            user_id=customer_id,
            amounts={uuid.UUID(p.promotion_id): p.amount for p in summary.promotions},
        )
    await add_event(
        session,
        order_id=order.id,
        type="placed",
        detail=f"Order placed: {format_money(order.grand_total, order.currency)}",
        data={"items": sum(line.quantity for v in summary.vendors for line in v.lines)},
    )
    return PlacedOrder(order, created=True)


async def _freeze(
    session: AsyncSession,
    *,
    summary: CheckoutSummary,
    cart: Cart,
    customer_id: uuid.UUID,
    contact_email: str,
    idempotency_key: str,
    request_hash: str,
    payment_provider: str,
    now: datetime,
) -> Order:
    assert summary.currency is not None
    order_id = uuid.uuid4()
    order = Order(
        id=order_id,
        created_at=now,  # placed at; the reconciler's "pending for too long" reads it
        customer_id=customer_id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        status=OrderStatus.PENDING,
        currency=summary.currency,
        prices_include_tax=summary.prices_include_tax,
        items_subtotal=summary.items_subtotal,
        discount_total=summary.discount_total,
        shipping_total=summary.shipping_total,
        tax_total=summary.tax_total,
        grand_total=summary.grand_total,
        contact_email=contact_email,
        shipping_address=dict(cart.shipping_address or {}),
        payment_provider=payment_provider,
        workflow_id=f"order:{order_id}",
    )
    session.add(order)
    await session.flush()
    variant_ids = [line.variant_id for vendor in summary.vendors for line in vendor.lines]
    products = dict(
        (
            await session.execute(
                select(Variant.id, Variant.product_id).where(Variant.id.in_(variant_ids))
            )
        ).all()
    )
    for vendor in summary.vendors:
        assert vendor.shipping is not None
        lines_tax = sum(line.tax for line in vendor.lines)
        session.add(
            OrderVendorPart(
                order_id=order_id,
                vendor_id=vendor.vendor_id,
                shipping_method_code=vendor.shipping.method_code,
                shipping_method_name=vendor.shipping.name,
                shipping_amount=vendor.shipping_amount,
                shipping_tax=vendor.tax - lines_tax,
                items_subtotal=vendor.items_subtotal,
                discount=vendor.discount,
                tax=vendor.tax,
                total=vendor.total,
                estimated_delivery_earliest=vendor.shipping.estimated_delivery_earliest,
                estimated_delivery_latest=vendor.shipping.estimated_delivery_latest,
            )
        )
        for line in vendor.lines:
            session.add(
                OrderLine(
                    id=uuid.uuid4(),
                    order_id=order_id,
                    vendor_id=vendor.vendor_id,
                    product_id=products.get(line.variant_id),
                    variant_id=line.variant_id,
                    sku=line.sku,
                    title=line.title,
                    options=dict(line.options),
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    subtotal=line.subtotal,
                    discount=line.discount,
                    tax=line.tax,
                    tax_rate_bp=line.tax_rate_bp,
                    total=line.total,
                )
            )
    for promotion in summary.promotions:
        session.add(
            OrderDiscount(
                order_id=order_id,
                promotion_id=uuid.UUID(promotion.promotion_id),
                label=promotion.label,
                kind=promotion.kind,
                amount=promotion.amount,
            )
        )
    await session.flush()
    return order


# --- status ------------------------------------------------------------------------------------


async def add_event(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    type: str,
    detail: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> None:
    session.add(OrderEvent(order_id=order_id, type=type, detail=detail, data=dict(data or {})))
    await session.flush()


async def has_event(session: AsyncSession, *, order_id: uuid.UUID, type: str) -> bool:
    found = await session.scalar(
        select(OrderEvent.id).where(OrderEvent.order_id == order_id, OrderEvent.type == type)
    )
    return found is not None


async def transition(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    to: OrderStatus,
    allowed_from: Iterable[OrderStatus],
    event: str | None = None,
    detail: str | None = None,
    data: Mapping[str, Any] | None = None,
    values: Mapping[str, Any] | None = None,
) -> bool:
    """Move the order to ``to`` if it is in one of ``allowed_from``; record ``event`` if it moved.

    A conditional ``UPDATE ... WHERE status IN (...)``: a retried activity whose first try
    already moved the order finds it moved and changes nothing (returns False).
    """
    moved = await session.scalar(
        update(Order)
        .where(Order.id == order_id, Order.status.in_(list(allowed_from)))
        .values(status=to, **dict(values or {}))
        .returning(Order.id)
        .execution_options(synchronize_session=False)
    )
    if moved is None:
        return False
    if event is not None:
        await add_event(session, order_id=order_id, type=event, detail=detail, data=data)
    return True


def before(status: OrderStatus) -> list[OrderStatus]:
    """The statuses an order may move to ``status`` from along the progression."""
    return list(PROGRESSION[: PROGRESSION.index(status)])


async def lock_order(session: AsyncSession, *, order_id: uuid.UUID) -> None:
    """Serialise work on one order (e.g. a notification sent once) until the transaction ends."""
    await session.execute(select(Order.id).where(Order.id == order_id).with_for_update())


async def get_order(session: AsyncSession, *, order_id: uuid.UUID) -> Order:
    order = await session.get(Order, order_id, populate_existing=True)
    if order is None:
        raise OrderNotFound(f"No order {order_id}.")
    return order


async def remove_ordered_items(session: AsyncSession, *, order: Order) -> None:
    """Take what was bought out of the customer's cart, leaving anything added since."""
    if order.customer_id is None:
        return
    cart_id = await session.scalar(select(Cart.id).where(Cart.user_id == order.customer_id))
    if cart_id is None:
        return
    bought = (
        await session.execute(
            select(OrderLine.variant_id, OrderLine.quantity).where(OrderLine.order_id == order.id)
        )
    ).all()
    for variant_id, quantity in bought:
        if variant_id is None:
            continue
        line = (CartItem.cart_id == cart_id) & (CartItem.variant_id == variant_id)
        await session.execute(
            delete(CartItem)
            .where(line, CartItem.quantity <= quantity)
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            update(CartItem)
            .where(line, CartItem.quantity > quantity)
            .values(quantity=CartItem.quantity - quantity)
            .execution_options(synchronize_session=False)
        )


# --- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderDetail:
    order: Order
    parts: Sequence[OrderVendorPart]
    lines: Sequence[OrderLine]
    discounts: Sequence[OrderDiscount]
    payments: Sequence[Payment]
    events: Sequence[OrderEvent]


async def customer_order(
    session: AsyncSession, *, order_id: uuid.UUID, customer_id: uuid.UUID
) -> Order:
    """The customer's own order; anyone else's is "not found", never "forbidden" (no IDOR)."""
    order = await session.scalar(
        select(Order).where(Order.id == order_id, Order.customer_id == customer_id)
    )
    if order is None:
        raise OrderNotFound(f"No order {order_id}.")
    return order


async def detail(session: AsyncSession, *, order: Order) -> OrderDetail:
    """Everything about one order, in five queries."""
    parts = await session.scalars(
        select(OrderVendorPart)
        .where(OrderVendorPart.order_id == order.id)
        .order_by(OrderVendorPart.vendor_id)
    )
    lines = await session.scalars(
        select(OrderLine)
        .where(OrderLine.order_id == order.id)
        .order_by(OrderLine.vendor_id, OrderLine.sku)
    )
    discounts = await session.scalars(
        select(OrderDiscount)
        .where(OrderDiscount.order_id == order.id)
        .order_by(OrderDiscount.promotion_id)
    )
    payments = await session.scalars(
        select(Payment).where(Payment.order_id == order.id).order_by(Payment.attempt)
    )
    events = await session.scalars(
        select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
    )
    return OrderDetail(
        order=order,
        parts=list(parts.all()),
        lines=list(lines.all()),
        discounts=list(discounts.all()),
        payments=list(payments.all()),
        events=list(events.all()),
    )


async def list_customer_orders(
    session: AsyncSession, *, customer_id: uuid.UUID, limit: int, cursor: str | None = None
) -> pagination.Page[Order]:
    """The customer's orders, newest first, a page at a time."""
    return await pagination.newest_first(
        session,
        select(Order).where(Order.customer_id == customer_id),
        created_at=Order.created_at,
        id=Order.id,
        scope="orders",
        cursor=cursor,
        limit=limit,
    )


async def item_counts(
    session: AsyncSession, *, order_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    if not order_ids:
        return {}
    rows = await session.execute(
        select(OrderLine.order_id, func.sum(OrderLine.quantity))
        .where(OrderLine.order_id.in_(list(order_ids)))
        .group_by(OrderLine.order_id)
    )
    return {order_id: int(count) for order_id, count in rows.all()}


async def stale_pending_orders(
    session: AsyncSession, *, older_than: datetime, limit: int = 100
) -> list[Order]:
    """Pending orders placed before ``older_than``: their workflow may never have started."""
    rows = await session.scalars(
        select(Order)
        .where(Order.status == OrderStatus.PENDING, Order.created_at < older_than)
        .order_by(Order.created_at)
        .limit(limit)
    )
    return list(rows.all())


class InvalidPaymentChoice(DomainError):
    status, code, title = 422, "invalid_payment_choice", "Choose one way to pay"


async def resolve_payment_token(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    provider: str,
    payment_token: str | None,
    payment_method_id: uuid.UUID | None,
) -> str:
    """The provider token to pay with: the one sent, or a saved method's (the caller's own,
    for the same provider). Anything that looks like a card number is refused, unstored."""
    if (payment_token is None) == (payment_method_id is None):
        raise InvalidPaymentChoice("Send either payment_token or payment_method_id.")
    if payment_method_id is not None:
        method = await session.scalar(
            select(SavedPaymentMethod).where(
                SavedPaymentMethod.id == payment_method_id,
                SavedPaymentMethod.user_id == user_id,
            )
        )
        if method is None:
            raise NotFound(f"No saved payment method {payment_method_id}.")
        if method.provider != provider:
            raise InvalidPaymentChoice(
                f"That saved payment method belongs to {method.provider}, not {provider}."
            )
        return method.provider_token
    assert payment_token is not None
    if looks_like_card_number(payment_token):
        raise InvalidPaymentChoice(
            "Card numbers are never accepted: send the token your payment form created."
        )
    return payment_token


async def payment_reference(
    session: AsyncSession, *, order_id: uuid.UUID, attempt: int
) -> str | None:
    """What the provider's webhooks call this attempt's payment (e.g. the PayPal order id)."""
    return await session.scalar(
        select(func.coalesce(Payment.provider_reference, Payment.provider_payment_id)).where(
            Payment.order_id == order_id, Payment.attempt == attempt
        )
    )


async def vendor_ids(session: AsyncSession, *, order_id: uuid.UUID) -> list[str]:
    rows = await session.scalars(
        select(OrderVendorPart.vendor_id)
        .where(OrderVendorPart.order_id == order_id)
        .order_by(OrderVendorPart.vendor_id)
    )
    return [str(vendor_id) for vendor_id in rows.all()]
