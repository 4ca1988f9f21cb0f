"""Request and response bodies of a vendor's inventory: levels, adjustments, movements,
warehouses, stock import and export."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas.pagination import Page
from commerce.catalog.inventory import (
    MAX_QUANTITY,
    ImportReport,
    ImportRow,
    Movement,
    StockLevel,
    StockStatus,
)
from models import MovementReason, Warehouse


class StockLevelRead(BaseModel):
    variant_id: uuid.UUID
    product_id: uuid.UUID
    sku: str
    warehouse_id: uuid.UUID
    warehouse_code: str
    on_hand: int
    reserved: int = Field(description="Held for orders being checked out")
    available: int = Field(description="on_hand - reserved: what can still be sold")
    low_stock_threshold: int
    status: StockStatus

    @classmethod
    def from_domain(cls, level: StockLevel) -> StockLevelRead:
        return cls(
            variant_id=level.variant_id,
            product_id=level.product_id,
            sku=level.sku,
            warehouse_id=level.warehouse_id,
            warehouse_code=level.warehouse_code,
            on_hand=level.on_hand,
            reserved=level.reserved,
            available=level.available,
            low_stock_threshold=level.low_stock_threshold,
            status=level.status,
        )


class StockAdjustment(BaseModel):
    """Either a change (``delta``) or a count (``on_hand``: the difference is recorded)."""

    model_config = ConfigDict(extra="forbid")
    variant_id: uuid.UUID
    warehouse_id: uuid.UUID | None = Field(default=None, description="Default: the default one")
    delta: int | None = Field(
        default=None, ge=-MAX_QUANTITY, le=MAX_QUANTITY, description="Units added (or removed)"
    )
    on_hand: int | None = Field(
        default=None, ge=0, le=MAX_QUANTITY, description="Units counted on the shelf"
    )
    reason: Literal["adjustment", "restock", "correction"] = "adjustment"
    note: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _one_of_delta_or_count(self) -> StockAdjustment:
        if (self.delta is None) == (self.on_hand is None):
            raise ValueError("send either delta or on_hand")
        return self


class MovementRead(BaseModel):
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

    @classmethod
    def from_domain(cls, movement: Movement) -> MovementRead:
        return cls(
            id=movement.id,
            variant_id=movement.variant_id,
            sku=movement.sku,
            warehouse_id=movement.warehouse_id,
            warehouse_code=movement.warehouse_code,
            on_hand_delta=movement.on_hand_delta,
            reserved_delta=movement.reserved_delta,
            reason=movement.reason,
            actor_user_id=movement.actor_user_id,
            reservation_key=movement.reservation_key,
            note=movement.note,
            created_at=movement.created_at,
        )


class WarehouseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Lengths only keep absurd input out; the service checks (and lower-cases) the code.
    code: str = Field(min_length=1, max_length=100, description="e.g. berlin-1; unique per vendor")
    name: str = Field(min_length=1, max_length=500)
    is_default: bool = False


class WarehouseRead(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    is_default: bool
    created_at: datetime

    @classmethod
    def from_domain(cls, warehouse: Warehouse) -> WarehouseRead:
        return cls(
            id=warehouse.id,
            code=warehouse.code,
            name=warehouse.name,
            is_default=warehouse.is_default,
            created_at=warehouse.created_at,
        )


class StockImportRow(BaseModel):
    """One row of a stock file (JSON: an array of these; CSV: header sku,warehouse,on_hand)."""

    sku: str
    warehouse: str | None = Field(default=None, description="A code; blank: the default one")
    on_hand: int = Field(ge=0)


class StockImportRowRead(BaseModel):
    row: int = Field(description="1 is the first record (the line after a CSV header)")
    sku: str | None
    warehouse: str | None
    status: Literal["ok", "error"]
    code: str | None = Field(description="Why the row was refused (errors only)")
    message: str | None
    on_hand: int | None = Field(description="The count now stored (ok rows)")
    previous_on_hand: int | None

    @classmethod
    def from_domain(cls, row: ImportRow) -> StockImportRowRead:
        return cls(
            row=row.row,
            sku=row.sku,
            warehouse=row.warehouse,
            status="ok" if row.status == "ok" else "error",
            code=row.code,
            message=row.message,
            on_hand=row.on_hand,
            previous_on_hand=row.previous_on_hand,
        )


class StockImportReportRead(BaseModel):
    total: int
    applied: int
    failed: int
    rows: list[StockImportRowRead]

    @classmethod
    def from_domain(cls, report: ImportReport) -> StockImportReportRead:
        return cls(
            total=report.total,
            applied=report.applied,
            failed=report.failed,
            rows=[StockImportRowRead.from_domain(row) for row in report.rows],
        )


class StockExportRow(BaseModel):
    sku: str
    warehouse: str
    on_hand: int
    reserved: int
    available: int


class StockThreshold(BaseModel):
    model_config = ConfigDict(extra="forbid")
    variant_id: uuid.UUID
    warehouse_id: uuid.UUID | None = None
    threshold: int = Field(ge=0, le=1_000_000_000)


class WarehouseList(Page[WarehouseRead]):
    """Comes whole: `next_cursor` is always null."""


class StockLevelPage(Page[StockLevelRead]):
    pass


class MovementPage(Page[MovementRead]):
    pass
