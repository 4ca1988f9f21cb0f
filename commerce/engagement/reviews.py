"""Product reviews: written by buyers of a delivered order line, answered by the vendor,
moderated by admins.

A product's ``rating_avg``/``rating_count``, and its vendor's (over all the vendor's
products), always equal what the visible (not hidden) reviews say. Every change to a review
is made while holding a lock on its product row and then recomputes both from the reviews
table with one aggregate statement, in the same transaction; see :func:`_refresh_ratings`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Uuid, delete, func, literal, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.errors import DomainError, Forbidden, NotFound
from commerce.search.outbox import enqueue_reindex
from core import pagination
from models import (
    DeliveredPurchase,
    Product,
    ProductStatus,
    Review,
    User,
    UserStatus,
    Vendor,
    VendorStatus,
)

RATINGS = (1, 2, 3, 4, 5)
MAX_TITLE_LENGTH = 200
MAX_BODY_LENGTH = 5000
MAX_REPLY_LENGTH = 5000
MAX_REASON_LENGTH = 500
MAX_PAGE_SIZE = 100

# C0 controls other than tab, newline and carriage return (and DEL): never meant in a review,
# and PostgreSQL refuses NUL in text outright (a 500 if it got that far).
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class NotABuyer(Forbidden):
    code, title = "not_a_buyer", "Only buyers of a delivered order of this product may review it"


class InvalidReview(DomainError):
    status, code, title = 422, "invalid_review", "The review is not valid"


@dataclass(frozen=True)
class WrittenReview:
    review: Review
    created: bool  # False: the user's existing review was edited


@dataclass(frozen=True)
class ListedReview:
    review: Review
    author: str | None  # None once the author's account is deleted


@dataclass(frozen=True)
class ReviewPage:
    items: list[ListedReview]
    next_cursor: str | None  # None on the last page


@dataclass(frozen=True)
class RatingSummary:
    average: Decimal | None  # two decimals, as stored on the product; None without reviews
    count: int
    histogram: dict[int, int]  # every rating 1-5, zero included


# --- writing, by the buyer ---------------------------------------------------------------


async def write_review(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    product_id: uuid.UUID,
    rating: int,
    title: str,
    body: str = "",
    now: datetime,
) -> WrittenReview:
    """Create the user's review of a product, or edit it if they already wrote one.

    Only a user with a delivered purchase of the product may review it (``NotABuyer``, 403),
    and only once: the unique (product, user) constraint makes a second write an edit
    (``created`` is False). An edit keeps the moderation state and the vendor's reply, so a
    hidden review stays hidden. Raises ``NotFound`` for an unknown product and
    ``InvalidReview`` (422) for a rating outside 1-5, a blank or long title, a long body.
    """
    problems: list[dict[str, Any]] = []
    if rating not in RATINGS:
        problems.append(_problem("rating", "The rating is a whole number from 1 to 5.", "range"))
    title = _clean_text("title", title, MAX_TITLE_LENGTH, problems, required=True)
    body = _clean_text("body", body, MAX_BODY_LENGTH, problems, required=False)
    if problems:
        raise InvalidReview(
            f"{len(problems)} problem(s) with the review; see `errors`.", errors=problems
        )

    vendor_id = await _lock_product(session, product_id)
    purchase_id = await session.scalar(
        select(DeliveredPurchase.id)
        .where(DeliveredPurchase.user_id == user_id, DeliveredPurchase.product_id == product_id)
        .order_by(DeliveredPurchase.delivered_at, DeliveredPurchase.id)
        .limit(1)
    )
    if purchase_id is None:
        raise NotABuyer("You can review a product once an order of it has been delivered to you.")
    # Exact under the product lock: every write of a review of this product holds it.
    existing = await session.scalar(
        select(Review.id).where(Review.product_id == product_id, Review.user_id == user_id)
    )
    statement = insert(Review).values(
        id=uuid.uuid4(),
        product_id=product_id,
        user_id=user_id,
        purchase_id=purchase_id,
        rating=rating,
        title=title,
        body=body,
    )
    upsert = statement.on_conflict_do_update(
        constraint="uq_reviews_product_id_user_id",
        set_={
            "rating": statement.excluded.rating,
            "title": statement.excluded.title,
            "body": statement.excluded.body,
            "updated_at": now,
        },
    ).returning(Review.id)
    review_id = (await session.execute(upsert)).scalar_one()
    await _refresh_ratings(session, product_id=product_id, vendor_id=vendor_id)
    return WrittenReview(review=await _load(session, review_id), created=existing is None)


async def get_own_review(
    session: AsyncSession, *, user_id: uuid.UUID, product_id: uuid.UUID
) -> Review:
    """The user's review of a product, hidden or not (``NotFound`` if they wrote none)."""
    review = await session.scalar(
        select(Review).where(Review.product_id == product_id, Review.user_id == user_id)
    )
    if review is None:
        raise NotFound("You have not reviewed this product.")
    return review


