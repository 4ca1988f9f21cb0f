"""Reviews: only buyers of a delivered line, once; ratings that always equal the visible
reviews (also under concurrent writes); vendor replies; admin moderation; bad input."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from api.app import create_app
from api.routes.reviews import router
from models import (
    DeliveredPurchase,
    PlatformRole,
    Product,
    ProductStatus,
    Review,
    SearchOutbox,
    Vendor,
    VendorStatus,
)
from tests.catalog_factories import make_product, make_vendor
from tests.concurrency import wait_for_lock_waiters
from tests.conftest import _client_for, make_settings
from tests.factories import Account, sign_up

PROBLEM = "application/problem+json"


def _include_router(app: FastAPI) -> None:
    # Until api/app.py includes the router; then this does nothing.
    paths = {getattr(route, "path", None) for route in app.routes}
    if "/products/{product_id}/reviews" not in paths:
        app.include_router(router)


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code, body
    return body


async def _deliver(session: AsyncSession, account: Account, product: Product) -> None:
    """What fulfilment writes when an order line reaches the shopper."""
    session.add(
        DeliveredPurchase(
            user_id=uuid.UUID(account.id),
            product_id=product.id,
            order_id=uuid.uuid4(),
            order_line_id=uuid.uuid4(),
            delivered_at=datetime.now(UTC),
        )
    )
    await session.flush()


async def _buyer(client: httpx.AsyncClient, session: AsyncSession, product: Product) -> Account:
    account = await sign_up(client, session)
    await _deliver(session, account, product)
    return account


async def _review(
    client: httpx.AsyncClient,
    account: Account,
    product: Product,
    rating: int,
    *,
    expect: int = 201,
    **fields: Any,
) -> dict[str, Any]:
    body = {"rating": rating, "title": f"{rating} stars", **fields}
    response = await client.put(
        f"/products/{product.id}/reviews/mine", json=body, headers=account.headers
    )
    assert response.status_code == expect, response.text
    return response.json()


async def _assert_ratings_match_reviews(
    session: AsyncSession, product: Product, vendor: Vendor
) -> tuple[Decimal | None, int]:
    """The stored ratings against an aggregate of the visible reviews, straight in SQL."""
    expected_product = (
        await session.execute(
            text(
                "SELECT round(avg(rating), 2), count(*) FROM reviews "
                "WHERE product_id = :product AND NOT is_hidden"
            ),
            {"product": product.id},
        )
    ).one()
    stored_product = (
        await session.execute(
            select(Product.rating_avg, Product.rating_count).where(Product.id == product.id)
        )
    ).one()
    assert tuple(stored_product) == tuple(expected_product)
    expected_vendor = (
        await session.execute(
            text(
                "SELECT round(avg(r.rating), 2), count(*) FROM reviews r "
                "JOIN products p ON p.id = r.product_id "
                "WHERE p.vendor_id = :vendor AND NOT r.is_hidden"
            ),
            {"vendor": vendor.id},
        )
    ).one()
    stored_vendor = (
        await session.execute(
            select(Vendor.rating_avg, Vendor.rating_count).where(Vendor.id == vendor.id)
        )
    ).one()
    assert tuple(stored_vendor) == tuple(expected_vendor)
    return stored_product[0], stored_product[1]


# --- who may review ----------------------------------------------------------------------


async def test_only_a_buyer_of_a_delivered_line_may_review_and_only_once(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    vendor = await make_vendor(db_session)
    product = await make_product(db_session, vendor=vendor)
    other_product = await make_product(db_session, vendor=vendor)
    stranger = await sign_up(client, db_session)
    bought_something_else = await _buyer(client, db_session, other_product)
    buyer = await _buyer(client, db_session, product)
    path = f"/products/{product.id}/reviews/mine"

    for account in (stranger, bought_something_else):
        refused = await client.put(path, json={"rating": 5, "title": "Hi"}, headers=account.headers)
        _problem(refused, 403, "not_a_buyer")
    _problem(await client.put(path, json={"rating": 5, "title": "Hi"}), 401, "invalid_token")

    first = await _review(client, buyer, product, 4, body="Warm and soft.")
    assert first["rating"] == 4
    assert first["is_hidden"] is False
    second = await _review(client, buyer, product, 2, expect=200, title="Shrank in the wash")
    assert second["id"] == first["id"], "a second write edits the first review"
    assert (second["rating"], second["title"], second["body"]) == (2, "Shrank in the wash", "")
    count = await db_session.scalar(
        select(func.count()).select_from(Review).where(Review.product_id == product.id)
    )
    assert count == 1
    mine = await client.get(path, headers=buyer.headers)
    assert mine.status_code == 200
    assert mine.json()["title"] == "Shrank in the wash"
    _problem(await client.get(path, headers=stranger.headers), 404, "not_found")

    unknown = await client.put(
        f"/products/{uuid.uuid4()}/reviews/mine",
        json={"rating": 5, "title": "Hi"},
        headers=buyer.headers,
    )
    _problem(unknown, 404, "not_found")


async def test_two_deliveries_of_a_product_still_make_one_review(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    vendor = await make_vendor(db_session)
    product = await make_product(db_session, vendor=vendor)
    buyer = await _buyer(client, db_session, product)
    await _deliver(db_session, buyer, product)
    await _review(client, buyer, product, 5)
    await _review(client, buyer, product, 3, expect=200)
    assert await _assert_ratings_match_reviews(db_session, product, vendor) == (Decimal("3"), 1)


# --- ratings always equal the visible reviews --------------------------------------------


async def test_ratings_follow_every_change_to_the_visible_reviews(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    vendor = await make_vendor(db_session)
    product = await make_product(db_session, vendor=vendor)
    sibling = await make_product(db_session, vendor=vendor)
    admin = await sign_up(client, db_session, role=PlatformRole.ADMIN)
    ann, bob, cy = [await _buyer(client, db_session, product) for _ in range(3)]
    dee = await _buyer(client, db_session, sibling)
    assert await _assert_ratings_match_reviews(db_session, product, vendor) == (None, 0)

    ann_review = await _review(client, ann, product, 5)
    await _review(client, bob, product, 4)
    await _review(client, cy, product, 2)
    await _review(client, dee, sibling, 1)
    assert await _assert_ratings_match_reviews(db_session, product, vendor) == (
        Decimal("3.67"),
        3,
    )
    vendor_row = (
        await db_session.execute(
            select(Vendor.rating_avg, Vendor.rating_count).where(Vendor.id == vendor.id)
        )
    ).one()
    assert tuple(vendor_row) == (Decimal("3.00"), 4), "the vendor's rating spans its products"

    await _review(client, bob, product, 1, expect=200)  # edit: 5, 1, 2
    assert await _assert_ratings_match_reviews(db_session, product, vendor) == (
        Decimal("2.67"),
        3,
    )

    deleted = await client.delete(f"/products/{product.id}/reviews/mine", headers=cy.headers)
    assert deleted.status_code == 204  # 5, 1
    assert await _assert_ratings_match_reviews(db_session, product, vendor) == (Decimal("3"), 2)
    again = await client.delete(f"/products/{product.id}/reviews/mine", headers=cy.headers)
    _problem(again, 404, "not_found")

    hidden = await client.post(
        f"/admin/reviews/{ann_review['id']}/hide",
        json={"reason": "Off-topic"},
        headers=admin.headers,
    )
    assert hidden.status_code == 200, hidden.text  # 1 visible
    assert await _assert_ratings_match_reviews(db_session, product, vendor) == (Decimal("1"), 1)

    # The author editing a hidden review does not bring it back.
    edited = await _review(client, ann, product, 4, expect=200)
    assert edited["is_hidden"] is True
    assert edited["hidden_reason"] == "Off-topic"
    assert await _assert_ratings_match_reviews(db_session, product, vendor) == (Decimal("1"), 1)

    shown = await client.post(f"/admin/reviews/{ann_review['id']}/unhide", headers=admin.headers)
    assert shown.status_code == 200, shown.text  # 4, 1
    assert shown.json()["is_hidden"] is False
    assert shown.json()["hidden_reason"] is None
    assert await _assert_ratings_match_reviews(db_session, product, vendor) == (
        Decimal("2.50"),
        2,
    )

    queued = await db_session.scalar(
        select(func.count()).select_from(SearchOutbox).where(SearchOutbox.product_id == product.id)
    )
    assert queued == 8, "every rating change queues the product for re-indexing"


async def test_rating_summary_has_average_count_and_histogram(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    vendor = await make_vendor(db_session)
    product = await make_product(db_session, vendor=vendor)
    empty = await client.get(f"/products/{product.id}/rating")
    assert empty.status_code == 200
    assert empty.json() == {
        "average": None,
        "count": 0,
        "histogram": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0},
    }
    for rating in (5, 5, 4, 1):
        await _review(client, await _buyer(client, db_session, product), product, rating)
    summary = (await client.get(f"/products/{product.id}/rating")).json()
    assert summary == {
        "average": 3.75,
        "count": 4,
        "histogram": {"1": 1, "2": 0, "3": 0, "4": 1, "5": 2},
    }
    stored = await _assert_ratings_match_reviews(db_session, product, vendor)
    assert stored == (Decimal("3.75"), 4)


async def test_two_thirds_rounds_like_the_stored_average(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    vendor = await make_vendor(db_session)
    product = await make_product(db_session, vendor=vendor)
    for rating in (5, 5, 4):
        await _review(client, await _buyer(client, db_session, product), product, rating)
    stored, _ = await _assert_ratings_match_reviews(db_session, product, vendor)
    summary = (await client.get(f"/products/{product.id}/rating")).json()
    assert stored == Decimal("4.67")
    assert summary["average"] == float(stored)


# --- reading -----------------------------------------------------------------------------


async def test_listing_pages_through_visible_reviews_newest_first(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    vendor = await make_vendor(db_session)
    product = await make_product(db_session, vendor=vendor)
    admin = await sign_up(client, db_session, role=PlatformRole.ADMIN)
    written = []
    for rating in (5, 4, 5, 3, 5, 1, 2):
        buyer = await _buyer(client, db_session, product)
        written.append(await _review(client, buyer, product, rating, body=f"body {rating}"))
    hidden_id = written[0]["id"]
    await client.post(
        f"/admin/reviews/{hidden_id}/hide", json={"reason": "Spam"}, headers=admin.headers
    )
    # The order the API promises, straight from the table.
    expected = [
        str(review_id)
        for review_id in await db_session.scalars(
            select(Review.id)
            .where(Review.product_id == product.id, Review.is_hidden.is_(False))
            .order_by(Review.created_at.desc(), Review.id.desc())
        )
    ]
    assert len(expected) == 6

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 4}
        if cursor is not None:
            params["cursor"] = cursor
        response = await client.get(f"/products/{product.id}/reviews", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert pages == 2
    assert hidden_id not in seen

    item = (await client.get(f"/products/{product.id}/reviews", params={"limit": 1})).json()
    public = item["items"][0]
    assert set(public) == {
        "id",
        "product_id",
        "author",
        "rating",
        "title",
        "body",
        "verified_purchase",
        "vendor_reply",
        "vendor_replied_at",
        "created_at",
        "updated_at",
    }, "no moderation state or user ids in the public view"
    assert public["author"]

    fives = (await client.get(f"/products/{product.id}/reviews", params={"rating": 5})).json()
    assert len(fives["items"]) == 2, "the hidden five-star review is not listed"
    assert {item["rating"] for item in fives["items"]} == {5}
    assert fives["next_cursor"] is None


async def test_reviews_of_products_not_on_show_are_not_found(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    vendor = await make_vendor(db_session)
    draft = await make_product(db_session, vendor=vendor, status=ProductStatus.DRAFT)
    suspended_vendor = await make_vendor(db_session, status=VendorStatus.SUSPENDED)
    hidden_by_vendor = await make_product(db_session, vendor=suspended_vendor)
    for product_id in (draft.id, hidden_by_vendor.id, uuid.uuid4()):
        _problem(await client.get(f"/products/{product_id}/reviews"), 404, "not_found")
        _problem(await client.get(f"/products/{product_id}/rating"), 404, "not_found")
    archived = await make_product(db_session, vendor=vendor, status=ProductStatus.ARCHIVED)
    assert (await client.get(f"/products/{archived.id}/reviews")).status_code == 200


async def test_a_deleted_authors_review_stays_without_their_name(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    vendor = await make_vendor(db_session)
    product = await make_product(db_session, vendor=vendor)
    buyer = await _buyer(client, db_session, product)
    await _review(client, buyer, product, 5)
    gone = await client.request(
        "DELETE", "/me", json={"password": buyer.password}, headers=buyer.headers
    )
    assert gone.status_code == 204, gone.text
    listed = (await client.get(f"/products/{product.id}/reviews")).json()
    assert [item["author"] for item in listed["items"]] == [None]


# --- the vendor's reply ------------------------------------------------------------------


async def test_staff_of_the_products_vendor_reply_once_and_may_edit(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    owner = await sign_up(client, db_session)
    vendor = await make_vendor(db_session, owner_id=uuid.UUID(owner.id))
    product = await make_product(db_session, vendor=vendor)
    rival_owner = await sign_up(client, db_session)
    rival = await make_vendor(db_session, owner_id=uuid.UUID(rival_owner.id))
    buyer = await _buyer(client, db_session, product)
    review = await _review(client, buyer, product, 3)
    path = f"/vendors/{vendor.id}/reviews/{review['id']}/reply"

    replied = await client.put(path, json={"reply": "Sorry about that!"}, headers=owner.headers)
    assert replied.status_code == 200, replied.text
    assert replied.json()["vendor_reply"] == "Sorry about that!"
    assert replied.json()["vendor_replied_at"] is not None
    edited = await client.put(path, json={"reply": "Fixed in v2."}, headers=owner.headers)
    assert edited.json()["vendor_reply"] == "Fixed in v2."
    listed = (await client.get(f"/products/{product.id}/reviews")).json()["items"]
    assert [item["vendor_reply"] for item in listed] == ["Fixed in v2."]

    # The rival's staff: not staff here, and the review is not of their products.
    _problem(
        await client.put(path, json={"reply": "Buy ours"}, headers=rival_owner.headers),
        404,
        "not_found",
    )
    via_own_vendor = await client.put(
        f"/vendors/{rival.id}/reviews/{review['id']}/reply",
        json={"reply": "Buy ours"},
        headers=rival_owner.headers,
    )
    _problem(via_own_vendor, 404, "not_found")
    # Customers, the author included.
    _problem(
        await client.put(path, json={"reply": "Me again"}, headers=buyer.headers), 404, "not_found"
    )
    _problem(await client.put(path, json={"reply": "Anyone"}), 401, "invalid_token")
    unknown = f"/vendors/{vendor.id}/reviews/{uuid.uuid4()}/reply"
    _problem(
        await client.put(unknown, json={"reply": "?"}, headers=owner.headers), 404, "not_found"
    )
    _problem(
        await client.put(path, json={"reply": ""}, headers=owner.headers), 422, "validation_error"
    )
    _problem(
        await client.put(path, json={"reply": "   "}, headers=owner.headers), 422, "invalid_review"
    )
    stored = await db_session.scalar(
        select(Review.vendor_reply).where(Review.id == uuid.UUID(review["id"]))
    )
    assert stored == "Fixed in v2."


# --- moderation --------------------------------------------------------------------------


async def test_only_admins_moderate_and_authors_see_why(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    vendor = await make_vendor(db_session)
    product = await make_product(db_session, vendor=vendor)
    admin = await sign_up(client, db_session, role=PlatformRole.ADMIN)
    operations = await sign_up(client, db_session, role=PlatformRole.OPERATIONS)
    buyer = await _buyer(client, db_session, product)
    review = await _review(client, buyer, product, 1)
    hide = f"/admin/reviews/{review['id']}/hide"
    unhide = f"/admin/reviews/{review['id']}/unhide"

    for account in (buyer, operations):
        refused = await client.post(hide, json={"reason": "x"}, headers=account.headers)
        _problem(refused, 403, "forbidden")
        _problem(await client.post(unhide, headers=account.headers), 403, "forbidden")
    _problem(await client.post(hide, json={"reason": "x"}), 401, "invalid_token")

    hidden = await client.post(hide, json={"reason": "Abusive language"}, headers=admin.headers)
    assert hidden.status_code == 200, hidden.text
    assert hidden.json()["is_hidden"] is True
    assert hidden.json()["user_id"] == buyer.id
    assert (await client.get(f"/products/{product.id}/reviews")).json()["items"] == []
    mine = (await client.get(f"/products/{product.id}/reviews/mine", headers=buyer.headers)).json()
    assert (mine["is_hidden"], mine["hidden_reason"]) == (True, "Abusive language")

    _problem(
        await client.post(
            f"/admin/reviews/{uuid.uuid4()}/hide", json={"reason": "x"}, headers=admin.headers
        ),
        404,
        "not_found",
    )
    _problem(await client.post(hide, json={}, headers=admin.headers), 422, "validation_error")
    _problem(
        await client.post(hide, json={"reason": " \t "}, headers=admin.headers),
        422,
        "validation_error",
    )
    assert (await client.post(unhide, headers=admin.headers)).status_code == 200
    listed = (await client.get(f"/products/{product.id}/reviews")).json()["items"]
    assert [item["id"] for item in listed] == [review["id"]]
    await _assert_ratings_match_reviews(db_session, product, vendor)


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"rating": 0, "title": "Hi"}, "validation_error"),
        ({"rating": 6, "title": "Hi"}, "validation_error"),
        ({"rating": "five", "title": "Hi"}, "validation_error"),
        ({"rating": 4.5, "title": "Hi"}, "validation_error"),
        ({"title": "Hi"}, "validation_error"),
        ({"rating": 3, "title": ""}, "validation_error"),
        ({"rating": 3, "title": "x" * 201}, "validation_error"),
        ({"rating": 3, "title": "Hi", "body": "x" * 5001}, "validation_error"),
        ({"rating": 3, "title": "Hi", "stars": 3}, "validation_error"),
        ({"rating": 3, "title": "   "}, "validation_error"),  # the schema says: not blank
        ({"rating": 3, "title": "Hi", "body": "nul\u0000byte"}, "validation_error"),
    ],
)
async def test_bad_reviews_are_problems(
    client: httpx.AsyncClient, db_session: AsyncSession, body: dict[str, Any], code: str
) -> None:
    vendor = await make_vendor(db_session)
    product = await make_product(db_session, vendor=vendor)
    buyer = await _buyer(client, db_session, product)
    response = await client.put(
        f"/products/{product.id}/reviews/mine", json=body, headers=buyer.headers
    )
    problem = _problem(response, 422, code)
    assert problem["errors"]
    assert await _assert_ratings_match_reviews(db_session, product, vendor) == (None, 0)


async def test_bad_paths_and_queries_are_problems(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    vendor = await make_vendor(db_session)
    product = await make_product(db_session, vendor=vendor)
    reviews_path = f"/products/{product.id}/reviews"
    for params in ({"limit": 0}, {"limit": 101}, {"rating": 6}, {"rating": "x"}):
        _problem(await client.get(reviews_path, params=params), 422, "validation_error")
    for cursor in ("garbage!", "bm90IGEgY3Vyc29y", "MjAyNi0wMS0wMXxub3QtYS11dWlk"):
        _problem(await client.get(reviews_path, params={"cursor": cursor}), 422, "invalid_cursor")
    _problem(await client.get("/products/not-a-uuid/reviews"), 422, "validation_error")
    _problem(await client.get("/products/not-a-uuid/rating"), 422, "validation_error")


# --- concurrency -------------------------------------------------------------------------


@pytest.fixture
async def committing(
    fresh_database_url: str, temporal_address: str
) -> AsyncIterator[tuple[httpx.AsyncClient, AsyncEngine]]:
    """A client whose requests each commit their own transaction, as deployed, on a database
    of this test's own, and an engine to look at it."""
    app = create_app(make_settings(fresh_database_url, temporal_address))
    _include_router(app)
    engine = create_async_engine(fresh_database_url, poolclass=NullPool)
    try:
        async for client in _client_for(app):
            yield client, engine
    finally:
        await engine.dispose()


