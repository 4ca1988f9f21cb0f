"""Request and response bodies of the review and wishlist routes.

Length limits here keep absurd input out early; the services check again after trimming
whitespace (a title of spaces is blank) and refuse control characters.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.money import Money
from api.schemas.pagination import Page
from api.schemas.text import TEXT_PATTERN, line
from commerce.engagement.reviews import (
    MAX_BODY_LENGTH,
    MAX_REASON_LENGTH,
    MAX_REPLY_LENGTH,
    MAX_TITLE_LENGTH,
    ListedReview,
    RatingSummary,
    ReviewPage,
)
from commerce.engagement.wishlists import (
    MAX_NAME_LENGTH,
    WishlistAvailability,
    WishlistEntry,
    WishlistSummary,
    WishlistView,
)
from models import Review, Wishlist

# --- reviews -----------------------------------------------------------------------------


class ReviewUpsert(BaseModel):
    """The whole review: a second write replaces the first."""

    model_config = ConfigDict(extra="forbid")
    rating: int = Field(ge=1, le=5)
    title: str = line(MAX_TITLE_LENGTH)
    body: str = Field(default="", max_length=MAX_BODY_LENGTH, pattern=TEXT_PATTERN)


class VendorReply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reply: str = Field(min_length=1, max_length=MAX_REPLY_LENGTH)


class ReviewHide(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = line(MAX_REASON_LENGTH, "Kept for the record")


class ReviewRead(BaseModel):
    """A review as everyone sees it."""

    id: uuid.UUID
    product_id: uuid.UUID
    author: str | None = Field(description="The author's username; null once they left")
    rating: int
    title: str
    body: str
    verified_purchase: bool = Field(
        default=True, description="Always true: only buyers of a delivered order may review"
    )
    vendor_reply: str | None
    vendor_replied_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, listed: ListedReview) -> ReviewRead:
        review = listed.review
        return cls(
            id=review.id,
            product_id=review.product_id,
            author=listed.author,
            rating=review.rating,
            title=review.title,
            body=review.body,
            vendor_reply=review.vendor_reply,
            vendor_replied_at=review.vendor_replied_at,
            created_at=review.created_at,
            updated_at=review.updated_at,
        )


class ReviewDetailRead(BaseModel):
    """A review with its moderation state: for its author and the vendor's staff."""

    id: uuid.UUID
    product_id: uuid.UUID
    rating: int
    title: str
    body: str
    is_hidden: bool
    hidden_reason: str | None
    vendor_reply: str | None
    vendor_replied_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, review: Review) -> ReviewDetailRead:
        return cls(
            id=review.id,
            product_id=review.product_id,
            rating=review.rating,
            title=review.title,
            body=review.body,
            is_hidden=review.is_hidden,
            hidden_reason=review.hidden_reason,
            vendor_reply=review.vendor_reply,
            vendor_replied_at=review.vendor_replied_at,
            created_at=review.created_at,
            updated_at=review.updated_at,
        )


class ModeratedReviewRead(ReviewDetailRead):
    """What moderators see: the detail plus who wrote it."""

    user_id: uuid.UUID

    @classmethod
    def from_domain(cls, review: Review) -> ModeratedReviewRead:
        return cls(
            **ReviewDetailRead.from_domain(review).model_dump(),
            user_id=review.user_id,
        )


class ReviewPageRead(Page[ReviewRead]):
    @classmethod
    def from_domain(cls, page: ReviewPage) -> ReviewPageRead:
        return cls(
            items=[ReviewRead.from_domain(item) for item in page.items],
            next_cursor=page.next_cursor,
        )


class RatingSummaryRead(BaseModel):
    average: float | None = Field(description="Two decimals; null without visible reviews")
    count: int
    histogram: dict[int, int] = Field(description="Number of visible reviews per rating 1-5")

    @classmethod
    def from_domain(cls, summary: RatingSummary) -> RatingSummaryRead:
        return cls(
            average=None if summary.average is None else float(summary.average),
            count=summary.count,
            histogram=summary.histogram,
        )


# --- wishlists ---------------------------------------------------------------------------


class WishlistCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = line(MAX_NAME_LENGTH)


class WishlistRename(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = line(MAX_NAME_LENGTH)


class WishlistItemAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    variant_id: uuid.UUID


class WishlistItemRead(BaseModel):
    variant_id: uuid.UUID
    product_id: uuid.UUID
    product_title: str
    product_slug: str
    sku: str
    options: dict[str, str]
    price: Money = Field(description="The variant's price now")
    availability: WishlistAvailability
    added_at: datetime

    @classmethod
    def from_domain(cls, entry: WishlistEntry) -> WishlistItemRead:
        return cls(
            variant_id=entry.variant_id,
            product_id=entry.product_id,
            product_title=entry.product_title,
            product_slug=entry.product_slug,
            sku=entry.sku,
            options=entry.options,
            price=Money.of(entry.price_amount, entry.currency),
            availability=entry.availability,
            added_at=entry.added_at,
        )


def _shared_path(wishlist: Wishlist) -> str | None:
    return None if wishlist.share_token is None else f"/wishlists/shared/{wishlist.share_token}"


class WishlistRead(BaseModel):
    """The owner's view of a list (without items)."""

    id: uuid.UUID
    name: str
    item_count: int
    share_token: str | None = Field(description="Set while the list is shared")
    shared_path: str | None = Field(description="Where the shared list is read (public)")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, wishlist: Wishlist, *, item_count: int) -> WishlistRead:
        return cls(
            id=wishlist.id,
            name=wishlist.name,
            item_count=item_count,
            share_token=wishlist.share_token,
            shared_path=_shared_path(wishlist),
            created_at=wishlist.created_at,
            updated_at=wishlist.updated_at,
        )

    @classmethod
    def from_summary(cls, summary: WishlistSummary) -> WishlistRead:
        return cls.from_domain(summary.wishlist, item_count=summary.item_count)


class WishlistDetailRead(WishlistRead):
    """The owner's view of a list with its items, most recently added first."""

    items: list[WishlistItemRead]

    @classmethod
    def from_view(cls, view: WishlistView) -> WishlistDetailRead:
        return cls(
            **WishlistRead.from_domain(view.wishlist, item_count=len(view.items)).model_dump(),
            items=[WishlistItemRead.from_domain(entry) for entry in view.items],
        )


class WishlistShareRead(BaseModel):
    share_token: str
    shared_path: str

    @classmethod
    def from_domain(cls, wishlist: Wishlist) -> WishlistShareRead:
        assert wishlist.share_token is not None
        return cls(
            share_token=wishlist.share_token,
            shared_path=f"/wishlists/shared/{wishlist.share_token}",
        )


class SharedWishlistRead(BaseModel):
    """A list as read through its link: no owner, no ids to act on it with."""

    name: str
    items: list[WishlistItemRead]
    updated_at: datetime

    @classmethod
    def from_view(cls, view: WishlistView) -> SharedWishlistRead:
        return cls(
            name=view.wishlist.name,
            items=[WishlistItemRead.from_domain(entry) for entry in view.items],
            updated_at=view.wishlist.updated_at,
        )


class MoveToCart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quantity: int = Field(default=1, ge=1, le=999)


class WishlistList(Page[WishlistRead]):
    """Comes whole: `next_cursor` is always null."""
