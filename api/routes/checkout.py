"""Checkout: the order summary, and placing the order (which starts its saga)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response

from api.access import VerifiedUser
from api.deps import NowDep, PaymentProvidersDep, SessionDep, SettingsDep, TemporalDep
from api.routes.carts import CurrentCart
from api.schemas.checkout import CheckoutSummaryRead
from api.schemas.orders import CheckoutCreate, CheckoutRead
from commerce.checkout import carts
from commerce.checkout.checkout_summary import summarize
from commerce.orders import order_saga, orders
from core import metrics
from workflows.contracts.orders import OrderStatusView

router = APIRouter(prefix="/checkout", tags=["checkout"])


@router.get("/summary")
async def checkout_summary(
    cart: CurrentCart, session: SessionDep, settings: SettingsDep, now: NowDep
) -> CheckoutSummaryRead:
    """Items grouped by vendor with each vendor's shipping (chosen or cheapest) and estimated
    delivery, the discounts and the promotion behind each, tax per line, totals, and every
    problem standing in the way (out of stock, no address, coupon refused, ...)."""
    summary = await summarize(
        session,
        cart=cart,
        user_id=cart.user_id,
        prices_include_tax=settings.prices_include_tax,
        now=now,
        today=now.date(),
    )
    return CheckoutSummaryRead.from_domain(summary)


@router.post(
    "",
    status_code=201,
    responses={
        200: {"model": CheckoutRead, "description": "A replay: the order this key placed"},
        202: {
            "model": CheckoutRead,
            "description": "Placed; the payment's outcome is not known yet",
        },
    },
)
async def place_order(
    body: CheckoutCreate,
    principal: VerifiedUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    providers: PaymentProvidersDep,
    response: Response,
    now: NowDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=orders.MAX_IDEMPOTENCY_KEY,
            description="Required: 8 to 200 printable ASCII characters, e.g. a UUID (400 "
            "invalid_idempotency_key without one). The same key returns the same order; "
            "reusing it for another request is refused (422 idempotency_key_reused).",
            # Documented as the service checks it (orders.check_idempotency_key), which
            # answers a missing or malformed key with its own problem code.
            json_schema_extra={"x-required": True, "minLength": 8, "pattern": "^[ -~]+$"},
        ),
    ] = None,
) -> CheckoutRead:
    """Place the order for the current cart and pay for it.

    The order is stored with its prices frozen and its promotion uses counted, then its
    workflow reserves the stock and authorizes the payment. The answer waits (a few seconds
    at most) for the payment's first outcome: ``confirmed``; ``awaiting_payment`` with a
    ``next_action`` (3-D Secure client secret, PayPal approval URL); or a decline the shopper
    may retry with ``POST /orders/{id}/payment``. 201 when placed, 200 for a replay of the
    same key, 202 when the outcome is not known yet (poll ``GET /orders/{id}/payment``).
    """
    key = orders.check_idempotency_key(idempotency_key)
    providers.require(body.payment_provider)
    token = await orders.resolve_payment_token(
        session,
        user_id=principal.user_id,
        provider=body.payment_provider,
        payment_token=body.payment_token,
        payment_method_id=body.payment_method_id,
    )
    fingerprint = orders.request_fingerprint(
        {
            "payment_provider": body.payment_provider,
            "payment_token": body.payment_token,
            "payment_method_id": body.payment_method_id,
        }
    )
    placed = await orders.place_order(
        session,
        cart=await carts.user_cart(session, user_id=principal.user_id),
        customer_id=principal.user_id,
        contact_email=principal.user.email,
        idempotency_key=key,
        request_hash=fingerprint,
        payment_provider=body.payment_provider,
        prices_include_tax=settings.prices_include_tax,
        now=now,
        today=now.date(),
    )
    order = placed.order
    vendor_ids = await orders.vendor_ids(session, order_id=order.id)
    # The order must be stored before its workflow can work on it; if the start below fails,
    # a retry with the same key starts it, and the worker's reconciler undoes it otherwise.
    await session.commit()
    if placed.created:
        metrics.CHECKOUTS_PLACED.labels(body.payment_provider).inc()
    await order_saga.start_order_workflow(
        temporal, settings, order=order, vendor_ids=vendor_ids, payment_token=token
    )
    live = await order_saga.live_status(temporal, order, wait_s=settings.checkout_response_wait_s)
    await session.refresh(order)
    if not placed.created:
        response.status_code = 200
    elif live is not None and not _settled(live):
        response.status_code = 202
    return CheckoutRead.build(order, live)


def _settled(live: OrderStatusView) -> bool:
    if live.status not in ("pending", "awaiting_payment"):
        return True
    return live.payment is not None and live.payment.status in (
        "requires_action",
        "declined",
        "failed",
    )
