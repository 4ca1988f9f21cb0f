"""Promotions in the back offices: the platform's (admins) and each vendor's (its managers).

A vendor's routes only ever see that vendor's promotions: another vendor's id answers 404.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query

from api.access import AdminUser, VendorManager
from api.deps import SessionDep
from api.errors import fields_named
from api.schemas.pagination import PageCursor, PageLimit
from api.schemas.promotions import PromotionCreate, PromotionPage, PromotionRead, PromotionUpdate
from commerce.checkout import promotions

#: The domain's names of a promotion's money, and where they are in a request.
PROMOTION_FIELDS = {
    "value": ("amount_off", "amount"),
    "currency": ("amount_off", "currency"),
    "min_subtotal": ("min_subtotal", "amount"),
}

router = APIRouter(tags=["promotions"])


# --- admin (the platform's promotions; any promotion can be read, changed, deactivated) -----


@router.get("/admin/promotions")
async def admin_list_promotions(
    _: AdminUser,
    session: SessionDep,
    vendor_id: uuid.UUID | None = Query(default=None),
    platform_only: bool = Query(default=False),
    active: bool | None = Query(default=None),
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> PromotionPage:
    """Promotions, newest first: one vendor's (``vendor_id``), the platform's alone
    (``platform_only=true``), or all of them."""
    page = await promotions.list_promotions(
        session,
        vendor_id=vendor_id,
        platform_only=platform_only,
        active=active,
        limit=limit,
        cursor=cursor,
    )
    return PromotionPage(
        items=[PromotionRead.from_domain(p) for p in page.items], next_cursor=page.next_cursor
    )


@router.post("/admin/promotions", status_code=201)
async def admin_create_promotion(
    body: PromotionCreate, _: AdminUser, session: SessionDep
) -> PromotionRead:
    """A platform promotion (funded by the platform, any scope)."""
    values = body.values()
    with fields_named(PROMOTION_FIELDS):
        promotion = await promotions.create_promotion(session, vendor_id=None, values=values)
    return PromotionRead.from_domain(promotion)


@router.get("/admin/promotions/{promotion_id}")
async def admin_read_promotion(
    promotion_id: uuid.UUID, _: AdminUser, session: SessionDep
) -> PromotionRead:
    promotion = await promotions.get_promotion(session, promotion_id=promotion_id)
    return PromotionRead.from_domain(promotion)


@router.patch("/admin/promotions/{promotion_id}")
async def admin_update_promotion(
    promotion_id: uuid.UUID, body: PromotionUpdate, _: AdminUser, session: SessionDep
) -> PromotionRead:
    current = await promotions.get_promotion(session, promotion_id=promotion_id)
    changes = body.changes(current)
    with fields_named(PROMOTION_FIELDS):
        promotion = await promotions.update_promotion(
            session, promotion_id=promotion_id, changes=changes
        )
    return PromotionRead.from_domain(promotion)


@router.post("/admin/promotions/{promotion_id}/deactivate")
async def admin_deactivate_promotion(
    promotion_id: uuid.UUID, _: AdminUser, session: SessionDep
) -> PromotionRead:
    promotion = await promotions.deactivate_promotion(session, promotion_id=promotion_id)
    return PromotionRead.from_domain(promotion)


# --- a vendor's own -------------------------------------------------------------------------


@router.get("/vendors/{vendor_id}/promotions")
async def list_vendor_promotions(
    member: VendorManager,
    session: SessionDep,
    active: bool | None = Query(default=None),
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> PromotionPage:
    """The vendor's promotions, newest first."""
    page = await promotions.list_promotions(
        session, vendor_id=member.vendor_id, active=active, limit=limit, cursor=cursor
    )
    return PromotionPage(
        items=[PromotionRead.from_domain(p) for p in page.items], next_cursor=page.next_cursor
    )


@router.post("/vendors/{vendor_id}/promotions", status_code=201)
async def create_vendor_promotion(
    body: PromotionCreate, member: VendorManager, session: SessionDep
) -> PromotionRead:
    """A promotion funded by the vendor, on its own products or the whole of its range."""
    values = body.values()
    with fields_named(PROMOTION_FIELDS):
        promotion = await promotions.create_promotion(
            session, vendor_id=member.vendor_id, values=values
        )
    return PromotionRead.from_domain(promotion)


@router.get("/vendors/{vendor_id}/promotions/{promotion_id}")
async def read_vendor_promotion(
    promotion_id: uuid.UUID, member: VendorManager, session: SessionDep
) -> PromotionRead:
    promotion = await promotions.get_promotion(
        session, promotion_id=promotion_id, vendor_id=member.vendor_id
    )
    return PromotionRead.from_domain(promotion)


@router.patch("/vendors/{vendor_id}/promotions/{promotion_id}")
async def update_vendor_promotion(
    promotion_id: uuid.UUID, body: PromotionUpdate, member: VendorManager, session: SessionDep
) -> PromotionRead:
    current = await promotions.get_promotion(
        session, promotion_id=promotion_id, vendor_id=member.vendor_id
    )
    changes = body.changes(current)
    with fields_named(PROMOTION_FIELDS):
        promotion = await promotions.update_promotion(
            session, promotion_id=promotion_id, vendor_id=member.vendor_id, changes=changes
        )
    return PromotionRead.from_domain(promotion)


@router.post("/vendors/{vendor_id}/promotions/{promotion_id}/deactivate")
async def deactivate_vendor_promotion(
    promotion_id: uuid.UUID, member: VendorManager, session: SessionDep
) -> PromotionRead:
    promotion = await promotions.deactivate_promotion(
        session, promotion_id=promotion_id, vendor_id=member.vendor_id
    )
    return PromotionRead.from_domain(promotion)
