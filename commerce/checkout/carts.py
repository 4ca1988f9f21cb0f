"""Carts: a signed-in user's one cart, or a guest's addressed by a secret token.

A cart stores only what the shopper chose (variant, quantity, the price they saw); everything
else (title, current price, stock, whether it may still be sold) is read fresh on every view,
so a view always tells the truth and a change is refused when it would not be true. Nothing
here reserves stock: that is checkout's job, and a cart line may go stale while it waits.

Changes to one cart are serialised by a row lock on the cart (``SELECT ... FOR UPDATE``), so
two concurrent adds of the same variant cannot both pass the stock check on the old quantity.
"""

from __future__ import annotations

import dataclasses
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.accounts.address_rules import AddressInput, normalize_address
from commerce.accounts.addresses import ADDRESS_FIELDS, InvalidAddress, field_errors
from commerce.accounts.tokens import digest, random_token
from commerce.catalog.inventory import StockStatus, availability
from commerce.errors import Conflict, DomainError, NotFound
from models import Cart, CartItem, Product, ProductStatus, Variant, Vendor, VendorStatus

GUEST_CART_TTL = timedelta(days=30)
MAX_LINE_QUANTITY = 999  # cart_items.quantity_range
MAX_COUPONS = 5
MAX_COUPON_LENGTH = 40  # carts.coupon_codes element width
MAX_METHOD_CODE_LENGTH = 40  # shipping_methods.code width
MAX_TOKEN_LENGTH = 200  # far above random_token()'s 43 characters; keeps junk out of digests


# --- errors ------------------------------------------------------------------------------------


class CartRequired(DomainError):
    status, code, title = 401, "cart_required", "Sign in or send the guest cart's X-Cart-Token"
    headers = {"WWW-Authenticate": "Bearer"}


class CartNotFound(NotFound):
    code, title = "cart_not_found", "No such cart"


class CartItemNotFound(NotFound):
    code, title = "cart_item_not_found", "The variant is not in the cart"


class NotAvailable(Conflict):
    code, title = "not_available", "The variant is not for sale"


class CurrencyMismatch(Conflict):
    code, title = "currency_mismatch", "A cart holds items in one currency only"


class NotEnoughStock(Conflict):
    # Same code as the inventory service's 422 for stock changes, on purpose: clients handle
    # "not enough stock" once. Here it is a conflict with the current state, hence 409.
    code, title = "insufficient_stock", "Not enough stock"


class InvalidQuantity(DomainError):
    status, code, title = 422, "invalid_quantity", "The quantity is not valid"


class InvalidCoupons(DomainError):
    status, code, title = 422, "invalid_coupon_codes", "The coupon codes are not valid"


class InvalidShippingChoice(DomainError):
    status, code, title = 422, "invalid_shipping_choice", "The shipping choice is not valid"


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineProblem:
    """Why a line cannot be checked out as it is: "out_of_stock", "insufficient_stock" (with
    ``available``), "not_available", "price_changed" or "currency_mismatch"."""

    code: str
    available: int | None = None


@dataclass(frozen=True)
class CartLine:
    variant_id: uuid.UUID
    product_id: uuid.UUID
    product_slug: str
    title: str
    sku: str
    options: dict[str, str]
    currency: str
    unit_price: int  # now, minor units
    unit_price_seen: int  # when the shopper added it
    price_changed: bool
    quantity: int
    subtotal: int  # quantity * unit_price
    available: int
    stock_status: StockStatus
    problems: tuple[LineProblem, ...]


@dataclass(frozen=True)
class VendorLines:
    vendor_id: uuid.UUID
    vendor_slug: str
    vendor_name: str
    shipping_method: str | None
    subtotal: int
    lines: tuple[CartLine, ...]


@dataclass(frozen=True)
class MergedLine:
    variant_id: uuid.UUID
    sku: str
    requested: int  # the guest cart's quantity
    added: int  # what went into the user's cart (less when capped by stock)
    quantity: int  # the user's line afterwards


