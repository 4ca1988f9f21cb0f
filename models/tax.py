"""Tax rates by destination and tax class."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UUIDPrimaryKey


class TaxRate(UUIDPrimaryKey, Base):
    """Rate for a destination (country, optionally a region) and a product tax class."""

    __tablename__ = "tax_rates"
    __table_args__ = (
        Index(
            "uq_tax_rates_destination_class",
            "country",
            text("coalesce(region, '')"),
            "tax_class",
            unique=True,
        ),
        CheckConstraint("rate_bp BETWEEN 0 AND 10000", name="rate_range"),
        CheckConstraint("country ~ '^[A-Z]{2}$'", name="country_iso3166"),
    )

    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str | None] = mapped_column(String(100))
    tax_class: Mapped[str] = mapped_column(String(40))
    rate_bp: Mapped[int] = mapped_column(Integer)
