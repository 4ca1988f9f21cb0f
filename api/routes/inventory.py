"""A vendor's back office for stock: levels, adjustments, the movement log, warehouses, and
stock files in and out. Staff read; managers change. Another vendor's variants and
warehouses are 404, like anything that is not theirs."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response

from api.access import VendorManager, VendorStaff
from api.deps import SessionDep, read_body
from api.schemas.inventory import (
    MovementPage,
    MovementRead,
    StockAdjustment,
    StockExportRow,
    StockImportReportRead,
    StockImportRow,
    StockLevelPage,
    StockLevelRead,
    StockThreshold,
    WarehouseCreate,
    WarehouseList,
    WarehouseRead,
)
from api.schemas.pagination import PageCursor, PageLimit
from commerce.catalog import inventory
from models import MovementReason

router = APIRouter(tags=["inventory"])

_CSV = "text/csv"
_JSON = "application/json"


@router.get("/vendors/{vendor_id}/inventory")
async def list_inventory(
    staff: VendorStaff,
    session: SessionDep,
    variant_id: uuid.UUID | None = None,
    warehouse_id: uuid.UUID | None = None,
    limit: PageLimit = 100,
    cursor: PageCursor = None,
) -> StockLevelPage:
    """Stock per variant and warehouse, by SKU (the default warehouse first)."""
    page = await inventory.list_levels(
        session,
        vendor_id=staff.vendor_id,
        variant_id=variant_id,
        warehouse_id=warehouse_id,
        limit=limit,
        cursor=cursor,
    )
    return StockLevelPage(
        items=[StockLevelRead.from_domain(level) for level in page.items],
        next_cursor=page.next_cursor,
    )


@router.put("/vendors/{vendor_id}/inventory/threshold")
async def set_threshold(
    body: StockThreshold, manager: VendorManager, session: SessionDep
) -> StockLevelRead:
    """Set when a variant shows as "low stock" (in one warehouse; default: the default one)."""
    level = await inventory.set_low_stock_threshold(
        session,
        variant_id=body.variant_id,
        warehouse_id=body.warehouse_id,
        vendor_id=manager.vendor_id,
        threshold=body.threshold,
    )
    return StockLevelRead.from_domain(level)


@router.post("/vendors/{vendor_id}/inventory/adjustments")
async def adjust_stock(
    body: StockAdjustment, manager: VendorManager, session: SessionDep
) -> StockLevelRead:
    """Add or remove units (``delta``), or record a count (``on_hand``). Stock that is
    reserved for orders cannot be removed (409 ``insufficient_stock``)."""
    common: dict[str, Any] = {
        "variant_id": body.variant_id,
        "warehouse_id": body.warehouse_id,
        "vendor_id": manager.vendor_id,
        "reason": MovementReason(body.reason),
        "actor_user_id": manager.user_id,
        "note": body.note,
    }
    if body.delta is not None:
        level = await inventory.adjust(session, delta=body.delta, **common)
    else:
        assert body.on_hand is not None
        level = await inventory.set_on_hand(session, on_hand=body.on_hand, **common)
    return StockLevelRead.from_domain(level)


@router.get("/vendors/{vendor_id}/inventory/movements")
async def list_movements(
    staff: VendorStaff,
    session: SessionDep,
    variant_id: uuid.UUID | None = None,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> MovementPage:
    """The stock movement log, newest first."""
    page = await inventory.list_movements(
        session, vendor_id=staff.vendor_id, variant_id=variant_id, limit=limit, cursor=cursor
    )
    return MovementPage(
        items=[MovementRead.from_domain(movement) for movement in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/vendors/{vendor_id}/warehouses")
async def list_warehouses(staff: VendorStaff, session: SessionDep) -> WarehouseList:
    """The default first, then by code."""
    found = await inventory.list_warehouses(session, vendor_id=staff.vendor_id)
    return WarehouseList.whole([WarehouseRead.from_domain(warehouse) for warehouse in found])


@router.post("/vendors/{vendor_id}/warehouses", status_code=201)
async def create_warehouse(
    body: WarehouseCreate, manager: VendorManager, session: SessionDep
) -> WarehouseRead:
    warehouse = await inventory.create_warehouse(
        session,
        vendor_id=manager.vendor_id,
        code=body.code,
        name=body.name,
        is_default=body.is_default,
    )
    return WarehouseRead.from_domain(warehouse)


@router.post("/vendors/{vendor_id}/warehouses/{warehouse_id}/default")
async def set_default_warehouse(
    warehouse_id: uuid.UUID, manager: VendorManager, session: SessionDep
) -> WarehouseRead:
    """Stock changes without a warehouse go here, and reservations draw from it first."""
    warehouse = await inventory.set_default_warehouse(
        session, vendor_id=manager.vendor_id, warehouse_id=warehouse_id
    )
    return WarehouseRead.from_domain(warehouse)


@router.post(
    "/vendors/{vendor_id}/inventory/import",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                _CSV: {"schema": {"type": "string"}},
                _JSON: {"schema": {"type": "array", "items": StockImportRow.model_json_schema()}},
            },
        }
    },
)
async def import_stock(
    request: Request, manager: VendorManager, session: SessionDep
) -> StockImportReportRead:
    """Set on_hand from a stock file: CSV (header ``sku,warehouse,on_hand``) or a JSON array,
    up to 10,000 rows and 5 MB. Answers 200 with a report per row even when some rows were
    refused (they change nothing); 422 ``invalid_import_file`` if the file cannot be read."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in {_CSV, _JSON}:
        raise inventory.UnsupportedImportFormat(f"Send the file as {_CSV} or {_JSON}.")
    data = await read_body(
        request,
        limit=inventory.MAX_IMPORT_BYTES,
        too_large=inventory.ImportTooLarge(
            f"At most {inventory.MAX_IMPORT_BYTES // (1024 * 1024)} MB per file."
        ),
    )
    rows = (
        inventory.parse_stock_csv(data) if media_type == _CSV else inventory.parse_stock_json(data)
    )
    report = await inventory.import_stock(
        session, vendor_id=manager.vendor_id, rows=rows, actor_user_id=manager.user_id
    )
    return StockImportReportRead.from_domain(report)


@router.get(
    "/vendors/{vendor_id}/inventory/export",
    response_model=list[StockExportRow],
    responses={200: {"content": {_CSV: {"schema": {"type": "string"}}}}},
)
async def export_stock(
    staff: VendorStaff,
    session: SessionDep,
    file_format: Literal["csv", "json"] = Query(default="csv", alias="format"),
) -> Any:
    """Every variant's stock per warehouse; the CSV can be edited and imported back."""
    rows = await inventory.export_stock(session, vendor_id=staff.vendor_id)
    if file_format == "json":
        return rows
    return Response(
        inventory.stock_csv(rows),
        media_type=f"{_CSV}; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="stock.csv"'},
    )