async def _race(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    writes: list[tuple[Account, Product, int]],
    *,
    hold: str,
    row_id: uuid.UUID,
) -> None:
    """Send every review at once while a row (``hold``: products or vendors) is locked, so
    that they all reach the database and wait together, then let them go."""
    async with engine.connect() as blocker:
        await blocker.execute(
            text(f"SELECT 1 FROM {hold} WHERE id = :id FOR NO KEY UPDATE"), {"id": row_id}
        )
        requests = [
            asyncio.create_task(
                client.put(
                    f"/products/{product.id}/reviews/mine",
                    json={"rating": rating, "title": f"Racer {n}"},
                    headers=account.headers,
                )
            )
            for n, (account, product, rating) in enumerate(writes)
        ]
        await wait_for_lock_waiters(engine, len(writes))
        await blocker.rollback()
    responses = await asyncio.gather(*requests)
    assert [r.status_code for r in responses] == [201] * len(writes), [r.text for r in responses]


async def _buyers_of(
    client: httpx.AsyncClient,
    session: AsyncSession,
    reviews: list[tuple[Product, int]],
) -> list[tuple[Account, Product, int]]:
    writes = []
    for product, rating in reviews:
        account = await sign_up(client, session, verified=False)
        await _deliver(session, account, product)
        writes.append((account, product, rating))
    await session.commit()
    return writes


