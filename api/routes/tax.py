"""The platform's tax rates, kept by admins; checkout reads them through commerce.checkout.tax."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, Response, status

from api.access import AdminUser
from api.deps import SessionDep
from api.schemas.tax_shipping import TaxRateCreate, TaxRateList, TaxRateRead, TaxRateUpdate
from commerce.checkout import tax

router = APIRouter(prefix="/admin/tax-rates", tags=["admin"])


@router.get("")
async def list_tax_rates(
    _: AdminUser,
    session: SessionDep,
    country: str | None = Query(default=None, max_length=2),
    tax_class: str | None = Query(default=None, max_length=40),
) -> TaxRateList:
    rates = await tax.list_rates(session, country=country, tax_class=tax_class)
    return TaxRateList.whole([TaxRateRead.from_domain(rate) for rate in rates])


@router.post("", status_code=201)
async def create_tax_rate(body: TaxRateCreate, _: AdminUser, session: SessionDep) -> TaxRateRead:
    rate = await tax.create_rate(
        session,
        country=body.country,
        region=body.region,
        tax_class=body.tax_class,
        rate_bp=body.rate_bp,
    )
    return TaxRateRead.from_domain(rate)


@router.patch("/{rate_id}")
async def update_tax_rate(
    rate_id: uuid.UUID, body: TaxRateUpdate, _: AdminUser, session: SessionDep
) -> TaxRateRead:
    rate = await tax.update_rate(
        session, rate_id=rate_id, changes=body.model_dump(exclude_unset=True)
    )
    return TaxRateRead.from_domain(rate)


@router.delete("/{rate_id}", status_code=204)
async def delete_tax_rate(rate_id: uuid.UUID, _: AdminUser, session: SessionDep) -> Response:
    await tax.delete_rate(session, rate_id=rate_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
