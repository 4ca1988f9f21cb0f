"""A vendor's shipping tables: zones, methods and rates. Managers write, staff read.

Quotes have no route: checkout calls ``commerce.fulfilment.shipping.quote`` for each vendor
in the cart.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, Response, status

from api.access import VendorManager, VendorStaff
from api.deps import SessionDep
from api.errors import fields_named
from api.schemas.tax_shipping import (
    ShippingMethodCreate,
    ShippingMethodList,
    ShippingMethodRead,
    ShippingMethodUpdate,
    ShippingRateCreate,
    ShippingRateList,
    ShippingRateRead,
    ShippingRateUpdate,
    ShippingZoneCreate,
    ShippingZoneList,
    ShippingZoneRead,
    ShippingZoneUpdate,
)
from commerce.fulfilment import shipping

#: The domain's names of a rate's money, and where they are in a request.
RATE_FIELDS = {
    "amount": ("price", "amount"),
    "currency": ("price", "currency"),
    "free_over_amount": ("free_over", "amount"),
}

router = APIRouter(tags=["shipping"])

PREFIX = "/vendors/{vendor_id}/shipping"


# --- zones ------------------------------------------------------------------------------------


@router.get(f"{PREFIX}/zones")
async def list_zones(member: VendorStaff, session: SessionDep) -> ShippingZoneList:
    zones = await shipping.list_zones(session, vendor_id=member.vendor_id)
    return ShippingZoneList.whole([ShippingZoneRead.from_domain(zone) for zone in zones])


@router.post(f"{PREFIX}/zones", status_code=201)
async def create_zone(
    body: ShippingZoneCreate, member: VendorManager, session: SessionDep
) -> ShippingZoneRead:
    zone = await shipping.create_zone(
        session, vendor_id=member.vendor_id, name=body.name, countries=body.countries
    )
    return ShippingZoneRead.from_domain(zone)


@router.patch(f"{PREFIX}/zones/{{zone_id}}")
async def update_zone(
    zone_id: uuid.UUID, body: ShippingZoneUpdate, member: VendorManager, session: SessionDep
) -> ShippingZoneRead:
    zone = await shipping.update_zone(
        session,
        vendor_id=member.vendor_id,
        zone_id=zone_id,
        changes=body.model_dump(exclude_unset=True),
    )
    return ShippingZoneRead.from_domain(zone)


@router.delete(f"{PREFIX}/zones/{{zone_id}}", status_code=204)
async def delete_zone(zone_id: uuid.UUID, member: VendorManager, session: SessionDep) -> Response:
    """Deletes the zone's rates with it."""
    await shipping.delete_zone(session, vendor_id=member.vendor_id, zone_id=zone_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- methods ----------------------------------------------------------------------------------


@router.get(f"{PREFIX}/methods")
async def list_methods(member: VendorStaff, session: SessionDep) -> ShippingMethodList:
    methods = await shipping.list_methods(session, vendor_id=member.vendor_id)
    return ShippingMethodList.whole([ShippingMethodRead.from_domain(method) for method in methods])


@router.post(f"{PREFIX}/methods", status_code=201)
async def create_method(
    body: ShippingMethodCreate, member: VendorManager, session: SessionDep
) -> ShippingMethodRead:
    method = await shipping.create_method(
        session,
        vendor_id=member.vendor_id,
        code=body.code,
        name=body.name,
        handling_days=body.handling_days,
        transit_days_min=body.transit_days_min,
        transit_days_max=body.transit_days_max,
        is_active=body.is_active,
    )
    return ShippingMethodRead.from_domain(method)


@router.patch(f"{PREFIX}/methods/{{method_id}}")
async def update_method(
    method_id: uuid.UUID, body: ShippingMethodUpdate, member: VendorManager, session: SessionDep
) -> ShippingMethodRead:
    method = await shipping.update_method(
        session,
        vendor_id=member.vendor_id,
        method_id=method_id,
        changes=body.model_dump(exclude_unset=True),
    )
    return ShippingMethodRead.from_domain(method)


@router.delete(f"{PREFIX}/methods/{{method_id}}", status_code=204)
async def delete_method(
    method_id: uuid.UUID, member: VendorManager, session: SessionDep
) -> Response:
    """Deletes the method's rates with it; to pause a method, set ``is_active`` instead."""
    await shipping.delete_method(session, vendor_id=member.vendor_id, method_id=method_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- rates ------------------------------------------------------------------------------------


@router.get(f"{PREFIX}/rates")
async def list_rates(
    member: VendorStaff,
    session: SessionDep,
    method_id: uuid.UUID | None = Query(default=None),
    zone_id: uuid.UUID | None = Query(default=None),
) -> ShippingRateList:
    rates = await shipping.list_rates(
        session, vendor_id=member.vendor_id, method_id=method_id, zone_id=zone_id
    )
    return ShippingRateList.whole([ShippingRateRead.from_domain(rate) for rate in rates])


@router.post(f"{PREFIX}/rates", status_code=201)
async def create_rate(
    body: ShippingRateCreate, member: VendorManager, session: SessionDep
) -> ShippingRateRead:
    """Weight bands are half-open (min included, max excluded) and may not overlap within a
    method and zone (409 ``overlapping_rates``)."""
    with fields_named(RATE_FIELDS):
        rate = await shipping.create_rate(
            session,
            vendor_id=member.vendor_id,
            method_id=body.method_id,
            zone_id=body.zone_id,
            min_weight_grams=body.min_weight_grams,
            max_weight_grams=body.max_weight_grams,
            amount=body.price.amount,
            currency=body.price.currency,
            free_over_amount=body.free_over.amount if body.free_over else None,
            free_over_currency=body.free_over.currency if body.free_over else None,
        )
    return ShippingRateRead.from_domain(rate)


@router.patch(f"{PREFIX}/rates/{{rate_id}}")
async def update_rate(
    rate_id: uuid.UUID, body: ShippingRateUpdate, member: VendorManager, session: SessionDep
) -> ShippingRateRead:
    with fields_named(RATE_FIELDS):
        rate = await shipping.update_rate(
            session, vendor_id=member.vendor_id, rate_id=rate_id, changes=body.changes()
        )
    return ShippingRateRead.from_domain(rate)


@router.delete(f"{PREFIX}/rates/{{rate_id}}", status_code=204)
async def delete_rate(rate_id: uuid.UUID, member: VendorManager, session: SessionDep) -> Response:
    await shipping.delete_rate(session, vendor_id=member.vendor_id, rate_id=rate_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
