"""Product reviews: read by anyone, written by buyers, answered by vendors, moderated by
admins."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, Response, status

from api.access import AdminUser, CurrentUser, Public, VendorStaff
from api.deps import NowDep, SessionDep
from api.schemas.engagement import (
    ModeratedReviewRead,
    RatingSummaryRead,
    ReviewDetailRead,
    ReviewHide,
    ReviewPageRead,
    ReviewUpsert,
    VendorReply,
)
from api.schemas.pagination import PageCursor, PageLimit
from commerce.engagement import reviews

router = APIRouter(tags=["reviews"])


@router.get("/products/{product_id}/reviews", dependencies=[Public])
async def list_reviews(
    product_id: uuid.UUID,
    session: SessionDep,
    rating: int | None = Query(default=None, ge=1, le=5, description="Only this rating"),
    limit: PageLimit = 20,
    cursor: PageCursor = None,
) -> ReviewPageRead:
    """Visible reviews, newest first, a page at a time."""
    page = await reviews.list_reviews(
        session, product_id=product_id, rating=rating, limit=limit, cursor=cursor
    )
    return ReviewPageRead.from_domain(page)


@router.get("/products/{product_id}/rating", dependencies=[Public])
async def read_rating(product_id: uuid.UUID, session: SessionDep) -> RatingSummaryRead:
    """Average, count and histogram of the visible reviews."""
    summary = await reviews.rating_summary(session, product_id=product_id)
    return RatingSummaryRead.from_domain(summary)


@router.get("/products/{product_id}/reviews/mine")
async def read_my_review(
    product_id: uuid.UUID, principal: CurrentUser, session: SessionDep
) -> ReviewDetailRead:
    """The caller's review of this product, hidden or not."""
    review = await reviews.get_own_review(session, user_id=principal.user_id, product_id=product_id)
    return ReviewDetailRead.from_domain(review)


@router.put(
    "/products/{product_id}/reviews/mine",
    responses={201: {"model": ReviewDetailRead, "description": "The first write created it"}},
)
async def write_my_review(
    product_id: uuid.UUID,
    body: ReviewUpsert,
    principal: CurrentUser,
    session: SessionDep,
    response: Response,
    now: NowDep,
) -> ReviewDetailRead:
    """Create the caller's review (201) or replace it (200). Only buyers of a delivered
    order of the product may review it (403 `not_a_buyer`)."""
    written = await reviews.write_review(
        session,
        user_id=principal.user_id,
        product_id=product_id,
        rating=body.rating,
        title=body.title,
        body=body.body,
        now=now,
    )
    if written.created:
        response.status_code = status.HTTP_201_CREATED
    return ReviewDetailRead.from_domain(written.review)


@router.delete("/products/{product_id}/reviews/mine", status_code=204)
async def delete_my_review(
    product_id: uuid.UUID, principal: CurrentUser, session: SessionDep
) -> Response:
    await reviews.delete_own_review(session, user_id=principal.user_id, product_id=product_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/vendors/{vendor_id}/reviews/{review_id}/reply")
async def reply_to_review(
    vendor_id: uuid.UUID,
    review_id: uuid.UUID,
    body: VendorReply,
    staff: VendorStaff,
    session: SessionDep,
    now: NowDep,
) -> ReviewDetailRead:
    """The vendor's public answer to a review of one of its products; a second PUT edits it."""
    review = await reviews.reply_to_review(
        session, vendor_id=staff.vendor_id, review_id=review_id, reply=body.reply, now=now
    )
    return ReviewDetailRead.from_domain(review)


@router.post("/admin/reviews/{review_id}/hide")
async def hide_review(
    review_id: uuid.UUID, body: ReviewHide, _: AdminUser, session: SessionDep
) -> ModeratedReviewRead:
    """Hide a review from the public (its author still sees it, with the reason)."""
    review = await reviews.hide_review(session, review_id=review_id, reason=body.reason)
    return ModeratedReviewRead.from_domain(review)


@router.post("/admin/reviews/{review_id}/unhide")
async def unhide_review(
    review_id: uuid.UUID, _: AdminUser, session: SessionDep
) -> ModeratedReviewRead:
    review = await reviews.unhide_review(session, review_id=review_id)
    return ModeratedReviewRead.from_domain(review)
