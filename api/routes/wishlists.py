"""The signed-in user's wishlists, and shared wishlists read by link."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Path, Response, status

from api.access import CurrentUser, Public
from api.deps import NowDep, SessionDep
from api.schemas.carts import CartRead
from api.schemas.engagement import (
    MoveToCart,
    SharedWishlistRead,
    WishlistCreate,
    WishlistDetailRead,
    WishlistItemAdd,
    WishlistItemRead,
    WishlistList,
    WishlistRead,
    WishlistRename,
    WishlistShareRead,
)
from commerce.checkout import carts
from commerce.engagement import wishlists

router = APIRouter(tags=["wishlists"])


@router.get("/me/wishlists")
async def list_wishlists(principal: CurrentUser, session: SessionDep) -> WishlistList:
    """Oldest first, with item counts."""
    found = await wishlists.list_wishlists(session, user_id=principal.user_id)
    return WishlistList.whole([WishlistRead.from_summary(summary) for summary in found])


@router.post("/me/wishlists", status_code=201)
async def create_wishlist(
    body: WishlistCreate, principal: CurrentUser, session: SessionDep
) -> WishlistRead:
    """Names are unique per user, ignoring case (409 `wishlist_name_taken`)."""
    wishlist = await wishlists.create_wishlist(session, user_id=principal.user_id, name=body.name)
    return WishlistRead.from_domain(wishlist, item_count=0)


@router.get("/me/wishlists/{wishlist_id}")
async def get_wishlist(
    wishlist_id: uuid.UUID, principal: CurrentUser, session: SessionDep
) -> WishlistDetailRead:
    view = await wishlists.get_wishlist(session, user_id=principal.user_id, wishlist_id=wishlist_id)
    return WishlistDetailRead.from_view(view)


@router.patch("/me/wishlists/{wishlist_id}")
async def rename_wishlist(
    wishlist_id: uuid.UUID, body: WishlistRename, principal: CurrentUser, session: SessionDep
) -> WishlistDetailRead:
    await wishlists.rename_wishlist(
        session, user_id=principal.user_id, wishlist_id=wishlist_id, name=body.name
    )
    view = await wishlists.get_wishlist(session, user_id=principal.user_id, wishlist_id=wishlist_id)
    return WishlistDetailRead.from_view(view)


@router.delete("/me/wishlists/{wishlist_id}", status_code=204)
async def delete_wishlist(
    wishlist_id: uuid.UUID, principal: CurrentUser, session: SessionDep
) -> Response:
    await wishlists.delete_wishlist(session, user_id=principal.user_id, wishlist_id=wishlist_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/me/wishlists/{wishlist_id}/items",
    status_code=201,
    responses={200: {"model": WishlistItemRead, "description": "Already on the list"}},
)
async def add_wishlist_item(
    wishlist_id: uuid.UUID,
    body: WishlistItemAdd,
    principal: CurrentUser,
    session: SessionDep,
    response: Response,
    now: NowDep,
) -> WishlistItemRead:
    """Add a variant that is for sale (201); adding it again changes nothing (200)."""
    added = await wishlists.add_item(
        session,
        user_id=principal.user_id,
        wishlist_id=wishlist_id,
        variant_id=body.variant_id,
        now=now,
    )
    if not added.created:
        response.status_code = status.HTTP_200_OK
    return WishlistItemRead.from_domain(added.entry)


@router.delete("/me/wishlists/{wishlist_id}/items/{variant_id}", status_code=204)
async def remove_wishlist_item(
    wishlist_id: uuid.UUID,
    variant_id: uuid.UUID,
    principal: CurrentUser,
    session: SessionDep,
    now: NowDep,
) -> Response:
    """Idempotent: removing a variant that is not on the list is not an error."""
    await wishlists.remove_item(
        session, user_id=principal.user_id, wishlist_id=wishlist_id, variant_id=variant_id, now=now
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/me/wishlists/{wishlist_id}/items/{variant_id}/move-to-cart")
async def move_to_cart(
    wishlist_id: uuid.UUID,
    variant_id: uuid.UUID,
    body: MoveToCart,
    principal: CurrentUser,
    session: SessionDep,
    now: NowDep,
) -> CartRead:
    """Into the cart (stock, sellability and currency checked), off the wishlist."""
    cart = await wishlists.move_to_cart(
        session,
        user_id=principal.user_id,
        wishlist_id=wishlist_id,
        variant_id=variant_id,
        quantity=body.quantity,
        now=now,
    )
    return CartRead.from_domain(await carts.view_cart(session, cart=cart))


@router.post("/me/wishlists/{wishlist_id}/share")
async def share_wishlist(
    wishlist_id: uuid.UUID, principal: CurrentUser, session: SessionDep
) -> WishlistShareRead:
    """Anyone with the link may read the list. Sharing again gives the same link."""
    wishlist = await wishlists.share_wishlist(
        session, user_id=principal.user_id, wishlist_id=wishlist_id
    )
    return WishlistShareRead.from_domain(wishlist)


@router.delete("/me/wishlists/{wishlist_id}/share", status_code=204)
async def unshare_wishlist(
    wishlist_id: uuid.UUID, principal: CurrentUser, session: SessionDep
) -> Response:
    """The link stops working at once; sharing again makes a new one."""
    await wishlists.unshare_wishlist(session, user_id=principal.user_id, wishlist_id=wishlist_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/wishlists/shared/{token}", dependencies=[Public])
async def read_shared_wishlist(
    session: SessionDep, token: str = Path(min_length=1, max_length=64)
) -> SharedWishlistRead:
    """A shared list, read-only, with each item's availability."""
    view = await wishlists.get_shared_wishlist(session, token=token)
    return SharedWishlistRead.from_view(view)
