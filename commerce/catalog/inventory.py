"""Stock: how many units of each variant are where, and the reservations checkout holds on them.

Every change to a level goes through this module and writes an ``InventoryMovement`` in the same
transaction, so for every (variant, warehouse) the movement deltas sum to ``on_hand`` and
``reserved`` (:func:`explain` shows it). A level is created at zero by the first change that
needs it; its initial stock is that change's movement.

Concurrency. Levels are changed only under row locks (``SELECT ... FOR UPDATE``) taken in one
global order, (variant_id, warehouse_id), in a single statement: two transactions that touch
the same levels queue instead of deadlocking, whatever order their lines came in. The database
check ``reserved <= on_hand`` is the last line of defence against overselling. Operations on one
reservation key are serialised by a transaction-level advisory lock on the key, so a retried
activity that overlaps the original sees its result instead of reserving twice.

Every mutating service here is safe to retry with the same arguments (activities retry):
``reserve``, ``release`` and ``commit`` by reservation key, ``restock_returned`` by return key,
``set_on_hand`` and ``import_stock`` because they set absolute values. ``adjust`` is not: it is
for people at a back office, not for activities.
"""

from __future__ import annotations

import csv
import enum
import io
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, literal, not_, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.errors import Conflict, DomainError, NotFound
from commerce.search.outbox import enqueue_reindex
from core import pagination
from core.locks import advisory_lock
from core.pagination import Page
from models import (
    InventoryLevel,
    InventoryMovement,
    InventoryReservation,
    MovementReason,
    ReservationStatus,
    Variant,
    Warehouse,
)

# inventory_levels.on_hand is a 32-bit integer; this keeps sums over warehouses far from it.
MAX_QUANTITY = 1_000_000_000
MAX_IMPORT_ROWS = 10_000
MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_KEY_LENGTH = 200  # inventory_reservations.reservation_key
WAREHOUSE_CODE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")
EXPORT_FIELDS = ("sku", "warehouse", "on_hand", "reserved", "available")

# What a person (or an import) may record by hand; reservations, releases and sales only ever
# come from the reservation services, so the log keeps telling them apart.
MANUAL_REASONS = frozenset(
    {
        MovementReason.ADJUSTMENT,
        MovementReason.RESTOCK,
        MovementReason.CORRECTION,
        MovementReason.RETURN,
        MovementReason.IMPORT,
    }
)

Pair = tuple[uuid.UUID, uuid.UUID]  # (variant_id, warehouse_id): the key of a level


# --- errors ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shortage:
    variant_id: uuid.UUID
    requested: int
    available: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "variant_id": str(self.variant_id),
            "requested": self.requested,
            "available": self.available,
        }


class OutOfStock(Conflict):
    code, title = "out_of_stock", "Not enough stock"

    def __init__(self, detail: str | None = None, *, shortages: Sequence[Shortage] = ()) -> None:
        super().__init__(detail, shortages=[shortage.as_dict() for shortage in shortages])
        self.shortages = tuple(shortages)


class ReservationConflict(Conflict):
    code, title = "reservation_conflict", "The reservation key is already used for other items"


class ReservationCommitted(Conflict):
    code, title = "reservation_committed", "The reservation is already committed"


class ReservationReleased(Conflict):
    code, title = "reservation_released", "The reservation was released"


class ReservationNotFound(NotFound):
    code, title = "reservation_not_found", "No such reservation"


class InvalidReservation(DomainError):
    status, code, title = 422, "invalid_reservation", "The reservation request is not valid"


class InsufficientStock(DomainError):
    # 409 like the cart's "not enough stock": one code, one status, across the API.
    status, code, title = 409, "insufficient_stock", "Not enough stock for this change"


class InvalidAdjustment(DomainError):
    status, code, title = 422, "invalid_adjustment", "The stock change is not valid"


class VariantNotFound(NotFound):
    code, title = "variant_not_found", "No such variant"


class WarehouseNotFound(NotFound):
    code, title = "warehouse_not_found", "No such warehouse"


class WarehouseExists(Conflict):
    code, title = "warehouse_exists", "A warehouse with this code exists"


class InvalidWarehouse(DomainError):
    status, code, title = 422, "invalid_warehouse", "The warehouse is not valid"


class InvalidImportFile(DomainError):
    status, code, title = 422, "invalid_import_file", "The stock file cannot be read"


class ImportTooLarge(DomainError):
    status, code, title = 413, "import_too_large", "The stock file is too large"


