"""Pricing properties over arbitrary carts: the sums add up at every level, nothing goes
negative, every figure follows the documented rule, and discounts only ever lower a price.

The oracles here use ``fractions.Fraction`` rather than the module's integer shortcuts, so a
wrong shortcut cannot agree with itself.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from commerce.checkout.pricing import (
    Discount,
    PriceBreakdown,
    PricedLine,
    ShippingCharge,
    Totals,
    price_cart,
)

# A few seconds for the whole file. No deadline: a cart of 20 lines and 9 discounts priced
# several times over is slow only next to a tiny one, and timing flakes prove nothing here.
SETTINGS = settings(max_examples=60, deadline=None)

TAX_CLASSES = ("standard", "reduced", "zero")
VENDORS = ("v1", "v2", "v3", "v4")
CURRENCY = "EUR"


@dataclass(frozen=True)
class Cart:
    lines: tuple[PricedLine, ...]
    rates: dict[str, int]
    inclusive: bool
    discounts: tuple[Discount, ...]
    shipping: tuple[ShippingCharge, ...]

    def price(
        self,
        *,
        lines: Sequence[PricedLine] | None = None,
        discounts: Sequence[Discount] | None = None,
        shipping: Sequence[ShippingCharge] | None = None,
    ) -> PriceBreakdown:
        return price_cart(
            self.lines if lines is None else lines,
            currency=CURRENCY,
            tax_rates=self.rates,
            prices_include_tax=self.inclusive,
            discounts=self.discounts if discounts is None else discounts,
            shipping=self.shipping if shipping is None else shipping,
        )


@st.composite
def carts(draw: st.DrawFn) -> Cart:
    # Short ids from a small alphabet: remainder ties between lines are common, and their
    # tie-break by line_id gets exercised.
    ids = draw(
        st.lists(
            st.text(alphabet="abcxyz", min_size=1, max_size=3), min_size=1, max_size=20, unique=True
        )
    )
    lines = tuple(
        PricedLine(
            line_id=line_id,
            vendor_id=draw(st.sampled_from(VENDORS)),
            product_id=f"product-{line_id}",
            category_path="clothing/t-shirts",
            quantity=draw(st.integers(1, 50)),
            unit_price=draw(st.integers(0, 1_000_000)),
            currency=CURRENCY,
            tax_class=draw(st.sampled_from(TAX_CLASSES)),
            weight_grams=draw(st.integers(0, 5_000)),
        )
        for line_id in ids
    )
    vendors = sorted({line.vendor_id for line in lines})
    shipping = tuple(
        ShippingCharge(
            vendor_id=vendor,
            amount=draw(st.integers(0, 5_000)),
            currency=CURRENCY,
            method_code="standard",
        )
        for vendor in vendors
        if draw(st.booleans())
    )
    scopes = st.frozensets(st.sampled_from(ids))
    percentage = draw(
        st.lists(
            st.builds(
                Discount,
                promotion_id=st.just("pct"),
                label=st.just("percent off"),
                kind=st.just("percentage"),
                value=st.integers(1, 10_000),
                scope=scopes,
            ),
            max_size=3,
        )
    )
    fixed = draw(
        st.lists(
            st.builds(
                Discount,
                promotion_id=st.just("fix"),
                label=st.just("amount off"),
                kind=st.just("fixed"),
                # Small values leave something over; large ones are capped at the scope.
                value=st.one_of(st.integers(0, 5_000), st.integers(0, 100_000_000)),
                scope=scopes,
                currency=st.just(CURRENCY),
            ),
            max_size=3,
        )
    )
    free_shipping = draw(
        st.lists(
            st.builds(
                Discount,
                promotion_id=st.just("ship"),
                label=st.just("free shipping"),
                kind=st.just("free_shipping"),
                vendor_ids=st.frozensets(st.sampled_from(vendors)),
            ),
            max_size=3,
        )
    )
    ordered = draw(st.permutations(percentage + fixed + free_shipping))
    # Distinct promotion ids, so a discount can be found again in the result.
    discounts = tuple(
        replace(discount, promotion_id=f"{discount.promotion_id}-{index}")
        for index, discount in enumerate(ordered)
    )
    return Cart(
        lines=lines,
        rates={tax_class: draw(st.integers(0, 2_700)) for tax_class in TAX_CLASSES},
        inclusive=draw(st.booleans()),
        discounts=discounts,
        shipping=shipping,
    )


def _half_up(value: Fraction) -> int:
    """The oracle: the nearest int, halves up, of a non-negative exact fraction."""
    return math.floor(value + Fraction(1, 2))


def _tax(amount: int, rate: int, inclusive: bool) -> int:
    if inclusive:
        return amount - _half_up(Fraction(amount * 10_000, 10_000 + rate))
    return _half_up(Fraction(amount * rate, 10_000))


def _totals(totals: Totals) -> dict[str, int]:
    return {each.name: getattr(totals, each.name) for each in fields(Totals)}


@SETTINGS
@given(carts())
def test_totals_are_the_sums_of_their_parts(cart: Cart) -> None:
    breakdown = cart.price()
    for line in breakdown.lines:
        assert line.net == line.subtotal - line.discount
        assert line.total == (line.net if cart.inclusive else line.net + line.tax)

    for vendor in breakdown.vendors:
        mine = [line for line in breakdown.lines if line.vendor_id == vendor.vendor_id]
        assert vendor.items_subtotal == sum(line.subtotal for line in mine)
        assert vendor.items_discount == sum(line.discount for line in mine)
        assert vendor.items_net == sum(line.net for line in mine)
        assert vendor.items_tax == sum(line.tax for line in mine)
        assert vendor.shipping == vendor.shipping_subtotal - vendor.shipping_discount
        assert vendor.discount == vendor.items_discount + vendor.shipping_discount
        assert vendor.tax == vendor.items_tax + vendor.shipping_tax
        added = 0 if cart.inclusive else vendor.shipping_tax
        assert vendor.total == sum(line.total for line in mine) + vendor.shipping + added

    cart_totals = _totals(breakdown.totals)
    for name, value in cart_totals.items():
        assert value == sum(getattr(vendor, name) for vendor in breakdown.vendors), name
    assert breakdown.totals.items_subtotal == sum(line.subtotal for line in breakdown.lines)
    assert breakdown.totals.total == sum(line.total for line in breakdown.lines) + sum(
        vendor.shipping + (0 if cart.inclusive else vendor.shipping_tax)
        for vendor in breakdown.vendors
    )
    grand = breakdown.totals.items_net + breakdown.totals.shipping
    assert breakdown.grand_total == (grand if cart.inclusive else grand + breakdown.totals.tax)

    # Each discount's parts add up to what it produced, and the parts are where the money went.
    line_parts = dict.fromkeys((line.line_id for line in cart.lines), 0)
    shipping_parts = dict.fromkeys((vendor.vendor_id for vendor in breakdown.vendors), 0)
    for applied in breakdown.discounts:
        assert applied.amount == sum(part for _, part in applied.allocations)
        into = shipping_parts if applied.kind == "free_shipping" else line_parts
        for target, part in applied.allocations:
            into[target] += part
    assert line_parts == {line.line_id: line.discount for line in breakdown.lines}
    assert shipping_parts == {v.vendor_id: v.shipping_discount for v in breakdown.vendors}
    assert breakdown.totals.discount == sum(applied.amount for applied in breakdown.discounts)


@SETTINGS
@given(carts())
def test_nothing_is_negative_and_no_discount_exceeds_what_it_discounts(cart: Cart) -> None:
    breakdown = cart.price()
    figures = [*breakdown.lines, *breakdown.vendors, breakdown.totals]
    for figure in figures:
        for each in fields(figure):
            value = getattr(figure, each.name)
            if isinstance(value, int | float):
                # Exactly int: a float (or a bool) anywhere is a bug.
                assert type(value) is int, (each.name, value)
                assert value >= 0, (each.name, value)
    for line in breakdown.lines:
        assert line.discount <= line.subtotal
        assert line.tax <= line.total
    for totals in [*breakdown.vendors, breakdown.totals]:
        assert totals.items_discount <= totals.items_subtotal
        assert totals.shipping_discount <= totals.shipping_subtotal
    for applied in breakdown.discounts:
        assert type(applied.amount) is int
        assert all(type(part) is int and part >= 0 for _, part in applied.allocations)
        if applied.kind == "fixed":
            assert applied.amount <= applied.value


@SETTINGS
@given(carts())
def test_tax_is_the_rounded_rate_of_the_net(cart: Cart) -> None:
    breakdown = cart.price()
    for line in breakdown.lines:
        assert line.tax_rate == cart.rates[line.tax_class]
        assert line.tax == _tax(line.net, line.tax_rate, cart.inclusive)
    for vendor in breakdown.vendors:
        assert vendor.shipping_tax == _tax(vendor.shipping, cart.rates["standard"], cart.inclusive)
    if cart.inclusive:
        # The tax is inside: the shopper pays the discounted prices and shipping, no more.
        assert breakdown.grand_total == breakdown.totals.items_net + breakdown.totals.shipping
        assert breakdown.totals.tax <= breakdown.grand_total


@SETTINGS
@given(carts())
def test_discounts_follow_the_documented_rules(cart: Cart) -> None:
    """Replays the discounts by hand, in order, from the allocations the engine reported."""
    breakdown = cart.price()
    nets = {line.line_id: line.quantity * line.unit_price for line in cart.lines}
    shipping_left = {charge.vendor_id: charge.amount for charge in cart.shipping}
    assert [a.promotion_id for a in breakdown.discounts] == [d.promotion_id for d in cart.discounts]
    for discount, applied in zip(cart.discounts, breakdown.discounts, strict=True):
        parts = dict(applied.allocations)
        assert [key for key, _ in applied.allocations] == sorted(parts)
        if discount.kind == "free_shipping":
            assert set(parts) == discount.vendor_ids
            for vendor, part in parts.items():
                assert part == shipping_left.get(vendor, 0)
                if vendor in shipping_left:
                    shipping_left[vendor] = 0
            continue

        assert set(parts) == discount.scope
        scope_net = sum(nets[line_id] for line_id in discount.scope)
        if discount.kind == "percentage":
            assert applied.amount == _half_up(Fraction(scope_net * discount.value, 10_000))
        else:
            assert applied.amount == min(discount.value, scope_net)
        if applied.amount:
            # Largest remainder: every part is the exact share rounded down or up, and the
            # parts rounded up are those with the largest remainders, ties to the smaller id.
            shares = {i: Fraction(applied.amount * nets[i], scope_net) for i in discount.scope}
            assert all(math.floor(shares[i]) <= parts[i] <= math.ceil(shares[i]) for i in parts)
            raised = [i for i in parts if parts[i] > shares[i]]
            rest = [i for i in parts if parts[i] < shares[i]]

            def rank(line_id: str, shares: dict[str, Fraction] = shares) -> tuple[Fraction, str]:
                return (-(shares[line_id] - math.floor(shares[line_id])), line_id)

            if raised and rest:
                assert max(rank(i) for i in raised) < min(rank(i) for i in rest)
        for line_id, part in parts.items():
            assert part <= nets[line_id]
            nets[line_id] -= part
    assert nets == {line.line_id: line.net for line in breakdown.lines}
    assert shipping_left == {
        vendor.vendor_id: vendor.shipping
        for vendor in breakdown.vendors
        if vendor.shipping_charge is not None
    }


@SETTINGS
@given(carts())
def test_each_further_discount_never_increases_any_total(cart: Cart) -> None:
    before = cart.price(discounts=())
    for count in range(1, len(cart.discounts) + 1):
        after = cart.price(discounts=cart.discounts[:count])
        for old, new in zip(before.lines, after.lines, strict=True):
            assert new.net <= old.net
            assert new.tax <= old.tax
            assert new.total <= old.total
        for old_totals, new_totals in zip(
            [*before.vendors, before.totals], [*after.vendors, after.totals], strict=True
        ):
            for name in ("items_net", "items_tax", "shipping", "shipping_tax", "tax", "total"):
                assert getattr(new_totals, name) <= getattr(old_totals, name), name
            assert new_totals.items_subtotal == old_totals.items_subtotal
            assert new_totals.shipping_subtotal == old_totals.shipping_subtotal
        before = after


@SETTINGS
@given(carts(), st.randoms(use_true_random=False))
def test_pricing_is_deterministic_and_independent_of_line_order(
    cart: Cart, rng: random.Random
) -> None:
    first = cart.price()
    assert cart.price() == first

    lines = list(cart.lines)
    shipping = list(cart.shipping)
    rng.shuffle(lines)
    rng.shuffle(shipping)
    # Rebuilding the scopes changes their sets' iteration order where ids collide in the hash.
    discounts = [
        replace(
            d,
            scope=frozenset(sorted(d.scope, reverse=True)),
            vendor_ids=frozenset(sorted(d.vendor_ids)),
        )
        for d in cart.discounts
    ]
    shuffled = cart.price(lines=lines, shipping=shipping, discounts=discounts)

    # Lines keep the order given and vendors the order of their first line; the values do not
    # depend on either.
    assert [line.line_id for line in shuffled.lines] == [line.line_id for line in lines]
    assert {line.line_id: line for line in shuffled.lines} == {
        line.line_id: line for line in first.lines
    }
    assert {v.vendor_id: v for v in shuffled.vendors} == {v.vendor_id: v for v in first.vendors}
    assert shuffled.discounts == first.discounts
    assert shuffled.totals == first.totals
