"""Checkout: the order summary (placing the order comes with the order saga)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from api.deps import SessionDep, SettingsDep
from api.routes.carts import CurrentCart
from api.schemas.checkout import CheckoutSummaryRead
from commerce.checkout_summary import summarize

router = APIRouter(prefix="/checkout", tags=["checkout"])


@router.get("/summary")
async def checkout_summary(
    cart: CurrentCart, session: SessionDep, settings: SettingsDep
) -> CheckoutSummaryRead:
    """Items grouped by vendor with each vendor's shipping (chosen or cheapest) and estimated
    delivery, the discounts and the promotion behind each, tax per line, totals, and every
    problem standing in the way (out of stock, no address, coupon refused, ...)."""
    now = datetime.now(UTC)
    summary = await summarize(
        session,
        cart=cart,
        user_id=cart.user_id,
        prices_include_tax=settings.prices_include_tax,
        now=now,
        today=now.date(),
    )
    return CheckoutSummaryRead.from_domain(summary)