async def delete_own_review(
    session: AsyncSession, *, user_id: uuid.UUID, product_id: uuid.UUID
) -> None:
    """Delete the user's review of a product (``NotFound`` if they wrote none)."""
    vendor_id = await _lock_product(session, product_id)
    deleted = await session.scalar(
        delete(Review)
        .where(Review.product_id == product_id, Review.user_id == user_id)
        .returning(Review.id)
    )
    if deleted is None:
        raise NotFound("You have not reviewed this product.")
    await _refresh_ratings(session, product_id=product_id, vendor_id=vendor_id)


# --- the vendor's reply, and moderation ---------------------------------------------------


async def reply_to_review(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    review_id: uuid.UUID,
    reply: str,
    now: datetime,
) -> Review:
    """Set (or replace: there is one reply per review) the vendor's public answer.

    ``NotFound`` unless the review is of one of this vendor's products: staff of one vendor
    learn nothing about another's reviews by probing ids.
    """
    problems: list[dict[str, Any]] = []
    reply = _clean_text("reply", reply, MAX_REPLY_LENGTH, problems, required=True)
    if problems:
        raise InvalidReview("The reply is not valid; see `errors`.", errors=problems)
    review = await session.scalar(
        select(Review)
        .join(Product, Product.id == Review.product_id)
        .where(Review.id == review_id, Product.vendor_id == vendor_id)
    )
    if review is None:
        raise NotFound("No such review of this vendor's products.")
    review.vendor_reply = reply
    review.vendor_replied_at = now
    await session.flush()
    # updated_at is set by the database on UPDATE; reading it expired would be lazy I/O.
    await session.refresh(review, attribute_names=["updated_at"])
    return review


async def hide_review(session: AsyncSession, *, review_id: uuid.UUID, reason: str) -> Review:
    """Hide a review from everyone but its author (moderation), with a reason for the record.

    Hiding an already hidden review replaces the reason. The ratings stop counting it.
    """
    problems: list[dict[str, Any]] = []
    reason = _clean_text("reason", reason, MAX_REASON_LENGTH, problems, required=True)
    if problems:
        raise InvalidReview("The reason is not valid; see `errors`.", errors=problems)
    return await _set_hidden(session, review_id=review_id, hidden=True, reason=reason)


async def unhide_review(session: AsyncSession, *, review_id: uuid.UUID) -> Review:
    """Show a hidden review again; the ratings count it again."""
    return await _set_hidden(session, review_id=review_id, hidden=False, reason=None)


async def _set_hidden(
    session: AsyncSession, *, review_id: uuid.UUID, hidden: bool, reason: str | None
) -> Review:
    product_id = await session.scalar(select(Review.product_id).where(Review.id == review_id))
    if product_id is None:
        raise NotFound("No such review.")
    vendor_id = await _lock_product(session, product_id)
    # Read again under the lock: the author may have deleted it in the meantime.
    review = await session.scalar(
        select(Review).where(Review.id == review_id).execution_options(populate_existing=True)
    )
    if review is None:
        raise NotFound("No such review.")
    review.is_hidden = hidden
    review.hidden_reason = reason
    await session.flush()
    await _refresh_ratings(session, product_id=product_id, vendor_id=vendor_id)
    return await _load(session, review_id)


