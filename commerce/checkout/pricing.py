"""Pricing: what a cart costs, line by line and vendor by vendor, every minor unit explained.

Pure functions: no database, no I/O, no clock. Every amount is an ``int`` of minor units of one
ISO 4217 currency (cents for EUR, yen for JPY, fils for KWD); no float is accepted or produced.
Where a fraction appears (a percentage, a tax rate) its exact rational value is computed in
integer arithmetic and rounded once, by the rules below, so the same cart always prices to the
same numbers and each of them can be recomputed by hand.

Rounding
    ``round_half_up(n / d)`` for ``n >= 0, d > 0`` is ``(2n + d) // 2d``: the nearest integer,
    halves away from zero (every amount here is non-negative). Half up is the commercial
    convention a shopper checks by hand; half-even would be unbiased over many sums, but a
    receipt showing 0.5 rounded down reads as a mistake.

Rules, in the order they apply
    1. A line's ``subtotal`` is ``quantity * unit_price``; its ``net`` starts equal to it.
    2. Discounts apply in the order given, each on the nets left by the ones before it (so
       order matters: 10% then 5.00 off is not 5.00 off then 10%). The promotion module decides
       eligibility and order; this module only computes and allocates.

       - ``percentage`` (``value`` in basis points, 1..10000): amount =
         ``round_half_up(scope_net * value / 10000)``, rounded once on the sum of the scoped
         lines' nets, not per line, so 10% of a 10.00 scope is exactly 1.00 however the scope
         is split into lines.
       - ``fixed`` (``value`` in minor units): amount = ``min(value, scope_net)``. A discount
         never takes more than is left: 10.00 off a 7.00 scope produces 7.00.
       - Either amount is then allocated across the scoped lines in proportion to their current
         nets by the largest-remainder method: each line gets
         ``floor(amount * net / scope_net)``; the few minor units still missing go one each to
         the lines with the largest remainders, ties to the smaller ``line_id`` (plain ``str``
         order, never the order of the lines). The parts add up exactly to the amount, no part
         exceeds its line's net, and a line whose net is already 0 gets nothing.
       - ``free_shipping`` waives what is left of its vendors' shipping charges.

       Nothing ever goes negative. A discount that finds nothing left produces 0 and is still
       listed, with its amount, in :attr:`PriceBreakdown.discounts`.
    3. Tax is computed per line, on the line's net after discounts, at the rate ``r`` (basis
       points) of the line's tax class in the destination's ``tax_rates``:

       - prices exclude tax: ``tax = round_half_up(net * r / 10000)``, ``total = net + tax``;
       - prices include tax: the net already contains the tax, so
         ``tax = net - round_half_up(net * 10000 / (10000 + r))`` and ``total = net``.

       Per line rather than once per vendor or cart because each line shows its tax, and what
       is shown must add up: rounding the sum instead can differ from the sum of the rounded
       lines by a minor unit or more, and the receipt would not add up.
    4. Shipping is one charge per vendor, stated like the prices (tax-inclusive exactly when
       ``prices_include_tax``), reduced by free-shipping waivers, and taxed like one more line
       at the rate of ``shipping_tax_class``, ``"standard"`` by default. That default is a
       simplification: in much of the EU delivery follows the rate of the goods it delivers
       (apportioned when they are mixed); a caller who needs that passes another class.
    5. Totals add up at every level: a vendor's figures are the sums of its lines plus its
       shipping; the cart's are the sums of its vendors'. Grand total = items net + shipping +
       tax when prices exclude tax, items net + shipping when they include it (the tax is then
       inside; it is reported, not added).

Bad input raises :class:`PricingError` (a ``ValueError``): a quantity below 1, a negative price,
amount or rate, a non-``int`` amount, an unknown tax class, a duplicate line or vendor charge, a
discount scope naming a line or vendor not in the cart, or a currency different from the cart's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Literal, TypeVar

from core import money

K = TypeVar("K")

DiscountKind = Literal["percentage", "fixed", "free_shipping"]
DISCOUNT_KINDS: frozenset[str] = frozenset({"percentage", "fixed", "free_shipping"})
BASIS_POINTS = 10_000  # 100%


class PricingError(ValueError):
    """The cart cannot be priced as given (see the module docstring for what is refused)."""


def round_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded to the nearest int, halves up, exactly (no float).
    Both must be non-negative ints and the denominator positive; pricing never needs more."""
    if numerator < 0 or denominator <= 0:
        raise PricingError(f"round_half_up({numerator}, {denominator}) is out of range.")
    return (2 * numerator + denominator) // (2 * denominator)


