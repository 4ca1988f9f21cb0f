"""Stock: vendors' warehouses and the levels in them, idempotent reservations, and the
movement log that explains every level."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamps, UUIDPrimaryKey, pg_enum


class Warehouse(UUIDPrimaryKey, Timestamps, Base):
    """Where a vendor keeps stock. Every vendor has one default warehouse."""

    __tablename__ = "warehouses"
    __table_args__ = (
        UniqueConstraint("vendor_id", "code"),
        Index(
            "uq_warehouses_default_per_vendor",
            "vendor_id",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )

    vendor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vendors.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)


class InventoryLevel(Timestamps, Base):
    """Stock of one variant in one warehouse. available = on_hand - reserved, never negative."""

    __tablename__ = "inventory_levels"
    __table_args__ = (
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="reserved_within_on_hand"),
    )

    variant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("variants.id", ondelete="CASCADE"), primary_key=True
    )
    warehouse_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("warehouses.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    low_stock_threshold: Mapped[int] = mapped_column(Integer, default=0)


class ReservationStatus(enum.StrEnum):
    RESERVED = "reserved"
    COMMITTED = "committed"  # sold: the units left on_hand
    RELEASED = "released"  # given back to available


class MovementReason(enum.StrEnum):
    ADJUSTMENT = "adjustment"
    RESTOCK = "restock"
    RESERVATION = "reservation"
    RELEASE = "release"
    SALE = "sale"
    RETURN = "return"
    IMPORT = "import"
    CORRECTION = "correction"


class InventoryReservation(UUIDPrimaryKey, Base):
    """Units held for one purpose (e.g. an order), keyed so a retried reserve is a no-op."""

    __tablename__ = "inventory_reservations"
    __table_args__ = (
        UniqueConstraint("reservation_key", "variant_id", "warehouse_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    reservation_key: Mapped[str] = mapped_column(String(200), index=True)
    variant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("variants.id", ondelete="RESTRICT"))
    warehouse_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("warehouses.id", ondelete="RESTRICT")
    )
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[ReservationStatus] = mapped_column(
        pg_enum(ReservationStatus, "reservation_status"), default=ReservationStatus.RESERVED
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()")
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()")
    )


class InventoryMovement(Base):
    """One change to a level. For every (variant, warehouse), the sums of the deltas equal
    on_hand and reserved: stock can always be explained."""

    __tablename__ = "inventory_movements"
    __table_args__ = (Index("ix_inventory_movements_variant_time", "variant_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    variant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    warehouse_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("warehouses.id", ondelete="RESTRICT")
    )
    on_hand_delta: Mapped[int] = mapped_column(Integer, default=0)
    reserved_delta: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[MovementReason] = mapped_column(pg_enum(MovementReason, "movement_reason"))
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    reservation_key: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()")
    )
