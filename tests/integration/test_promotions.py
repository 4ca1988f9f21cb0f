"""Promotions: the back-office API (who may manage which), and counting uses, including under
real concurrency on a database of the test's own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from commerce.checkout import promotions
from commerce.checkout.promotions import PromotionExhausted
from models import (
    PlatformRole,
    Promotion,
    PromotionKind,
    PromotionRedemption,
    PromotionScope,
    RedemptionStatus,
    User,
    VendorMembership,
    VendorRole,
)
from tests.catalog_factories import make_product, make_vendor
from tests.factories import sign_up, unique


def _coupon(**overrides: object) -> dict:
    body: dict[str, object] = {"code": unique("CODE"), "name": "Ten off", "kind": "percentage"}
    body["percent_bp"] = 1000
    body.update(overrides)
    return body


# --- management API -------------------------------------------------------------------------


async def test_admin_manages_platform_promotions(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    admin = await sign_up(client, db_session, role=PlatformRole.ADMIN)
    created = await client.post("/admin/promotions", headers=admin.headers, json=_coupon())
    assert created.status_code == 201, created.text
    promotion = created.json()
    assert promotion["vendor_id"] is None
    assert (promotion["automatic"], promotion["times_used"], promotion["is_active"]) == (
        False,
        0,
        True,
    )

    listed = await client.get("/admin/promotions", headers=admin.headers)
    assert promotion["id"] in [p["id"] for p in listed.json()["items"]]

    changed = await client.patch(
        f"/admin/promotions/{promotion['id']}",
        headers=admin.headers,
        json={"percent_bp": 2500, "code": None, "usage_limit_total": 10},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["percent_bp"], changed.json()["automatic"]) == (2500, True)
    assert (changed.json()["amount_off"], changed.json()["min_subtotal"]) == (None, None)

    for _ in range(2):  # idempotent
        off = await client.post(
            f"/admin/promotions/{promotion['id']}/deactivate", headers=admin.headers
        )
        assert off.status_code == 200
        assert off.json()["is_active"] is False


async def test_only_admins_manage_platform_promotions(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    shopper = await sign_up(client, db_session)
    assert (await client.get("/admin/promotions", headers=shopper.headers)).status_code == 403
    response = await client.post("/admin/promotions", headers=shopper.headers, json=_coupon())
    assert response.status_code == 403
    assert (await client.get("/admin/promotions")).status_code == 401


async def test_codes_are_unique_case_insensitively(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    admin = await sign_up(client, db_session, role=PlatformRole.ADMIN)
    code = unique("Spring")
    first = await client.post("/admin/promotions", headers=admin.headers, json=_coupon(code=code))
    assert first.status_code == 201
    again = await client.post(
        "/admin/promotions", headers=admin.headers, json=_coupon(code=code.upper())
    )
    assert again.status_code == 409
    assert again.json()["code"] == "promotion_code_taken"
    other = await client.post("/admin/promotions", headers=admin.headers, json=_coupon())
    renamed = await client.patch(
        f"/admin/promotions/{other.json()['id']}",
        headers=admin.headers,
        json={"code": code.lower()},
    )
    assert renamed.status_code == 409


async def test_money_off_and_a_minimum_are_money(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    admin = await sign_up(client, db_session, role=PlatformRole.ADMIN)
    created = await client.post(
        "/admin/promotions",
        headers=admin.headers,
        json=_coupon(
            kind="fixed",
            percent_bp=None,
            amount_off={"amount": 500, "currency": "EUR"},
            min_subtotal={"amount": 5000, "currency": "EUR"},
        ),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["kind"], body["percent_bp"]) == ("fixed", None)
    assert body["amount_off"] == {"amount": 500, "currency": "EUR"}
    assert body["min_subtotal"] == {"amount": 5000, "currency": "EUR"}
    url = f"/admin/promotions/{body['id']}"
    # A minimum in another currency than the money off is refused ...
    other = await client.patch(
        url, headers=admin.headers, json={"min_subtotal": {"amount": 10, "currency": "USD"}}
    )
    assert other.status_code == 422, other.text
    assert other.json()["code"] == "invalid_promotion"
    # ... null removes the minimum, and a new kind drops the old kind's amount.
    changed = await client.patch(
        url,
        headers=admin.headers,
        json={"min_subtotal": None, "kind": "percentage", "percent_bp": 750},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["percent_bp"], changed.json()["amount_off"]) == (750, None)
    assert changed.json()["min_subtotal"] is None


@pytest.mark.parametrize(
    ("body", "code"),
    [
        # What the schema says: a validation error.
        ({"percent_bp": 0}, "validation_error"),
        ({"percent_bp": 10_001}, "validation_error"),
        ({"min_subtotal": {"amount": 5000}}, "validation_error"),  # money of no currency
        ({"min_subtotal": 5000}, "validation_error"),  # a bare number is not money
        # The rules between fields: the promotion's own problem code.
        ({"kind": "fixed"}, "invalid_promotion"),  # a percentage, no amount off
        ({"kind": "fixed", "percent_bp": None}, "invalid_promotion"),
        (
            {
                "kind": "free_shipping",
                "percent_bp": None,
                "amount_off": {"amount": 1, "currency": "EUR"},
            },
            "invalid_promotion",
        ),
        ({"kind": "percentage", "percent_bp": None}, "invalid_promotion"),
        (
            {"starts_at": "2026-12-01T00:00:00Z", "ends_at": "2026-11-01T00:00:00Z"},
            "invalid_promotion",
        ),
        ({"scope": "vendor"}, "invalid_promotion"),  # names no vendor
        ({"scope": "category"}, "invalid_promotion"),
        ({"scope": "products"}, "invalid_promotion"),
        ({"code": "has spaces"}, "invalid_promotion"),
    ],
)
async def test_invalid_promotions_are_refused(
    client: httpx.AsyncClient, db_session: AsyncSession, body: dict, code: str
) -> None:
    admin = await sign_up(client, db_session, role=PlatformRole.ADMIN)
    response = await client.post("/admin/promotions", headers=admin.headers, json=_coupon(**body))
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code


async def test_vendor_promotions_are_forced_to_their_vendor(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    owner = await sign_up(client, db_session)
    vendor = await make_vendor(db_session, owner_id=uuid.UUID(owner.id))
    other_vendor = await make_vendor(db_session)
    own_product = await make_product(db_session, vendor=vendor)
    foreign_product = await make_product(db_session, vendor=other_vendor)
    base = f"/vendors/{vendor.id}/promotions"

    whole_cart = await client.post(base, headers=owner.headers, json=_coupon())
    assert whole_cart.status_code == 201, whole_cart.text
    assert whole_cart.json()["vendor_id"] == str(vendor.id)
    assert (whole_cart.json()["scope"], whole_cart.json()["scope_vendor_id"]) == (
        "vendor",
        str(vendor.id),
    )
    products = await client.post(
        base,
        headers=owner.headers,
        json=_coupon(scope="products", scope_product_ids=[str(own_product.id)]),
    )
    assert products.status_code == 201

    for refused in (
        {"scope": "products", "scope_product_ids": [str(foreign_product.id)]},
        {"scope": "vendor", "scope_vendor_id": str(other_vendor.id)},
        {"scope": "category", "scope_category_path": "clothing"},
    ):
        response = await client.post(base, headers=owner.headers, json=_coupon(**refused))
        assert response.status_code == 422, refused
        assert response.json()["code"] == "invalid_promotion"

    listed = await client.get(base, headers=owner.headers)
    assert {p["id"] for p in listed.json()["items"]} == {
        whole_cart.json()["id"],
        products.json()["id"],
    }


async def test_vendors_cannot_reach_other_vendors_promotions(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    mallory = await sign_up(client, db_session)
    victim_owner = await sign_up(client, db_session)
    mallory_vendor = await make_vendor(db_session, owner_id=uuid.UUID(mallory.id))
    victim = await make_vendor(db_session, owner_id=uuid.UUID(victim_owner.id))
    created = await client.post(
        f"/vendors/{victim.id}/promotions", headers=victim_owner.headers, json=_coupon()
    )
    promotion_id = created.json()["id"]
    admin = await sign_up(client, db_session, role=PlatformRole.ADMIN)
    platform = await client.post("/admin/promotions", headers=admin.headers, json=_coupon())

    # Through their own vendor's path: someone else's promotion does not exist.
    mine = f"/vendors/{mallory_vendor.id}/promotions"
    for target in (promotion_id, platform.json()["id"]):
        assert (await client.get(f"{mine}/{target}", headers=mallory.headers)).status_code == 404
        patched = await client.patch(
            f"{mine}/{target}", headers=mallory.headers, json={"percent_bp": 10_000}
        )
        assert patched.status_code == 404
        off = await client.post(f"{mine}/{target}/deactivate", headers=mallory.headers)
        assert off.status_code == 404
    # Through the victim's path: not staff there, so no such vendor.
    theirs = f"/vendors/{victim.id}/promotions"
    assert (await client.get(theirs, headers=mallory.headers)).status_code == 404
    assert (await client.post(theirs, headers=mallory.headers, json=_coupon())).status_code == 404
    # Staff below manager may not manage promotions.
    clerk = await sign_up(client, db_session)
    db_session.add(
        VendorMembership(vendor_id=victim.id, user_id=uuid.UUID(clerk.id), role=VendorRole.STAFF)
    )
    await db_session.flush()
    assert (await client.get(theirs, headers=clerk.headers)).status_code == 403
    untouched = await db_session.get(Promotion, uuid.UUID(promotion_id), populate_existing=True)
    assert untouched is not None
    assert (untouched.value, untouched.is_active) == (1000, True)


async def test_load_candidates_reads_what_evaluate_needs(db_session: AsyncSession) -> None:
    vendor, other_vendor = await make_vendor(db_session), await make_vendor(db_session)
    now = datetime.now(UTC)
    coupon = await _promotion(db_session, code=unique("MiXeD"), usage_limit_per_customer=3)
    inactive_coupon = await _promotion(db_session, is_active=False)
    mine = await _promotion(db_session, code=None, vendor_id=vendor.id)
    theirs = await _promotion(db_session, code=None, vendor_id=other_vendor.id)
    over = await _promotion(db_session, code=None, ends_at=now - timedelta(hours=1))
    off = await _promotion(db_session, code=None, is_active=False)
    user_id = await _user(db_session)
    await promotions.reserve_usage(
        db_session, promotion_ids=[coupon.id], order_id=uuid.uuid4(), user_id=user_id
    )

    found, usage = await promotions.load_candidates(
        db_session,
        coupon_codes=[f" {coupon.code.upper()} ", inactive_coupon.code.lower(), "NOPE"],
        vendor_ids=[vendor.id],
        now=now,
        user_id=user_id,
    )

    ids = {p.id for p in found}
    # The inactive coupon is loaded, so evaluation can say why it does not apply.
    assert {coupon.id, inactive_coupon.id, mine.id} <= ids
    assert not {theirs.id, over.id, off.id} & ids
    assert usage == {coupon.id: 1}


# --- counting uses --------------------------------------------------------------------------


async def _promotion(
    session: AsyncSession, *, vendor_id: uuid.UUID | None = None, **values: object
) -> Promotion:
    fields: dict[str, object] = {
        "code": unique("USE"),
        "name": "Use",
        "kind": PromotionKind.PERCENTAGE,
        "value": 1000,
        "scope": PromotionScope.CART,
    }
    fields.update(values)
    return await promotions.create_promotion(session, vendor_id=vendor_id, values=fields)


async def _user(session: AsyncSession) -> uuid.UUID:
    name = unique()
    user = User(
        username=name, username_key=name, email=f"{name}@example.com",
        email_key=f"{name}@example.com",
    )  # fmt: skip
    session.add(user)
    await session.flush()
    return user.id


async def _times_used(session: AsyncSession, promotion_id: uuid.UUID) -> int:
    return await session.scalar(select(Promotion.times_used).where(Promotion.id == promotion_id))


async def test_reserve_confirm_release_are_idempotent(db_session: AsyncSession) -> None:
    first = await _promotion(db_session, usage_limit_total=3)
    second = await _promotion(db_session, kind=PromotionKind.FREE_SHIPPING, value=0)
    user_id, order_id = await _user(db_session), uuid.uuid4()
    ids = [first.id, second.id]

    for _ in range(2):
        found = await promotions.reserve_usage(
            db_session,
            promotion_ids=ids,
            order_id=order_id,
            user_id=user_id,
            amounts={first.id: 250},
        )
        assert {(r.promotion_id, r.status, r.amount) for r in found} == {
            (first.id, RedemptionStatus.RESERVED, 250),
            (second.id, RedemptionStatus.RESERVED, 0),
        }
    assert await _times_used(db_session, first.id) == 1
    assert await _times_used(db_session, second.id) == 1

    assert await promotions.confirm_usage(db_session, order_id=order_id) == 2
    assert await promotions.confirm_usage(db_session, order_id=order_id) == 0
    # A retried reservation after confirmation changes nothing either.
    await promotions.reserve_usage(
        db_session, promotion_ids=ids, order_id=order_id, user_id=user_id
    )
    assert await _times_used(db_session, first.id) == 1

    assert await promotions.release_usage(db_session, order_id=order_id) == 2
    assert await promotions.release_usage(db_session, order_id=order_id) == 0
    assert await _times_used(db_session, first.id) == 0
    assert await _times_used(db_session, second.id) == 0
    statuses = await db_session.scalars(
        select(PromotionRedemption.status).where(PromotionRedemption.order_id == order_id)
    )
    assert set(statuses.all()) == {RedemptionStatus.RELEASED}
    # Confirming a cancelled order does not bring its uses back.
    assert await promotions.confirm_usage(db_session, order_id=order_id) == 0


async def test_reservation_is_all_or_nothing(db_session: AsyncSession) -> None:
    plenty = await _promotion(db_session)
    spent = await _promotion(db_session, usage_limit_total=1)
    await promotions.reserve_usage(
        db_session, promotion_ids=[spent.id], order_id=uuid.uuid4(), user_id=None
    )
    order_id = uuid.uuid4()
    with pytest.raises(PromotionExhausted) as raised:
        await promotions.reserve_usage(
            db_session, promotion_ids=[plenty.id, spent.id], order_id=order_id, user_id=None
        )
    assert raised.value.extra == {"promotion_id": str(spent.id), "limit": "total"}
    assert await _times_used(db_session, plenty.id) == 0
    assert await _times_used(db_session, spent.id) == 1
    left = await db_session.scalar(
        select(func.count()).where(PromotionRedemption.order_id == order_id)
    )
    assert left == 0


async def test_per_customer_limit_counts_reserved_and_confirmed(db_session: AsyncSession) -> None:
    once = await _promotion(db_session, usage_limit_per_customer=1)
    user_id, other_user = await _user(db_session), await _user(db_session)
    first_order = uuid.uuid4()
    await promotions.reserve_usage(
        db_session, promotion_ids=[once.id], order_id=first_order, user_id=user_id
    )
    with pytest.raises(PromotionExhausted) as raised:
        await promotions.reserve_usage(
            db_session, promotion_ids=[once.id], order_id=uuid.uuid4(), user_id=user_id
        )
    assert raised.value.extra["limit"] == "per_customer"
    await promotions.reserve_usage(
        db_session, promotion_ids=[once.id], order_id=uuid.uuid4(), user_id=other_user
    )
    # The cancelled order gives the use back to the customer too.
    await promotions.release_usage(db_session, order_id=first_order)
    await promotions.reserve_usage(
        db_session, promotion_ids=[once.id], order_id=uuid.uuid4(), user_id=user_id
    )
    assert await _times_used(db_session, once.id) == 2


# --- under real concurrency -----------------------------------------------------------------


@pytest.fixture
async def sessions(fresh_database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine: AsyncEngine = create_async_engine(
        fresh_database_url,
        pool_size=15,
        max_overflow=10,
        # A lost wake-up or a lock cycle fails the test quickly instead of hanging it.
        connect_args={"options": "-c statement_timeout=30000 -c lock_timeout=20000"},
    )
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


async def _reserve(
    sessions: async_sessionmaker[AsyncSession],
    promotion_id: uuid.UUID,
    user_id: uuid.UUID | None,
    order_id: uuid.UUID | None = None,
) -> bool:
    """One checkout's first step, in its own transaction; True when the use was counted."""
    try:
        async with sessions.begin() as session:
            await promotions.reserve_usage(
                session,
                promotion_ids=[promotion_id],
                order_id=order_id or uuid.uuid4(),
                user_id=user_id,
            )
        return True
    except PromotionExhausted:
        return False


