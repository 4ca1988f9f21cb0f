"""Merging a guest cart into a user's, over arbitrary carts and stock: every guest line ends up
merged or reported (never lost), quantities are summed and capped by stock exactly, the user's
other lines are untouched, and the spent token merges nothing a second time.

Services on the test's session directly; each example runs in a savepoint rolled back after it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.checkout import carts
from models import Cart, CartItem, InventoryLevel, Product, ProductStatus, User, Variant
from tests.catalog_factories import VariantSpec, make_product, make_vendor

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    # One catalog for all examples; each example's writes are undone by its savepoint.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
EURO_VARIANTS = 4


@dataclass(frozen=True)
class Catalog:
    user_id: uuid.UUID
    euro: tuple[uuid.UUID, ...]  # sellable, stock set per example
    dollar: uuid.UUID  # sellable, another currency
    archived: uuid.UUID  # EUR, product archived
    prices: dict[uuid.UUID, int]


@pytest.fixture
async def catalog(db_session: AsyncSession) -> Catalog:
    vendor = await make_vendor(db_session)
    specs = [VariantSpec(f"E{i}", 100 * (i + 1)) for i in range(EURO_VARIANTS)]
    product = await make_product(db_session, vendor=vendor, variants=specs)
    dollar = await make_product(
        db_session, vendor=vendor, variants=[VariantSpec("D", 900, currency="USD")]
    )
    archived = await make_product(db_session, vendor=vendor, variants=[VariantSpec("A", 500)])

    async def ids(of: Product) -> list[uuid.UUID]:
        found = await db_session.scalars(
            select(Variant.id).where(Variant.product_id == of.id).order_by(Variant.sku)
        )
        return list(found)

    await db_session.execute(
        update(Product).where(Product.id == archived.id).values(status=ProductStatus.ARCHIVED)
    )
    name = f"prop{uuid.uuid4().hex[:10]}"
    user = User(username=name, username_key=name, email=f"{name}@example.com")
    user.email_key = user.email
    db_session.add(user)
    await db_session.flush()
    rows = await db_session.execute(
        select(Variant.id, Variant.price_amount).where(Variant.vendor_id == vendor.id)
    )
    prices = {variant_id: price for variant_id, price in rows}
    return Catalog(
        user_id=user.id,
        euro=tuple(await ids(product)),
        dollar=(await ids(dollar))[0],
        archived=(await ids(archived))[0],
        prices=prices,
    )


quantities = st.integers(min_value=1, max_value=8)


@SETTINGS
@given(
    stock=st.lists(st.integers(0, 10), min_size=EURO_VARIANTS, max_size=EURO_VARIANTS),
    user_lines=st.dictionaries(st.integers(0, EURO_VARIANTS - 1), quantities, max_size=4),
    guest_lines=st.dictionaries(st.integers(0, EURO_VARIANTS), quantities, max_size=5),
    guest_in_dollars=st.booleans(),
)
async def test_merge_keeps_or_reports_every_guest_line(
    db_session: AsyncSession,
    catalog: Catalog,
    stock: list[int],
    user_lines: dict[int, int],
    guest_lines: dict[int, int],
    guest_in_dollars: bool,
) -> None:
    savepoint = await db_session.begin_nested()
    try:
        await _check_merge(db_session, catalog, stock, user_lines, guest_lines, guest_in_dollars)
    finally:
        await savepoint.rollback()


async def _check_merge(
    session: AsyncSession,
    catalog: Catalog,
    stock: list[int],
    user_lines: dict[int, int],
    guest_lines: dict[int, int],
    guest_in_dollars: bool,
) -> None:
    on_hand = dict(zip(catalog.euro, stock, strict=True))
    for variant_id, units in on_hand.items():
        await session.execute(
            update(InventoryLevel)
            .where(InventoryLevel.variant_id == variant_id)
            .values(on_hand=units, reserved=0)
        )
    # Index EURO_VARIANTS stands for the archived variant: the guest added it before.
    euro_and_archived = (*catalog.euro, catalog.archived)
    guest_wants = (
        {catalog.dollar: 1 + sum(guest_lines.values()) % 8}
        if guest_in_dollars
        else {euro_and_archived[i]: q for i, q in guest_lines.items()}
    )
    user_has = {catalog.euro[i]: q for i, q in user_lines.items()}

    # Lines are written straight to the tables: carts may hold more than is in stock now
    # (stock goes down after adding), and the merge must cope with that.
    user = await carts.user_cart(session, user_id=catalog.user_id)
    user.currency = "EUR" if user_has else None
    guest, token = await carts.create_guest_cart(session, now=datetime.now(UTC))
    guest.currency = "USD" if guest_in_dollars else ("EUR" if guest_wants else None)
    for cart, lines in ((user, user_has), (guest, guest_wants)):
        for variant_id, quantity in lines.items():
            session.add(
                CartItem(
                    cart_id=cart.id,
                    variant_id=variant_id,
                    quantity=quantity,
                    unit_price_seen=catalog.prices[variant_id],
                )
            )
    await session.flush()

    view = await carts.merge_guest_into_user(
        session, guest_token=token, user_id=catalog.user_id, now=datetime.now(UTC)
    )

    assert view.merge is not None
    merged = {line.variant_id: line for line in view.merge.merged}
    not_merged = {line.variant_id: line for line in view.merge.not_merged}
    # Every guest line is accounted for exactly once.
    assert set(merged) | set(not_merged) == set(guest_wants)
    assert not set(merged) & set(not_merged)

    final = {line.variant_id: line.quantity for group in view.vendors for line in group.lines}
    for variant_id, wanted in guest_wants.items():
        had = user_has.get(variant_id, 0)
        if variant_id == catalog.archived:
            assert not_merged[variant_id].reason == "not_available"
        elif variant_id == catalog.dollar and user_has:
            assert not_merged[variant_id].reason == "currency_mismatch"
        else:
            available = on_hand.get(variant_id, 10)  # the dollar variant keeps its stock of 10
            expected = min(had + wanted, max(had, available))
            assert final.get(variant_id, 0) == expected
            if expected > had:
                assert merged[variant_id].added == expected - had
                assert merged[variant_id].requested == wanted
            else:
                assert not_merged[variant_id].reason in ("out_of_stock", "insufficient_stock")
                assert not_merged[variant_id].available == available
    # The user's own lines are never lowered or lost.
    for variant_id, had in user_has.items():
        assert final[variant_id] >= had
        if variant_id not in guest_wants:
            assert final[variant_id] == had
    assert set(final) == set(user_has) | set(merged)
    # Merged lines all share the cart's one currency.
    currencies = {line.currency for group in view.vendors for line in group.lines}
    assert currencies == ({view.currency} if final else set())

    # The guest cart is gone; the token merges nothing a second time.
    assert await session.get(Cart, guest.id, populate_existing=True) is None
    with pytest.raises(carts.CartNotFound):
        await carts.merge_guest_into_user(
            session, guest_token=token, user_id=catalog.user_id, now=datetime.now(UTC)
        )
