"""Promotions: coupons and automatic promotions, which of them a cart gets, and counting uses.

Three parts:

Management (admins for the platform, vendor managers for their own vendor)
    :func:`create_promotion`, :func:`update_promotion`, :func:`deactivate_promotion`,
    :func:`list_promotions`, :func:`get_promotion`. A promotion is a coupon when it has a
    ``code`` (unique case-insensitively) and automatic when it has none: ``automatic`` is
    derived, never chosen. A vendor's promotion only ever touches that vendor's lines: its scope
    is ``vendor`` (the vendor itself; ``cart`` is turned into it) or ``products`` (all of them
    the vendor's own); ``category`` is refused, the platform's catalog tree is not theirs.
    Bad values raise :class:`InvalidPromotion` (422), a code in use :class:`PromotionCodeTaken`
    (409), someone else's promotion :class:`PromotionNotFound` (404).

Evaluation (pure: :func:`evaluate`, given what :func:`load_candidates` read)
    1. Coupon codes are trimmed and compared case-insensitively; a code given twice counts once.
       Each must name a promotion, which must be active, started (``starts_at <= now``), not
       ended (``now < ends_at``), under its total and per-customer limits, have lines in scope
       (and the cart's currency, when the promotion names one), and reach ``min_subtotal``
       with the subtotal of the lines in its scope (quantity x unit price, before discounts).
       The first rule a coupon fails, in that order, is reported as a :class:`CouponProblem`
       (``unknown``, ``inactive``, ``not_started``, ``expired``, ``usage_limit``,
       ``not_applicable``, ``min_subtotal``).
    2. Automatic promotions among the candidates that pass the same rules apply; one that
       fails is silently left out (the shopper never asked for it).
    3. Scope selects line_ids: ``cart`` every line, ``vendor`` that vendor's lines, ``category``
       lines whose ``category_path`` is the path or under it (``a/b`` covers ``a/b`` and
       ``a/b/c``, not ``a/bc``), ``products`` the listed products' lines. A vendor's
       promotion is further limited to its vendor's lines. Free shipping waives the shipping
       of the vendors of the lines in scope.
    4. Order: priority descending, then percentage before fixed before free shipping (a
       percentage taken after a fixed amount would shrink, so percentages go first), then id.
    5. Stacking: when every applicable promotion is stackable they all apply, in that order.
       When any of them is not, only the single best one applies: the largest amount computed
       by the pricing engine alone on the cart (free shipping counts the shipping it waives, so
       pass ``shipping`` to compare it fairly), ties to the earlier in the order. The coupons
       left out are reported ``not_combinable``.

Counting uses (atomic; what checkout calls in its first step)
    :func:`reserve_usage` counts one use per promotion for an order, all or nothing;
    :func:`confirm_usage` marks them confirmed once the order is paid; :func:`release_usage`
    gives them back when the order is cancelled. All three are idempotent by order.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.checkout import pricing
from commerce.errors import Conflict, DomainError, NotFound
from core.locks import advisory_lock
from core.pagination import Page, newest_first
from models import (
    Product,
    Promotion,
    PromotionKind,
    PromotionRedemption,
    PromotionScope,
    RedemptionStatus,
)

CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
CURRENCY_PATTERN = re.compile(r"^[A-Z]{3}$")
_CODE_CONSTRAINT = "uq_promotions_code"
_SMALLINT = (-32768, 32767)
_INT_MAX = 2**31 - 1
# The fields a client may set; everything else (times_used, automatic, vendor_id) is derived.
EDITABLE_FIELDS = frozenset(
    {
        "code",
        "name",
        "kind",
        "value",
        "currency",
        "scope",
        "scope_vendor_id",
        "scope_category_path",
        "scope_product_ids",
        "min_subtotal",
        "starts_at",
        "ends_at",
        "usage_limit_total",
        "usage_limit_per_customer",
        "stackable",
        "priority",
        "is_active",
    }
)
_DEFAULTS: Mapping[str, Any] = {
    "code": None,
    "value": 0,
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
    "stackable": True,
    "priority": 0,
    "is_active": True,
}


# --- errors ---------------------------------------------------------------------------------


class InvalidPromotion(DomainError):
    status, code, title = 422, "invalid_promotion", "The promotion is not valid"


class PromotionCodeTaken(Conflict):
    code, title = "promotion_code_taken", "Another promotion has this code"


class PromotionNotFound(NotFound):
    code, title = "promotion_not_found", "No such promotion"


class PromotionExhausted(Conflict):
    code, title = "promotion_exhausted", "The promotion has no uses left"


def invalid_field(field: str, message: str) -> InvalidPromotion:
    """Named like request validation errors, so a client shows it next to the right input."""
    return InvalidPromotion(
        message,
        errors=[{"loc": ["body", field], "message": message, "type": InvalidPromotion.code}],
    )


_invalid = invalid_field


# --- management -----------------------------------------------------------------------------


def _check_values(values: dict[str, Any], *, vendor_id: uuid.UUID | None) -> dict[str, Any]:
    """The complete, normalised field values of a promotion, or :class:`InvalidPromotion`.
    Pure: the products' ownership is checked by the caller, which can read them."""
    unknown = set(values) - EDITABLE_FIELDS
    if unknown:
        raise _invalid(sorted(unknown)[0], f"Unknown field {sorted(unknown)[0]!r}.")
    out = dict(values)

    code = out.get("code")
    if code is not None:
        code = str(code).strip()
        if not CODE_PATTERN.match(code):
            raise _invalid("code", "A code is 1-40 letters, digits, '-' or '_'.")
    out["code"] = code

    name = str(out.get("name") or "").strip()
    if not 1 <= len(name) <= 200:
        raise _invalid("name", "A promotion needs a name of 1-200 characters.")
    out["name"] = name

    try:
        kind = PromotionKind(str(out.get("kind")))
    except ValueError:
        raise _invalid("kind", "The kind is percentage, fixed or free_shipping.") from None
    try:
        scope = PromotionScope(str(out.get("scope")))
    except ValueError:
        raise _invalid("scope", "The scope is cart, vendor, category or products.") from None
    out["kind"], out["scope"] = kind, scope

    value, currency = out.get("value"), out.get("currency")
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid("value", "The value is an integer.")
    if currency is not None and not CURRENCY_PATTERN.match(str(currency)):
        raise _invalid("currency", "The currency is an ISO 4217 code such as EUR.")
    if kind == PromotionKind.PERCENTAGE and not 1 <= value <= pricing.BASIS_POINTS:
        raise _invalid("value", "A percentage is 1-10000 basis points (0.01% to 100%).")
    if kind == PromotionKind.FIXED:
        if not 1 <= value <= 2**62:
            raise _invalid("value", "A fixed amount is a positive number of minor units.")
        if currency is None:
            raise _invalid("currency", "A fixed amount needs its currency.")
    if kind == PromotionKind.FREE_SHIPPING and value != 0:
        raise _invalid("value", "Free shipping has no value: send 0.")

    min_subtotal = out.get("min_subtotal")
    if not isinstance(min_subtotal, int) or not 0 <= min_subtotal <= 2**62:
        raise _invalid("min_subtotal", "The minimum subtotal is a non-negative integer.")
    # Minor units mean nothing without their currency.
    if min_subtotal > 0 and currency is None:
        raise _invalid("currency", "A minimum subtotal needs the currency it is counted in.")

    starts_at, ends_at = out.get("starts_at"), out.get("ends_at")
    for field_name, moment in (("starts_at", starts_at), ("ends_at", ends_at)):
        if moment is not None and (not isinstance(moment, datetime) or moment.tzinfo is None):
            raise _invalid(field_name, "Times carry their UTC offset.")
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise _invalid("ends_at", "The promotion must end after it starts.")

    for field_name in ("usage_limit_total", "usage_limit_per_customer"):
        limit = out.get(field_name)
        if limit is not None and (not isinstance(limit, int) or not 1 <= limit <= _INT_MAX):
            raise _invalid(field_name, "A usage limit is a positive integer, or null for none.")
    priority = out.get("priority")
    if not isinstance(priority, int) or not _SMALLINT[0] <= priority <= _SMALLINT[1]:
        raise _invalid("priority", "The priority is an integer from -32768 to 32767.")

    scope_vendor_id = out.get("scope_vendor_id")
    path = out.get("scope_category_path")
    product_ids = list(dict.fromkeys(out.get("scope_product_ids") or []))
    if vendor_id is not None:
        # A vendor's promotion is theirs alone: its scope is forced to the vendor.
        if scope == PromotionScope.CATEGORY:
            raise _invalid("scope", "A vendor's promotion applies to its vendor or its products.")
        # Naming another vendor is refused rather than silently rewritten: it is a mistake.
        if scope == PromotionScope.VENDOR and scope_vendor_id not in (None, vendor_id):
            raise _invalid("scope_vendor_id", "A vendor's promotion applies to its own vendor.")
        if scope in (PromotionScope.CART, PromotionScope.VENDOR):
            scope, scope_vendor_id = PromotionScope.VENDOR, vendor_id
    if scope == PromotionScope.VENDOR and scope_vendor_id is None:
        raise _invalid("scope_vendor_id", "A vendor scope names the vendor.")
    if scope == PromotionScope.CATEGORY:
        path = str(path or "").strip().strip("/")
        if not path:
            raise _invalid("scope_category_path", "A category scope names the category path.")
    if scope == PromotionScope.PRODUCTS and not product_ids:
        raise _invalid("scope_product_ids", "A products scope lists at least one product.")
    # Fields of other scopes are cleared, so what is stored says exactly what applies.
    out["scope"] = scope
    out["scope_vendor_id"] = scope_vendor_id if scope == PromotionScope.VENDOR else None
    out["scope_category_path"] = path if scope == PromotionScope.CATEGORY else None
    out["scope_product_ids"] = product_ids if scope == PromotionScope.PRODUCTS else []
    out["automatic"] = code is None
    return out


