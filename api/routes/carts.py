"""Carts over HTTP: a guest's cart by its token, or the signed-in user's cart.

``/carts/current`` is the caller's cart: the signed-in user's when an access token is sent,
else the guest cart named by ``X-Cart-Token``. A token names a cart and nothing else, so there
is no cart id in any path for anyone to guess.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request

from api.access import AccountsDep, CurrentUser, Public, Requirement, authenticated, declare
from api.deps import NowDep, SessionDep
from api.schemas.carts import (
    CartItemAdd,
    CartItemUpdate,
    CartMerge,
    CartMergeRead,
    CartRead,
    CouponCodes,
    GuestCartCreated,
    ShippingAddress,
    ShippingChoice,
    address_fields,
)
from commerce.checkout import carts
from commerce.checkout.carts import CartNotFound, CartRequired
from models import Cart

router = APIRouter(tags=["carts"])


@declare(Requirement("cart"))
async def current_cart(
    request: Request,
    session: SessionDep,
    ctx: AccountsDep,
    now: NowDep,
    x_cart_token: Annotated[
        str | None,
        Header(
            max_length=carts.MAX_TOKEN_LENGTH,
            description="A guest cart's token (ignored when an access token is sent)",
        ),
    ] = None,
) -> Cart:
    """The caller's cart. A bearer token wins over a cart token: once signed in, the guest
    cart is only reachable by merging it (POST /me/cart/merge)."""
    if request.headers.get("authorization"):
        # Called directly, not as a sub-dependency: a Depends would make every cart route
        # require sign-in (and declare "authenticated"), which guests cannot pass.
        principal = await authenticated(request, session, ctx)
        return await carts.user_cart(session, user_id=principal.user_id)
    if x_cart_token:
        cart = await carts.find_cart(session, guest_token=x_cart_token, now=now)
        if cart is None:
            raise CartNotFound("The cart token is unknown, expired or was merged into an account.")
        return cart
    raise CartRequired("Sign in, or create a guest cart with POST /carts and send X-Cart-Token.")


CurrentCart = Annotated[Cart, Depends(current_cart)]


async def _read(session: SessionDep, cart: Cart) -> CartRead:
    return CartRead.from_domain(await carts.view_cart(session, cart=cart))


@router.post("/carts", status_code=201, dependencies=[Public])
async def create_guest_cart(session: SessionDep, now: NowDep) -> GuestCartCreated:
    """A new guest cart. Its token is in this answer only: keep it, send it as X-Cart-Token."""
    cart, token = await carts.create_guest_cart(session, now=now)
    return GuestCartCreated(cart_token=token, cart=await _read(session, cart))


@router.get("/carts/current")
async def read_cart(cart: CurrentCart, session: SessionDep) -> CartRead:
    """Lines by vendor with current prices, stock, and what is wrong with each line."""
    return await _read(session, cart)


@router.post("/carts/current/items", status_code=201)
async def add_item(
    body: CartItemAdd, cart: CurrentCart, session: SessionDep, now: NowDep
) -> CartRead:
    """Add a variant; adding one already in the cart adds to its quantity."""
    cart = await carts.add_item(
        session, cart=cart, variant_id=body.variant_id, quantity=body.quantity, now=now
    )
    return await _read(session, cart)


@router.patch("/carts/current/items/{variant_id}")
async def update_item(
    variant_id: uuid.UUID,
    body: CartItemUpdate,
    cart: CurrentCart,
    session: SessionDep,
    now: NowDep,
) -> CartRead:
    """Set a line's quantity; 0 removes it."""
    cart = await carts.set_quantity(
        session, cart=cart, variant_id=variant_id, quantity=body.quantity, now=now
    )
    return await _read(session, cart)


@router.delete("/carts/current/items/{variant_id}")
async def remove_item(
    variant_id: uuid.UUID, cart: CurrentCart, session: SessionDep, now: NowDep
) -> CartRead:
    cart = await carts.remove_item(session, cart=cart, variant_id=variant_id, now=now)
    return await _read(session, cart)


@router.delete("/carts/current/items")
async def clear_cart(cart: CurrentCart, session: SessionDep, now: NowDep) -> CartRead:
    """Remove every line; address, shipping choices and coupons stay."""
    return await _read(session, await carts.clear(session, cart=cart, now=now))


@router.put("/carts/current/coupons")
async def set_coupons(
    body: CouponCodes, cart: CurrentCart, session: SessionDep, now: NowDep
) -> CartRead:
    """Replace the coupon codes; whether they apply shows when the cart is priced."""
    return await _read(
        session, await carts.set_coupons(session, cart=cart, codes=body.codes, now=now)
    )


@router.put("/carts/current/shipping-address")
async def set_shipping_address(
    body: ShippingAddress,
    cart: CurrentCart,
    session: SessionDep,
    now: NowDep,
) -> CartRead:
    """Store the destination, normalised; every problem is reported at once (422)."""
    cart = await carts.set_shipping_address(
        session, cart=cart, address=address_fields(body), now=now
    )
    return await _read(session, cart)


@router.put("/carts/current/shipping/{vendor_id}")
async def set_shipping_choice(
    vendor_id: uuid.UUID,
    body: ShippingChoice,
    cart: CurrentCart,
    session: SessionDep,
    now: NowDep,
) -> CartRead:
    """Choose a shipping method for one vendor's items (checked when shipping is quoted)."""
    cart = await carts.set_shipping_choice(
        session, cart=cart, vendor_id=vendor_id, method_code=body.method_code, now=now
    )
    return await _read(session, cart)


@router.post("/me/cart/merge")
async def merge_guest_cart(
    body: CartMerge,
    principal: CurrentUser,
    session: SessionDep,
    now: NowDep,
) -> CartMergeRead:
    """Move a guest cart into the signed-in user's cart; the guest token stops working.
    Lines that could not be added are listed in ``not_merged``."""
    view = await carts.merge_guest_into_user(
        session, guest_token=body.cart_token, user_id=principal.user_id, now=now
    )
    return CartMergeRead.from_domain(view)