def added_tax(net: int, rate: int) -> int:
    """The tax to add to a tax-exclusive ``net`` at ``rate`` basis points."""
    return round_half_up(net * rate, BASIS_POINTS)


def included_tax(gross: int, rate: int) -> int:
    """The tax contained in a tax-inclusive ``gross`` at ``rate`` basis points: the gross less
    its rounded pre-tax part, so the two always add back up to the gross."""
    return gross - round_half_up(gross * BASIS_POINTS, BASIS_POINTS + rate)


# --- inputs ---------------------------------------------------------------------------------
# kw_only: these carry several ints side by side (quantity, unit_price, weight_grams), and a
# positional mix-up between them would price silently wrong.


@dataclass(frozen=True, kw_only=True)
class PricedLine:
    """One cart line as pricing sees it. ``unit_price`` is in minor units of ``currency`` and
    includes tax exactly when the cart is priced with ``prices_include_tax``. ``product_id``,
    ``category_path`` and ``weight_grams`` are not used in the arithmetic; they travel with the
    line for the promotion and shipping modules."""

    line_id: str
    vendor_id: str
    product_id: str
    category_path: str
    quantity: int
    unit_price: int
    currency: str
    tax_class: str
    weight_grams: int = 0

    def __post_init__(self) -> None:
        for name in ("line_id", "vendor_id", "product_id", "tax_class"):
            _check_id(name, getattr(self, name))
        if not isinstance(self.category_path, str):
            raise PricingError(f"category_path must be a str, not {self.category_path!r}.")
        _check_int("quantity", self.quantity, minimum=1)
        _check_int("unit_price", self.unit_price)
        _check_int("weight_grams", self.weight_grams)
        _check_currency("currency", self.currency)


@dataclass(frozen=True, kw_only=True)
class Discount:
    """What a promotion produces, eligibility already decided.

    ``kind`` and ``value``: ``"percentage"`` in basis points (1..10000), ``"fixed"`` in minor
    units of ``currency`` (required for it), ``"free_shipping"`` with ``value`` 0. ``scope``
    holds the line_ids a percentage or fixed discount applies to; ``vendor_ids`` the vendors
    whose shipping a free-shipping discount waives. Both are stored as frozensets.
    """

    promotion_id: str
    label: str
    kind: DiscountKind
    value: int = 0
    scope: frozenset[str] = field(default_factory=frozenset)
    vendor_ids: frozenset[str] = field(default_factory=frozenset)
    currency: str | None = None

    def __post_init__(self) -> None:
        _check_id("promotion_id", self.promotion_id)
        if not isinstance(self.label, str):
            raise PricingError(f"label must be a str, not {self.label!r}.")
        if self.kind not in DISCOUNT_KINDS:
            raise PricingError(f"Unknown discount kind {self.kind!r}.")
        # Callers may pass any iterable of ids; storing a frozenset keeps the dataclass
        # immutable and hashable. object.__setattr__ is the documented way in a frozen class.
        object.__setattr__(self, "scope", _id_set("scope", self.scope))
        object.__setattr__(self, "vendor_ids", _id_set("vendor_ids", self.vendor_ids))
        if self.kind == "percentage":
            _check_int("value", self.value, minimum=1, maximum=BASIS_POINTS)
        elif self.kind == "fixed":
            _check_int("value", self.value)
            if self.currency is None:
                raise PricingError(f"The fixed discount {self.promotion_id!r} has no currency.")
        elif self.value != 0:
            raise PricingError("A free_shipping discount waives the charge; its value must be 0.")
        if self.currency is not None:
            _check_currency("currency", self.currency)
        if self.kind == "free_shipping" and self.scope:
            raise PricingError("A free_shipping discount names vendor_ids, not a line scope.")
        if self.kind != "free_shipping" and self.vendor_ids:
            raise PricingError(f"A {self.kind} discount names a line scope, not vendor_ids.")


@dataclass(frozen=True, kw_only=True)
class ShippingCharge:
    """A vendor's shipping for this cart, before discounts, stated like the item prices
    (tax-inclusive exactly when the cart is priced with ``prices_include_tax``)."""

    vendor_id: str
    amount: int
    currency: str
    method_code: str
    method_label: str = ""

    def __post_init__(self) -> None:
        _check_id("vendor_id", self.vendor_id)
        _check_id("method_code", self.method_code)
        _check_int("amount", self.amount)
        _check_currency("currency", self.currency)


