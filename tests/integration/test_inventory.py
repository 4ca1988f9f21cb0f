"""Inventory: levels and availability, adjustments, reservations (reserve / release / commit,
idempotent by key, all or nothing, split over warehouses), the movement log that explains every
level, warehouses, and the vendor API with stock import and export.

Stock is created through the services (products are made with zero stock, then adjusted), so
the movement log explains every level from the start. The races are in test_inventory_race.py.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.catalog import inventory
from commerce.catalog.inventory import (
    InsufficientStock,
    InvalidAdjustment,
    InvalidImportFile,
    InvalidReservation,
    InvalidWarehouse,
    OutOfStock,
    ReservationCommitted,
    ReservationConflict,
    ReservationNotFound,
    ReservationReleased,
    StockStatus,
    VariantNotFound,
    WarehouseExists,
    WarehouseNotFound,
)
from models import (
    InventoryLevel,
    InventoryMovement,
    InventoryReservation,
    MovementReason,
    PlatformRole,
    ReservationStatus,
    SearchOutbox,
    Variant,
    Vendor,
    VendorMembership,
    VendorRole,
    Warehouse,
)
from tests.catalog_factories import VariantSpec, default_warehouse, make_product, make_vendor
from tests.factories import Account, sign_up

PROBLEM = "application/problem+json"


# --- helpers -----------------------------------------------------------------------------------


async def _variants(
    session: AsyncSession, vendor: Vendor, stock: dict[str, int]
) -> dict[str, uuid.UUID]:
    """A product with one variant per SKU; stock put in the default warehouse by the service."""
    product = await make_product(
        session, vendor=vendor, variants=[VariantSpec(sku, 1000, stock=0) for sku in stock]
    )
    found = await session.execute(
        select(Variant.sku, Variant.id).where(Variant.product_id == product.id)
    )
    ids = {sku: variant_id for sku, variant_id in found.all()}
    for sku, units in stock.items():
        if units:
            await inventory.adjust(
                session, variant_id=ids[sku], delta=units, reason=MovementReason.RESTOCK
            )
    return ids


async def _level(
    session: AsyncSession, variant_id: uuid.UUID, warehouse_id: uuid.UUID
) -> tuple[int, int]:
    """(on_hand, reserved) straight from the table."""
    row = (
        await session.execute(
            select(InventoryLevel.on_hand, InventoryLevel.reserved).where(
                InventoryLevel.variant_id == variant_id,
                InventoryLevel.warehouse_id == warehouse_id,
            )
        )
    ).one()
    return row.on_hand, row.reserved


async def _assert_explained(session: AsyncSession, *variant_ids: uuid.UUID) -> None:
    for variant_id in variant_ids:
        explanations = await inventory.explain(session, variant_id=variant_id)
        assert explanations, variant_id
        assert all(e.explained for e in explanations), explanations


async def _movement_count(session: AsyncSession, variant_id: uuid.UUID) -> int:
    return (
        await session.scalar(select(func.count()).where(InventoryMovement.variant_id == variant_id))
        or 0
    )


async def _warehouse(
    session: AsyncSession, vendor: Vendor, code: str, *, is_default: bool = False
) -> Warehouse:
    return await inventory.create_warehouse(
        session, vendor_id=vendor.id, code=code, name=code.title(), is_default=is_default
    )


# --- availability and adjustments --------------------------------------------------------------


async def test_availability_sums_warehouses_and_tells_low_stock(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    ids = await _variants(db_session, vendor, {"PLENTY": 20, "FEW": 3, "NONE": 0})
    second = await _warehouse(db_session, vendor, "second")
    await inventory.adjust(db_session, variant_id=ids["PLENTY"], warehouse_id=second.id, delta=5)
    await db_session.execute(
        update(InventoryLevel)
        .where(InventoryLevel.variant_id == ids["FEW"])
        .values(low_stock_threshold=5)
    )
    unknown = uuid.uuid4()

    found = await inventory.availability(db_session, variant_ids=[*ids.values(), unknown])

    plenty = found[ids["PLENTY"]]
    assert (plenty.on_hand, plenty.reserved, plenty.available) == (25, 0, 25)
    assert plenty.status == StockStatus.IN_STOCK
    assert found[ids["FEW"]].status == StockStatus.LOW_STOCK
    assert found[ids["NONE"]].status == StockStatus.OUT_OF_STOCK
    assert (found[unknown].available, found[unknown].status) == (0, StockStatus.OUT_OF_STOCK)


async def test_adjust_and_count_record_movements_and_refuse_going_below_reserved(
    db_session: AsyncSession,
) -> None:
    vendor = await make_vendor(db_session)
    ids = await _variants(db_session, vendor, {"A": 10})
    a = ids["A"]
    main = await default_warehouse(db_session, vendor)

    level = await inventory.adjust(db_session, variant_id=a, delta=-3, note="broken")
    assert (level.on_hand, level.available, level.warehouse_code) == (7, 7, "main")
    await inventory.reserve(db_session, reservation_key="order-1", lines=[(a, 5)])

    with pytest.raises(InsufficientStock):
        await inventory.adjust(db_session, variant_id=a, delta=-3)  # 7 - 3 < 5 reserved
    with pytest.raises(InsufficientStock):
        await inventory.set_on_hand(db_session, variant_id=a, on_hand=4)
    with pytest.raises(InvalidAdjustment):
        await inventory.set_on_hand(db_session, variant_id=a, on_hand=-1)
    with pytest.raises(InvalidAdjustment):
        await inventory.adjust(db_session, variant_id=a, delta=0)
    with pytest.raises(InvalidAdjustment):
        await inventory.adjust(db_session, variant_id=a, delta=1, reason=MovementReason.SALE)

    before = await _movement_count(db_session, a)
    counted = await inventory.set_on_hand(
        db_session, variant_id=a, on_hand=12, reason=MovementReason.CORRECTION
    )
    assert (counted.on_hand, counted.reserved, counted.available) == (12, 5, 7)
    again = await inventory.set_on_hand(db_session, variant_id=a, on_hand=12)
    assert again.on_hand == 12
    assert await _movement_count(db_session, a) == before + 1  # the repeated count changed nothing
    last = await db_session.scalar(
        select(InventoryMovement)
        .where(InventoryMovement.variant_id == a)
        .order_by(InventoryMovement.id.desc())
        .limit(1)
    )
    assert last is not None
    assert (last.on_hand_delta, last.reserved_delta, last.reason) == (
        5,
        0,
        MovementReason.CORRECTION,
    )
    assert await _level(db_session, a, main.id) == (12, 5)
    await _assert_explained(db_session, a)


async def test_a_change_is_scoped_to_the_vendor_and_its_warehouses(
    db_session: AsyncSession,
) -> None:
    vendor = await make_vendor(db_session)
    other = await make_vendor(db_session)
    ids = await _variants(db_session, vendor, {"A": 1})
    theirs = await default_warehouse(db_session, other)

    with pytest.raises(VariantNotFound):
        await inventory.adjust(db_session, variant_id=ids["A"], delta=1, vendor_id=other.id)
    with pytest.raises(WarehouseNotFound):
        await inventory.adjust(db_session, variant_id=ids["A"], delta=1, warehouse_id=theirs.id)
    with pytest.raises(VariantNotFound):
        await inventory.adjust(db_session, variant_id=uuid.uuid4(), delta=1)


async def test_stock_changes_queue_the_product_for_reindexing(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    ids = await _variants(db_session, vendor, {"A": 0})
    product_id = await db_session.scalar(select(Variant.product_id).where(Variant.id == ids["A"]))

    async def queued() -> int:
        return (
            await db_session.scalar(
                select(func.count()).where(SearchOutbox.product_id == product_id)
            )
            or 0
        )

    start = await queued()
    await inventory.adjust(db_session, variant_id=ids["A"], delta=2)
    assert await queued() == start + 1
    await inventory.reserve(db_session, reservation_key="k", lines=[(ids["A"], 2)])
    assert await queued() == start + 2
    await inventory.release(db_session, reservation_key="k", now=datetime.now(UTC))
    assert await queued() == start + 3


# --- reservations ------------------------------------------------------------------------------


async def test_reserve_commit_happy_path_and_idempotency(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    ids = await _variants(db_session, vendor, {"A": 10, "B": 4})
    a, b = ids["A"], ids["B"]
    main = await default_warehouse(db_session, vendor)

    held = await inventory.reserve(db_session, reservation_key="order:1", lines=[(a, 3), (b, 4)])
    assert held.changed
    assert held.status == ReservationStatus.RESERVED
    assert held.quantities == {a: 3, b: 4}
    assert {line.warehouse_id for line in held.lines} == {main.id}
    found = await inventory.availability(db_session, variant_ids=[a, b])
    assert (found[a].available, found[b].available) == (7, 0)

    # A retry, lines in another order and split differently: same reservation, nothing moves.
    moves = await _movement_count(db_session, a)
    retry = await inventory.reserve(
        db_session, reservation_key="order:1", lines=[(b, 4), (a, 1), (a, 2)]
    )
    assert not retry.changed
    assert retry.quantities == held.quantities
    assert await _movement_count(db_session, a) == moves
    with pytest.raises(ReservationConflict):
        await inventory.reserve(db_session, reservation_key="order:1", lines=[(a, 4), (b, 4)])

    sold = await inventory.commit(db_session, reservation_key="order:1", now=datetime.now(UTC))
    assert sold.changed
    assert sold.status == ReservationStatus.COMMITTED
    assert await _level(db_session, a, main.id) == (7, 0)
    assert await _level(db_session, b, main.id) == (0, 0)
    again = await inventory.commit(db_session, reservation_key="order:1", now=datetime.now(UTC))
    assert not again.changed
    assert again.status == ReservationStatus.COMMITTED
    assert await _level(db_session, a, main.id) == (7, 0)
    sales = await db_session.scalars(
        select(InventoryMovement.reason).where(
            InventoryMovement.reservation_key == "order:1", InventoryMovement.variant_id == a
        )
    )
    assert sorted(sales.all()) == [MovementReason.RESERVATION, MovementReason.SALE]

    with pytest.raises(ReservationCommitted):
        await inventory.release(db_session, reservation_key="order:1", now=datetime.now(UTC))
    with pytest.raises(ReservationNotFound):
        await inventory.commit(db_session, reservation_key="never-reserved", now=datetime.now(UTC))
    await _assert_explained(db_session, a, b)


async def test_release_returns_units_and_is_idempotent(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    ids = await _variants(db_session, vendor, {"A": 5})
    a = ids["A"]

    await inventory.reserve(db_session, reservation_key="order:2", lines=[(a, 5)])
    assert (await inventory.availability(db_session, variant_ids=[a]))[a].available == 0

    released = await inventory.release(db_session, reservation_key="order:2", now=datetime.now(UTC))
    assert released.changed
    assert released.status == ReservationStatus.RELEASED
    assert (await inventory.availability(db_session, variant_ids=[a]))[a].available == 5
    twice = await inventory.release(db_session, reservation_key="order:2", now=datetime.now(UTC))
    assert not twice.changed
    assert twice.status == ReservationStatus.RELEASED
    assert (await inventory.availability(db_session, variant_ids=[a]))[a].available == 5

    # The compensation may run for a reserve that never happened.
    nothing = await inventory.release(
        db_session, reservation_key="order:never", now=datetime.now(UTC)
    )
    assert (nothing.status, nothing.lines, nothing.changed) == (None, (), False)

    # A retried reserve after the release does not hold the units again ...
    late = await inventory.reserve(db_session, reservation_key="order:2", lines=[(a, 5)])
    assert not late.changed
    assert late.status == ReservationStatus.RELEASED
    assert (await inventory.availability(db_session, variant_ids=[a]))[a].available == 5
    # ... and a released reservation cannot be sold.
    with pytest.raises(ReservationReleased):
        await inventory.commit(db_session, reservation_key="order:2", now=datetime.now(UTC))
    await _assert_explained(db_session, a)


async def test_reserve_is_all_or_nothing_even_when_the_caller_catches(
    db_session: AsyncSession,
) -> None:
    vendor = await make_vendor(db_session)
    ids = await _variants(db_session, vendor, {"A": 10, "B": 2, "C": 1})
    a, b, c = ids["A"], ids["B"], ids["C"]
    unknown = uuid.uuid4()

    with pytest.raises(OutOfStock) as raised:
        await inventory.reserve(
            db_session, reservation_key="order:3", lines=[(a, 4), (b, 3), (c, 1), (unknown, 1)]
        )
    shortages = {s.variant_id: (s.requested, s.available) for s in raised.value.shortages}
    assert shortages == {b: (3, 2), unknown: (1, 0)}
    assert raised.value.status == 409
    assert raised.value.code == "out_of_stock"
    assert {s["variant_id"] for s in raised.value.extra["shortages"]} == {str(b), str(unknown)}

    # Caught, and the session goes on: nothing was held, not even the lines that fitted.
    found = await inventory.availability(db_session, variant_ids=[a, b, c])
    assert [found[v].reserved for v in (a, b, c)] == [0, 0, 0]
    assert (
        await db_session.scalar(
            select(func.count()).where(InventoryReservation.reservation_key == "order:3")
        )
        == 0
    )
    # The key is still free for an order that fits.
    held = await inventory.reserve(db_session, reservation_key="order:3", lines=[(a, 4), (b, 2)])
    assert held.quantities == {a: 4, b: 2}
    await _assert_explained(db_session, a, b, c)


async def test_a_reservation_splits_over_warehouses_default_first_then_by_code(
    db_session: AsyncSession,
) -> None:
    vendor = await make_vendor(db_session)
    ids = await _variants(db_session, vendor, {"A": 2})
    a = ids["A"]
    main = await default_warehouse(db_session, vendor)
    zulu = await _warehouse(db_session, vendor, "zulu")
    alpha = await _warehouse(db_session, vendor, "alpha")
    await inventory.adjust(db_session, variant_id=a, warehouse_id=zulu.id, delta=5)
    await inventory.adjust(db_session, variant_id=a, warehouse_id=alpha.id, delta=5)

    held = await inventory.reserve(db_session, reservation_key="order:4", lines=[(a, 8)])

    by_warehouse = {line.warehouse_id: line.quantity for line in held.lines}
    assert by_warehouse == {main.id: 2, alpha.id: 5, zulu.id: 1}
    assert await _level(db_session, a, zulu.id) == (5, 1)
    with pytest.raises(OutOfStock):
        await inventory.reserve(db_session, reservation_key="order:5", lines=[(a, 5)])

    await inventory.release(db_session, reservation_key="order:4", now=datetime.now(UTC))
    assert await _level(db_session, a, alpha.id) == (5, 0)
    assert await _level(db_session, a, zulu.id) == (5, 0)

    # A new default is drawn from first; the old one is just another warehouse by code.
    await inventory.set_default_warehouse(db_session, vendor_id=vendor.id, warehouse_id=zulu.id)
    again = await inventory.reserve(db_session, reservation_key="order:6", lines=[(a, 11)])
    assert {line.warehouse_id: line.quantity for line in again.lines} == {
        zulu.id: 5,
        alpha.id: 5,
        main.id: 1,
    }

    await inventory.commit(db_session, reservation_key="order:6", now=datetime.now(UTC))
    assert await _level(db_session, a, zulu.id) == (0, 0)
    assert await _level(db_session, a, alpha.id) == (0, 0)
    assert await _level(db_session, a, main.id) == (1, 0)
    await _assert_explained(db_session, a)


async def test_bad_reservation_requests_are_refused(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    a = (await _variants(db_session, vendor, {"A": 3}))["A"]
    for key, lines in [
        ("k", []),
        ("k", [(a, 0)]),
        ("k", [(a, -1)]),
        ("", [(a, 1)]),
        ("x" * 201, [(a, 1)]),
    ]:
        with pytest.raises(InvalidReservation):
            await inventory.reserve(db_session, reservation_key=key, lines=lines)


async def test_the_movement_log_explains_every_level_after_a_day_of_trading(
    db_session: AsyncSession,
) -> None:
    vendor = await make_vendor(db_session)
    ids = await _variants(db_session, vendor, {"A": 6, "B": 3})
    a, b = ids["A"], ids["B"]
    annex = await _warehouse(db_session, vendor, "annex")
    await inventory.adjust(db_session, variant_id=a, warehouse_id=annex.id, delta=4)

    await inventory.reserve(db_session, reservation_key="o1", lines=[(a, 8), (b, 1)])  # split
    await inventory.reserve(db_session, reservation_key="o2", lines=[(b, 2)])
    await inventory.commit(db_session, reservation_key="o1", now=datetime.now(UTC))
    await inventory.release(db_session, reservation_key="o2", now=datetime.now(UTC))
    await inventory.restock_returned(db_session, variant_id=a, quantity=1, return_key="rma-1")
    await inventory.restock_returned(db_session, variant_id=a, quantity=1, return_key="rma-1")
    await inventory.set_on_hand(db_session, variant_id=b, on_hand=9)
    await inventory.reserve(db_session, reservation_key="o3", lines=[(a, 1), (b, 9)])
    with pytest.raises(OutOfStock):
        await inventory.reserve(db_session, reservation_key="o4", lines=[(a, 3)])
    await inventory.import_stock(
        db_session,
        vendor_id=vendor.id,
        rows=[{"sku": "A", "warehouse": "annex", "on_hand": "7"}],
        actor_user_id=None,
    )

    found = await inventory.availability(db_session, variant_ids=[a, b])
    # A: main 6-6 sold +1 returned = 1 (1 reserved by o3); annex 4-2 sold, counted to 7.
    assert (found[a].on_hand, found[a].reserved) == (8, 1)
    assert (found[b].on_hand, found[b].reserved) == (9, 9)
    await _assert_explained(db_session, a, b)
    reasons = set(
        (
            await db_session.scalars(
                select(InventoryMovement.reason).where(InventoryMovement.variant_id.in_([a, b]))
            )
        ).all()
    )
    assert reasons == {
        MovementReason.RESTOCK,
        MovementReason.ADJUSTMENT,
        MovementReason.RESERVATION,
        MovementReason.SALE,
        MovementReason.RELEASE,
        MovementReason.RETURN,
        MovementReason.IMPORT,
    }


async def test_explain_catches_stock_the_log_does_not_account_for(
    db_session: AsyncSession,
) -> None:
    """Levels written straight to the table, as the catalog factories do, have no movement:
    explain() must say so (or the invariant checks above would prove nothing)."""
    vendor = await make_vendor(db_session)
    product = await make_product(db_session, vendor=vendor, variants=[VariantSpec("F", 100, 4)])
    variant_id = await db_session.scalar(select(Variant.id).where(Variant.product_id == product.id))
    assert variant_id is not None
    [level] = await inventory.explain(db_session, variant_id=variant_id)
    assert (level.on_hand, level.on_hand_from_movements, level.explained) == (4, 0, False)

    await inventory.adjust(db_session, variant_id=variant_id, delta=1)
    await inventory.reserve(db_session, reservation_key="f", lines=[(variant_id, 2)])
    [level] = await inventory.explain(db_session, variant_id=variant_id)
    assert (level.on_hand, level.on_hand_from_movements) == (5, 1)
    assert level.reserved == level.reserved_from_movements == level.reserved_by_reservations == 2
    assert not level.explained


async def test_restock_of_a_return_happens_once_per_key(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    a = (await _variants(db_session, vendor, {"A": 1}))["A"]
    first = await inventory.restock_returned(db_session, variant_id=a, quantity=2, return_key="r")
    retry = await inventory.restock_returned(db_session, variant_id=a, quantity=2, return_key="r")
    assert first.on_hand == retry.on_hand == 3
    other = await inventory.restock_returned(db_session, variant_id=a, quantity=1, return_key="s")
    assert other.on_hand == 4
    with pytest.raises(InvalidAdjustment):
        await inventory.restock_returned(db_session, variant_id=a, quantity=0)
    await _assert_explained(db_session, a)


# --- warehouses --------------------------------------------------------------------------------


async def test_warehouses_codes_are_unique_and_one_is_the_default(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    created = await inventory.create_warehouse(
        db_session, vendor_id=vendor.id, code="  Berlin-1 ", name="Berlin"
    )
    assert (created.code, created.is_default) == ("berlin-1", False)
    with pytest.raises(WarehouseExists):
        await inventory.create_warehouse(db_session, vendor_id=vendor.id, code="BERLIN-1", name="B")
    for bad in ("", "-x", "a b", "x" * 41, "ünï"):
        with pytest.raises(InvalidWarehouse):
            await inventory.create_warehouse(db_session, vendor_id=vendor.id, code=bad, name="X")

    paris = await inventory.create_warehouse(
        db_session, vendor_id=vendor.id, code="paris", name="Paris", is_default=True
    )
    listed = await inventory.list_warehouses(db_session, vendor_id=vendor.id)
    assert [(w.code, w.is_default) for w in listed] == [
        ("paris", True),
        ("berlin-1", False),
        ("main", False),
    ]
    main = next(w for w in listed if w.code == "main")
    await inventory.set_default_warehouse(db_session, vendor_id=vendor.id, warehouse_id=main.id)
    defaults = await db_session.scalars(
        select(Warehouse.code).where(Warehouse.vendor_id == vendor.id, Warehouse.is_default)
    )
    assert defaults.all() == ["main"]
    assert paris.is_default is False
    other = await make_vendor(db_session)
    with pytest.raises(WarehouseNotFound):
        await inventory.set_default_warehouse(db_session, vendor_id=other.id, warehouse_id=main.id)


# --- import and export (service) ---------------------------------------------------------------


def test_csv_and_json_parsing() -> None:
    rows = inventory.parse_stock_csv(b"\xef\xbb\xbfSKU, Warehouse ,on_hand\nA,,3\n\nB,east\n")
    assert rows == [
        {"sku": "A", "warehouse": "", "on_hand": "3"},
        {"sku": "B", "warehouse": "east"},
    ]
    for unreadable in (b"", b"sku,warehouse\nA,main", b"\xff\xfe\x00", b'sku,on_hand\n"A,1\n'):
        with pytest.raises(InvalidImportFile):
            inventory.parse_stock_csv(unreadable)
    assert inventory.parse_stock_json(b'[{"sku": "A", "on_hand": 1}, 5]') == [
        {"sku": "A", "on_hand": 1},
        5,
    ]
    for unreadable in (b"{not json", b'{"sku": "A"}', b"null", b'"rows"', b"\xff"):
        with pytest.raises(InvalidImportFile):
            inventory.parse_stock_json(unreadable)


async def test_import_applies_good_rows_and_reports_bad_ones(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    ids = await _variants(db_session, vendor, {"A": 5, "B": 5, "C": 5})
    east = await _warehouse(db_session, vendor, "east")
    main = await default_warehouse(db_session, vendor)
    await inventory.reserve(db_session, reservation_key="held", lines=[(ids["C"], 4)])
    other_vendor = await make_vendor(db_session)
    await _variants(db_session, other_vendor, {"THEIRS": 5})

    report = await inventory.import_stock(
        db_session,
        vendor_id=vendor.id,
        actor_user_id=None,
        rows=[
            {"sku": "A", "on_hand": "8"},  # 1 ok, default warehouse
            {"sku": "B", "warehouse": "EAST", "on_hand": 2},  # 2 ok, new level
            {"sku": "NOPE", "on_hand": 1},  # 3 unknown sku
            {"sku": "THEIRS", "on_hand": 1},  # 4 another vendor's sku
            {"sku": "A", "on_hand": "-1"},  # 5 negative
            {"sku": "A", "on_hand": "lots"},  # 6 not a number
            {"sku": "A", "on_hand": 2.5},  # 7 not whole
            {"sku": "A", "warehouse": "west", "on_hand": 1},  # 8 unknown warehouse
            {"sku": "C", "on_hand": 3},  # 9 below reserved
            "not a row",  # 10
            {"on_hand": 3},  # 11 no sku
            {"sku": "B", "on_hand": 5},  # 12 ok, unchanged
            {"sku": "A", "on_hand": 9},  # 13 ok, the same level again: last one wins
        ],
    )

    outcome = {row.row: (row.status, row.code) for row in report.rows}
    assert outcome == {
        1: ("ok", None),
        2: ("ok", None),
        3: ("error", "unknown_sku"),
        4: ("error", "unknown_sku"),
        5: ("error", "invalid_quantity"),
        6: ("error", "invalid_quantity"),
        7: ("error", "invalid_quantity"),
        8: ("error", "unknown_warehouse"),
        9: ("error", "insufficient_stock"),
        10: ("error", "invalid_row"),
        11: ("error", "invalid_row"),
        12: ("ok", None),
        13: ("ok", None),
    }
    assert (report.total, report.applied, report.failed) == (13, 4, 9)
    assert [row.row for row in report.rows] == list(range(1, 14))
    first = report.rows[0]
    assert (first.sku, first.warehouse, first.previous_on_hand, first.on_hand) == (
        "A",
        "main",
        5,
        8,
    )
    assert (report.rows[12].previous_on_hand, report.rows[12].on_hand) == (8, 9)
    assert all(row.message for row in report.rows if row.status == "error")

    assert await _level(db_session, ids["A"], main.id) == (9, 0)
    assert await _level(db_session, ids["B"], east.id) == (2, 0)
    assert await _level(db_session, ids["B"], main.id) == (5, 0)
    assert await _level(db_session, ids["C"], main.id) == (5, 4)
    await _assert_explained(db_session, *ids.values())
    imported = await db_session.scalars(
        select(InventoryMovement.note).where(
            InventoryMovement.variant_id.in_(list(ids.values())),
            InventoryMovement.reason == MovementReason.IMPORT,
        )
    )
    assert sorted(imported.all()) == ["import row 1", "import row 13", "import row 2"]


# --- the API -----------------------------------------------------------------------------------


class Shop:
    """A vendor with an owner, a manager and a staff member, and some stock."""

    def __init__(self, vendor: Vendor, owner: Account, manager: Account, staff: Account) -> None:
        self.vendor = vendor
        self.owner = owner
        self.manager = manager
        self.staff = staff
        self.variants: dict[str, uuid.UUID] = {}

    def url(self, path: str = "") -> str:
        return f"/vendors/{self.vendor.id}{path}"


async def _member(
    session: AsyncSession, vendor: Vendor, account: Account, role: VendorRole
) -> None:
    session.add(VendorMembership(vendor_id=vendor.id, user_id=uuid.UUID(account.id), role=role))
    await session.flush()


@pytest.fixture
async def shop(client: httpx.AsyncClient, db_session: AsyncSession) -> Shop:
    owner = await sign_up(client, db_session)
    manager = await sign_up(client, db_session)
    staff = await sign_up(client, db_session)
    vendor = await make_vendor(db_session, owner_id=uuid.UUID(owner.id))
    await _member(db_session, vendor, manager, VendorRole.MANAGER)
    await _member(db_session, vendor, staff, VendorRole.STAFF)
    found = Shop(vendor, owner, manager, staff)
    found.variants = await _variants(db_session, vendor, {"MUG-RED": 10, "MUG-BLUE": 0})
    return found


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code, body
    return body


async def test_staff_read_managers_adjust(client: httpx.AsyncClient, shop: Shop) -> None:
    red = shop.variants["MUG-RED"]
    listed = await client.get(shop.url("/inventory"), headers=shop.staff.headers)
    assert listed.status_code == 200, listed.text
    rows = {row["sku"]: row for row in listed.json()["items"]}
    assert rows["MUG-RED"]["on_hand"] == 10
    assert rows["MUG-RED"]["available"] == 10
    assert rows["MUG-RED"]["status"] == "in_stock"
    assert rows["MUG-RED"]["warehouse_code"] == "main"
    assert rows["MUG-BLUE"]["status"] == "out_of_stock"

    body = {"variant_id": str(red), "delta": -2, "note": "dropped"}
    _problem(
        await client.post(
            shop.url("/inventory/adjustments"), json=body, headers=shop.staff.headers
        ),
        403,
        "forbidden",
    )
    adjusted = await client.post(
        shop.url("/inventory/adjustments"), json=body, headers=shop.manager.headers
    )
    assert adjusted.status_code == 200, adjusted.text
    assert (adjusted.json()["on_hand"], adjusted.json()["available"]) == (8, 8)
    counted = await client.post(
        shop.url("/inventory/adjustments"),
        json={"variant_id": str(red), "on_hand": 11, "reason": "correction"},
        headers=shop.owner.headers,
    )
    assert counted.json()["on_hand"] == 11

    moves = await client.get(
        shop.url("/inventory/movements"),
        params={"variant_id": str(red), "limit": 2},
        headers=shop.staff.headers,
    )
    assert moves.status_code == 200, moves.text
    newest, previous = moves.json()["items"]
    assert (newest["on_hand_delta"], newest["reason"]) == (3, "correction")
    assert newest["actor_user_id"] == shop.owner.id
    assert (previous["on_hand_delta"], previous["note"]) == (-2, "dropped")
    assert previous["actor_user_id"] == shop.manager.id
    older = await client.get(
        shop.url("/inventory/movements"),
        params={"variant_id": str(red), "cursor": moves.json()["next_cursor"]},
        headers=shop.staff.headers,
    )
    assert [m["reason"] for m in older.json()["items"]] == ["restock"]
    assert older.json()["next_cursor"] is None


async def test_bad_adjustments_are_problems(client: httpx.AsyncClient, shop: Shop) -> None:
    red = str(shop.variants["MUG-RED"])
    url, headers = shop.url("/inventory/adjustments"), shop.manager.headers
    for body in (
        {"variant_id": red},
        {"variant_id": red, "delta": 1, "on_hand": 1},
        {"variant_id": red, "on_hand": -1},
        {"variant_id": red, "delta": 1, "reason": "sale"},
    ):
        _problem(await client.post(url, json=body, headers=headers), 422, "validation_error")
    _problem(
        await client.post(url, json={"variant_id": red, "delta": -11}, headers=headers),
        409,
        "insufficient_stock",
    )
    _problem(
        await client.post(url, json={"variant_id": red, "delta": 0}, headers=headers),
        422,
        "invalid_adjustment",
    )


async def test_another_vendor_sees_nothing(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    stranger = await sign_up(client, db_session)
    their_vendor = await make_vendor(db_session, owner_id=uuid.UUID(stranger.id))
    red = str(shop.variants["MUG-RED"])

    # Our back office does not exist for them ...
    for path in ("/inventory", "/inventory/movements", "/warehouses", "/inventory/export"):
        _problem(await client.get(shop.url(path), headers=stranger.headers), 404, "not_found")
    _problem(
        await client.post(
            shop.url("/inventory/adjustments"),
            json={"variant_id": red, "delta": 5},
            headers=stranger.headers,
        ),
        404,
        "not_found",
    )
    # ... and our variants do not exist in theirs (no IDOR through their own vendor id).
    theirs = f"/vendors/{their_vendor.id}"
    _problem(
        await client.post(
            f"{theirs}/inventory/adjustments",
            json={"variant_id": red, "delta": 5},
            headers=stranger.headers,
        ),
        404,
        "variant_not_found",
    )
    _problem(
        await client.get(
            f"{theirs}/inventory/movements", params={"variant_id": red}, headers=stranger.headers
        ),
        404,
        "variant_not_found",
    )
    main = await default_warehouse(db_session, shop.vendor)
    _problem(
        await client.post(f"{theirs}/warehouses/{main.id}/default", headers=stranger.headers),
        404,
        "warehouse_not_found",
    )
    listed = await client.get(f"{theirs}/inventory", headers=stranger.headers)
    assert listed.json() == {"items": [], "next_cursor": None}
    assert (await inventory.availability(db_session, variant_ids=[uuid.UUID(red)]))[
        uuid.UUID(red)
    ].on_hand == 10


async def test_an_admin_can_act_for_any_vendor(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    admin = await sign_up(client, db_session, role=PlatformRole.ADMIN)
    response = await client.post(
        shop.url("/inventory/adjustments"),
        json={"variant_id": str(shop.variants["MUG-BLUE"]), "delta": 4, "reason": "restock"},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["on_hand"] == 4
    _problem(
        await client.get(f"/vendors/{uuid.uuid4()}/inventory", headers=admin.headers),
        404,
        "not_found",
    )


async def test_warehouses_over_the_api(client: httpx.AsyncClient, shop: Shop) -> None:
    url = shop.url("/warehouses")
    _problem(
        await client.post(url, json={"code": "east", "name": "East"}, headers=shop.staff.headers),
        403,
        "forbidden",
    )
    created = await client.post(
        url, json={"code": "East", "name": "East"}, headers=shop.manager.headers
    )
    assert created.status_code == 201, created.text
    assert (created.json()["code"], created.json()["is_default"]) == ("east", False)
    _problem(
        await client.post(url, json={"code": "east", "name": "E"}, headers=shop.manager.headers),
        409,
        "warehouse_exists",
    )
    _problem(
        await client.post(url, json={"code": "a b", "name": "E"}, headers=shop.manager.headers),
        422,
        "invalid_warehouse",
    )
    default = await client.post(
        f"{url}/{created.json()['id']}/default", headers=shop.manager.headers
    )
    assert default.status_code == 200, default.text
    assert default.json()["is_default"] is True
    listed = await client.get(url, headers=shop.staff.headers)
    assert [(w["code"], w["is_default"]) for w in listed.json()["items"]] == [
        ("east", True),
        ("main", False),
    ]
    _problem(
        await client.post(f"{url}/{uuid.uuid4()}/default", headers=shop.manager.headers),
        404,
        "warehouse_not_found",
    )


async def test_import_over_the_api_reports_per_row(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    url = shop.url("/inventory/import")
    csv_file = (
        "sku,warehouse,on_hand\n"
        "MUG-RED,main,7\n"
        "NO-SUCH-SKU,,3\n"
        "MUG-BLUE,,-4\n"
        "MUG-BLUE,,four\n"
        "MUG-BLUE,,6\n"
    )
    _problem(
        await client.post(
            url, content=csv_file, headers={**shop.staff.headers, "content-type": "text/csv"}
        ),
        403,
        "forbidden",
    )
    response = await client.post(
        url,
        content=csv_file.encode(),
        headers={**shop.manager.headers, "content-type": "text/csv; charset=utf-8"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["total"], report["applied"], report["failed"]) == (5, 2, 3)
    assert [(r["row"], r["sku"], r["status"], r["code"]) for r in report["rows"]] == [
        (1, "MUG-RED", "ok", None),
        (2, "NO-SUCH-SKU", "error", "unknown_sku"),
        (3, "MUG-BLUE", "error", "invalid_quantity"),
        (4, "MUG-BLUE", "error", "invalid_quantity"),
        (5, "MUG-BLUE", "ok", None),
    ]
    assert report["rows"][0]["previous_on_hand"] == 10
    found = await inventory.availability(db_session, variant_ids=shop.variants.values())
    assert found[shop.variants["MUG-RED"]].on_hand == 7
    assert found[shop.variants["MUG-BLUE"]].on_hand == 6

    as_json = await client.post(
        url,
        content=json.dumps([{"sku": "MUG-RED", "on_hand": 1}, {"sku": "MUG-RED"}]),
        headers={**shop.manager.headers, "content-type": "application/json"},
    )
    assert as_json.status_code == 200, as_json.text
    assert [r["status"] for r in as_json.json()["rows"]] == ["ok", "error"]
    await _assert_explained(db_session, *shop.variants.values())


async def test_unreadable_or_oversized_import_files_are_refused(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    url, headers = shop.url("/inventory/import"), shop.manager.headers
    csv_headers = {**headers, "content-type": "text/csv"}
    json_headers = {**headers, "content-type": "application/json"}
    _problem(
        await client.post(url, content=b"{not json", headers=json_headers),
        422,
        "invalid_import_file",
    )
    _problem(
        await client.post(url, content=b'{"sku": 1}', headers=json_headers),
        422,
        "invalid_import_file",
    )
    _problem(
        await client.post(url, content=b"product,qty\nA,1\n", headers=csv_headers),
        422,
        "invalid_import_file",
    )
    _problem(
        await client.post(url, content=b"\xff\xfe", headers=csv_headers), 422, "invalid_import_file"
    )
    _problem(
        await client.post(
            url, content=b"sku,on_hand\n", headers={**headers, "content-type": "text/plain"}
        ),
        415,
        "unsupported_media_type",
    )
    many = "sku,on_hand\n" + "MUG-RED,1\n" * (inventory.MAX_IMPORT_ROWS + 1)
    _problem(await client.post(url, content=many, headers=csv_headers), 413, "import_too_large")
    huge = b"sku,on_hand\n" + b"x" * inventory.MAX_IMPORT_BYTES
    _problem(await client.post(url, content=huge, headers=csv_headers), 413, "import_too_large")
    # An empty array is a readable file with nothing in it.
    empty = await client.post(url, content=b"[]", headers=json_headers)
    assert empty.status_code == 200
    assert empty.json()["total"] == 0


async def test_export_round_trips_through_import(
    client: httpx.AsyncClient, db_session: AsyncSession, shop: Shop
) -> None:
    east = await _warehouse(db_session, shop.vendor, "east")
    await inventory.adjust(
        db_session, variant_id=shop.variants["MUG-BLUE"], warehouse_id=east.id, delta=3
    )
    await inventory.reserve(db_session, reservation_key="o", lines=[(shop.variants["MUG-RED"], 4)])

    exported = await client.get(shop.url("/inventory/export"), headers=shop.staff.headers)
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.text.splitlines() == [
        "sku,warehouse,on_hand,reserved,available",
        "MUG-BLUE,east,3,0,3",
        "MUG-BLUE,main,0,0,0",
        "MUG-RED,main,10,4,6",
    ]
    as_json = await client.get(
        shop.url("/inventory/export"), params={"format": "json"}, headers=shop.staff.headers
    )
    assert as_json.json()[2] == {
        "sku": "MUG-RED",
        "warehouse": "main",
        "on_hand": 10,
        "reserved": 4,
        "available": 6,
    }

    # The export imported back changes nothing ...
    moves = await db_session.scalar(select(func.count()).select_from(InventoryMovement))
    back = await client.post(
        shop.url("/inventory/import"),
        content=exported.content,
        headers={**shop.manager.headers, "content-type": "text/csv"},
    )
    assert back.json()["applied"] == 3
    assert back.json()["failed"] == 0
    assert await db_session.scalar(select(func.count()).select_from(InventoryMovement)) == moves
    # ... and an edited one is exactly what the next export shows.
    edited = exported.text.replace("MUG-BLUE,east,3,0,3", "MUG-BLUE,east,12,0,3")
    edited = edited.replace("MUG-RED,main,10,4,6", "MUG-RED,main,5,4,6")
    changed = await client.post(
        shop.url("/inventory/import"),
        content=edited,
        headers={**shop.manager.headers, "content-type": "text/csv"},
    )
    assert changed.json()["applied"] == 3
    again = await client.get(shop.url("/inventory/export"), headers=shop.staff.headers)
    assert again.text.splitlines()[1:] == [
        "MUG-BLUE,east,12,0,12",
        "MUG-BLUE,main,0,0,0",
        "MUG-RED,main,5,4,1",
    ]
    json_back = await client.post(
        shop.url("/inventory/import"),
        content=json.dumps(as_json.json()),
        headers={**shop.manager.headers, "content-type": "application/json"},
    )
    assert json_back.json()["applied"] == 3
    assert (await client.get(shop.url("/inventory/export"), headers=shop.staff.headers)).text == (
        exported.text
    )
    await _assert_explained(db_session, *shop.variants.values())


async def test_managers_set_the_low_stock_threshold(
    client: httpx.AsyncClient, shop: Shop, db_session: AsyncSession
) -> None:
    red = str(shop.variants["MUG-RED"])
    url = shop.url("/inventory/threshold")
    _problem(
        await client.put(url, headers=shop.staff.headers, json={"variant_id": red, "threshold": 5}),
        403,
        "forbidden",
    )
    _problem(
        await client.put(
            url, headers=shop.manager.headers, json={"variant_id": red, "threshold": -1}
        ),
        422,
        "validation_error",
    )
    stranger = await sign_up(client, db_session)
    _problem(
        await client.put(
            f"/vendors/{uuid.uuid4()}/inventory/threshold",
            headers=stranger.headers,
            json={"variant_id": red, "threshold": 5},
        ),
        404,
        "not_found",
    )
    # 10 available: a threshold of 10 makes it "low", 9 does not.
    low = await client.put(
        url, headers=shop.manager.headers, json={"variant_id": red, "threshold": 10}
    )
    assert low.status_code == 200, low.text
    assert (low.json()["low_stock_threshold"], low.json()["status"]) == (10, "low_stock")
    fine = await client.put(
        url, headers=shop.manager.headers, json={"variant_id": red, "threshold": 9}
    )
    assert fine.json()["status"] == "in_stock"
    availability = await inventory.availability(db_session, variant_ids=[uuid.UUID(red)])
    assert availability[uuid.UUID(red)].low_stock_threshold == 9