async def _check_products(
    session: AsyncSession, values: Mapping[str, Any], *, vendor_id: uuid.UUID | None
) -> None:
    product_ids = values["scope_product_ids"]
    if not product_ids:
        return
    statement = select(Product.id).where(Product.id.in_(product_ids))
    if vendor_id is not None:
        statement = statement.where(Product.vendor_id == vendor_id)
    found = set((await session.scalars(statement)).all())
    missing = [str(p) for p in product_ids if p not in found]
    if missing:
        # The same answer for someone else's product and no product: ids are not disclosed.
        raise _invalid("scope_product_ids", f"No such product: {missing[0]}.")


async def _code_is_free(
    session: AsyncSession, code: str | None, *, other_than: uuid.UUID | None = None
) -> bool:
    if code is None:
        return True
    statement = select(Promotion.id).where(func.lower(Promotion.code) == code.lower())
    if other_than is not None:
        statement = statement.where(Promotion.id != other_than)
    return await session.scalar(statement) is None


async def _store(session: AsyncSession, promotion: Promotion) -> None:
    """Flush in a savepoint: losing a race for the code leaves the transaction usable."""
    try:
        async with session.begin_nested():
            session.add(promotion)
            await session.flush()
    except IntegrityError as error:
        diag = getattr(error.orig, "diag", None)
        if getattr(diag, "constraint_name", None) == _CODE_CONSTRAINT:
            raise PromotionCodeTaken(f"The code {promotion.code!r} is in use.") from None
        raise


