"""Request and response bodies of the admin tax-rate routes and a vendor's shipping tables.

Bodies check only shapes and types; the services check values (country codes, ranges, bands),
so a bad value answers its domain code (``invalid_tax_rate``, ``invalid_shipping_rate``, ...)
rather than the generic ``validation_error``.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.money import Money, money_or_none
from api.schemas.pagination import Page
from models import ShippingMethod, ShippingRate, ShippingZone, TaxRate

# --- tax rates --------------------------------------------------------------------------------


class TaxRateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    country: str = Field(description="ISO 3166-1 alpha-2, e.g. DE")
    region: str | None = Field(
        default=None,
        description="ISO 3166-2 subdivision code, bare (CA) or prefixed (US-CA); none: the "
        "whole country. A region's rate replaces the country's rate of the same class.",
    )
    tax_class: str = Field(description="e.g. standard, reduced: ^[a-z0-9_-]{1,40}$")
    rate_bp: int = Field(description="Basis points, 0..10000 (2000 = 20%)")


class TaxRateUpdate(BaseModel):
    """Only the fields sent change; ``region: null`` makes the rate country-wide."""

    model_config = ConfigDict(extra="forbid")
    country: str | None = None
    region: str | None = None
    tax_class: str | None = None
    rate_bp: int | None = None


class TaxRateRead(BaseModel):
    id: uuid.UUID
    country: str
    region: str | None
    tax_class: str
    rate_bp: int

    @classmethod
    def from_domain(cls, rate: TaxRate) -> TaxRateRead:
        return cls(
            id=rate.id,
            country=rate.country,
            region=rate.region,
            tax_class=rate.tax_class,
            rate_bp=rate.rate_bp,
        )


# --- shipping zones ---------------------------------------------------------------------------


class ShippingZoneCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="Unique per vendor, 1..100 characters")
    countries: list[str] = Field(description="ISO 3166-1 alpha-2 codes, at least one")


class ShippingZoneUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    countries: list[str] | None = None


class ShippingZoneRead(BaseModel):
    id: uuid.UUID
    vendor_id: uuid.UUID
    name: str
    countries: list[str]

    @classmethod
    def from_domain(cls, zone: ShippingZone) -> ShippingZoneRead:
        return cls(
            id=zone.id, vendor_id=zone.vendor_id, name=zone.name, countries=list(zone.countries)
        )


# --- shipping methods -------------------------------------------------------------------------


class ShippingMethodCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(description="Unique per vendor: ^[a-z0-9_-]{1,40}$, e.g. express")
    name: str = Field(description="What shoppers see, 1..100 characters")
    handling_days: int = Field(default=1, description="Business days before the parcel leaves")
    transit_days_min: int = Field(description="Business days on the way, at best")
    transit_days_max: int = Field(description="Business days on the way, at worst (>= min)")
    is_active: bool = True


class ShippingMethodUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str | None = None
    name: str | None = None
    handling_days: int | None = None
    transit_days_min: int | None = None
    transit_days_max: int | None = None
    is_active: bool | None = None


class ShippingMethodRead(BaseModel):
    id: uuid.UUID
    vendor_id: uuid.UUID
    code: str
    name: str
    handling_days: int
    transit_days_min: int
    transit_days_max: int
    is_active: bool

    @classmethod
    def from_domain(cls, method: ShippingMethod) -> ShippingMethodRead:
        return cls(
            id=method.id,
            vendor_id=method.vendor_id,
            code=method.code,
            name=method.name,
            handling_days=method.handling_days,
            transit_days_min=method.transit_days_min,
            transit_days_max=method.transit_days_max,
            is_active=method.is_active,
        )


# --- shipping rates ---------------------------------------------------------------------------

_BAND = (
    "Weight bands are half-open: min_weight_grams included, max_weight_grams excluded "
    "(none: no limit), and may not overlap within a method and zone."
)


class ShippingRateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"description": _BAND})
    method_id: uuid.UUID
    zone_id: uuid.UUID
    min_weight_grams: int = Field(default=0, description="Included")
    max_weight_grams: int | None = Field(default=None, description="Excluded; none: no limit")
    price: Money = Field(description="What the band costs the shopper, 0 or more")
    free_over: Money | None = Field(
        default=None,
        description="Free when the vendor's subtotal reaches this; in the price's currency",
    )


class ShippingRateUpdate(BaseModel):
    """Only the fields sent change; ``null`` clears ``max_weight_grams`` or ``free_over``.
    To move a rate to another method or zone, create a new one."""

    model_config = ConfigDict(extra="forbid")
    min_weight_grams: int | None = None
    max_weight_grams: int | None = None
    price: Money | None = None
    free_over: Money | None = None

    def changes(self) -> dict[str, Any]:
        """The domain's fields for what was sent."""
        sent = self.model_fields_set
        changes: dict[str, Any] = {
            name: getattr(self, name)
            for name in ("min_weight_grams", "max_weight_grams")
            if name in sent
        }
        if "price" in sent:
            changes["amount"] = self.price.amount if self.price else None
            changes["currency"] = self.price.currency if self.price else None
        if "free_over" in sent:
            changes["free_over_amount"] = self.free_over.amount if self.free_over else None
            if self.free_over is not None:
                changes["free_over_currency"] = self.free_over.currency
        return changes


class ShippingRateRead(BaseModel):
    id: uuid.UUID
    method_id: uuid.UUID
    zone_id: uuid.UUID
    min_weight_grams: int
    max_weight_grams: int | None
    price: Money
    free_over: Money | None

    @classmethod
    def from_domain(cls, rate: ShippingRate) -> ShippingRateRead:
        return cls(
            id=rate.id,
            method_id=rate.method_id,
            zone_id=rate.zone_id,
            min_weight_grams=rate.min_weight_grams,
            max_weight_grams=rate.max_weight_grams,
            price=Money.of(rate.amount, rate.currency),
            free_over=money_or_none(rate.free_over_amount, rate.currency),
        )


class ShippingZoneList(Page[ShippingZoneRead]):
    """Comes whole: `next_cursor` is always null."""


class ShippingMethodList(Page[ShippingMethodRead]):
    """Comes whole: `next_cursor` is always null."""


class ShippingRateList(Page[ShippingRateRead]):
    """Comes whole: `next_cursor` is always null."""


class TaxRateList(Page[TaxRateRead]):
    """Comes whole: `next_cursor` is always null."""
