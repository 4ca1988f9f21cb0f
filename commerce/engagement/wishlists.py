"""Named wishlists: several per user, each a set of variants, optionally shared by link.

A shared list is readable by whoever holds its link, an unguessable token; unsharing removes
the token, so the old link stops working, and sharing again makes a new one. Every service
taking a ``wishlist_id`` also takes the owner's ``user_id`` and answers ``NotFound`` for
anyone else's list, whether or not the id exists.
"""

from __future__ import annotations

import enum
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.checkout import carts
from commerce.errors import Conflict, DomainError, NotFound
from models import (
    Cart,
    InventoryLevel,
    Product,
    ProductStatus,
    User,
    UserStatus,
    Variant,
    Vendor,
    VendorStatus,
    Wishlist,
    WishlistItem,
)

MAX_WISHLISTS_PER_USER = 20
MAX_ITEMS_PER_WISHLIST = 500
MAX_NAME_LENGTH = 100

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class InvalidWishlist(DomainError):
    status, code, title = 422, "invalid_wishlist", "The wishlist is not valid"


class WishlistLimit(Conflict):
    code, title = "wishlist_limit", "You have as many wishlists as allowed"


class WishlistNameTaken(Conflict):
    code, title = "wishlist_name_taken", "You already have a wishlist of that name"


class WishlistFull(Conflict):
    code, title = "wishlist_full", "The wishlist is full"


class VariantUnavailable(NotFound):
    code, title = "variant_unavailable", "No such variant for sale"


class WishlistAvailability(enum.StrEnum):
    IN_STOCK = "in_stock"
    OUT_OF_STOCK = "out_of_stock"
    # The variant, its product or its vendor is no longer active: kept on the list, not sold.
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class WishlistSummary:
    wishlist: Wishlist
    item_count: int


@dataclass(frozen=True)
class WishlistEntry:
    """One wished-for variant, as a shopper (or whoever has the link) sees it."""

    variant_id: uuid.UUID
    product_id: uuid.UUID
    product_title: str
    product_slug: str
    sku: str
    options: dict[str, str]
    price_amount: int
    currency: str
    availability: WishlistAvailability
    added_at: datetime


@dataclass(frozen=True)
class WishlistView:
    wishlist: Wishlist
    items: list[WishlistEntry]  # most recently added first


@dataclass(frozen=True)
class ItemAdded:
    entry: WishlistEntry
    created: bool  # False: the variant was already on the list


async def list_wishlists(session: AsyncSession, *, user_id: uuid.UUID) -> list[WishlistSummary]:
    """The user's wishlists with their item counts, oldest first."""
    rows = await session.execute(
        select(Wishlist, func.count(WishlistItem.variant_id))
        .outerjoin(WishlistItem, WishlistItem.wishlist_id == Wishlist.id)
        .where(Wishlist.user_id == user_id)
        .group_by(Wishlist.id)
        .order_by(Wishlist.created_at, Wishlist.name, Wishlist.id)
    )
    return [WishlistSummary(wishlist, count) for wishlist, count in rows]


async def get_wishlist(
    session: AsyncSession, *, user_id: uuid.UUID, wishlist_id: uuid.UUID
) -> WishlistView:
    """One of the user's wishlists with its items (``NotFound`` for anyone else's)."""
    wishlist = await _owned(session, user_id=user_id, wishlist_id=wishlist_id)
    return WishlistView(wishlist, await _entries(session, wishlist_id=wishlist.id))


async def create_wishlist(session: AsyncSession, *, user_id: uuid.UUID, name: str) -> Wishlist:
    """A new empty wishlist.

    Raises ``InvalidWishlist`` (422) for a blank or long name, ``WishlistNameTaken`` (409)
    when the user has a list of that name (ignoring case), ``WishlistLimit`` (409) at
    :data:`MAX_WISHLISTS_PER_USER`.
    """
    name = _clean_name(name)
    await _lock_owner(session, user_id)
    count = await session.scalar(
        select(func.count()).select_from(Wishlist).where(Wishlist.user_id == user_id)
    )
    if (count or 0) >= MAX_WISHLISTS_PER_USER:
        raise WishlistLimit(
            f"You can keep at most {MAX_WISHLISTS_PER_USER} wishlists; delete one first."
        )
    await _require_free_name(session, user_id=user_id, name=name, keep=None)
    wishlist = Wishlist(id=uuid.uuid4(), user_id=user_id, name=name)
    session.add(wishlist)
    await session.flush()
    await session.refresh(wishlist, attribute_names=["created_at", "updated_at"])
    return wishlist