async def test_thirty_orders_race_for_five_uses(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        coupon = await _promotion(session, usage_limit_total=5)
        users = [await _user(session) for _ in range(30)]

    # Any violation of ck_promotions_usage_within_limit would raise IntegrityError here.
    outcomes = await asyncio.gather(*(_reserve(sessions, coupon.id, u) for u in users))

    assert outcomes.count(True) == 5
    async with sessions() as session:
        assert await _times_used(session, coupon.id) == 5
        held = await session.scalar(
            select(func.count()).where(PromotionRedemption.promotion_id == coupon.id)
        )
    assert held == 5

    # A cancelled order gives its use back, and a new order can take it, once.
    async with sessions.begin() as session:
        order_id = await session.scalar(
            select(PromotionRedemption.order_id)
            .where(PromotionRedemption.promotion_id == coupon.id)
            .limit(1)
        )
        await promotions.release_usage(session, order_id=order_id)
    outcomes = await asyncio.gather(*(_reserve(sessions, coupon.id, u) for u in users[:10]))
    assert outcomes.count(True) == 1
    async with sessions() as session:
        assert await _times_used(session, coupon.id) == 5


async def test_one_customer_racing_gets_exactly_the_per_customer_limit(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        coupon = await _promotion(session, usage_limit_per_customer=2)
        user_id = await _user(session)

    outcomes = await asyncio.gather(*(_reserve(sessions, coupon.id, user_id) for _ in range(20)))

    assert outcomes.count(True) == 2
    async with sessions() as session:
        assert await _times_used(session, coupon.id) == 2


async def test_overlapping_retries_of_one_order_count_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        coupon = await _promotion(session, usage_limit_total=3)
    order_id = uuid.uuid4()

    outcomes = await asyncio.gather(
        *(_reserve(sessions, coupon.id, None, order_id) for _ in range(15))
    )

    assert all(outcomes)
    async with sessions() as session:
        assert await _times_used(session, coupon.id) == 1