# --- outputs --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LinePrice:
    """One line, priced: ``net = subtotal - discount``; ``total = net + tax`` when prices
    exclude tax, ``total = net`` (tax inside) when they include it."""

    line_id: str
    vendor_id: str
    tax_class: str
    tax_rate: int  # basis points, as looked up: shown so the tax can be checked by hand
    subtotal: int
    discount: int
    net: int
    tax: int
    total: int


@dataclass(frozen=True, kw_only=True)
class Totals:
    """Sums for a vendor or the whole cart. ``items_net = items_subtotal - items_discount``;
    ``shipping = shipping_subtotal - shipping_discount``; ``discount`` and ``tax`` are the items'
    plus the shipping's; ``total`` is items net + shipping (+ tax when prices exclude it)."""

    items_subtotal: int
    items_discount: int
    items_net: int
    items_tax: int
    shipping_subtotal: int
    shipping_discount: int
    shipping: int
    shipping_tax: int
    discount: int
    tax: int
    total: int


@dataclass(frozen=True, kw_only=True)
class VendorTotals(Totals):
    """One vendor's share of the cart, and the shipping charge it was priced with, if any."""

    vendor_id: str
    shipping_charge: ShippingCharge | None


@dataclass(frozen=True, kw_only=True)
class AppliedDiscount:
    """A discount as it worked out. ``value`` is its face value (basis points or minor units,
    0 for free shipping); ``amount`` what it actually took off, in minor units, which can be
    less (nothing left to discount) and is 0 when nothing was left at all. ``allocations``
    pairs each line_id in scope (each vendor_id, for free shipping) with its part of
    ``amount``, sorted by id; the parts always add up to ``amount``."""

    promotion_id: str
    label: str
    kind: DiscountKind
    value: int
    amount: int
    allocations: tuple[tuple[str, int], ...]


@dataclass(frozen=True, kw_only=True)
class PriceBreakdown:
    """A priced cart. ``lines`` keep the cart's order, ``vendors`` the order in which they
    first appear in it, ``discounts`` the order they were applied in. ``totals.total`` is the
    grand total the shopper pays."""

    currency: str
    prices_include_tax: bool
    lines: tuple[LinePrice, ...]
    vendors: tuple[VendorTotals, ...]
    discounts: tuple[AppliedDiscount, ...]
    totals: Totals

    @property
    def grand_total(self) -> int:
        return self.totals.total


# --- the engine -----------------------------------------------------------------------------


def price_cart(
    lines: Sequence[PricedLine],
    *,
    currency: str,
    tax_rates: Mapping[str, int],
    prices_include_tax: bool,
    discounts: Sequence[Discount] = (),
    shipping: Sequence[ShippingCharge] = (),
    shipping_tax_class: str = "standard",
) -> PriceBreakdown:
    """Price ``lines`` in ``currency`` by the rules of this module's docstring.

    ``tax_rates`` maps each tax class to its rate in basis points at the destination
    (``{"standard": 2000, "reduced": 700}``); every line's class must be there, and
    ``shipping_tax_class`` too when there is any shipping charge. ``discounts`` apply in the
    order given. Raises :class:`PricingError` (a ``ValueError``) on bad input.
    """
    # Each is walked more than once: a generator would be empty the second time.
    lines, discounts, shipping = tuple(lines), tuple(discounts), tuple(shipping)
    _check_currency("currency", currency)
    if not isinstance(prices_include_tax, bool):
        raise PricingError(f"prices_include_tax must be a bool, not {prices_include_tax!r}.")
    rates = _check_rates(tax_rates)
    by_id = _check_lines(lines, currency, rates)
    vendor_order = list(dict.fromkeys(line.vendor_id for line in lines))
    charges = _check_shipping(shipping, currency, set(vendor_order))
    if charges and shipping_tax_class not in rates:
        raise PricingError(f"No tax rate for the shipping tax class {shipping_tax_class!r}.")
    for discount in discounts:
        _check_discount(discount, currency, by_id, set(vendor_order))

    # What is left to discount, per line and per vendor's shipping.
    nets = {line.line_id: line.quantity * line.unit_price for line in lines}
    shipping_left = {vendor: charge.amount for vendor, charge in charges.items()}
    line_discounts = dict.fromkeys(nets, 0)
    applied: list[AppliedDiscount] = []
    for discount in discounts:
        if discount.kind == "free_shipping":
            parts = {vendor: shipping_left.get(vendor, 0) for vendor in discount.vendor_ids}
            for vendor, part in parts.items():
                if vendor in shipping_left:
                    shipping_left[vendor] -= part
        else:
            scope_nets = {line_id: nets[line_id] for line_id in discount.scope}
            scope_net = sum(scope_nets.values())
            if discount.kind == "percentage":
                amount = round_half_up(scope_net * discount.value, BASIS_POINTS)
            else:
                amount = min(discount.value, scope_net)
            parts = allocate(amount, scope_nets)
            for line_id, part in parts.items():
                nets[line_id] -= part
                line_discounts[line_id] += part
        applied.append(
            AppliedDiscount(
                promotion_id=discount.promotion_id,
                label=discount.label,
                kind=discount.kind,
                value=discount.value,
                amount=sum(parts.values()),
                allocations=tuple(sorted(parts.items())),
            )
        )

    priced = tuple(
        _price_line(line, line_discounts[line.line_id], rates[line.tax_class], prices_include_tax)
        for line in lines
    )
    vendors = tuple(
        _vendor_totals(
            vendor,
            [line for line in priced if line.vendor_id == vendor],
            charges.get(vendor),
            shipping_left.get(vendor, 0),
            rates.get(shipping_tax_class, 0),
            prices_include_tax,
        )
        for vendor in vendor_order
    )
    return PriceBreakdown(
        currency=currency,
        prices_include_tax=prices_include_tax,
        lines=priced,
        vendors=vendors,
        discounts=tuple(applied),
        totals=_sum_totals(vendors),
    )