def _rounded(ratings: list[int]) -> Decimal:
    return (Decimal(sum(ratings)) / len(ratings)).quantize(Decimal("0.01"), ROUND_HALF_UP)


async def test_concurrent_reviews_of_one_product_leave_an_exact_average(
    committing: tuple[httpx.AsyncClient, AsyncEngine],
) -> None:
    client, engine = committing
    ratings = [5, 4, 4, 2, 1, 3]
    async with AsyncSession(engine, expire_on_commit=False) as session:
        vendor = await make_vendor(session)
        product = await make_product(session, vendor=vendor)
        writes = await _buyers_of(client, session, [(product, rating) for rating in ratings])

    # Held on the product row: with its lock, each review waits for it before writing, then
    # recomputes with a snapshot taken after the previous writer committed. (Without it, all
    # would write, compute from snapshots missing each other's reviews, then queue to store.)
    await _race(client, engine, writes, hold="products", row_id=product.id)

    async with AsyncSession(engine) as session:
        stored = await _assert_ratings_match_reviews(session, product, vendor)
    assert stored == (_rounded(ratings), len(ratings))


async def test_concurrent_reviews_across_a_vendors_products_leave_an_exact_vendor_rating(
    committing: tuple[httpx.AsyncClient, AsyncEngine],
) -> None:
    client, engine = committing
    ratings = [5, 2, 2, 4]
    async with AsyncSession(engine, expire_on_commit=False) as session:
        vendor = await make_vendor(session)
        products = [await make_product(session, vendor=vendor) for _ in ratings]
        writes = await _buyers_of(client, session, list(zip(products, ratings, strict=True)))

    # Different products, so different product locks: only the vendor row orders them.
    await _race(client, engine, writes, hold="vendors", row_id=vendor.id)

    async with AsyncSession(engine) as session:
        for product, rating in zip(products, ratings, strict=True):
            stored = await _assert_ratings_match_reviews(session, product, vendor)
            assert stored == (Decimal(rating), 1)
        vendor_row = (
            await session.execute(
                select(Vendor.rating_avg, Vendor.rating_count).where(Vendor.id == vendor.id)
            )
        ).one()
    assert tuple(vendor_row) == (_rounded(ratings), len(ratings))
