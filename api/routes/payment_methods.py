"""The signed-in user's saved payment methods (provider tokens, never card numbers)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from api.access import CurrentUser
from api.deps import NowDep, SessionDep
from api.schemas.addresses import PaymentMethodCreate, PaymentMethodList, PaymentMethodRead
from commerce.accounts import payment_methods

router = APIRouter(prefix="/me/payment-methods", tags=["payment methods"])


@router.get("")
async def list_payment_methods(principal: CurrentUser, session: SessionDep) -> PaymentMethodList:
    found = await payment_methods.list_methods(session, user_id=principal.user_id)
    return PaymentMethodList.whole([PaymentMethodRead.from_domain(method) for method in found])


@router.post("", status_code=201)
async def add_payment_method(
    body: PaymentMethodCreate,
    principal: CurrentUser,
    session: SessionDep,
    now: NowDep,
) -> PaymentMethodRead:
    """Saving a token again returns the method already saved."""
    method = await payment_methods.add_method(
        session,
        user_id=principal.user_id,
        provider=body.provider,
        provider_token=body.provider_token,
        brand=body.brand,
        last4=body.last4,
        exp_month=body.exp_month,
        exp_year=body.exp_year,
        now=now,
    )
    return PaymentMethodRead.from_domain(method)


@router.delete("/{method_id}", status_code=204)
async def delete_payment_method(
    method_id: uuid.UUID, principal: CurrentUser, session: SessionDep
) -> Response:
    await payment_methods.delete_method(session, user_id=principal.user_id, method_id=method_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