def allocate(amount: int, weights: Mapping[str, int]) -> dict[str, int]:
    """Split ``amount`` across the keys of ``weights`` in proportion to them, by the
    largest-remainder method: each key gets ``floor(amount * weight / total)``, and the minor
    units still missing go one each to the largest remainders, ties to the smaller key.

    ``0 <= amount <= sum(weights)`` is required, and then no part exceeds its weight: a part
    is below its weight unless ``amount`` is the whole total, and a zero weight gets nothing.
    """
    total = sum(weights.values())
    if amount < 0 or amount > total or any(weight < 0 for weight in weights.values()):
        raise PricingError(f"Cannot allocate {amount} over weights totalling {total}.")
    if amount == 0:
        return dict.fromkeys(weights, 0)
    parts: dict[str, int] = {}
    order: list[tuple[int, str]] = []
    for key, weight in weights.items():
        parts[key], remainder = divmod(amount * weight, total)
        order.append((-remainder, key))
    # The remainders add up to total * missing, each below total, so more than `missing`
    # of them are positive: the extra units never reach a key whose remainder is 0.
    missing = amount - sum(parts.values())
    for _, key in sorted(order)[:missing]:
        parts[key] += 1
    return parts


def _price_line(line: PricedLine, discount: int, rate: int, inclusive: bool) -> LinePrice:
    subtotal = line.quantity * line.unit_price
    net = subtotal - discount
    tax = included_tax(net, rate) if inclusive else added_tax(net, rate)
    return LinePrice(
        line_id=line.line_id,
        vendor_id=line.vendor_id,
        tax_class=line.tax_class,
        tax_rate=rate,
        subtotal=subtotal,
        discount=discount,
        net=net,
        tax=tax,
        total=net if inclusive else net + tax,
    )


def _vendor_totals(
    vendor_id: str,
    lines: Sequence[LinePrice],
    charge: ShippingCharge | None,
    shipping: int,
    shipping_rate: int,
    inclusive: bool,
) -> VendorTotals:
    shipping_subtotal = charge.amount if charge is not None else 0
    shipping_tax = (
        included_tax(shipping, shipping_rate) if inclusive else added_tax(shipping, shipping_rate)
    )
    items_discount = sum(line.discount for line in lines)
    shipping_discount = shipping_subtotal - shipping
    items_tax = sum(line.tax for line in lines)
    items_total = sum(line.total for line in lines)
    return VendorTotals(
        vendor_id=vendor_id,
        shipping_charge=charge,
        items_subtotal=sum(line.subtotal for line in lines),
        items_discount=items_discount,
        items_net=sum(line.net for line in lines),
        items_tax=items_tax,
        shipping_subtotal=shipping_subtotal,
        shipping_discount=shipping_discount,
        shipping=shipping,
        shipping_tax=shipping_tax,
        discount=items_discount + shipping_discount,
        tax=items_tax + shipping_tax,
        total=items_total + (shipping if inclusive else shipping + shipping_tax),
    )


def _sum_totals(vendors: Iterable[Totals]) -> Totals:
    vendors = list(vendors)
    names = [each.name for each in fields(Totals)]
    return Totals(**{name: sum(getattr(vendor, name) for vendor in vendors) for name in names})


# --- validation -----------------------------------------------------------------------------