# --- reading, by anyone ------------------------------------------------------------------


async def list_reviews(
    session: AsyncSession,
    *,
    product_id: uuid.UUID,
    rating: int | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> ReviewPage:
    """A page of a product's visible reviews, newest first, optionally of one rating.

    Keyset pagination on (created_at, id), both descending: pass ``next_cursor`` back as
    ``cursor`` for the next page; pages neither skip nor repeat reviews when new ones
    arrive. ``NotFound`` unless the product is on show (see :func:`_require_shown_product`);
    ``InvalidCursor`` (422) for a cursor this function did not make.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be from 1 to {MAX_PAGE_SIZE}")
    await _require_shown_product(session, product_id)
    statement = (
        select(Review, User.username, User.status)
        .join(User, User.id == Review.user_id)
        .where(Review.product_id == product_id, Review.is_hidden.is_(False))
        .order_by(Review.created_at.desc(), Review.id.desc())
        .limit(limit + 1)
    )
    if rating is not None:
        statement = statement.where(Review.rating == rating)
    if cursor is not None:
        after_created, after_id = _decode_cursor(cursor)
        statement = statement.where(
            tuple_(Review.created_at, Review.id) < tuple_(after_created, after_id)
        )
    rows = (await session.execute(statement)).all()
    items = [
        ListedReview(review, None if status == UserStatus.DELETED else username)
        for review, username, status in rows[:limit]
    ]
    next_cursor = _encode_cursor(items[-1].review) if len(rows) > limit else None
    return ReviewPage(items=items, next_cursor=next_cursor)


async def rating_summary(session: AsyncSession, *, product_id: uuid.UUID) -> RatingSummary:
    """Average, count and histogram of a product's visible reviews.

    All three come from one query, so they agree with each other even while reviews are
    being written; the average is rounded as the product's stored ``rating_avg`` is.
    """
    await _require_shown_product(session, product_id)
    rows = await session.execute(
        select(Review.rating, func.count())
        .where(Review.product_id == product_id, Review.is_hidden.is_(False))
        .group_by(Review.rating)
    )
    histogram = dict.fromkeys(RATINGS, 0)
    for rating, count in rows:
        histogram[rating] = count
    total = sum(histogram.values())
    average = None
    if total:
        points = sum(rating * count for rating, count in histogram.items())
        # PostgreSQL rounds numeric half away from zero; for positive values that is HALF_UP.
        average = (Decimal(points) / total).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return RatingSummary(average=average, count=total, histogram=histogram)


# --- internals ---------------------------------------------------------------------------


async def _lock_product(session: AsyncSession, product_id: uuid.UUID) -> uuid.UUID:
    """Take the product row's lock (``NotFound`` if there is no such product); returns the
    vendor id.

    Every change to a product's reviews holds this lock until commit, so changes take turns
    and each recomputation (a statement started after the lock was granted, so with a
    snapshot that includes every earlier holder's committed reviews) sees them all. FOR NO
    KEY UPDATE rather than FOR UPDATE: it still excludes other writers of the row, but does
    not block inserts that merely reference the product (reviews, order lines, variants).
    """
    vendor_id = await session.scalar(
        select(Product.vendor_id).where(Product.id == product_id).with_for_update(key_share=True)
    )
    if vendor_id is None:
        raise NotFound("No such product.")
    return vendor_id


async def _refresh_ratings(
    session: AsyncSession, *, product_id: uuid.UUID, vendor_id: uuid.UUID
) -> None:
    """Recompute the product's and the vendor's rating from the visible reviews.

    The caller holds the product's lock. The vendor row is locked too, and only then is the
    aggregate run: reviews of the vendor's *other* products are written under other product
    locks, and in READ COMMITTED an UPDATE that merely waits for the vendor row would go on
    with its statement's older snapshot and store a stale average. Products are always
    locked before their vendor, so two of these never deadlock.
    """
    await session.execute(
        select(Vendor.id).where(Vendor.id == vendor_id).with_for_update(key_share=True)
    )
    visible = Review.is_hidden.is_(False)
    product_stats = (
        select(
            literal(product_id, Uuid).label("product_id"),
            func.avg(Review.rating).label("average"),
            func.count().label("total"),
        )
        .where(Review.product_id == product_id, visible)
        .subquery("product_stats")
    )
    vendor_stats = (
        select(
            literal(vendor_id, Uuid).label("vendor_id"),
            func.avg(Review.rating).label("average"),
            func.count().label("total"),
        )
        .select_from(Review)
        .join(Product, Product.id == Review.product_id)
        .where(Product.vendor_id == vendor_id, visible)
        .subquery("vendor_stats")
    )
    # One statement: the product's update rides along as a data-modifying CTE. Each aggregate
    # is exactly one row (no GROUP BY), keyed by the id it is for. Assigning the exact
    # average to the Numeric(3,2) columns rounds it to two decimals; no reviews leave avg()
    # NULL, which is what the columns say then.
    refresh_product = (
        update(Product)
        .where(Product.id == product_stats.c.product_id)
        .values(rating_avg=product_stats.c.average, rating_count=product_stats.c.total)
        .returning(Product.id)
        .cte("refresh_product")
    )
    statement = (
        update(Vendor)
        .where(Vendor.id == vendor_stats.c.vendor_id)
        .values(rating_avg=vendor_stats.c.average, rating_count=vendor_stats.c.total)
        .add_cte(refresh_product)
        # Nothing in the identity map to keep in step: callers hold no Product or Vendor.
        .execution_options(synchronize_session=False)
    )
    await session.execute(statement)
    await enqueue_reindex(session, [product_id])


async def _require_shown_product(session: AsyncSession, product_id: uuid.UUID) -> None:
    # Reviews are shown where the product is: active or archived (its page may still be
    # linked from past orders), of an active vendor (suspension hides a vendor's products).
    # Drafts were never on sale; a 404 tells nothing about them.
    shown = await session.scalar(
        select(Product.id)
        .join(Vendor, Vendor.id == Product.vendor_id)
        .where(
            Product.id == product_id,
            Product.status.in_([ProductStatus.ACTIVE, ProductStatus.ARCHIVED]),
            Vendor.status == VendorStatus.ACTIVE,
        )
    )
    if shown is None:
        raise NotFound("No such product.")


async def _load(session: AsyncSession, review_id: uuid.UUID) -> Review:
    # populate_existing: the row was just changed by a Core statement the identity map
    # did not see.
    review = await session.scalar(
        select(Review).where(Review.id == review_id).execution_options(populate_existing=True)
    )
    assert review is not None
    return review


def _encode_cursor(review: Review) -> str:
    return pagination.encode_cursor("reviews", review.created_at, review.id)


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    return pagination.decode_cursor(cursor, "reviews", datetime, uuid.UUID)


def _problem(field: str, message: str, kind: str) -> dict[str, Any]:
    # The shape of the API's request validation errors, so clients handle both alike.
    return {"loc": ["body", field], "message": message, "type": kind}


def _clean_text(
    field: str, value: str, max_length: int, problems: list[dict[str, Any]], *, required: bool
) -> str:
    value = value.strip()
    if required and not value:
        problems.append(_problem(field, "This field cannot be blank.", "required"))
    elif len(value) > max_length:
        problems.append(_problem(field, f"At most {max_length} characters.", "too_long"))
    elif _CONTROL_CHARACTERS.search(value):
        problems.append(
            _problem(field, "Control characters are not allowed.", "invalid_characters")
        )
    return value
