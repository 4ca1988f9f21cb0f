"""What waits for a vendor now: parts to accept and to ship, returns to decide, variants low
or out of stock, and its money: owed, payable at the next run, held back, and when more
becomes payable."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.catalog.inventory import StockStatus, stock_status
from commerce.finance import ledger
from models import (
    InventoryLevel,
    Product,
    ProductStatus,
    ReturnRequest,
    Shipment,
    Variant,
)
from workflows.contracts.returns import ReturnStatus
from workflows.contracts.shipments import ShipmentStatus

#: Parts the vendor has accepted but not handed to a carrier yet.
TO_SHIP = (ShipmentStatus.ACCEPTED, ShipmentStatus.LABEL_CREATED)
#: The variants listed as low or out of stock, lowest first.
MAX_STOCK_ITEMS = 20


@dataclass(frozen=True)
class StockAlert:
    variant_id: uuid.UUID
    product_id: uuid.UUID
    sku: str
    title: str
    available: int
    low_stock_threshold: int

    @property
    def status(self) -> StockStatus:
        return stock_status(self.available, self.low_stock_threshold)


@dataclass(frozen=True)
class VendorOverview:
    parts_to_accept: int
    parts_to_ship: int
    returns_to_decide: int
    low_stock: int
    out_of_stock: int
    stock_alerts: list[StockAlert]
    money: list[ledger.Books]  # per currency


async def vendor_overview(
    session: AsyncSession, *, vendor_id: uuid.UUID, now: datetime
) -> VendorOverview:
    parts = dict(
        (
            await session.execute(
                select(Shipment.status, func.count())
                .where(
                    Shipment.vendor_id == vendor_id,
                    Shipment.status.in_([ShipmentStatus.AWAITING_ACCEPTANCE, *TO_SHIP]),
                )
                .group_by(Shipment.status)
            )
        ).all()
    )
    returns = await session.scalar(
        select(func.count())
        .select_from(ReturnRequest)
        .where(ReturnRequest.vendor_id == vendor_id, ReturnRequest.status == ReturnStatus.REQUESTED)
    )
    available = func.sum(InventoryLevel.on_hand - InventoryLevel.reserved)
    threshold = func.sum(InventoryLevel.low_stock_threshold)
    short = (
        select(
            Variant.id,
            Variant.product_id,
            Variant.sku,
            Product.title,
            available.label("available"),
            threshold.label("threshold"),
        )
        .join(Product, Product.id == Variant.product_id)
        .join(InventoryLevel, InventoryLevel.variant_id == Variant.id)
        .where(Variant.vendor_id == vendor_id, Product.status != ProductStatus.ARCHIVED)
        .group_by(Variant.id, Variant.product_id, Variant.sku, Product.title)
        .having(available <= threshold)
    ).subquery()
    counts = (
        await session.execute(
            select(
                func.count().filter(short.c.available <= 0),
                func.count().filter(short.c.available > 0),
            ).select_from(short)
        )
    ).one()
    alerts = [
        StockAlert(
            row.id, row.product_id, row.sku, row.title, int(row.available), int(row.threshold)
        )
        for row in await session.execute(
            select(short).order_by(short.c.available, short.c.sku).limit(MAX_STOCK_ITEMS)
        )
    ]
    money = await ledger.books(session, vendor_id=vendor_id, now=now)
    return VendorOverview(
        parts_to_accept=int(parts.get(ShipmentStatus.AWAITING_ACCEPTANCE, 0)),
        parts_to_ship=sum(int(parts.get(status, 0)) for status in TO_SHIP),
        returns_to_decide=int(returns or 0),
        out_of_stock=int(counts[0]),
        low_stock=int(counts[1]),
        stock_alerts=alerts,
        money=money,
    )
