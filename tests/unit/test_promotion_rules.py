"""The promotion rules, pure: which coupons and automatic promotions a cart gets, and why not."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from commerce.checkout.pricing import PricedLine, ShippingCharge
from commerce.checkout.promotions import CouponProblem, Evaluation, evaluate
from models import Promotion, PromotionKind, PromotionScope

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
V1, V2 = str(uuid.uuid4()), str(uuid.uuid4())
P1, P2, P3 = (str(uuid.uuid4()) for _ in range(3))


def line(line_id: str, *, vendor: str = V1, product: str = P1, path: str = "clothing",
         quantity: int = 1, price: int = 1000) -> PricedLine:  # fmt: skip
    return PricedLine(
        line_id=line_id,
        vendor_id=vendor,
        product_id=product,
        category_path=path,
        quantity=quantity,
        unit_price=price,
        currency="EUR",
        tax_class="standard",
    )


def promo(**values: Any) -> Promotion:
    """A transient promotion with every field set (column defaults only apply on insert)."""
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "vendor_id": None,
        "code": None,
        "name": "Promo",
        "kind": PromotionKind.PERCENTAGE,
        "value": 1000,
        "currency": None,
        "scope": PromotionScope.CART,
        "scope_vendor_id": None,
        "scope_category_path": None,
        "scope_product_ids": [],
        "min_subtotal": 0,
        "starts_at": None,
        "ends_at": None,
        "usage_limit_total": None,
        "usage_limit_per_customer": None,
        "times_used": 0,
        "stackable": True,
        "priority": 0,
        "is_active": True,
    }
    fields.update(values)
    # As the service stores it: a promotion without a code is automatic.
    fields.setdefault("automatic", fields["code"] is None)
    return Promotion(**fields)


def run(
    lines: list[PricedLine], promotions: list[Promotion], codes: Sequence[str] = (), **kw: Any
) -> Evaluation:
    return evaluate(
        lines=lines,
        promotions=promotions,
        coupon_codes=list(codes),
        now=kw.pop("now", NOW),
        customer_usage=kw.pop("customer_usage", {}),
        **kw,
    )


def ids(evaluation: Evaluation) -> list[str]:
    return [d.promotion_id for d in evaluation.discounts]


def test_coupon_codes_are_case_insensitive_and_trimmed_and_counted_once() -> None:
    coupon = promo(code="Save10")
    result = run([line("a")], [coupon], ["  save10 ", "SAVE10"])
    assert ids(result) == [str(coupon.id)]
    assert result.problems == []


def test_unknown_inactive_and_window_problems() -> None:
    inactive = promo(code="OFF", is_active=False)
    early = promo(code="SOON", starts_at=NOW + timedelta(seconds=1))
    late = promo(code="GONE", ends_at=NOW)
    started = promo(code="NOW", starts_at=NOW, ends_at=NOW + timedelta(days=1))
    result = run(
        [line("a")], [inactive, early, late, started], ["nope", "off", "soon", "gone", "now"]
    )
    assert ids(result) == [str(started.id)]
    assert result.problems == [
        CouponProblem("nope", "unknown"),
        CouponProblem("off", "inactive"),
        CouponProblem("soon", "not_started"),
        CouponProblem("gone", "expired"),
    ]


def test_usage_limits_total_and_per_customer() -> None:
    total = promo(code="TOTAL", usage_limit_total=5, times_used=5)
    mine = promo(code="MINE", usage_limit_per_customer=1)
    fine = promo(code="FINE", usage_limit_total=5, times_used=4, usage_limit_per_customer=2)
    result = run(
        [line("a")],
        [total, mine, fine],
        ["TOTAL", "MINE", "FINE"],
        customer_usage={mine.id: 1, fine.id: 1},
    )
    assert ids(result) == [str(fine.id)]
    assert result.problems == [
        CouponProblem("TOTAL", "usage_limit"),
        CouponProblem("MINE", "usage_limit"),
    ]


def test_min_subtotal_counts_only_the_lines_in_scope() -> None:
    coupon = promo(
        code="V1MIN",
        scope=PromotionScope.VENDOR,
        scope_vendor_id=uuid.UUID(V1),
        min_subtotal=3000,
        currency="EUR",
    )
    lines = [line("a", price=2000), line("b", vendor=V2, price=5000)]
    assert run(lines, [coupon], ["v1min"]).problems == [CouponProblem("v1min", "min_subtotal")]
    lines[0] = line("a", price=1500, quantity=2)
    result = run(lines, [coupon], ["v1min"])
    assert result.problems == []
    assert result.discounts[0].scope == frozenset({"a"})


def test_other_currency_or_nothing_in_scope_is_not_applicable() -> None:
    dollars = promo(code="USD", kind=PromotionKind.FIXED, value=500, currency="USD")
    shoes = promo(code="SHOES", scope=PromotionScope.CATEGORY, scope_category_path="shoes")
    result = run([line("a")], [dollars, shoes], ["usd", "shoes"])
    assert result.discounts == []
    assert [p.reason for p in result.problems] == ["not_applicable", "not_applicable"]


def test_category_scope_is_the_subtree() -> None:
    coupon = promo(code="CLOTHES", scope=PromotionScope.CATEGORY, scope_category_path="clothing")
    lines = [
        line("exact", path="clothing"),
        line("under", path="clothing/t-shirts/long"),
        line("sibling", path="clothing-outlet"),
        line("other", path="garden"),
    ]
    result = run(lines, [coupon], ["clothes"])
    assert result.discounts[0].scope == frozenset({"exact", "under"})


def test_products_scope_and_vendor_promotions_stay_in_their_vendor() -> None:
    products = promo(
        code="PROD",
        scope=PromotionScope.PRODUCTS,
        scope_product_ids=[uuid.UUID(P1), uuid.UUID(P2)],
    )
    # A vendor's promotion never reaches another vendor's lines, whatever its scope says.
    vendor_owned = promo(vendor_id=uuid.UUID(V2), scope=PromotionScope.PRODUCTS,
                         scope_product_ids=[uuid.UUID(P1), uuid.UUID(P3)])  # fmt: skip
    lines = [line("a", product=P1), line("b", product=P2), line("c", product=P3, vendor=V2),
             line("d", product=P1, vendor=V2)]  # fmt: skip
    result = run(lines, [products, vendor_owned], ["prod"])
    by_id = {d.promotion_id: d for d in result.discounts}
    assert by_id[str(products.id)].scope == frozenset({"a", "b", "d"})
    assert by_id[str(vendor_owned.id)].scope == frozenset({"c", "d"})


def test_automatic_promotions_apply_silently_and_fail_silently() -> None:
    applies = promo(name="Autumn")
    too_small = promo(min_subtotal=10_000, currency="EUR")
    over = promo(ends_at=NOW - timedelta(days=1))
    result = run([line("a")], [applies, too_small, over])
    assert ids(result) == [str(applies.id)]
    assert result.problems == []


def test_free_shipping_names_the_vendors_in_scope() -> None:
    shipping = promo(
        code="SHIP",
        kind=PromotionKind.FREE_SHIPPING,
        value=0,
        scope=PromotionScope.VENDOR,
        scope_vendor_id=uuid.UUID(V2),
    )
    result = run([line("a"), line("b", vendor=V2)], [shipping], ["ship"])
    (discount,) = result.discounts
    assert discount.kind == "free_shipping"
    assert (discount.vendor_ids, discount.scope) == (frozenset({V2}), frozenset())


def test_stackable_promotions_all_apply_in_order() -> None:
    fixed_high = promo(code="FIXED", kind=PromotionKind.FIXED, value=300, currency="EUR",
                       priority=5)  # fmt: skip
    ship = promo(code="SHIP", kind=PromotionKind.FREE_SHIPPING, value=0)
    fixed = promo(code="FIVE", kind=PromotionKind.FIXED, value=500, currency="EUR")
    percent = promo(code="TEN", value=1000)
    result = run([line("a")], [ship, fixed, percent, fixed_high], ["ship", "five", "ten", "fixed"])
    # Priority first; then percentage, fixed, free shipping.
    assert ids(result) == [str(p.id) for p in (fixed_high, percent, fixed, ship)]
    assert result.problems == []
    fixed_discount = result.discounts[2]
    assert (fixed_discount.kind, fixed_discount.value, fixed_discount.currency) == (
        "fixed",
        500,
        "EUR",
    )


def test_one_non_stackable_means_only_the_best_applies() -> None:
    ten_percent = promo(code="TEN", value=1000)  # 10% of 50.00 = 5.00
    six_off = promo(code="SIX", kind=PromotionKind.FIXED, value=600, currency="EUR",
                    stackable=False)  # fmt: skip
    automatic = promo(value=500)  # 2.50, automatic
    result = run([line("a", price=5000)], [ten_percent, six_off, automatic], ["ten", "six"])
    assert ids(result) == [str(six_off.id)]
    # Only coupons the shopper typed are reported; the automatic one just drops out.
    assert result.problems == [CouponProblem("ten", "not_combinable")]

    # The best one wins even when it is the stackable one.
    result = run([line("a", price=10_000)], [ten_percent, six_off], ["six", "ten"])
    assert ids(result) == [str(ten_percent.id)]
    assert result.problems == [CouponProblem("six", "not_combinable")]


def test_free_shipping_competes_with_the_shipping_it_waives() -> None:
    ship = promo(code="SHIP", kind=PromotionKind.FREE_SHIPPING, value=0, stackable=False)
    percent = promo(code="TEN", value=1000)  # 1.00 of 10.00
    charge = ShippingCharge(vendor_id=V1, amount=490, currency="EUR", method_code="std")
    result = run([line("a")], [ship, percent], ["ship", "ten"], shipping=[charge])
    assert ids(result) == [str(ship.id)]
    assert result.problems == [CouponProblem("ten", "not_combinable")]
    # Without the shipping known, waiving it is worth 0 and the percentage wins.
    result = run([line("a")], [ship, percent], ["ship", "ten"])
    assert ids(result) == [str(percent.id)]


def test_ties_go_to_the_first_in_application_order() -> None:
    low = promo(code="A", kind=PromotionKind.FIXED, value=100, currency="EUR", stackable=False)
    high = promo(code="B", kind=PromotionKind.FIXED, value=100, currency="EUR", priority=1)
    result = run([line("a")], [low, high], ["a", "b"])
    assert ids(result) == [str(high.id)]
    assert result.problems == [CouponProblem("a", "not_combinable")]


def test_an_empty_cart_gets_nothing() -> None:
    coupon = promo(code="X")
    result = run([], [coupon, promo()], ["x"])
    assert result.discounts == []
    assert result.problems == [CouponProblem("x", "not_applicable")]