@dataclass(frozen=True)
class UnmergedLine:
    """A guest line that could not go into the user's cart; reported, never dropped silently."""

    variant_id: uuid.UUID
    sku: str
    quantity: int
    reason: str  # "not_available" | "currency_mismatch" | "out_of_stock" | "insufficient_stock"
    available: int | None = None


@dataclass(frozen=True)
class MergeReport:
    merged: tuple[MergedLine, ...]
    not_merged: tuple[UnmergedLine, ...]


@dataclass(frozen=True)
class CartView:
    id: uuid.UUID
    is_guest: bool
    currency: str | None
    vendors: tuple[VendorLines, ...]
    item_count: int
    subtotal: int
    has_problems: bool
    coupon_codes: tuple[str, ...]
    shipping_address: dict[str, Any] | None
    shipping_choices: dict[str, str]
    expires_at: datetime | None
    merge: MergeReport | None = field(default=None)


# --- finding carts -----------------------------------------------------------------------------


async def create_guest_cart(session: AsyncSession, *, now: datetime) -> tuple[Cart, str]:
    """A new guest cart and its token. The token is returned here only; we keep its digest."""
    token = random_token()
    cart = Cart(
        id=uuid.uuid4(),
        guest_token_hash=digest(token),
        coupon_codes=[],
        shipping_choices={},
        expires_at=now + GUEST_CART_TTL,
    )
    session.add(cart)
    await session.flush()
    return cart, token


async def find_cart(
    session: AsyncSession,
    *,
    user_id: uuid.UUID | None = None,
    guest_token: str | None = None,
    lock: bool = False,
    now: datetime,
) -> Cart | None:
    """The user's cart, or the live guest cart named by the token; None when there is none
    (an expired guest cart is as good as gone)."""
    if (user_id is None) == (guest_token is None):
        raise ValueError("pass exactly one of user_id and guest_token")
    query = select(Cart).execution_options(populate_existing=True)
    if user_id is not None:
        query = query.where(Cart.user_id == user_id)
    else:
        assert guest_token is not None
        if not guest_token or len(guest_token) > MAX_TOKEN_LENGTH:
            return None
        query = query.where(
            Cart.guest_token_hash == digest(guest_token),
            (Cart.expires_at.is_(None)) | (Cart.expires_at > now),
        )
    if lock:
        query = query.with_for_update()
    return await session.scalar(query)


async def user_cart(session: AsyncSession, *, user_id: uuid.UUID) -> Cart:
    """The user's cart, created on first use. ``ON CONFLICT DO NOTHING`` on the unique user_id
    makes two first requests at once end with one cart instead of an IntegrityError."""
    existing = await _user_cart_row(session, user_id=user_id)
    if existing is not None:
        return existing  # the usual case, without a write on every read
    await session.execute(
        pg_insert(Cart)
        .values(id=uuid.uuid4(), user_id=user_id, coupon_codes=[], shipping_choices={})
        .on_conflict_do_nothing(index_elements=[Cart.user_id])
    )
    cart = await _user_cart_row(session, user_id=user_id)
    assert cart is not None  # inserted above, or by the transaction we conflicted with
    return cart


async def _user_cart_row(session: AsyncSession, *, user_id: uuid.UUID) -> Cart | None:
    # A user's cart never expires: no time is needed to find it.
    return await session.scalar(
        select(Cart).where(Cart.user_id == user_id).execution_options(populate_existing=True)
    )