async def rename_wishlist(
    session: AsyncSession, *, user_id: uuid.UUID, wishlist_id: uuid.UUID, name: str
) -> Wishlist:
    """Rename a wishlist; same errors as :func:`create_wishlist` (but the limit)."""
    name = _clean_name(name)
    await _lock_owner(session, user_id)
    wishlist = await _owned(session, user_id=user_id, wishlist_id=wishlist_id)
    if wishlist.name != name:
        await _require_free_name(session, user_id=user_id, name=name, keep=wishlist.id)
        wishlist.name = name
        await session.flush()
        await session.refresh(wishlist, attribute_names=["updated_at"])
    return wishlist


async def delete_wishlist(
    session: AsyncSession, *, user_id: uuid.UUID, wishlist_id: uuid.UUID
) -> None:
    """Delete a wishlist and its items; its shared link, if any, stops working."""
    deleted = await session.scalar(
        delete(Wishlist)
        .where(Wishlist.id == wishlist_id, Wishlist.user_id == user_id)
        .returning(Wishlist.id)
    )
    if deleted is None:
        raise NotFound("No such wishlist.")


async def add_item(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    wishlist_id: uuid.UUID,
    variant_id: uuid.UUID,
    now: datetime,
) -> ItemAdded:
    """Put a variant on a wishlist; adding one that is already there changes nothing.

    The variant must be for sale (it, its product and its vendor active), else
    ``VariantUnavailable`` (404); a full list (:data:`MAX_ITEMS_PER_WISHLIST`) raises
    ``WishlistFull`` (409), except for a variant already on it.
    """
    wishlist = await _owned(session, user_id=user_id, wishlist_id=wishlist_id, lock=True)
    present = await _entries(session, wishlist_id=wishlist.id, variant_id=variant_id)
    if present:
        return ItemAdded(present[0], created=False)
    for_sale = await session.scalar(
        select(Variant.id)
        .join(Product, Product.id == Variant.product_id)
        .join(Vendor, Vendor.id == Product.vendor_id)
        .where(
            Variant.id == variant_id,
            Variant.is_active,
            Product.status == ProductStatus.ACTIVE,
            Vendor.status == VendorStatus.ACTIVE,
        )
    )
    if for_sale is None:
        raise VariantUnavailable("No such variant is for sale.")
    count = await session.scalar(
        select(func.count())
        .select_from(WishlistItem)
        .where(WishlistItem.wishlist_id == wishlist.id)
    )
    if (count or 0) >= MAX_ITEMS_PER_WISHLIST:
        raise WishlistFull(
            f"A wishlist holds at most {MAX_ITEMS_PER_WISHLIST} items; remove some, or start "
            "another list."
        )
    # The wishlist lock makes adds to one list take turns; DO NOTHING is the backstop that
    # keeps an add idempotent whatever happens.
    await session.execute(
        insert(WishlistItem)
        .values(wishlist_id=wishlist.id, variant_id=variant_id)
        .on_conflict_do_nothing()
    )
    await _touch(session, wishlist, now=now)
    added = await _entries(session, wishlist_id=wishlist.id, variant_id=variant_id)
    return ItemAdded(added[0], created=True)