def _check_int(
    name: str, value: object, *, minimum: int | None = 0, maximum: int | None = None
) -> None:
    # bool is an int subclass, and True as a quantity is a bug, not a 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise PricingError(f"{name} must be an int, not {value!r}.")
    if minimum is not None and value < minimum:
        raise PricingError(f"{name} must be at least {minimum}, not {value}.")
    if maximum is not None and value > maximum:
        raise PricingError(f"{name} must be at most {maximum}, not {value}.")


def _check_id(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise PricingError(f"{name} must be a non-empty str, not {value!r}.")


def _check_currency(name: str, value: object) -> None:
    try:
        money.check_currency(value)
    except money.InvalidCurrency:
        raise PricingError(f"{name} must be an ISO 4217 code like 'EUR', not {value!r}.") from None


def _id_set(name: str, ids: object) -> frozenset[str]:
    # A str is iterable too; frozenset("l1") would be {"l", "1"}.
    if isinstance(ids, str) or not isinstance(ids, Iterable):
        raise PricingError(f"{name} must be a set of ids, not {ids!r}.")
    result = frozenset(ids)
    for item in result:
        _check_id(name, item)
    return result


def _check_rates(tax_rates: Mapping[str, int]) -> dict[str, int]:
    if not isinstance(tax_rates, Mapping):
        raise PricingError(f"tax_rates must be a mapping, not {tax_rates!r}.")
    for tax_class, rate in tax_rates.items():
        _check_int(f"tax rate of {tax_class!r}", rate)
    return dict(tax_rates)


def _check_lines(
    lines: Sequence[PricedLine], currency: str, rates: Mapping[str, int]
) -> dict[str, PricedLine]:
    by_id: dict[str, PricedLine] = {}
    for line in lines:
        if not isinstance(line, PricedLine):
            raise PricingError(f"Not a PricedLine: {line!r}.")
        if line.line_id in by_id:
            raise PricingError(f"The line {line.line_id!r} is in the cart twice.")
        if line.currency != currency:
            raise PricingError(
                f"The line {line.line_id!r} is in {line.currency}, the cart in {currency}."
            )
        if line.tax_class not in rates:
            raise PricingError(
                f"No tax rate for the tax class {line.tax_class!r} of line {line.line_id!r}."
            )
        by_id[line.line_id] = line
    return by_id


def _check_shipping(
    shipping: Sequence[ShippingCharge], currency: str, vendors: set[str]
) -> dict[str, ShippingCharge]:
    charges: dict[str, ShippingCharge] = {}
    for charge in shipping:
        if not isinstance(charge, ShippingCharge):
            raise PricingError(f"Not a ShippingCharge: {charge!r}.")
        if charge.vendor_id in charges:
            raise PricingError(f"The vendor {charge.vendor_id!r} has two shipping charges.")
        if charge.vendor_id not in vendors:
            raise PricingError(f"Shipping for {charge.vendor_id!r}, who has no line in the cart.")
        if charge.currency != currency:
            raise PricingError(
                f"Shipping for {charge.vendor_id!r} is in {charge.currency}, the cart in "
                f"{currency}."
            )
        charges[charge.vendor_id] = charge
    return charges


def _check_discount(
    discount: Discount, currency: str, lines: Mapping[str, PricedLine], vendors: set[str]
) -> None:
    if not isinstance(discount, Discount):
        raise PricingError(f"Not a Discount: {discount!r}.")
    if discount.currency is not None and discount.currency != currency:
        raise PricingError(
            f"The discount {discount.promotion_id!r} is in {discount.currency}, the cart in "
            f"{currency}."
        )
    # A scope naming something the cart lacks means promotions evaluated another cart.
    unknown = sorted(discount.scope - lines.keys()) + sorted(discount.vendor_ids - vendors)
    if unknown:
        raise PricingError(
            f"The discount {discount.promotion_id!r} names {unknown!r}, not in the cart."
        )


def split_by_weight(amount: int, weights: Mapping[K, int]) -> dict[K, int]:
    """``amount`` over the keys of ``weights`` in proportion, by largest remainder (ties to the
    smaller key): the parts add up to ``amount`` exactly. All weights 0: the smallest key takes
    it all; an amount above the weights' total is spread in whole multiples first."""
    if not weights:
        return {}
    total = sum(weights.values())
    if total <= 0:
        first = min(weights, key=str)
        return {key: (amount if key == first else 0) for key in weights}
    whole, rest = divmod(amount, total)
    parts = allocate(rest, {str(key): weight for key, weight in weights.items()})
    return {key: whole * weight + parts[str(key)] for key, weight in weights.items()}
