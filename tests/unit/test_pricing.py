"""Pricing worked examples: every expected number is computed by hand in the comment beside it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from commerce.checkout.pricing import (
    AppliedDiscount,
    Discount,
    PriceBreakdown,
    PricedLine,
    PricingError,
    ShippingCharge,
    Totals,
    allocate,
    price_cart,
    round_half_up,
)
from core.money import format_money

VAT = {"standard": 2000, "reduced": 700}


def _line(
    line_id: str,
    unit_price: int,
    *,
    quantity: int = 1,
    vendor_id: str = "v1",
    tax_class: str = "standard",
    currency: str = "EUR",
) -> PricedLine:
    return PricedLine(
        line_id=line_id,
        vendor_id=vendor_id,
        product_id=f"product-{line_id}",
        category_path="clothing/t-shirts",
        quantity=quantity,
        unit_price=unit_price,
        currency=currency,
        tax_class=tax_class,
        weight_grams=200,
    )


def _percent(promotion_id: str, basis_points: int, scope: set[str]) -> Discount:
    return Discount(
        promotion_id=promotion_id,
        label=f"{basis_points / 100:g}% off",
        kind="percentage",
        value=basis_points,
        scope=frozenset(scope),
    )


def _fixed(promotion_id: str, amount: int, scope: set[str], currency: str = "EUR") -> Discount:
    return Discount(
        promotion_id=promotion_id,
        label=f"{amount} off",
        kind="fixed",
        value=amount,
        scope=frozenset(scope),
        currency=currency,
    )


def _free_shipping(promotion_id: str, vendor_ids: set[str]) -> Discount:
    return Discount(
        promotion_id=promotion_id,
        label="Free shipping",
        kind="free_shipping",
        vendor_ids=frozenset(vendor_ids),
    )


def _shipping(vendor_id: str, amount: int, currency: str = "EUR") -> ShippingCharge:
    return ShippingCharge(
        vendor_id=vendor_id,
        amount=amount,
        currency=currency,
        method_code="standard",
        method_label="Standard delivery",
    )


def _price(
    lines: Sequence[PricedLine],
    *,
    inclusive: bool = False,
    discounts: Sequence[Discount] = (),
    shipping: Sequence[ShippingCharge] = (),
    currency: str = "EUR",
    rates: dict[str, int] | None = None,
) -> PriceBreakdown:
    return price_cart(
        lines,
        currency=currency,
        tax_rates=VAT if rates is None else rates,
        prices_include_tax=inclusive,
        discounts=discounts,
        shipping=shipping,
    )


def _lines(breakdown: PriceBreakdown) -> dict[str, tuple[int, int, int, int, int]]:
    """line_id -> (subtotal, discount, net, tax, total)."""
    return {
        line.line_id: (line.subtotal, line.discount, line.net, line.tax, line.total)
        for line in breakdown.lines
    }


# --- one line, 20% VAT ----------------------------------------------------------------------


def test_a_single_line_with_vat_added() -> None:
    # 3 x 19.99 = 59.97; 20% of it is 11.994 -> 11.99; 59.97 + 11.99 = 71.96.
    breakdown = _price([_line("a", 1999, quantity=3)])
    assert _lines(breakdown) == {"a": (5997, 0, 5997, 1199, 7196)}
    assert breakdown.lines[0].tax_rate == 2000
    assert breakdown.totals == Totals(
        items_subtotal=5997,
        items_discount=0,
        items_net=5997,
        items_tax=1199,
        shipping_subtotal=0,
        shipping_discount=0,
        shipping=0,
        shipping_tax=0,
        discount=0,
        tax=1199,
        total=7196,
    )
    assert breakdown.grand_total == 7196


def test_a_single_line_with_vat_included() -> None:
    # 19.99 / 1.2 = 16.658... -> 16.66 before tax, so 3.33 of the 19.99 is tax; pays 19.99.
    breakdown = _price([_line("a", 1999)], inclusive=True)
    assert _lines(breakdown) == {"a": (1999, 0, 1999, 333, 1999)}
    assert breakdown.totals.tax == 333
    assert breakdown.grand_total == 1999


def test_a_half_minor_unit_of_tax_rounds_up() -> None:
    # 20% of 0.01 is 0.002 -> 0.00; of 0.03 is 0.006 -> 0.01; 7% of 0.50 is 0.035 -> 0.04.
    breakdown = _price(
        [_line("a", 1), _line("b", 3), _line("c", 50, tax_class="reduced")], inclusive=False
    )
    assert {line.line_id: line.tax for line in breakdown.lines} == {"a": 0, "b": 1, "c": 4}


# --- percentage discounts and the largest remainder ----------------------------------------


def test_ten_percent_over_three_lines_sums_exactly() -> None:
    # 10% of 10.00 is 1.00. Shares 33.3, 33.3, 33.4: floors 33 + 33 + 33 = 99, and the missing
    # cent goes to the largest remainder, line c (0.4 against 0.3).
    breakdown = _price(
        [_line("a", 333), _line("b", 333), _line("c", 334)],
        discounts=[_percent("ten", 1000, {"a", "b", "c"})],
    )
    assert _lines(breakdown) == {
        # nets of 3.00 each; 20% VAT 0.60 each.
        "a": (333, 33, 300, 60, 360),
        "b": (333, 33, 300, 60, 360),
        "c": (334, 34, 300, 60, 360),
    }
    assert breakdown.discounts == (
        AppliedDiscount(
            promotion_id="ten",
            label="10% off",
            kind="percentage",
            value=1000,
            amount=100,
            allocations=(("a", 33), ("b", 33), ("c", 34)),
        ),
    )
    assert breakdown.totals.items_discount == 100
    assert breakdown.grand_total == 1080


def test_the_percentage_is_rounded_once_on_the_scope_not_per_line() -> None:
    # 15% of 0.05 is 0.0075 per line: rounded per line three lines would make 0.03.
    # On the scope it is 15% of 0.15 = 0.0225 -> 0.02, split 1 + 1 + 0 (ties to line_id).
    breakdown = _price(
        [_line("a", 5), _line("b", 5), _line("c", 5)],
        discounts=[_percent("fifteen", 1500, {"a", "b", "c"})],
    )
    assert breakdown.discounts[0].amount == 2
    assert dict(breakdown.discounts[0].allocations) == {"a": 1, "b": 1, "c": 0}


def test_remainder_ties_go_to_the_smaller_line_id_whatever_the_cart_order() -> None:
    # 1.00 over three lines of 1.00: 33.33 each, floors 99, all remainders equal: "a" gets it.
    lines = [_line("c", 100), _line("b", 100), _line("a", 100)]
    breakdown = _price(lines, discounts=[_fixed("one", 100, {"a", "b", "c"})])
    assert dict(breakdown.discounts[0].allocations) == {"a": 34, "b": 33, "c": 33}
    # The lines keep the cart's order; the values do not depend on it.
    assert [line.line_id for line in breakdown.lines] == ["c", "b", "a"]
    reordered = _price(lines[::-1], discounts=[_fixed("one", 100, {"a", "b", "c"})])
    assert _lines(reordered) == _lines(breakdown)


def test_a_discount_leaves_lines_outside_its_scope_alone() -> None:
    # 25% of line a's 8.00 is 2.00; line b is not in scope.
    breakdown = _price([_line("a", 800), _line("b", 500)], discounts=[_percent("q", 2500, {"a"})])
    assert _lines(breakdown) == {"a": (800, 200, 600, 120, 720), "b": (500, 0, 500, 100, 600)}


# --- fixed discounts ------------------------------------------------------------------------


def test_a_fixed_discount_larger_than_its_scope_produces_only_the_scope() -> None:
    # 10.00 off a 7.00 scope produces 7.00; line b, outside the scope, pays in full.
    breakdown = _price(
        [_line("a", 700), _line("b", 500)], discounts=[_fixed("ten-off", 1000, {"a"})]
    )
    assert _lines(breakdown) == {"a": (700, 700, 0, 0, 0), "b": (500, 0, 500, 100, 600)}
    applied = breakdown.discounts[0]
    assert (applied.value, applied.amount, applied.allocations) == (1000, 700, (("a", 700),))
    assert breakdown.grand_total == 600


def test_a_fixed_discount_is_split_in_proportion_to_the_nets() -> None:
    # 5.00 over 10.00 and 30.00: 1.25 and 3.75 exactly.
    breakdown = _price(
        [_line("a", 1000), _line("b", 3000)], discounts=[_fixed("five", 500, {"a", "b"})]
    )
    assert dict(breakdown.discounts[0].allocations) == {"a": 125, "b": 375}


# --- stacked discounts ----------------------------------------------------------------------


def test_stacked_discounts_apply_in_order_each_on_what_is_left() -> None:
    lines = [_line("a", 1000), _line("b", 3000)]
    discounts = [
        # 10% of 40.00 = 4.00 -> a 1.00, b 3.00; nets 9.00 and 27.00.
        _percent("ten", 1000, {"a", "b"}),
        # 5.00 off b only; nets 9.00 and 22.00.
        _fixed("five", 500, {"b"}),
        # 15% of 31.00 = 4.65 -> a 4.65 * 9/31 = 1.35, b 4.65 * 22/31 = 3.30.
        _percent("fifteen", 1500, {"a", "b"}),
    ]
    breakdown = _price(lines, discounts=discounts)
    assert [(d.promotion_id, d.amount) for d in breakdown.discounts] == [
        ("ten", 400),
        ("five", 500),
        ("fifteen", 465),
    ]
    # Nets 7.65 and 18.70; 20% VAT 1.53 and 3.74.
    assert _lines(breakdown) == {
        "a": (1000, 235, 765, 153, 918),
        "b": (3000, 1130, 1870, 374, 2244),
    }
    assert (breakdown.totals.discount, breakdown.totals.tax, breakdown.grand_total) == (
        1365,
        527,
        3162,
    )


def test_the_order_of_discounts_matters() -> None:
    # 5.00 off b first: nets 10.00 and 25.00; then 10% of 35.00 = 3.50. Together 8.50,
    # where the other order made 9.00.
    lines = [_line("a", 1000), _line("b", 3000)]
    breakdown = _price(
        lines, discounts=[_fixed("five", 500, {"b"}), _percent("ten", 1000, {"a", "b"})]
    )
    assert [d.amount for d in breakdown.discounts] == [500, 350]
    assert breakdown.totals.items_discount == 850


def test_a_discount_that_finds_nothing_left_produces_zero_and_is_still_listed() -> None:
    breakdown = _price(
        [_line("a", 500)],
        discounts=[_fixed("all", 500, {"a"}), _percent("half", 5000, {"a"}), _fixed("x", 1, set())],
    )
    assert [(d.promotion_id, d.amount) for d in breakdown.discounts] == [
        ("all", 500),
        ("half", 0),
        ("x", 0),
    ]
    assert _lines(breakdown) == {"a": (500, 500, 0, 0, 0)}


# --- shipping -------------------------------------------------------------------------------


def test_free_shipping_for_one_of_two_vendors() -> None:
    lines = [_line("a", 2000, vendor_id="v1"), _line("b", 1000, vendor_id="v2")]
    shipping = [_shipping("v1", 495), _shipping("v2", 395)]
    breakdown = _price(lines, shipping=shipping, discounts=[_free_shipping("ship", {"v1"})])
    v1, v2 = breakdown.vendors
    # v1: 20.00 + 4.00 VAT, its 4.95 shipping waived.
    assert (v1.vendor_id, v1.shipping_subtotal, v1.shipping_discount, v1.shipping) == (
        "v1",
        495,
        495,
        0,
    )
    assert (v1.items_tax, v1.shipping_tax, v1.total) == (400, 0, 2400)
    # v2: 10.00 + 2.00 VAT + 3.95 shipping + 0.79 VAT on it = 16.74.
    assert (v2.shipping, v2.shipping_tax, v2.tax, v2.total) == (395, 79, 279, 1674)
    assert v2.shipping_charge == shipping[1]
    assert breakdown.discounts[0].amount == 495
    assert breakdown.discounts[0].allocations == (("v1", 495),)
    totals = breakdown.totals
    assert (totals.items_discount, totals.shipping_discount, totals.discount) == (0, 495, 495)
    assert (totals.shipping, totals.tax, totals.total) == (395, 679, 4074)


def test_shipping_with_tax_included() -> None:
    # Inclusive: v2's 3.95 shipping holds 3.95 - round(3.95 / 1.2 = 3.2917) = 0.66 of VAT,
    # and nothing is added on top: 10.00 + 3.95 = 13.95.
    lines = [_line("a", 2000, vendor_id="v1"), _line("b", 1000, vendor_id="v2")]
    breakdown = _price(
        lines,
        inclusive=True,
        shipping=[_shipping("v1", 495), _shipping("v2", 395)],
        discounts=[_free_shipping("ship", {"v1"})],
    )
    v1, v2 = breakdown.vendors
    assert (v1.items_tax, v1.shipping_tax, v1.total) == (333, 0, 2000)
    assert (v2.items_tax, v2.shipping_tax, v2.total) == (167, 66, 1395)
    assert breakdown.grand_total == 3395
    assert breakdown.totals.tax == 333 + 167 + 66


def test_a_second_free_shipping_finds_nothing_left() -> None:
    breakdown = _price(
        [_line("a", 1000)],
        shipping=[_shipping("v1", 300)],
        discounts=[_free_shipping("one", {"v1"}), _free_shipping("two", {"v1"})],
    )
    assert [d.amount for d in breakdown.discounts] == [300, 0]


def test_shipping_is_taxed_at_the_class_passed() -> None:
    breakdown = price_cart(
        [_line("a", 1000, tax_class="reduced")],
        currency="EUR",
        tax_rates=VAT,
        prices_include_tax=False,
        shipping=[_shipping("v1", 500)],
        shipping_tax_class="reduced",
    )
    # 7% of 5.00 = 0.35; of 10.00 = 0.70.
    assert (breakdown.totals.shipping_tax, breakdown.totals.items_tax) == (35, 70)
    assert breakdown.grand_total == 1000 + 70 + 500 + 35


# --- tax classes, currencies ----------------------------------------------------------------


def test_reduced_and_standard_classes() -> None:
    breakdown = _price(
        [
            _line("shirt", 1000),  # 20% of 10.00 = 2.00
            _line("book", 1234, tax_class="reduced"),  # 7% of 12.34 = 0.8638 -> 0.86
            _line("zine", 50, tax_class="reduced"),  # 7% of 0.50 = 0.035 -> 0.04
        ]
    )
    assert {line.line_id: (line.tax_rate, line.tax) for line in breakdown.lines} == {
        "shirt": (2000, 200),
        "book": (700, 86),
        "zine": (700, 4),
    }
    assert (breakdown.totals.tax, breakdown.grand_total) == (290, 2284 + 290)


def test_reduced_class_with_tax_included() -> None:
    # 10.70 at 7% holds exactly 0.70; 10.00 at 7% holds 10.00 - round(9.3458) = 0.65.
    breakdown = _price(
        [_line("a", 1070, tax_class="reduced"), _line("b", 1000, tax_class="reduced")],
        inclusive=True,
    )
    assert {line.line_id: line.tax for line in breakdown.lines} == {"a": 70, "b": 65}


def test_yen_has_no_decimals() -> None:
    # 15% off 3,333 yen is 499.95 -> 500; 10% consumption tax on 2,833 is 283.3 -> 283.
    breakdown = _price(
        [_line("a", 3333, currency="JPY")],
        currency="JPY",
        rates={"standard": 1000},
        discounts=[_percent("fifteen", 1500, {"a"})],
    )
    assert _lines(breakdown) == {"a": (3333, 500, 2833, 283, 3116)}
    assert breakdown.currency == "JPY"
    assert format_money(breakdown.grand_total, "JPY") == "3116 JPY"


def test_an_empty_cart_costs_nothing() -> None:
    breakdown = _price([])
    assert breakdown.lines == breakdown.vendors == breakdown.discounts == ()
    assert breakdown.grand_total == 0


# --- allocation and rounding primitives -----------------------------------------------------


def test_round_half_up() -> None:
    assert [round_half_up(n, 4) for n in range(9)] == [0, 0, 1, 1, 1, 1, 2, 2, 2]
    with pytest.raises(PricingError):
        round_half_up(-1, 4)


def test_allocate_never_gives_to_a_zero_weight_nor_more_than_a_weight() -> None:
    assert allocate(3, {"a": 0, "b": 1, "c": 2}) == {"a": 0, "b": 1, "c": 2}
    assert allocate(2, {"a": 0, "b": 1, "c": 1, "d": 1}) == {"a": 0, "b": 1, "c": 1, "d": 0}
    assert allocate(0, {"a": 0}) == {"a": 0}
    assert allocate(0, {}) == {}
    with pytest.raises(PricingError):
        allocate(4, {"a": 1, "b": 2})


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"quantity": 0},
        {"quantity": -1},
        {"quantity": True},
        {"quantity": 1.0},
        {"unit_price": -1},
        {"unit_price": 19.99},
        {"weight_grams": -1},
        {"currency": "eur"},
        {"line_id": ""},
        {"tax_class": None},
    ],
)
def test_bad_lines_are_refused(changes: dict[str, Any]) -> None:
    fields: dict[str, Any] = {
        "line_id": "a",
        "vendor_id": "v1",
        "product_id": "p",
        "category_path": "c",
        "quantity": 1,
        "unit_price": 100,
        "currency": "EUR",
        "tax_class": "standard",
    }
    with pytest.raises(PricingError):
        PricedLine(**(fields | changes))


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "percentage", "value": 0},
        {"kind": "percentage", "value": 10001},
        {"kind": "percentage", "value": 10.5},
        {"kind": "fixed", "value": -1, "currency": "EUR"},
        {"kind": "fixed", "value": 100},  # no currency
        {"kind": "free_shipping", "value": 100},
        {"kind": "free_shipping", "scope": frozenset({"a"})},
        {"kind": "percentage", "value": 1000, "vendor_ids": frozenset({"v1"})},
        {"kind": "percentage", "value": 1000, "scope": "a"},  # a str, not a set of ids
        {"kind": "bogo", "value": 1},
    ],
)
def test_bad_discounts_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(PricingError):
        Discount(promotion_id="p", label="p", **fields)


def test_bad_shipping_charges_are_refused() -> None:
    with pytest.raises(PricingError):
        _shipping("v1", -1)
    four_ninety_five: Any = 4.95
    with pytest.raises(PricingError):
        ShippingCharge(vendor_id="v1", amount=four_ninety_five, currency="EUR", method_code="std")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"lines": [_line("a", 100, currency="USD")]}, "is in USD, the cart in EUR"),
        ({"shipping": [_shipping("v1", 100, currency="USD")]}, "is in USD, the cart in EUR"),
        ({"discounts": [_fixed("f", 100, {"a"}, currency="USD")]}, "is in USD, the cart in EUR"),
        ({"lines": [_line("a", 100, tax_class="luxury")]}, "No tax rate for the tax class"),
        ({"lines": [_line("a", 100), _line("a", 200)]}, "twice"),
        ({"discounts": [_percent("p", 1000, {"a", "zz"})]}, "not in the cart"),
        ({"discounts": [_free_shipping("s", {"v9"})]}, "not in the cart"),
        ({"shipping": [_shipping("v9", 100)]}, "no line in the cart"),
        ({"shipping": [_shipping("v1", 100), _shipping("v1", 200)]}, "two shipping charges"),
        ({"rates": {"standard": -1}}, "at least 0"),
        ({"rates": {"standard": 20.0}}, "must be an int"),
        ({"rates": {"reduced": 700}, "shipping": [_shipping("v1", 1)],
          "lines": [_line("a", 100, tax_class="reduced")]}, "shipping tax class"),
        ({"currency": "eur"}, "ISO 4217"),
    ],
)  # fmt: skip
def test_bad_carts_are_refused(arguments: dict[str, Any], message: str) -> None:
    arguments = {"lines": [_line("a", 100)], "currency": "EUR", "rates": VAT} | arguments
    with pytest.raises(PricingError, match=message) as raised:
        price_cart(
            arguments["lines"],
            currency=arguments["currency"],
            tax_rates=arguments["rates"],
            prices_include_tax=False,
            discounts=arguments.get("discounts", ()),
            shipping=arguments.get("shipping", ()),
        )
    assert isinstance(raised.value, ValueError)
