"""Vendors: the shops of the marketplace."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    DateTime,
    Integer,
    Numeric,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamps, UUIDPrimaryKey, pg_enum


class VendorStatus(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Vendor(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "vendors"

    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[VendorStatus] = mapped_column(
        pg_enum(VendorStatus, "vendor_status"), default=VendorStatus.PENDING
    )
    contact_email: Mapped[str | None] = mapped_column(String(320))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    suspension_reason: Mapped[str | None] = mapped_column(String(500))
    # Kept by the review service: the average over the vendor's visible product reviews.
    rating_avg: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    rating_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    return_window_days: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    # IANA name: the vendor's days, weeks and months (analytics buckets) are in it.
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