async def _lock(session: AsyncSession, cart: Cart) -> Cart:
    """Re-read the cart under a row lock: every change of one cart happens one at a time."""
    locked = await session.scalar(
        select(Cart)
        .where(Cart.id == cart.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if locked is None:
        raise CartNotFound("The cart no longer exists.")
    return locked


def _touch(cart: Cart, *, now: datetime) -> None:
    # A guest cart lives as long as it is used: the 30 days count from the last change.
    if cart.guest_token_hash is not None:
        cart.expires_at = now + GUEST_CART_TTL
    # Also for user carts, whose row may not change otherwise: housekeeping ages carts by it.
    cart.updated_at = now


# --- what the cart refers to -------------------------------------------------------------------


@dataclass(frozen=True)
class _Offer:
    variant: Variant
    product: Product
    vendor: Vendor

    @property
    def sellable(self) -> bool:
        # The storefront rule (commerce.catalog.storefront): active product, vendor, variant.
        return (
            self.variant.is_active
            and self.product.status == ProductStatus.ACTIVE
            and self.vendor.status == VendorStatus.ACTIVE
        )


async def _offers(
    session: AsyncSession, variant_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, _Offer]:
    ids = list(dict.fromkeys(variant_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(Variant, Product, Vendor)
        .join(Product, Product.id == Variant.product_id)
        .join(Vendor, Vendor.id == Product.vendor_id)
        .where(Variant.id.in_(ids))
        .execution_options(populate_existing=True)
    )
    return {variant.id: _Offer(variant, product, vendor) for variant, product, vendor in rows}


async def _items(session: AsyncSession, cart: Cart) -> list[CartItem]:
    return list(
        await session.scalars(
            select(CartItem)
            .where(CartItem.cart_id == cart.id)
            .order_by(CartItem.added_at, CartItem.variant_id)
            .execution_options(populate_existing=True)
        )
    )


async def _item(session: AsyncSession, cart: Cart, variant_id: uuid.UUID) -> CartItem | None:
    return await session.scalar(
        select(CartItem)
        .where(CartItem.cart_id == cart.id, CartItem.variant_id == variant_id)
        .execution_options(populate_existing=True)
    )


def _check_quantity(quantity: int, *, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if not low <= quantity <= MAX_LINE_QUANTITY:
        raise InvalidQuantity(f"The quantity must be between {low} and {MAX_LINE_QUANTITY}.")


async def _sellable_offer(session: AsyncSession, variant_id: uuid.UUID) -> _Offer:
    offer = (await _offers(session, [variant_id])).get(variant_id)
    # An unknown variant and a hidden one answer alike: the storefront shows neither.
    if offer is None or not offer.sellable:
        raise NotAvailable("This item is not for sale at the moment.", variant_id=str(variant_id))
    return offer


async def _check_stock(
    session: AsyncSession, *, variant_id: uuid.UUID, quantity: int, in_cart: int
) -> None:
    available = max(
        (await availability(session, variant_ids=[variant_id]))[variant_id].available, 0
    )
    if quantity > available:
        raise NotEnoughStock(
            f"Only {available} available.",
            variant_id=str(variant_id),
            requested=quantity,
            available=available,
            in_cart=in_cart,
        )


async def _forget_currency_when_empty(session: AsyncSession, cart: Cart) -> None:
    # The first item sets the currency; an emptied cart may start over in another.
    remaining = await session.scalar(
        select(func.count()).select_from(CartItem).where(CartItem.cart_id == cart.id)
    )
    if not remaining:
        cart.currency = None


# --- changing items ----------------------------------------------------------------------------


async def add_item(
    session: AsyncSession,
    *,
    cart: Cart,
    variant_id: uuid.UUID,
    quantity: int,
    now: datetime,
) -> Cart:
    """Add ``quantity`` of a variant (summed with what the cart already holds).

    Refused with ``NotAvailable`` (409) unless the storefront may sell it, ``CurrencyMismatch``
    (409) when the cart is in another currency, ``NotEnoughStock`` (409, with ``available``)
    when the new total exceeds the stock, ``InvalidQuantity`` (422) outside 1..999 in total.
    Records the current price as the one the shopper saw.
    """
    _check_quantity(quantity)
    cart = await _lock(session, cart)
    offer = await _sellable_offer(session, variant_id)
    if cart.currency is not None and cart.currency != offer.variant.currency:
        raise CurrencyMismatch(
            f"This cart is in {cart.currency}; the item is priced in {offer.variant.currency}.",
            cart_currency=cart.currency,
            item_currency=offer.variant.currency,
        )
    item = await _item(session, cart, variant_id)
    in_cart = item.quantity if item else 0
    total = in_cart + quantity
    if total > MAX_LINE_QUANTITY:
        raise InvalidQuantity(
            f"A line holds at most {MAX_LINE_QUANTITY}; the cart already has {in_cart}."
        )
    await _check_stock(session, variant_id=variant_id, quantity=total, in_cart=in_cart)
    if item is None:
        session.add(
            CartItem(
                cart_id=cart.id,
                variant_id=variant_id,
                quantity=total,
                unit_price_seen=offer.variant.price_amount,
            )
        )
    else:
        item.quantity = total
        item.unit_price_seen = offer.variant.price_amount
        item.updated_at = now
    cart.currency = offer.variant.currency
    _touch(cart, now=now)
    await session.flush()
    return cart


async def set_quantity(
    session: AsyncSession,
    *,
    cart: Cart,
    variant_id: uuid.UUID,
    quantity: int,
    now: datetime,
) -> Cart:
    """Set a line's quantity; 0 removes it. The line must still be sellable and in stock for
    the new quantity. The price seen is kept: only adding again acknowledges a new price."""
    _check_quantity(quantity, allow_zero=True)
    if quantity == 0:
        return await remove_item(session, cart=cart, variant_id=variant_id, now=now)
    cart = await _lock(session, cart)
    item = await _item(session, cart, variant_id)
    if item is None:
        raise CartItemNotFound(variant_id=str(variant_id))
    await _sellable_offer(session, variant_id)
    await _check_stock(session, variant_id=variant_id, quantity=quantity, in_cart=item.quantity)
    item.quantity = quantity
    item.updated_at = now
    _touch(cart, now=now)
    await session.flush()
    return cart


async def remove_item(
    session: AsyncSession, *, cart: Cart, variant_id: uuid.UUID, now: datetime
) -> Cart:
    """Remove a line, whatever its state (an unavailable line can always be removed)."""
    cart = await _lock(session, cart)
    removed = await session.execute(
        delete(CartItem)
        .where(CartItem.cart_id == cart.id, CartItem.variant_id == variant_id)
        .returning(CartItem.variant_id)
    )
    if removed.first() is None:
        raise CartItemNotFound(variant_id=str(variant_id))
    await _forget_currency_when_empty(session, cart)
    _touch(cart, now=now)
    await session.flush()
    return cart


async def clear(session: AsyncSession, *, cart: Cart, now: datetime) -> Cart:
    """Remove every line. Address, shipping choices and coupons stay."""
    cart = await _lock(session, cart)
    await session.execute(delete(CartItem).where(CartItem.cart_id == cart.id))
    cart.currency = None
    _touch(cart, now=now)
    await session.flush()
    return cart


# --- the rest of the cart ----------------------------------------------------------------------


async def set_shipping_address(
    session: AsyncSession,
    *,
    cart: Cart,
    address: dict[str, Any],
    now: datetime,
) -> Cart:
    """Store the destination, normalised (``InvalidAddress``, 422 with every problem)."""
    unknown = sorted(set(address) - set(ADDRESS_FIELDS))
    if unknown:
        raise InvalidAddress(
            "Unknown address fields.",
            errors=[
                {"loc": ["body", name], "message": "Unknown field.", "type": "extra_forbidden"}
                for name in unknown
            ],
        )
    values = {name: address.get(name) for name in ADDRESS_FIELDS}
    tidy, problems = normalize_address(AddressInput(**values))
    if problems:
        raise InvalidAddress(
            f"{len(problems)} problem(s) with the address; see `errors`.",
            errors=field_errors(problems),
        )
    cart = await _lock(session, cart)
    cart.shipping_address = dataclasses.asdict(tidy)
    _touch(cart, now=now)
    await session.flush()
    return cart


def _has_control_characters(value: str) -> bool:
    return any(unicodedata.category(char) in ("Cc", "Cs") for char in value)


async def set_shipping_choice(
    session: AsyncSession,
    *,
    cart: Cart,
    vendor_id: uuid.UUID,
    method_code: str,
    now: datetime,
) -> Cart:
    """Remember the shipping method chosen for one vendor's items. Whether the code names a
    method that vendor offers is checked when shipping is quoted, not here."""
    code = method_code.strip()
    if not code or len(code) > MAX_METHOD_CODE_LENGTH or _has_control_characters(code):
        raise InvalidShippingChoice(
            f"A shipping method code has 1 to {MAX_METHOD_CODE_LENGTH} printable characters."
        )
    cart = await _lock(session, cart)
    # A new dict, not an in-place change: JSONB columns only notice assignment.
    cart.shipping_choices = {**(cart.shipping_choices or {}), str(vendor_id): code}
    _touch(cart, now=now)
    await session.flush()
    return cart


def normalize_coupon_codes(codes: Sequence[str]) -> list[str]:
    """Trimmed, upper-case, without duplicates, in the order given; blank codes are dropped."""
    normalised: list[str] = []
    for raw in codes:
        code = raw.strip().upper()
        if not code:
            continue
        if len(code) > MAX_COUPON_LENGTH or _has_control_characters(code):
            raise InvalidCoupons(
                f"A coupon code has at most {MAX_COUPON_LENGTH} printable characters."
            )
        if code not in normalised:
            normalised.append(code)
    if len(normalised) > MAX_COUPONS:
        raise InvalidCoupons(f"At most {MAX_COUPONS} coupon codes per cart.")
    return normalised


async def set_coupons(
    session: AsyncSession, *, cart: Cart, codes: Sequence[str], now: datetime
) -> Cart:
    """Replace the cart's coupon codes. Whether they apply is decided when pricing the cart."""
    normalised = normalize_coupon_codes(codes)
    cart = await _lock(session, cart)
    cart.coupon_codes = normalised
    _touch(cart, now=now)
    await session.flush()
    return cart


# --- viewing -----------------------------------------------------------------------------------


async def view_cart(
    session: AsyncSession, *, cart: Cart, merge: MergeReport | None = None
) -> CartView:
    """The cart as it stands now: lines grouped by vendor with current prices, stock and what
    stands in the way of checking each out."""
    items = await _items(session, cart)
    ids = [item.variant_id for item in items]
    offers = await _offers(session, ids)
    stock = await availability(session, variant_ids=ids) if ids else {}
    groups: dict[uuid.UUID, list[CartLine]] = {}
    vendors: dict[uuid.UUID, Vendor] = {}
    for item in items:
        offer = offers[item.variant_id]  # cart_items cascade-delete with their variant
        level = stock[item.variant_id]
        available = max(level.available, 0)
        price = offer.variant.price_amount
        problems: list[LineProblem] = []
        if not offer.sellable:
            problems.append(LineProblem("not_available"))
        elif available <= 0:
            problems.append(LineProblem("out_of_stock", available=0))
        elif item.quantity > available:
            problems.append(LineProblem("insufficient_stock", available=available))
        if cart.currency is not None and offer.variant.currency != cart.currency:
            # The vendor repriced the variant in another currency after it was added.
            problems.append(LineProblem("currency_mismatch"))
        if price != item.unit_price_seen:
            problems.append(LineProblem("price_changed"))
        vendors[offer.vendor.id] = offer.vendor
        groups.setdefault(offer.vendor.id, []).append(
            CartLine(
                variant_id=item.variant_id,
                product_id=offer.product.id,
                product_slug=offer.product.slug,
                title=offer.product.title,
                sku=offer.variant.sku,
                options=dict(offer.variant.options or {}),
                currency=offer.variant.currency,
                unit_price=price,
                unit_price_seen=item.unit_price_seen,
                price_changed=price != item.unit_price_seen,
                quantity=item.quantity,
                subtotal=item.quantity * price,
                available=available,
                stock_status=level.status,
                problems=tuple(problems),
            )
        )
    choices = dict(cart.shipping_choices or {})
    vendor_lines = tuple(
        VendorLines(
            vendor_id=vendor_id,
            vendor_slug=vendors[vendor_id].slug,
            vendor_name=vendors[vendor_id].name,
            shipping_method=choices.get(str(vendor_id)),
            subtotal=sum(line.subtotal for line in lines),
            lines=tuple(lines),
        )
        for vendor_id, lines in groups.items()
    )
    every_line = [line for group in vendor_lines for line in group.lines]
    return CartView(
        id=cart.id,
        is_guest=cart.user_id is None,
        currency=cart.currency,
        vendors=vendor_lines,
        item_count=sum(line.quantity for line in every_line),
        subtotal=sum(line.subtotal for line in every_line),
        has_problems=any(line.problems for line in every_line),
        coupon_codes=tuple(cart.coupon_codes or ()),
        shipping_address=cart.shipping_address,
        shipping_choices=choices,
        expires_at=cart.expires_at,
        merge=merge,
    )


# --- signing in with a guest cart --------------------------------------------------------------


async def merge_guest_into_user(
    session: AsyncSession,
    *,
    guest_token: str,
    user_id: uuid.UUID,
    now: datetime,
) -> CartView:
    """Move a guest cart into the user's cart and delete it; the token stops working.

    Quantities of the same variant are summed and capped by stock (and 999). A guest line that
    cannot go in (no longer sellable, another currency than the user's cart, no stock left
    beyond what the user's cart holds) stays out and is listed in ``merge.not_merged``; a line
    that went in partly is in ``merge.merged`` with ``added < requested``. The guest's address,
    shipping choices and coupons fill in what the user's cart does not have yet.
    A spent, expired or unknown token is ``CartNotFound`` (404), so merging twice changes nothing.
    """
    # Lock the guest cart first: a second merge of the same token waits here, then finds the
    # row deleted and answers 404 instead of merging the items twice.
    guest = await find_cart(session, guest_token=guest_token, lock=True, now=now)
    if guest is None:
        raise CartNotFound("The guest cart does not exist, has expired or was merged already.")
    target = await _lock(session, await user_cart(session, user_id=user_id))

    guest_items = await _items(session, guest)
    user_items = {item.variant_id: item for item in await _items(session, target)}
    ids = [item.variant_id for item in guest_items]
    offers = await _offers(session, ids)
    stock = await availability(session, variant_ids=ids) if ids else {}
    currency = target.currency if user_items else None

    merged: list[MergedLine] = []
    not_merged: list[UnmergedLine] = []
    for line in guest_items:
        offer = offers[line.variant_id]
        sku = offer.variant.sku
        if not offer.sellable:
            not_merged.append(UnmergedLine(line.variant_id, sku, line.quantity, "not_available"))
            continue
        if currency is not None and offer.variant.currency != currency:
            not_merged.append(
                UnmergedLine(line.variant_id, sku, line.quantity, "currency_mismatch")
            )
            continue
        available = max(stock[line.variant_id].available, 0)
        existing = user_items.get(line.variant_id)
        in_cart = existing.quantity if existing else 0
        ceiling = min(available, MAX_LINE_QUANTITY)
        if in_cart >= ceiling:
            reason = "out_of_stock" if available == 0 else "insufficient_stock"
            not_merged.append(
                UnmergedLine(line.variant_id, sku, line.quantity, reason, available=available)
            )
            continue
        quantity = min(in_cart + line.quantity, ceiling)
        if existing is None:
            # The guest's seen price travels with the line, so a change since is still flagged.
            existing = CartItem(
                cart_id=target.id,
                variant_id=line.variant_id,
                quantity=quantity,
                unit_price_seen=line.unit_price_seen,
            )
            session.add(existing)
            user_items[line.variant_id] = existing
        else:
            existing.quantity = quantity
            existing.updated_at = now
        currency = offer.variant.currency
        merged.append(MergedLine(line.variant_id, sku, line.quantity, quantity - in_cart, quantity))

    target.currency = currency
    if target.shipping_address is None and guest.shipping_address is not None:
        target.shipping_address = guest.shipping_address
    target.shipping_choices = {**(guest.shipping_choices or {}), **(target.shipping_choices or {})}
    coupons = list(target.coupon_codes or [])
    for code in guest.coupon_codes or []:
        if code not in coupons and len(coupons) < MAX_COUPONS:
            coupons.append(code)
    target.coupon_codes = coupons
    await session.delete(guest)
    await session.flush()
    return await view_cart(
        session, cart=target, merge=MergeReport(tuple(merged), tuple(not_merged))
    )