class UnsupportedImportFormat(DomainError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


# --- results -----------------------------------------------------------------------------------


class StockStatus(enum.StrEnum):
    IN_STOCK = "in_stock"
    LOW_STOCK = "low_stock"  # 0 < available <= low_stock_threshold
    OUT_OF_STOCK = "out_of_stock"


def stock_status(available: int, low_stock_threshold: int) -> StockStatus:
    if available <= 0:
        return StockStatus.OUT_OF_STOCK
    if available <= low_stock_threshold:
        return StockStatus.LOW_STOCK
    return StockStatus.IN_STOCK


@dataclass(frozen=True)
class Availability:
    """A variant's stock summed over all its warehouses (thresholds too)."""

    variant_id: uuid.UUID
    on_hand: int
    reserved: int
    low_stock_threshold: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def status(self) -> StockStatus:
        return stock_status(self.available, self.low_stock_threshold)


@dataclass(frozen=True)
class StockLevel:
    """One variant in one warehouse."""

    variant_id: uuid.UUID
    product_id: uuid.UUID
    sku: str
    warehouse_id: uuid.UUID
    warehouse_code: str
    on_hand: int
    reserved: int
    low_stock_threshold: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def status(self) -> StockStatus:
        return stock_status(self.available, self.low_stock_threshold)


@dataclass(frozen=True)
class ReservationLine:
    variant_id: uuid.UUID
    warehouse_id: uuid.UUID
    quantity: int


@dataclass(frozen=True)
class Reservation:
    """What is held under a key. ``status`` is None when nothing is (an unknown key);
    ``changed`` is False when the call found its work already done (a retry)."""

    key: str
    status: ReservationStatus | None
    lines: tuple[ReservationLine, ...]
    changed: bool

    @property
    def quantities(self) -> dict[uuid.UUID, int]:
        """Units per variant, whichever warehouses they come from."""
        totals: dict[uuid.UUID, int] = defaultdict(int)
        for line in self.lines:
            totals[line.variant_id] += line.quantity
        return dict(totals)


@dataclass(frozen=True)
class Movement:
    id: int
    variant_id: uuid.UUID
    sku: str
    warehouse_id: uuid.UUID
    warehouse_code: str
    on_hand_delta: int
    reserved_delta: int
    reason: MovementReason
    actor_user_id: uuid.UUID | None
    reservation_key: str | None
    note: str | None
    created_at: datetime


@dataclass(frozen=True)
class LevelExplanation:
    """A level next to what the movement log and the open reservations say it should be."""

    variant_id: uuid.UUID
    warehouse_id: uuid.UUID
    on_hand: int
    reserved: int
    on_hand_from_movements: int
    reserved_from_movements: int
    reserved_by_reservations: int

    @property
    def explained(self) -> bool:
        return (
            self.on_hand == self.on_hand_from_movements
            and self.reserved == self.reserved_from_movements == self.reserved_by_reservations
        )


@dataclass(frozen=True)
class ImportRow:
    """The outcome of one row; ``row`` 1 is the first record (the line after a CSV header)."""

    row: int
    sku: str | None
    warehouse: str | None
    status: str  # "ok" | "error"
    code: str | None = None
    message: str | None = None
    on_hand: int | None = None
    previous_on_hand: int | None = None


@dataclass(frozen=True)
class ImportReport:
    rows: tuple[ImportRow, ...]

    @property
    def total(self) -> int:
        return len(self.rows)

    @property
    def applied(self) -> int:
        return sum(1 for row in self.rows if row.status == "ok")

    @property
    def failed(self) -> int:
        return self.total - self.applied


# --- reading -----------------------------------------------------------------------------------


async def availability(
    session: AsyncSession, *, variant_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Availability]:
    """Stock per variant over all warehouses. Every requested id is in the answer; a variant
    without stock anywhere (or unknown) is out of stock with zeros."""
    ids = list(dict.fromkeys(variant_ids))
    found = {
        variant_id: Availability(variant_id, int(on_hand), int(reserved), int(threshold))
        for variant_id, on_hand, reserved, threshold in (
            await session.execute(
                select(
                    InventoryLevel.variant_id,
                    func.sum(InventoryLevel.on_hand),
                    func.sum(InventoryLevel.reserved),
                    func.sum(InventoryLevel.low_stock_threshold),
                )
                .where(InventoryLevel.variant_id.in_(ids))
                .group_by(InventoryLevel.variant_id)
            )
        ).all()
    }
    return {vid: found.get(vid) or Availability(vid, 0, 0, 0) for vid in ids}


async def list_levels(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    variant_id: uuid.UUID | None = None,
    warehouse_id: uuid.UUID | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[StockLevel]:
    """The vendor's levels, by SKU, the default warehouse first, a page at a time."""
    query = _levels_query().add_columns(Warehouse.is_default).where(Variant.vendor_id == vendor_id)
    if variant_id is not None:
        query = query.where(InventoryLevel.variant_id == variant_id)
    if warehouse_id is not None:
        query = query.where(InventoryLevel.warehouse_id == warehouse_id)
    # (sku, not default, code) is unique per vendor and sorts as the page does.
    if cursor is not None:
        sku, not_default, code = pagination.decode_cursor(cursor, "stock-levels", str, int, str)
        query = query.where(
            tuple_(Variant.sku, not_(Warehouse.is_default), Warehouse.code)
            > tuple_(literal(sku), literal(bool(not_default)), literal(code))
        )
    query = query.order_by(Variant.sku, not_(Warehouse.is_default), Warehouse.code)
    rows = (await session.execute(query.limit(limit + 1))).all()
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        _, sku, _, code, is_default = page[-1]
        next_cursor = pagination.encode_cursor("stock-levels", sku, int(not is_default), code)
    return Page(
        [_stock_level(level, sku, product, code) for level, sku, product, code, _ in page],
        next_cursor,
    )


async def list_movements(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    variant_id: uuid.UUID | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[Movement]:
    """The vendor's movement log, newest first, a page at a time. A variant of another vendor
    raises ``VariantNotFound`` rather than answering an empty page."""
    if variant_id is not None:
        await _variant(session, variant_id=variant_id, vendor_id=vendor_id)
    query = (
        select(InventoryMovement, Variant.sku, Warehouse.code)
        .join(Variant, Variant.id == InventoryMovement.variant_id)
        .join(Warehouse, Warehouse.id == InventoryMovement.warehouse_id)
        .where(Variant.vendor_id == vendor_id)
    )
    if variant_id is not None:
        query = query.where(InventoryMovement.variant_id == variant_id)
    if cursor is not None:
        (before_id,) = pagination.decode_cursor(cursor, "stock-movements", int)
        query = query.where(InventoryMovement.id < before_id)
    found = (
        await session.execute(query.order_by(InventoryMovement.id.desc()).limit(limit + 1))
    ).all()
    rows = found[:limit]
    movements = [
        Movement(
            id=movement.id,
            variant_id=movement.variant_id,
            sku=sku,
            warehouse_id=movement.warehouse_id,
            warehouse_code=code,
            on_hand_delta=movement.on_hand_delta,
            reserved_delta=movement.reserved_delta,
            reason=movement.reason,
            actor_user_id=movement.actor_user_id,
            reservation_key=movement.reservation_key,
            note=movement.note,
            created_at=movement.created_at,
        )
        for movement, sku, code in rows
    ]
    next_cursor = (
        pagination.encode_cursor("stock-movements", movements[-1].id)
        if len(found) > limit
        else None
    )
    return Page(movements, next_cursor)


async def explain(session: AsyncSession, *, variant_id: uuid.UUID) -> list[LevelExplanation]:
    """Each level of the variant next to the sums of its movements and open reservations.

    ``all(e.explained for e in await explain(...))`` is the invariant this module keeps.
    """
    moved = (
        select(
            InventoryMovement.warehouse_id,
            func.sum(InventoryMovement.on_hand_delta).label("on_hand"),
            func.sum(InventoryMovement.reserved_delta).label("reserved"),
        )
        .where(InventoryMovement.variant_id == variant_id)
        .group_by(InventoryMovement.warehouse_id)
        .subquery()
    )
    held = (
        select(
            InventoryReservation.warehouse_id,
            func.sum(InventoryReservation.quantity).label("quantity"),
        )
        .where(
            InventoryReservation.variant_id == variant_id,
            InventoryReservation.status == ReservationStatus.RESERVED,
        )
        .group_by(InventoryReservation.warehouse_id)
        .subquery()
    )
    rows = (
        await session.execute(
            select(
                InventoryLevel.warehouse_id,
                InventoryLevel.on_hand,
                InventoryLevel.reserved,
                func.coalesce(moved.c.on_hand, 0),
                func.coalesce(moved.c.reserved, 0),
                func.coalesce(held.c.quantity, 0),
            )
            .outerjoin(moved, moved.c.warehouse_id == InventoryLevel.warehouse_id)
            .outerjoin(held, held.c.warehouse_id == InventoryLevel.warehouse_id)
            .where(InventoryLevel.variant_id == variant_id)
            .order_by(InventoryLevel.warehouse_id)
        )
    ).all()
    return [
        LevelExplanation(variant_id, warehouse_id, on_hand, reserved, int(m_on), int(m_res), int(h))
        for warehouse_id, on_hand, reserved, m_on, m_res, h in rows
    ]


# --- changing stock by hand --------------------------------------------------------------------


async def adjust(
    session: AsyncSession,
    *,
    variant_id: uuid.UUID,
    delta: int,
    warehouse_id: uuid.UUID | None = None,
    vendor_id: uuid.UUID | None = None,
    reason: MovementReason = MovementReason.ADJUSTMENT,
    actor_user_id: uuid.UUID | None = None,
    note: str | None = None,
) -> StockLevel:
    """Add (or, negative, remove) units in a warehouse (default: the vendor's default one).

    With ``vendor_id``, a variant of another vendor is ``VariantNotFound`` (404). A zero delta
    or a reservation-only reason is ``InvalidAdjustment`` (422); taking on_hand below what is
    reserved, or below zero, is ``InsufficientStock`` (409). Not idempotent: retrying callers
    should use :func:`set_on_hand` or :func:`restock_returned` with a key.
    """
    if not _is_int(delta) or delta == 0:
        raise InvalidAdjustment("The change must be a whole number of units other than zero.")
    _check_reason(reason)
    variant, warehouse = await _target(
        session, variant_id=variant_id, warehouse_id=warehouse_id, vendor_id=vendor_id
    )
    pair = (variant.id, warehouse.id)
    level = (await _locked_levels(session, [pair], create=True))[pair]
    if level.on_hand + delta < level.reserved:
        raise InsufficientStock(
            f"{level.on_hand} on hand, {level.reserved} of them reserved: "
            f"at most {level.on_hand - level.reserved} can be removed.",
            on_hand=level.on_hand,
            reserved=level.reserved,
        )
    if level.on_hand + delta > MAX_QUANTITY:
        raise InvalidAdjustment(f"At most {MAX_QUANTITY} units fit in one warehouse.")
    _record(
        session,
        level,
        on_hand_delta=delta,
        reason=reason,
        actor_user_id=actor_user_id,
        note=note,
    )
    await session.flush()
    await enqueue_reindex(session, [variant.product_id])
    return _stock_level(level, variant.sku, variant.product_id, warehouse.code)


async def set_on_hand(
    session: AsyncSession,
    *,
    variant_id: uuid.UUID,
    on_hand: int,
    warehouse_id: uuid.UUID | None = None,
    vendor_id: uuid.UUID | None = None,
    reason: MovementReason = MovementReason.ADJUSTMENT,
    actor_user_id: uuid.UUID | None = None,
    note: str | None = None,
) -> StockLevel:
    """Record a stock count: on_hand becomes ``on_hand`` and the difference is the movement
    (none when nothing changed, so repeating a count is harmless).

    A negative count is ``InvalidAdjustment`` (422), one below what is reserved is
    ``InsufficientStock`` (409): release or sell the reserved units first.
    """
    if not _is_int(on_hand) or on_hand < 0 or on_hand > MAX_QUANTITY:
        raise InvalidAdjustment(f"The count must be a whole number from 0 to {MAX_QUANTITY}.")
    _check_reason(reason)
    variant, warehouse = await _target(
        session, variant_id=variant_id, warehouse_id=warehouse_id, vendor_id=vendor_id
    )
    pair = (variant.id, warehouse.id)
    level = (await _locked_levels(session, [pair], create=True))[pair]
    if on_hand < level.reserved:
        raise InsufficientStock(
            f"{level.reserved} units are reserved; the count cannot be lower.",
            on_hand=level.on_hand,
            reserved=level.reserved,
        )
    if on_hand != level.on_hand:
        _record(
            session,
            level,
            on_hand_delta=on_hand - level.on_hand,
            reason=reason,
            actor_user_id=actor_user_id,
            note=note,
        )
        await session.flush()
        await enqueue_reindex(session, [variant.product_id])
    return _stock_level(level, variant.sku, variant.product_id, warehouse.code)


async def set_low_stock_threshold(
    session: AsyncSession,
    *,
    variant_id: uuid.UUID,
    threshold: int,
    warehouse_id: uuid.UUID | None = None,
    vendor_id: uuid.UUID | None = None,
) -> StockLevel:
    """At or below how many available units the variant shows as "low stock" here. The
    storefront compares the variant's total available with the sum over its warehouses."""
    if not _is_int(threshold) or threshold < 0 or threshold > MAX_QUANTITY:
        raise InvalidAdjustment(f"The threshold must be a whole number from 0 to {MAX_QUANTITY}.")
    variant, warehouse = await _target(
        session, variant_id=variant_id, warehouse_id=warehouse_id, vendor_id=vendor_id
    )
    pair = (variant.id, warehouse.id)
    level = (await _locked_levels(session, [pair], create=True))[pair]
    level.low_stock_threshold = threshold
    await session.flush()
    return _stock_level(level, variant.sku, variant.product_id, warehouse.code)


async def restock_returned(
    session: AsyncSession,
    *,
    variant_id: uuid.UUID,
    quantity: int,
    warehouse_id: uuid.UUID | None = None,
    vendor_id: uuid.UUID | None = None,
    reason: MovementReason = MovementReason.RETURN,
    actor_user_id: uuid.UUID | None = None,
    note: str | None = None,
    return_key: str | None = None,
) -> StockLevel:
    """Put returned units back on hand (default warehouse unless given).

    With ``return_key`` (e.g. the return's id) it happens once per key and variant: a retried
    activity finds the movement and changes nothing. The key is kept in the movement's
    ``reservation_key``.
    """
    if not _is_int(quantity) or quantity <= 0:
        raise InvalidAdjustment("The quantity must be a positive whole number.")
    _check_reason(reason)
    variant, warehouse = await _target(
        session, variant_id=variant_id, warehouse_id=warehouse_id, vendor_id=vendor_id
    )
    done = False
    if return_key is not None:
        return_key = _check_key(return_key)
        await advisory_lock(session, "inventory-return", return_key)
        done = (
            await session.scalar(
                select(InventoryMovement.id).where(
                    InventoryMovement.variant_id == variant.id,
                    InventoryMovement.reservation_key == return_key,
                    InventoryMovement.reason == reason,
                )
            )
        ) is not None
    pair = (variant.id, warehouse.id)
    level = (await _locked_levels(session, [pair], create=True))[pair]
    if done:
        return _stock_level(level, variant.sku, variant.product_id, warehouse.code)
    if level.on_hand + quantity > MAX_QUANTITY:
        raise InvalidAdjustment(f"At most {MAX_QUANTITY} units fit in one warehouse.")
    _record(
        session,
        level,
        on_hand_delta=quantity,
        reason=reason,
        actor_user_id=actor_user_id,
        reservation_key=return_key,
        note=note,
    )
    await session.flush()
    await enqueue_reindex(session, [variant.product_id])
    return _stock_level(level, variant.sku, variant.product_id, warehouse.code)


# --- reservations ------------------------------------------------------------------------------


async def reserve(
    session: AsyncSession, *, reservation_key: str, lines: Sequence[tuple[uuid.UUID, int]]
) -> Reservation:
    """Hold units of every line under ``reservation_key``: all lines or none.

    Each line is taken from the variant's default warehouse first, then from the others by
    code, split over several if need be. If any line cannot be met, ``OutOfStock`` (409, with
    ``shortages``: variant, requested, available) is raised and nothing is held, even if the
    caller catches it (the attempt runs in a savepoint). Lines for the same variant add up.

    Idempotent: the same key with the same units per variant returns the existing reservation
    (``changed=False``) whatever its status now, so a retry after a release does not hold the
    units again; the same key with other lines is ``ReservationConflict`` (409).
    """
    key = _check_key(reservation_key)
    wanted = _wanted(lines)
    await advisory_lock(session, "inventory-reservation", key)
    existing = await _reservation_rows(session, key)
    if existing:
        held = _reservation(key, existing, changed=False)
        if held.quantities != wanted:
            raise ReservationConflict(
                f"The key {key!r} already holds other items; use a new key for a new order."
            )
        return held

    async with session.begin_nested():
        # Every level of every variant, locked in one statement in (variant, warehouse) order:
        # concurrent reservations queue on the rows they share and cannot deadlock.
        rows = (
            await session.execute(
                select(InventoryLevel, Warehouse.is_default, Warehouse.code, Variant.product_id)
                .join(Warehouse, Warehouse.id == InventoryLevel.warehouse_id)
                .join(Variant, Variant.id == InventoryLevel.variant_id)
                .where(InventoryLevel.variant_id.in_(list(wanted)))
                .order_by(InventoryLevel.variant_id, InventoryLevel.warehouse_id)
                .with_for_update(of=InventoryLevel)
                .execution_options(populate_existing=True)
            )
        ).all()
        by_variant: dict[uuid.UUID, list[tuple[InventoryLevel, bool, str]]] = defaultdict(list)
        product_ids: set[uuid.UUID] = set()
        for level, is_default, code, product_id in rows:
            by_variant[level.variant_id].append((level, is_default, code))
            product_ids.add(product_id)

        allocations: list[tuple[InventoryLevel, int]] = []
        shortages: list[Shortage] = []
        for variant_id, quantity in wanted.items():
            levels = sorted(by_variant[variant_id], key=lambda found: (not found[1], found[2]))
            available = sum(level.on_hand - level.reserved for level, _, _ in levels)
            if available < quantity:
                shortages.append(Shortage(variant_id, quantity, max(available, 0)))
                continue
            remaining = quantity
            for level, _, _ in levels:
                take = min(remaining, level.on_hand - level.reserved)
                if take > 0:
                    allocations.append((level, take))
                    remaining -= take
                if remaining == 0:
                    break
        if shortages:
            # Raised inside the savepoint: it rolls back and the row locks go with it.
            raise OutOfStock(
                f"Not enough stock for {len(shortages)} of the {len(wanted)} items.",
                shortages=shortages,
            )

        reservation_lines = []
        for level, quantity in allocations:
            _record(
                session,
                level,
                reserved_delta=quantity,
                reason=MovementReason.RESERVATION,
                reservation_key=key,
            )
            session.add(
                InventoryReservation(
                    reservation_key=key,
                    variant_id=level.variant_id,
                    warehouse_id=level.warehouse_id,
                    quantity=quantity,
                    status=ReservationStatus.RESERVED,
                )
            )
            reservation_lines.append(
                ReservationLine(level.variant_id, level.warehouse_id, quantity)
            )
        await session.flush()
    await enqueue_reindex(session, product_ids)
    return Reservation(key, ReservationStatus.RESERVED, tuple(reservation_lines), changed=True)


async def get_reservation(session: AsyncSession, *, reservation_key: str) -> Reservation:
    """What is held under a key (``status`` None if nothing ever was)."""
    key = _check_key(reservation_key)
    return _reservation(key, await _reservation_rows(session, key), changed=False)


async def release(session: AsyncSession, *, reservation_key: str, now: datetime) -> Reservation:
    """Give a reservation's units back to available (the compensation of ``reserve``).

    Idempotent: releasing a released reservation, or a key that holds nothing (the reserve
    never happened), changes nothing. A committed reservation is ``ReservationCommitted``
    (409): sold units come back through a return, not a release.
    """
    key = _check_key(reservation_key)
    await advisory_lock(session, "inventory-reservation", key)
    rows = await _reservation_rows(session, key)
    if not rows or rows[0].status == ReservationStatus.RELEASED:
        return _reservation(key, rows, changed=False)
    if rows[0].status == ReservationStatus.COMMITTED:
        raise ReservationCommitted(f"The reservation {key!r} is sold; it cannot be released.")
    levels = await _locked_levels(session, [(r.variant_id, r.warehouse_id) for r in rows])
    product_ids = await _product_ids(session, {r.variant_id for r in rows})
    for row in rows:
        _record(
            session,
            levels[(row.variant_id, row.warehouse_id)],
            reserved_delta=-row.quantity,
            reason=MovementReason.RELEASE,
            reservation_key=key,
        )
        row.status = ReservationStatus.RELEASED
        row.updated_at = now
    await session.flush()
    await enqueue_reindex(session, product_ids)
    return _reservation(key, rows, changed=True)


async def commit(session: AsyncSession, *, reservation_key: str, now: datetime) -> Reservation:
    """The reserved units are sold: they leave on_hand and reserved together.

    Idempotent: committing a committed reservation changes nothing. A released one is
    ``ReservationReleased`` (409) and an unknown key ``ReservationNotFound`` (404): either
    means the order's saga lost its stock and must not ship.
    """
    key = _check_key(reservation_key)
    await advisory_lock(session, "inventory-reservation", key)
    rows = await _reservation_rows(session, key)
    if not rows:
        raise ReservationNotFound(f"Nothing is reserved under {key!r}.")
    if rows[0].status == ReservationStatus.COMMITTED:
        return _reservation(key, rows, changed=False)
    if rows[0].status == ReservationStatus.RELEASED:
        raise ReservationReleased(f"The reservation {key!r} was released; reserve again.")
    levels = await _locked_levels(session, [(r.variant_id, r.warehouse_id) for r in rows])
    for row in rows:
        _record(
            session,
            levels[(row.variant_id, row.warehouse_id)],
            on_hand_delta=-row.quantity,
            reserved_delta=-row.quantity,
            reason=MovementReason.SALE,
            reservation_key=key,
        )
        row.status = ReservationStatus.COMMITTED
        row.updated_at = now
    await session.flush()
    # No reindex: on_hand and reserved fall together, so what is available does not change.
    return _reservation(key, rows, changed=True)


# --- warehouses --------------------------------------------------------------------------------


async def list_warehouses(session: AsyncSession, *, vendor_id: uuid.UUID) -> list[Warehouse]:
    """The vendor's warehouses, the default first, then by code."""
    found = await session.scalars(
        select(Warehouse)
        .where(Warehouse.vendor_id == vendor_id)
        .order_by(Warehouse.is_default.desc(), Warehouse.code)
    )
    return list(found.all())


async def create_warehouse(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    code: str,
    name: str,
    is_default: bool = False,
) -> Warehouse:
    """A new warehouse. Codes are lower-cased, unique per vendor (``WarehouseExists``, 409)
    and made of letters, digits, ``.``, ``_`` and ``-`` (``InvalidWarehouse``, 422).
    A vendor's first warehouse is its default whatever ``is_default`` says."""
    code = code.strip().lower()
    name = name.strip()
    if not WAREHOUSE_CODE.fullmatch(code):
        raise InvalidWarehouse(
            "A code is 1 to 40 letters, digits, '.', '_' or '-', starting with a letter or digit."
        )
    if not name or len(name) > 200:
        raise InvalidWarehouse("A name is 1 to 200 characters.")
    current = await _lock_warehouses(session, vendor_id)
    if any(w.code == code for w in current):
        raise WarehouseExists(f"The code {code!r} is taken.")
    if is_default or not any(w.is_default for w in current):
        await _clear_default(session, current)
        is_default = True
    warehouse = Warehouse(vendor_id=vendor_id, code=code, name=name, is_default=is_default)
    try:
        async with session.begin_nested():
            session.add(warehouse)
            await session.flush()
    except IntegrityError as error:
        # Only a concurrent insert of the same code gets here: the rows we locked do not
        # include a warehouse created after the lock.
        diag = getattr(error.orig, "diag", None)
        if getattr(diag, "constraint_name", None) != "uq_warehouses_vendor_id_code":
            raise
        raise WarehouseExists(f"The code {code!r} is taken.") from None
    return warehouse


async def set_default_warehouse(
    session: AsyncSession, *, vendor_id: uuid.UUID, warehouse_id: uuid.UUID
) -> Warehouse:
    """Make a warehouse the vendor's default: the one stock changes use when none is named and
    the first that reservations draw from. ``WarehouseNotFound`` (404) if not the vendor's."""
    current = await _lock_warehouses(session, vendor_id)
    target = next((w for w in current if w.id == warehouse_id), None)
    if target is None:
        raise WarehouseNotFound("No such warehouse.")
    if not target.is_default:
        await _clear_default(session, current)
        target.is_default = True
        await session.flush()
    return target


# --- import and export -------------------------------------------------------------------------


async def import_stock(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    rows: Iterable[Mapping[str, Any]],
    actor_user_id: uuid.UUID | None,
    reason: MovementReason = MovementReason.IMPORT,
) -> ImportReport:
    """Apply a stock count file: each row ``{sku, warehouse (code; blank: default), on_hand}``
    sets a level as :func:`set_on_hand` would; other keys are ignored (so an export can be
    edited and imported back).

    Each row is applied whole or not at all, and a bad row does not stop the others: every row
    is checked against the locked levels first (as they stand after the earlier rows of the
    file), and only rows that pass are written, with one movement each. The report has one
    entry per row, in file order. More than ``MAX_IMPORT_ROWS`` rows is ``ImportTooLarge``.
    """
    _check_reason(reason)
    results: dict[int, ImportRow] = {}
    candidates: list[tuple[int, str, str | None, int]] = []
    for number, raw in enumerate(rows, start=1):
        if number > MAX_IMPORT_ROWS:
            raise ImportTooLarge(f"At most {MAX_IMPORT_ROWS} rows per file.")
        parsed = _parse_import_row(number, raw)
        if isinstance(parsed, ImportRow):
            results[number] = parsed
        else:
            candidates.append(parsed)

    warehouses = {w.code.lower(): w for w in await list_warehouses(session, vendor_id=vendor_id)}
    default = next((w for w in warehouses.values() if w.is_default), None)
    skus = sorted({sku for _, sku, _, _ in candidates})
    variants = {
        row.sku: row
        for row in (
            await session.execute(
                select(Variant.id, Variant.sku, Variant.product_id).where(
                    Variant.vendor_id == vendor_id, Variant.sku.in_(skus)
                )
            )
        ).all()
    }

    resolved: list[tuple[int, str, Warehouse, Any, int]] = []
    for number, sku, code, on_hand in candidates:
        warehouse = warehouses.get(code.lower()) if code else default
        if sku not in variants:
            results[number] = _row_error(number, sku, code, "unknown_sku", "No variant has it.")
        elif warehouse is None:
            message = "No warehouse has this code." if code else "No default warehouse."
            results[number] = _row_error(number, sku, code, "unknown_warehouse", message)
        else:
            resolved.append((number, sku, warehouse, variants[sku], on_hand))

    levels = await _locked_levels(
        session,
        [(variant.id, warehouse.id) for _, _, warehouse, variant, _ in resolved],
        create=True,
    )
    changed_products: set[uuid.UUID] = set()
    for number, sku, warehouse, variant, on_hand in resolved:
        level = levels[(variant.id, warehouse.id)]
        previous = level.on_hand
        if on_hand < level.reserved:
            results[number] = _row_error(
                number,
                sku,
                warehouse.code,
                "insufficient_stock",
                f"{level.reserved} units are reserved; the count cannot be lower.",
            )
            continue
        if on_hand != previous:
            _record(
                session,
                level,
                on_hand_delta=on_hand - previous,
                reason=reason,
                actor_user_id=actor_user_id,
                note=f"import row {number}",
            )
            changed_products.add(variant.product_id)
        results[number] = ImportRow(
            number, sku, warehouse.code, "ok", on_hand=on_hand, previous_on_hand=previous
        )
    await session.flush()
    await enqueue_reindex(session, sorted(changed_products))
    return ImportReport(tuple(results[number] for number in sorted(results)))


async def export_stock(session: AsyncSession, *, vendor_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every variant of the vendor with its stock per warehouse (``EXPORT_FIELDS``), by SKU.
    A variant without any level appears once, in the default warehouse, with zeros, so the
    export is a complete template for a stock count."""
    default_code = await session.scalar(
        select(Warehouse.code).where(Warehouse.vendor_id == vendor_id, Warehouse.is_default)
    )
    rows = (
        await session.execute(
            select(Variant.sku, Warehouse.code, InventoryLevel.on_hand, InventoryLevel.reserved)
            .select_from(Variant)
            .outerjoin(InventoryLevel, InventoryLevel.variant_id == Variant.id)
            .outerjoin(Warehouse, Warehouse.id == InventoryLevel.warehouse_id)
            .where(Variant.vendor_id == vendor_id)
            .order_by(Variant.sku, Warehouse.code)
        )
    ).all()
    return [
        {
            "sku": sku,
            "warehouse": code if code is not None else default_code,
            "on_hand": on_hand or 0,
            "reserved": reserved or 0,
            "available": (on_hand or 0) - (reserved or 0),
        }
        for sku, code, on_hand, reserved in rows
    ]


def parse_stock_csv(data: bytes) -> list[dict[str, str]]:
    """Rows of a CSV stock file (UTF-8, a BOM allowed; header with ``sku`` and ``on_hand``,
    ``warehouse`` optional, other columns ignored). ``InvalidImportFile`` (422) if unreadable."""
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidImportFile("The file is not UTF-8 text.") from None
    # strict: a stray quote is an unreadable file, not a silently merged row.
    reader = csv.reader(io.StringIO(content, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise InvalidImportFile("The file is empty; it needs a header: sku,warehouse,on_hand.")
        columns = [name.strip().lower() for name in header]
        missing = [name for name in ("sku", "on_hand") if name not in columns]
        if missing:
            raise InvalidImportFile(f"The header lacks {', '.join(missing)}.")
        rows: list[dict[str, str]] = []
        for record in reader:
            if not any(value.strip() for value in record):
                continue  # blank lines, e.g. a trailing one
            if len(rows) >= MAX_IMPORT_ROWS:
                raise ImportTooLarge(f"At most {MAX_IMPORT_ROWS} rows per file.")
            # A short record leaves its last columns missing, reported per row.
            rows.append(dict(zip(columns, record, strict=False)))
    except csv.Error as error:
        raise InvalidImportFile(
            f"The CSV is malformed at line {reader.line_num}: {error}"
        ) from None
    return rows


def parse_stock_json(data: bytes) -> list[Any]:
    """Rows of a JSON stock file: an array of objects. Non-objects are reported per row.
    ``InvalidImportFile`` (422) if the file is not a JSON array."""
    try:
        content = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise InvalidImportFile("The file is not valid JSON.") from None
    if not isinstance(content, list):
        raise InvalidImportFile("The file must be a JSON array of rows.")
    if len(content) > MAX_IMPORT_ROWS:
        raise ImportTooLarge(f"At most {MAX_IMPORT_ROWS} rows per file.")
    return content


def stock_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """An export as CSV (header ``EXPORT_FIELDS``), readable by :func:`parse_stock_csv`."""
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=EXPORT_FIELDS, extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


# --- internals ---------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_reason(reason: MovementReason) -> None:
    if reason not in MANUAL_REASONS:
        raise InvalidAdjustment(f"The reason {reason.value!r} is kept for reservations.")


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise InvalidReservation(f"A key is 1 to {MAX_KEY_LENGTH} characters.")
    return key


def _wanted(lines: Sequence[tuple[uuid.UUID, int]]) -> dict[uuid.UUID, int]:
    """Units per variant, in variant order (the lock order)."""
    totals: dict[uuid.UUID, int] = defaultdict(int)
    for variant_id, quantity in lines:
        if not isinstance(variant_id, uuid.UUID) or not _is_int(quantity) or quantity <= 0:
            raise InvalidReservation("Each line is a variant id and a positive whole quantity.")
        totals[variant_id] += quantity
    if not totals:
        raise InvalidReservation("A reservation needs at least one line.")
    if any(quantity > MAX_QUANTITY for quantity in totals.values()):
        raise InvalidReservation(f"At most {MAX_QUANTITY} units of a variant.")
    return dict(sorted(totals.items()))


async def _reservation_rows(session: AsyncSession, key: str) -> list[InventoryReservation]:
    found = await session.scalars(
        select(InventoryReservation)
        .where(InventoryReservation.reservation_key == key)
        .order_by(InventoryReservation.variant_id, InventoryReservation.warehouse_id)
        .execution_options(populate_existing=True)
    )
    return list(found.all())


def _reservation(key: str, rows: Sequence[InventoryReservation], *, changed: bool) -> Reservation:
    # All rows of a key change status together (under the key's lock), so the first speaks
    # for all.
    return Reservation(
        key,
        rows[0].status if rows else None,
        tuple(ReservationLine(r.variant_id, r.warehouse_id, r.quantity) for r in rows),
        changed,
    )


async def _locked_levels(
    session: AsyncSession, pairs: Iterable[Pair], *, create: bool = False
) -> dict[Pair, InventoryLevel]:
    """The levels of these (variant, warehouse) pairs, locked in the global order; with
    ``create``, missing ones are made first at zero (a zero level needs no movement)."""
    ordered = sorted(set(pairs))
    if not ordered:
        return {}
    if create:
        await session.execute(
            pg_insert(InventoryLevel).on_conflict_do_nothing(
                index_elements=[InventoryLevel.variant_id, InventoryLevel.warehouse_id]
            ),
            [
                {
                    "variant_id": variant_id,
                    "warehouse_id": warehouse_id,
                    "on_hand": 0,
                    "reserved": 0,
                    "low_stock_threshold": 0,
                }
                for variant_id, warehouse_id in ordered
            ],
        )
    found = await session.scalars(
        select(InventoryLevel)
        .where(tuple_(InventoryLevel.variant_id, InventoryLevel.warehouse_id).in_(ordered))
        .order_by(InventoryLevel.variant_id, InventoryLevel.warehouse_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    levels = {(level.variant_id, level.warehouse_id): level for level in found.all()}
    assert len(levels) == len(ordered), "a level to change is missing"
    return levels


def _record(
    session: AsyncSession,
    level: InventoryLevel,
    *,
    reason: MovementReason,
    on_hand_delta: int = 0,
    reserved_delta: int = 0,
    actor_user_id: uuid.UUID | None = None,
    reservation_key: str | None = None,
    note: str | None = None,
) -> None:
    """Change a locked level and log the change; the caller flushes."""
    level.on_hand += on_hand_delta
    level.reserved += reserved_delta
    session.add(
        InventoryMovement(
            variant_id=level.variant_id,
            warehouse_id=level.warehouse_id,
            on_hand_delta=on_hand_delta,
            reserved_delta=reserved_delta,
            reason=reason,
            actor_user_id=actor_user_id,
            reservation_key=reservation_key,
            note=note,
        )
    )


@dataclass(frozen=True)
class _Variant:
    id: uuid.UUID
    vendor_id: uuid.UUID
    product_id: uuid.UUID
    sku: str


async def _variant(
    session: AsyncSession, *, variant_id: uuid.UUID, vendor_id: uuid.UUID | None
) -> _Variant:
    query = select(Variant.id, Variant.vendor_id, Variant.product_id, Variant.sku).where(
        Variant.id == variant_id
    )
    if vendor_id is not None:
        query = query.where(Variant.vendor_id == vendor_id)
    row = (await session.execute(query)).first()
    if row is None:
        raise VariantNotFound("No such variant.")
    return _Variant(*row)


async def _target(
    session: AsyncSession,
    *,
    variant_id: uuid.UUID,
    warehouse_id: uuid.UUID | None,
    vendor_id: uuid.UUID | None,
) -> tuple[_Variant, Warehouse]:
    """The variant and the warehouse a change applies to; the warehouse must be the
    variant's vendor's (a level elsewhere would be stock nobody can sell)."""
    variant = await _variant(session, variant_id=variant_id, vendor_id=vendor_id)
    query = select(Warehouse).where(Warehouse.vendor_id == variant.vendor_id)
    if warehouse_id is None:
        query = query.where(Warehouse.is_default)
    else:
        query = query.where(Warehouse.id == warehouse_id)
    warehouse = await session.scalar(query)
    if warehouse is None:
        raise WarehouseNotFound(
            "No such warehouse." if warehouse_id is not None else "The vendor has no default."
        )
    return variant, warehouse


async def _product_ids(session: AsyncSession, variant_ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    found = await session.scalars(
        select(Variant.product_id).where(Variant.id.in_(list(variant_ids))).distinct()
    )
    return list(found.all())


async def _lock_warehouses(session: AsyncSession, vendor_id: uuid.UUID) -> list[Warehouse]:
    """The vendor's warehouses, locked so that default changes queue. FOR NO KEY UPDATE does
    not block the key-share locks that foreign keys from new levels and movements take."""
    found = await session.scalars(
        select(Warehouse)
        .where(Warehouse.vendor_id == vendor_id)
        .order_by(Warehouse.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    return list(found.all())


async def _clear_default(session: AsyncSession, warehouses: Iterable[Warehouse]) -> None:
    # Flushed on its own: the partial unique index on the default is checked row by row, so
    # the old default must be cleared before the new one is set.
    for warehouse in warehouses:
        if warehouse.is_default:
            warehouse.is_default = False
    await session.flush()


def _levels_query() -> Select[InventoryLevel, str, uuid.UUID, str]:
    return (
        select(InventoryLevel, Variant.sku, Variant.product_id, Warehouse.code)
        .join(Variant, Variant.id == InventoryLevel.variant_id)
        .join(Warehouse, Warehouse.id == InventoryLevel.warehouse_id)
    )


def _stock_level(
    level: InventoryLevel, sku: str, product_id: uuid.UUID, warehouse_code: str
) -> StockLevel:
    return StockLevel(
        variant_id=level.variant_id,
        product_id=product_id,
        sku=sku,
        warehouse_id=level.warehouse_id,
        warehouse_code=warehouse_code,
        on_hand=level.on_hand,
        reserved=level.reserved,
        low_stock_threshold=level.low_stock_threshold,
    )


_WHOLE = re.compile(r"^[+-]?\d+$")


def _row_error(
    number: int, sku: str | None, warehouse: str | None, code: str, message: str
) -> ImportRow:
    return ImportRow(number, sku, warehouse, "error", code=code, message=message)


def _parse_import_row(number: int, raw: object) -> ImportRow | tuple[int, str, str | None, int]:
    """One row checked on its own: (row, sku, warehouse code or None, on_hand) or an error."""
    if not isinstance(raw, Mapping):
        return _row_error(number, None, None, "invalid_row", "A row is an object: sku, on_hand.")
    row = {str(name).strip().lower(): value for name, value in raw.items()}
    sku = row.get("sku")
    if isinstance(sku, int) and not isinstance(sku, bool):
        sku = str(sku)  # a numeric SKU in JSON
    if not isinstance(sku, str) or not sku.strip() or len(sku.strip()) > 64:
        return _row_error(number, None, None, "invalid_row", "sku is missing or too long.")
    sku = sku.strip()
    code = row.get("warehouse")
    if code is not None and not isinstance(code, str):
        return _row_error(number, sku, None, "unknown_warehouse", "warehouse is a code.")
    code = code.strip() if code and code.strip() else None
    value = row.get("on_hand")
    if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        value = int(value.strip())
    if value is None or value == "":
        return _row_error(number, sku, code, "invalid_quantity", "on_hand is missing.")
    if not _is_int(value):
        return _row_error(number, sku, code, "invalid_quantity", "on_hand is a whole number.")
    if value < 0:
        return _row_error(number, sku, code, "invalid_quantity", "on_hand cannot be negative.")
    if value > MAX_QUANTITY:
        return _row_error(number, sku, code, "invalid_quantity", f"At most {MAX_QUANTITY}.")
    return number, sku, code, value