async def remove_item(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    wishlist_id: uuid.UUID,
    variant_id: uuid.UUID,
    now: datetime,
) -> None:
    """Take a variant off a wishlist. Idempotent, like adding: a variant that is not on the
    list is not an error (a retried request must not fail), but another user's list is."""
    wishlist = await _owned(session, user_id=user_id, wishlist_id=wishlist_id, lock=True)
    removed = await session.scalar(
        delete(WishlistItem)
        .where(WishlistItem.wishlist_id == wishlist.id, WishlistItem.variant_id == variant_id)
        .returning(WishlistItem.variant_id)
    )
    if removed is not None:
        await _touch(session, wishlist, now=now)


async def share_wishlist(
    session: AsyncSession, *, user_id: uuid.UUID, wishlist_id: uuid.UUID
) -> Wishlist:
    """Make a wishlist readable by link; its ``share_token`` is the link's secret.

    Sharing a shared list returns the same token, so a link already handed out keeps working.
    """
    # Locked: two concurrent first shares must not hand out two tokens, one of them dead.
    wishlist = await _owned(session, user_id=user_id, wishlist_id=wishlist_id, lock=True)
    if wishlist.share_token is None:
        # 24 random bytes (192 bits): the token is the only thing guarding the list.
        wishlist.share_token = secrets.token_urlsafe(24)
        await session.flush()
        await session.refresh(wishlist, attribute_names=["updated_at"])
    return wishlist


async def unshare_wishlist(
    session: AsyncSession, *, user_id: uuid.UUID, wishlist_id: uuid.UUID
) -> Wishlist:
    """Stop sharing: the token is dropped, so the old link answers 404 from now on, even if
    the list is shared again later (that makes a new token)."""
    wishlist = await _owned(session, user_id=user_id, wishlist_id=wishlist_id, lock=True)
    if wishlist.share_token is not None:
        wishlist.share_token = None
        await session.flush()
        await session.refresh(wishlist, attribute_names=["updated_at"])
    return wishlist


async def get_shared_wishlist(session: AsyncSession, *, token: str) -> WishlistView:
    """A shared wishlist, read by its link's token (``NotFound`` for an unknown, revoked or
    deleted-account one). Read-only: nothing here changes the list."""
    wishlist = await session.scalar(
        select(Wishlist)
        .join(User, User.id == Wishlist.user_id)
        .where(Wishlist.share_token == token, User.status == UserStatus.ACTIVE)
    )
    if wishlist is None:
        raise NotFound("No such shared wishlist; the link may have been withdrawn.")
    return WishlistView(wishlist, await _entries(session, wishlist_id=wishlist.id))


# --- internals ---------------------------------------------------------------------------


async def _owned(
    session: AsyncSession, *, user_id: uuid.UUID, wishlist_id: uuid.UUID, lock: bool = False
) -> Wishlist:
    statement = select(Wishlist).where(Wishlist.id == wishlist_id, Wishlist.user_id == user_id)
    if lock:
        # NO KEY UPDATE: excludes other changes to this list, not inserts of its items.
        statement = statement.with_for_update(key_share=True)
    # populate_existing: a row locked after waiting may have changed since it was loaded.
    wishlist = await session.scalar(statement.execution_options(populate_existing=True))
    if wishlist is None:
        raise NotFound("No such wishlist.")
    return wishlist


async def _lock_owner(session: AsyncSession, user_id: uuid.UUID) -> None:
    # Creates and renames of one user's lists take turns, so the count limit and the
    # case-insensitive name check cannot be raced past. NO KEY UPDATE does not block inserts
    # elsewhere that reference the user.
    await session.execute(select(User.id).where(User.id == user_id).with_for_update(key_share=True))


async def _require_free_name(
    session: AsyncSession, *, user_id: uuid.UUID, name: str, keep: uuid.UUID | None
) -> None:
    # Case-insensitive, stricter than the (user_id, name) constraint: "Birthday" and
    # "birthday" side by side would only confuse.
    statement = select(Wishlist.id).where(
        Wishlist.user_id == user_id, func.lower(Wishlist.name) == name.lower()
    )
    if keep is not None:
        statement = statement.where(Wishlist.id != keep)
    if await session.scalar(statement.limit(1)) is not None:
        raise WishlistNameTaken(f"You already have a wishlist called {name!r}.")


