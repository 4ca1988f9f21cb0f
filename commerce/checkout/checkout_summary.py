"""The order summary a shopper sees before paying: every number exact and explained.

Composes the cart (current prices, stock, sellability), the destination's tax rates, each
vendor's shipping quotes, the promotions that apply, and prices it all with the pure engine
in ``commerce.checkout.pricing``. Nothing here writes: the same summary is recomputed, and its lines
frozen, when the order is placed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.checkout import carts, pricing, promotions, tax
from commerce.fulfilment import shipping
from models import Cart, Category, Product, Variant

# Line problems that keep a line out of the priced order (it cannot be bought as it is).
UNPRICEABLE = {"not_available", "out_of_stock", "currency_mismatch"}


@dataclass(frozen=True)
class Problem:
    """Something that stands between the shopper and paying, with where it is."""

    code: str
    detail: str
    vendor_id: uuid.UUID | None = None
    variant_id: uuid.UUID | None = None


@dataclass(frozen=True)
class SummaryLine:
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
    total: int
    tax_rate_bp: int
    problems: tuple[str, ...]


@dataclass(frozen=True)
class ShippingOption:
    method_code: str
    name: str
    amount: int
    free: bool
    estimated_delivery_earliest: date
    estimated_delivery_latest: date


@dataclass(frozen=True)
class VendorSummary:
    vendor_id: uuid.UUID
    vendor_name: str
    lines: tuple[SummaryLine, ...]
    shipping: ShippingOption | None
    shipping_options: tuple[ShippingOption, ...]
    items_subtotal: int
    discount: int
    shipping_amount: int
    tax: int
    total: int


@dataclass(frozen=True)
class AppliedPromotion:
    promotion_id: str
    label: str
    kind: str
    amount: int


@dataclass(frozen=True)
class CheckoutSummary:
    currency: str | None
    prices_include_tax: bool
    vendors: tuple[VendorSummary, ...]
    promotions: tuple[AppliedPromotion, ...]
    items_subtotal: int
    discount_total: int
    shipping_total: int
    tax_total: int
    grand_total: int
    estimated_delivery_earliest: date | None
    estimated_delivery_latest: date | None
    problems: tuple[Problem, ...] = field(default=())

    @property
    def can_check_out(self) -> bool:
        return not self.problems and bool(self.vendors)


@dataclass(frozen=True)
class _LineFacts:
    product_id: uuid.UUID
    category_path: str
    tax_class: str
    weight_grams: int


async def _line_facts(
    session: AsyncSession, variant_ids: list[uuid.UUID]
) -> dict[uuid.UUID, _LineFacts]:
    rows = await session.execute(
        select(Variant.id, Product.id, Category.path, Product.tax_class, Variant.weight_grams)
        .join(Product, Product.id == Variant.product_id)
        .outerjoin(Category, Category.id == Product.category_id)
        .where(Variant.id.in_(variant_ids))
    )
    return {
        variant_id: _LineFacts(product_id, path or "", tax_class, weight or 0)
        for variant_id, product_id, path, tax_class, weight in rows.all()
    }


def _option(quote: shipping.ShippingQuote) -> ShippingOption:
    return ShippingOption(
        method_code=quote.method_code,
        name=quote.name,
        amount=quote.amount,
        free=quote.free,
        estimated_delivery_earliest=quote.estimated_delivery_earliest,
        estimated_delivery_latest=quote.estimated_delivery_latest,
    )


async def summarize(
    session: AsyncSession,
    *,
    cart: Cart,
    user_id: uuid.UUID | None,
    prices_include_tax: bool,
    now: datetime,
    today: date,
) -> CheckoutSummary:
    """Price the cart for its destination; list every problem instead of failing on the first."""
    view = await carts.view_cart(session, cart=cart)
    problems: list[Problem] = []
    if not view.vendors:
        problems.append(Problem("empty_cart", "The cart is empty."))
    address = cart.shipping_address or {}
    country = address.get("country")
    if not country:
        problems.append(
            Problem("shipping_address_required", "Add a shipping address to see shipping and tax.")
        )

    variant_ids = [line.variant_id for group in view.vendors for line in group.lines]
    facts = await _line_facts(session, variant_ids) if variant_ids else {}
    priced: list[pricing.PricedLine] = []
    for group in view.vendors:
        for line in group.lines:
            codes = {problem.code for problem in line.problems}
            for problem in line.problems:
                problems.append(
                    Problem(
                        problem.code,
                        f"{line.title} ({line.sku}): {problem.code.replace('_', ' ')}"
                        + (f", {problem.available} available" if problem.available else ""),
                        vendor_id=group.vendor_id,
                        variant_id=line.variant_id,
                    )
                )
            if codes & UNPRICEABLE:
                continue
            fact = facts[line.variant_id]
            priced.append(
                pricing.PricedLine(
                    line_id=str(line.variant_id),
                    vendor_id=str(group.vendor_id),
                    product_id=str(fact.product_id),
                    category_path=fact.category_path,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    currency=line.currency,
                    tax_class=fact.tax_class,
                    weight_grams=fact.weight_grams,
                )
            )

    currency = view.currency
    # Tax: every class in the cart needs a rate; a missing one is a configuration problem
    # shown to the shopper (and priced at 0 so the rest of the summary still adds up).
    rates: dict[str, int] = {}
    if country:
        rates = await tax.rates_for(session, country=country, region=address.get("region"))
    classes = {line.tax_class for line in priced} | {"standard"}
    for tax_class in sorted(classes - rates.keys()):
        if country:
            problems.append(
                Problem("tax_rate_missing", f"No {tax_class} tax rate is set up for {country}.")
            )
        rates[tax_class] = 0

    # Shipping: the shopper's choice per vendor if it is offered, else the cheapest.
    charges: list[pricing.ShippingCharge] = []
    options: dict[uuid.UUID, tuple[ShippingOption, ...]] = {}
    chosen: dict[uuid.UUID, ShippingOption] = {}
    for group in view.vendors:
        vendor_lines = [line for line in priced if line.vendor_id == str(group.vendor_id)]
        if not vendor_lines or not country or currency is None:
            continue
        quotes = await shipping.quote(
            session,
            vendor_id=group.vendor_id,
            country=country,
            weight_grams=sum(line.weight_grams * line.quantity for line in vendor_lines),
            subtotal=sum(line.unit_price * line.quantity for line in vendor_lines),
            currency=currency,
            today=today,
        )
        options[group.vendor_id] = tuple(_option(quote) for quote in quotes)
        if not quotes:
            problems.append(
                Problem(
                    "no_shipping_method",
                    f"{group.vendor_name} does not ship to {country}.",
                    vendor_id=group.vendor_id,
                )
            )
            continue
        wanted = cart.shipping_choices.get(str(group.vendor_id))
        quote = next((q for q in quotes if q.method_code == wanted), quotes[0])
        if wanted is not None and quote.method_code != wanted:
            problems.append(
                Problem(
                    "shipping_method_unavailable",
                    f"{group.vendor_name} no longer offers that shipping method here; "
                    f"{quote.name} is shown instead.",
                    vendor_id=group.vendor_id,
                )
            )
        chosen[group.vendor_id] = _option(quote)
        charges.append(
            pricing.ShippingCharge(
                vendor_id=str(group.vendor_id),
                amount=quote.regular_amount if not quote.free else 0,
                currency=currency,
                method_code=quote.method_code,
                method_label=quote.name,
            )
        )

    # Promotions: automatic ones and the entered coupons; refused coupons say why.
    discounts: list[pricing.Discount] = []
    if priced:
        vendor_ids = [group.vendor_id for group in view.vendors]
        candidates, usage = await promotions.load_candidates(
            session,
            coupon_codes=list(cart.coupon_codes),
            vendor_ids=vendor_ids,
            now=now,
            user_id=user_id,
        )
        evaluation = promotions.evaluate(
            lines=priced,
            promotions=candidates,
            coupon_codes=list(cart.coupon_codes),
            now=now,
            customer_usage=usage,
            shipping=charges,
        )
        discounts = list(evaluation.discounts)
        for refused in evaluation.problems:
            problems.append(
                Problem(
                    f"coupon_{refused.reason}",
                    f"Coupon {refused.code}: {refused.reason.replace('_', ' ')}.",
                )
            )

    if not priced or currency is None:
        return CheckoutSummary(
            currency=currency,
            prices_include_tax=prices_include_tax,
            vendors=(),
            promotions=(),
            items_subtotal=0,
            discount_total=0,
            shipping_total=0,
            tax_total=0,
            grand_total=0,
            estimated_delivery_earliest=None,
            estimated_delivery_latest=None,
            problems=tuple(problems),
        )

    breakdown = pricing.price_cart(
        priced,
        currency=currency,
        tax_rates=rates,
        prices_include_tax=prices_include_tax,
        discounts=discounts,
        shipping=charges,
    )
    by_line = {line.line_id: line for line in breakdown.lines}
    by_vendor = {totals.vendor_id: totals for totals in breakdown.vendors}
    vendors: list[VendorSummary] = []
    for group in view.vendors:
        totals = by_vendor.get(str(group.vendor_id))
        if totals is None:
            continue
        lines = tuple(
            SummaryLine(
                variant_id=line.variant_id,
                product_slug=line.product_slug,
                title=line.title,
                sku=line.sku,
                options=line.options,
                quantity=line.quantity,
                unit_price=line.unit_price,
                subtotal=by_line[str(line.variant_id)].subtotal,
                discount=by_line[str(line.variant_id)].discount,
                tax=by_line[str(line.variant_id)].tax,
                total=by_line[str(line.variant_id)].total,
                tax_rate_bp=by_line[str(line.variant_id)].tax_rate,
                problems=tuple(problem.code for problem in line.problems),
            )
            for line in group.lines
            if str(line.variant_id) in by_line
        )
        vendors.append(
            VendorSummary(
                vendor_id=group.vendor_id,
                vendor_name=group.vendor_name,
                lines=lines,
                shipping=chosen.get(group.vendor_id),
                shipping_options=options.get(group.vendor_id, ()),
                items_subtotal=totals.items_subtotal,
                discount=totals.discount,
                shipping_amount=totals.shipping,
                tax=totals.tax,
                total=totals.total,
            )
        )
    dates = [option for option in chosen.values()]
    return CheckoutSummary(
        currency=currency,
        prices_include_tax=prices_include_tax,
        vendors=tuple(vendors),
        promotions=tuple(
            AppliedPromotion(d.promotion_id, d.label, d.kind, d.amount) for d in breakdown.discounts
        ),
        items_subtotal=breakdown.totals.items_subtotal,
        discount_total=breakdown.totals.discount,
        shipping_total=breakdown.totals.shipping,
        tax_total=breakdown.totals.tax,
        grand_total=breakdown.grand_total,
        # Each vendor ships separately: the order is complete when the slowest arrives.
        estimated_delivery_earliest=max(
            (d.estimated_delivery_earliest for d in dates), default=None
        ),
        estimated_delivery_latest=max((d.estimated_delivery_latest for d in dates), default=None),
        problems=tuple(problems),
    )
