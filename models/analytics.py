"""The sales rollup the worker keeps (``commerce/analytics/rollup.py``): per vendor (and for
the whole platform) and currency, each UTC hour's figures, so reports over a year read
thousands of rows, not millions."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class SalesHour(Base):
    """One hour (UTC) of one vendor's sales in one currency; ``scope`` is the vendor's id, or
    the nil UUID for the whole platform (where an order of two vendors is one order)."""

    __tablename__ = "sales_hours"

    scope: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    orders: Mapped[int] = mapped_column(Integer)
    units: Mapped[int] = mapped_column(Integer)
    gross: Mapped[int] = mapped_column(BigInteger)
    commission: Mapped[int] = mapped_column(BigInteger)
    refunds: Mapped[int] = mapped_column(BigInteger)
    disputes: Mapped[int] = mapped_column(BigInteger)


class RollupState(Base):
    """How far the rollup goes: every hour before ``rolled_until`` is in ``sales_hours``."""

    __tablename__ = "rollup_state"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    rolled_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