async def _touch(session: AsyncSession, wishlist: Wishlist, *, now: datetime) -> None:
    # The list's updated_at says when its contents last changed, not just its name.
    wishlist.updated_at = now
    await session.flush()
    await session.refresh(wishlist, attribute_names=["updated_at"])


async def _entries(
    session: AsyncSession, *, wishlist_id: uuid.UUID, variant_id: uuid.UUID | None = None
) -> list[WishlistEntry]:
    available = (
        select(func.coalesce(func.sum(InventoryLevel.on_hand - InventoryLevel.reserved), 0))
        .where(InventoryLevel.variant_id == Variant.id)
        .correlate(Variant)
        .scalar_subquery()
    )
    statement = (
        select(
            WishlistItem.variant_id,
            WishlistItem.added_at,
            Variant.product_id,
            Variant.sku,
            Variant.options,
            Variant.price_amount,
            Variant.currency,
            Variant.is_active,
            Product.title,
            Product.slug,
            Product.status,
            Vendor.status,
            available,
        )
        .join(Variant, Variant.id == WishlistItem.variant_id)
        .join(Product, Product.id == Variant.product_id)
        .join(Vendor, Vendor.id == Product.vendor_id)
        .where(WishlistItem.wishlist_id == wishlist_id)
        .order_by(WishlistItem.added_at.desc(), WishlistItem.variant_id)
    )
    if variant_id is not None:
        statement = statement.where(WishlistItem.variant_id == variant_id)
    entries = []
    for row in await session.execute(statement):
        (
            item_variant_id,
            added_at,
            product_id,
            sku,
            options,
            price_amount,
            currency,
            variant_active,
            title,
            slug,
            product_status,
            vendor_status,
            units,
        ) = row
        if not (
            variant_active
            and product_status == ProductStatus.ACTIVE
            and vendor_status == VendorStatus.ACTIVE
        ):
            availability = WishlistAvailability.UNAVAILABLE
        elif units > 0:
            availability = WishlistAvailability.IN_STOCK
        else:
            availability = WishlistAvailability.OUT_OF_STOCK
        entries.append(
            WishlistEntry(
                variant_id=item_variant_id,
                product_id=product_id,
                product_title=title,
                product_slug=slug,
                sku=sku,
                options=dict(options or {}),
                price_amount=price_amount,
                currency=currency,
                availability=availability,
                added_at=added_at,
            )
        )
    return entries


def _clean_name(name: str) -> str:
    name = name.strip()
    problem: dict[str, Any] | None = None
    if not name:
        problem = {"message": "The name cannot be blank.", "type": "required"}
    elif len(name) > MAX_NAME_LENGTH:
        problem = {"message": f"At most {MAX_NAME_LENGTH} characters.", "type": "too_long"}
    elif _CONTROL_CHARACTERS.search(name):
        problem = {"message": "Control characters are not allowed.", "type": "invalid_characters"}
    if problem is not None:
        raise InvalidWishlist(
            "The name is not valid; see `errors`.", errors=[{"loc": ["body", "name"], **problem}]
        )
    return name


class NotOnWishlist(NotFound):
    code, title = "not_on_wishlist", "The variant is not on this wishlist"


async def move_to_cart(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    wishlist_id: uuid.UUID,
    variant_id: uuid.UUID,
    quantity: int = 1,
    now: datetime,
) -> Cart:
    """Put a wishlist item into the user's cart and take it off the list.

    The cart's own checks apply (for sale, same currency, enough stock: see
    ``commerce.checkout.carts.add_item``); when one refuses, nothing changes, the item stays listed.
    """
    wishlist = await _owned(session, user_id=user_id, wishlist_id=wishlist_id, lock=True)
    listed = await session.get(WishlistItem, (wishlist.id, variant_id))
    if listed is None:
        raise NotOnWishlist()
    cart = await carts.user_cart(session, user_id=user_id)
    cart = await carts.add_item(
        session, cart=cart, variant_id=variant_id, quantity=quantity, now=now
    )
    await session.delete(listed)
    await session.flush()
    return cart