async def create_promotion(
    session: AsyncSession, *, vendor_id: uuid.UUID | None, values: Mapping[str, Any]
) -> Promotion:
    """A new promotion of the platform (``vendor_id`` None) or of one vendor."""
    merged = _check_values({**_DEFAULTS, **values}, vendor_id=vendor_id)
    await _check_products(session, merged, vendor_id=vendor_id)
    if not await _code_is_free(session, merged["code"]):
        raise PromotionCodeTaken(f"The code {merged['code']!r} is in use.")
    promotion = Promotion(id=uuid.uuid4(), vendor_id=vendor_id, times_used=0, **merged)
    await _store(session, promotion)
    return promotion


async def get_promotion(
    session: AsyncSession, *, promotion_id: uuid.UUID, vendor_id: uuid.UUID | None = None
) -> Promotion:
    """One promotion; with ``vendor_id``, only that vendor's (anyone else's is not found)."""
    statement = select(Promotion).where(Promotion.id == promotion_id)
    if vendor_id is not None:
        statement = statement.where(Promotion.vendor_id == vendor_id)
    promotion = await session.scalar(statement)
    if promotion is None:
        raise PromotionNotFound("No such promotion.")
    return promotion


async def list_promotions(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID | None = None,
    platform_only: bool = False,
    active: bool | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[Promotion]:
    """Promotions, newest first, a page at a time: one vendor's, the platform's alone, or all
    of them."""
    statement = select(Promotion)
    if vendor_id is not None:
        statement = statement.where(Promotion.vendor_id == vendor_id)
    elif platform_only:
        statement = statement.where(Promotion.vendor_id.is_(None))
    if active is not None:
        statement = statement.where(Promotion.is_active.is_(active))
    return await newest_first(
        session,
        statement,
        created_at=Promotion.created_at,
        id=Promotion.id,
        scope="promotions",
        cursor=cursor,
        limit=limit,
    )


async def update_promotion(
    session: AsyncSession,
    *,
    promotion_id: uuid.UUID,
    vendor_id: uuid.UUID | None = None,
    changes: Mapping[str, Any],
) -> Promotion:
    """Change some fields; the result is validated as a whole, as on creation. With
    ``vendor_id`` only that vendor's promotion can be changed."""
    promotion = await get_promotion(session, promotion_id=promotion_id, vendor_id=vendor_id)
    current = {name: getattr(promotion, name) for name in EDITABLE_FIELDS}
    merged = _check_values({**current, **changes}, vendor_id=promotion.vendor_id)
    await _check_products(session, merged, vendor_id=promotion.vendor_id)
    limit = merged["usage_limit_total"]
    if limit is not None and limit < promotion.times_used:
        raise _invalid(
            "usage_limit_total", f"It has been used {promotion.times_used} times already."
        )
    if not await _code_is_free(session, merged["code"], other_than=promotion.id):
        raise PromotionCodeTaken(f"The code {merged['code']!r} is in use.")
    for name, value in merged.items():
        setattr(promotion, name, value)
    await _store(session, promotion)
    await session.refresh(promotion)
    return promotion


async def deactivate_promotion(
    session: AsyncSession, *, promotion_id: uuid.UUID, vendor_id: uuid.UUID | None = None
) -> Promotion:
    """Stop a promotion from applying to new carts (idempotent). Orders already placed with it
    keep their discount; their uses can still be released."""
    promotion = await get_promotion(session, promotion_id=promotion_id, vendor_id=vendor_id)
    if promotion.is_active:
        promotion.is_active = False
        await session.flush()
        await session.refresh(promotion)
    return promotion


# --- evaluation -----------------------------------------------------------------------------

ProblemReason = Literal[
    "unknown",
    "expired",
    "not_started",
    "inactive",
    "min_subtotal",
    "usage_limit",
    "not_applicable",
    "not_combinable",
]
_KIND_ORDER = {PromotionKind.PERCENTAGE: 0, PromotionKind.FIXED: 1, PromotionKind.FREE_SHIPPING: 2}


@dataclass(frozen=True)
class CouponProblem:
    """Why a coupon the shopper entered does not apply. ``code`` is as they typed it."""

    code: str
    reason: ProblemReason


@dataclass(frozen=True)
class Evaluation:
    """The discounts to price the cart with, in application order, and the coupons refused."""

    discounts: list[pricing.Discount]
    problems: list[CouponProblem]

    @property
    def promotion_ids(self) -> list[uuid.UUID]:
        """What :func:`reserve_usage` is to count for the order."""
        return [uuid.UUID(d.promotion_id) for d in self.discounts]


def normalize_code(code: str) -> str:
    """The form codes are compared in (the database's unique index is on ``lower(code)``)."""
    return code.strip().lower()


def _in_scope(promotion: Promotion, line: pricing.PricedLine) -> bool:
    if promotion.vendor_id is not None and line.vendor_id != str(promotion.vendor_id):
        return False
    match promotion.scope:
        case PromotionScope.CART:
            return True
        case PromotionScope.VENDOR:
            return line.vendor_id == str(promotion.scope_vendor_id)
        case PromotionScope.CATEGORY:
            path = (promotion.scope_category_path or "").strip("/")
            line_path = line.category_path.strip("/")
            return bool(path) and (line_path == path or line_path.startswith(path + "/"))
        case PromotionScope.PRODUCTS:
            return line.product_id in {str(p) for p in promotion.scope_product_ids or ()}
    return False


def _refusal(
    promotion: Promotion,
    *,
    lines: Sequence[pricing.PricedLine],
    currency: str | None,
    now: datetime,
    customer_usage: Mapping[uuid.UUID, int],
) -> tuple[ProblemReason | None, list[pricing.PricedLine]]:
    """The first rule ``promotion`` fails for this cart (None: it applies), and its lines."""
    if not promotion.is_active:
        return "inactive", []
    if promotion.starts_at is not None and now < promotion.starts_at:
        return "not_started", []
    if promotion.ends_at is not None and now >= promotion.ends_at:
        return "expired", []
    total_limit, customer_limit = promotion.usage_limit_total, promotion.usage_limit_per_customer
    if total_limit is not None and (promotion.times_used or 0) >= total_limit:
        return "usage_limit", []
    if customer_limit is not None and customer_usage.get(promotion.id, 0) >= customer_limit:
        return "usage_limit", []
    scoped = [line for line in lines if _in_scope(promotion, line)]
    if not scoped or (promotion.currency is not None and promotion.currency != currency):
        return "not_applicable", []
    if sum(line.quantity * line.unit_price for line in scoped) < (promotion.min_subtotal or 0):
        return "min_subtotal", []
    return None, scoped


def _discount(promotion: Promotion, scoped: Sequence[pricing.PricedLine]) -> pricing.Discount:
    if promotion.kind == PromotionKind.FREE_SHIPPING:
        return pricing.Discount(
            promotion_id=str(promotion.id),
            label=promotion.name,
            kind="free_shipping",
            vendor_ids=frozenset(line.vendor_id for line in scoped),
        )
    return pricing.Discount(
        promotion_id=str(promotion.id),
        label=promotion.name,
        # PromotionKind has exactly DiscountKind's values; free_shipping returned above.
        kind=cast(pricing.DiscountKind, promotion.kind.value),
        value=promotion.value,
        scope=frozenset(line.line_id for line in scoped),
        currency=promotion.currency if promotion.kind == PromotionKind.FIXED else None,
    )


def _amount_alone(
    discount: pricing.Discount,
    *,
    lines: Sequence[pricing.PricedLine],
    currency: str,
    shipping: Sequence[pricing.ShippingCharge],
) -> int:
    # Tax does not change a discount's amount, so every class is priced at 0% here.
    rates = {line.tax_class: 0 for line in lines} | {"standard": 0}
    breakdown = pricing.price_cart(
        lines,
        currency=currency,
        tax_rates=rates,
        prices_include_tax=False,
        discounts=[discount],
        shipping=shipping,
    )
    return breakdown.discounts[0].amount


def evaluate(
    *,
    lines: Sequence[pricing.PricedLine],
    promotions: Sequence[Promotion],
    coupon_codes: Sequence[str],
    now: datetime,
    customer_usage: Mapping[uuid.UUID, int],
    shipping: Sequence[pricing.ShippingCharge] = (),
) -> Evaluation:
    """Which promotions a cart gets, by the rules of the module docstring. Pure: no database,
    no clock (``now`` is given). ``promotions`` are the candidates (see
    :func:`load_candidates`); ``customer_usage`` counts the shopper's reserved and confirmed
    uses per promotion id (empty for a guest); ``shipping`` is only used to compare a free
    shipping promotion with others when one of them is not stackable."""
    lines = tuple(lines)
    currency = lines[0].currency if lines else None
    by_code: dict[str, Promotion] = {}
    for promotion in promotions:
        if promotion.code is not None:
            by_code[normalize_code(promotion.code)] = promotion

    problems: list[CouponProblem] = []
    # promotion id -> (promotion, the code the shopper typed or None, its lines in scope)
    applicable: dict[uuid.UUID, tuple[Promotion, str | None, list[pricing.PricedLine]]] = {}
    seen_codes: set[str] = set()
    for typed in coupon_codes:
        key = normalize_code(typed)
        if not key or key in seen_codes:
            continue
        seen_codes.add(key)
        named = by_code.get(key)
        if named is None:
            problems.append(CouponProblem(typed, "unknown"))
            continue
        reason, scoped = _refusal(
            named, lines=lines, currency=currency, now=now, customer_usage=customer_usage
        )
        if reason is not None:
            problems.append(CouponProblem(typed, reason))
        elif named.id not in applicable:
            applicable[named.id] = (named, typed, scoped)
    for promotion in promotions:
        if not promotion.automatic or promotion.id in applicable:
            continue
        reason, scoped = _refusal(
            promotion, lines=lines, currency=currency, now=now, customer_usage=customer_usage
        )
        if reason is None:
            applicable[promotion.id] = (promotion, None, scoped)

    ordered = sorted(
        applicable.values(),
        key=lambda item: (-item[0].priority, _KIND_ORDER[item[0].kind], str(item[0].id)),
    )
    discounts = [(_discount(p, scoped), p, typed) for p, typed, scoped in ordered]
    if currency is None or all(p.stackable for _, p, _ in discounts):
        return Evaluation([d for d, _, _ in discounts], problems)

    amounts = [
        _amount_alone(d, lines=lines, currency=currency, shipping=shipping) for d, _, _ in discounts
    ]
    # max() keeps the first of equals: ties go to the earlier in application order.
    best = max(range(len(discounts)), key=lambda i: amounts[i])
    for index, (_, _, code) in enumerate(discounts):
        if index != best and code is not None:
            problems.append(CouponProblem(code, "not_combinable"))
    return Evaluation([discounts[best][0]], problems)


async def customer_usage(
    session: AsyncSession, *, user_id: uuid.UUID | None, promotion_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """The user's reserved and confirmed uses of each promotion (empty for a guest)."""
    if user_id is None or not promotion_ids:
        return {}
    rows = await session.execute(
        select(PromotionRedemption.promotion_id, func.count())
        .where(
            PromotionRedemption.user_id == user_id,
            PromotionRedemption.promotion_id.in_(list(promotion_ids)),
            PromotionRedemption.status.in_(_COUNTED),
        )
        .group_by(PromotionRedemption.promotion_id)
    )
    return {promotion_id: count for promotion_id, count in rows.all()}


async def load_candidates(
    session: AsyncSession,
    *,
    coupon_codes: Sequence[str],
    vendor_ids: Sequence[uuid.UUID],
    now: datetime,
    user_id: uuid.UUID | None = None,
) -> tuple[list[Promotion], dict[uuid.UUID, int]]:
    """What :func:`evaluate` needs for a cart: the promotions named by the coupon codes
    (whatever their state, so a refusal can say why), the active automatic promotions in their
    window of the platform and of the cart's vendors, and the user's uses of them."""
    codes = sorted({normalize_code(c) for c in coupon_codes if normalize_code(c)})
    conditions: list[ColumnElement[bool]] = []
    if codes:
        conditions.append(func.lower(Promotion.code).in_(codes))
    conditions.append(
        Promotion.automatic.is_(True)
        & Promotion.is_active.is_(True)
        & (Promotion.starts_at.is_(None) | (Promotion.starts_at <= now))
        & (Promotion.ends_at.is_(None) | (Promotion.ends_at > now))
        & (Promotion.vendor_id.is_(None) | Promotion.vendor_id.in_(list(vendor_ids)))
    )
    found = list(
        (await session.scalars(select(Promotion).where(or_(*conditions)).order_by(Promotion.id)))
        .unique()
        .all()
    )
    usage = await customer_usage(session, user_id=user_id, promotion_ids=[p.id for p in found])
    return found, usage


# --- counting uses --------------------------------------------------------------------------

_COUNTED = (RedemptionStatus.RESERVED, RedemptionStatus.CONFIRMED)


async def reserve_usage(
    session: AsyncSession,
    *,
    promotion_ids: Sequence[uuid.UUID],
    order_id: uuid.UUID,
    user_id: uuid.UUID | None,
    amounts: Mapping[uuid.UUID, int] | None = None,
) -> list[PromotionRedemption]:
    """Count one use of each promotion for ``order_id``, all or nothing.

    Idempotent by (promotion, order): a retry counts nothing twice and returns the same
    redemptions. A promotion out of total uses, or whose per-customer limit ``user_id`` has
    reached (reserved and confirmed uses count), raises :class:`PromotionExhausted` naming it,
    and nothing of this call is kept (a savepoint). A released use of the same order is
    reserved (counted) again.

    Why it holds under concurrency: the total is taken by one conditional ``UPDATE`` (the row
    lock makes concurrent ones wait and re-check ``times_used < usage_limit_total``), so the
    check constraint is never even approached; the per-customer count runs under an advisory
    lock on (promotion, user), so two orders of one user cannot both see the last free use; an
    advisory lock on the order makes retries of one order run one after the other. Promotions
    are taken in id order so two orders sharing several promotions never deadlock.
    """
    amounts = amounts or {}
    wanted = sorted(set(promotion_ids))
    async with session.begin_nested():
        await advisory_lock(session, "promotion-order", order_id)
        for promotion_id in wanted:
            existing = await session.scalar(
                select(PromotionRedemption.status).where(
                    PromotionRedemption.promotion_id == promotion_id,
                    PromotionRedemption.order_id == order_id,
                )
            )
            if existing in _COUNTED:
                continue
            per_customer = await session.scalar(
                select(Promotion.usage_limit_per_customer).where(Promotion.id == promotion_id)
            )
            if user_id is not None and per_customer is not None:
                await advisory_lock(session, "promotion-customer", promotion_id, user_id)
                used = await session.scalar(
                    select(func.count())
                    .select_from(PromotionRedemption)
                    .where(
                        PromotionRedemption.promotion_id == promotion_id,
                        PromotionRedemption.user_id == user_id,
                        PromotionRedemption.order_id != order_id,
                        PromotionRedemption.status.in_(_COUNTED),
                    )
                )
                if (used or 0) >= per_customer:
                    raise PromotionExhausted(
                        "You have used this promotion as often as it allows.",
                        promotion_id=str(promotion_id),
                        limit="per_customer",
                    )
            counted = await session.scalar(
                update(Promotion)
                .where(
                    Promotion.id == promotion_id,
                    Promotion.usage_limit_total.is_(None)
                    | (Promotion.times_used < Promotion.usage_limit_total),
                )
                .values(times_used=Promotion.times_used + 1)
                .returning(Promotion.id)
                .execution_options(synchronize_session=False)
            )
            if counted is None:
                if await session.scalar(select(Promotion.id).where(Promotion.id == promotion_id)):
                    raise PromotionExhausted(
                        "The promotion has no uses left.",
                        promotion_id=str(promotion_id),
                        limit="total",
                    )
                raise PromotionNotFound(f"No promotion {promotion_id}.")
            amount = amounts.get(promotion_id, 0)
            await session.execute(
                insert(PromotionRedemption)
                .values(
                    id=uuid.uuid4(),
                    promotion_id=promotion_id,
                    order_id=order_id,
                    user_id=user_id,
                    status=RedemptionStatus.RESERVED,
                    amount=amount,
                )
                .on_conflict_do_update(
                    index_elements=["promotion_id", "order_id"],
                    set_={"status": RedemptionStatus.RESERVED, "amount": amount},
                )
            )
    found = await session.scalars(
        select(PromotionRedemption)
        .where(
            PromotionRedemption.order_id == order_id,
            PromotionRedemption.promotion_id.in_(wanted),
        )
        .order_by(PromotionRedemption.promotion_id)
        .execution_options(populate_existing=True)
    )
    return list(found.all())


async def confirm_usage(session: AsyncSession, *, order_id: uuid.UUID) -> int:
    """The order went through: its reserved uses become confirmed. Idempotent; a released use
    stays released. Returns how many changed."""
    result = await session.execute(
        update(PromotionRedemption)
        .where(
            PromotionRedemption.order_id == order_id,
            PromotionRedemption.status == RedemptionStatus.RESERVED,
        )
        .values(status=RedemptionStatus.CONFIRMED)
        .returning(PromotionRedemption.id)
        .execution_options(synchronize_session=False)
    )
    return len(result.all())


async def release_usage(session: AsyncSession, *, order_id: uuid.UUID) -> int:
    """The order was cancelled: give its uses back (``times_used`` down by one each, status
    released). Idempotent: the conditional update on the redemption's status lets only one
    of two concurrent releases see it, so nothing is given back twice. Returns how many."""
    await advisory_lock(session, "promotion-order", order_id)
    released = await session.scalars(
        update(PromotionRedemption)
        .where(
            PromotionRedemption.order_id == order_id,
            PromotionRedemption.status.in_(_COUNTED),
        )
        .values(status=RedemptionStatus.RELEASED)
        .returning(PromotionRedemption.promotion_id)
        .execution_options(synchronize_session=False)
    )
    promotion_ids = sorted(released.all())
    for promotion_id in promotion_ids:
        await session.execute(
            update(Promotion)
            .where(Promotion.id == promotion_id, Promotion.times_used > 0)
            .values(times_used=Promotion.times_used - 1)
            .execution_options(synchronize_session=False)
        )
    return len(promotion_ids)
