"""The signed-in user's address book."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from api.access import CurrentUser
from api.deps import SessionDep
from api.schemas.addresses import AddressCreate, AddressList, AddressRead, AddressUpdate
from commerce.accounts import addresses
from models import AddressKind

router = APIRouter(prefix="/me/addresses", tags=["addresses"])


@router.get("")
async def list_addresses(
    principal: CurrentUser, session: SessionDep, kind: AddressKind | None = None
) -> AddressList:
    """Defaults first, then the most recently updated."""
    found = await addresses.list_addresses(session, user_id=principal.user_id, kind=kind)
    return AddressList.whole([AddressRead.from_domain(address) for address in found])


@router.post("", status_code=201)
async def create_address(
    body: AddressCreate, principal: CurrentUser, session: SessionDep
) -> AddressRead:
    """The first address of a kind becomes its default."""
    address = await addresses.create_address(
        session,
        user_id=principal.user_id,
        data=body.to_domain(),
        kind=body.kind,
        is_default=body.is_default,
    )
    return AddressRead.from_domain(address)


@router.get("/{address_id}")
async def get_address(
    address_id: uuid.UUID, principal: CurrentUser, session: SessionDep
) -> AddressRead:
    address = await addresses.get_address(session, user_id=principal.user_id, address_id=address_id)
    return AddressRead.from_domain(address)


@router.patch("/{address_id}")
async def update_address(
    address_id: uuid.UUID, body: AddressUpdate, principal: CurrentUser, session: SessionDep
) -> AddressRead:
    address = await addresses.update_address(
        session,
        user_id=principal.user_id,
        address_id=address_id,
        changes=body.model_dump(exclude_unset=True),
    )
    return AddressRead.from_domain(address)


@router.delete("/{address_id}", status_code=204)
async def delete_address(
    address_id: uuid.UUID, principal: CurrentUser, session: SessionDep
) -> Response:
    """Deleting the default makes the most recently updated address of its kind the default."""
    await addresses.delete_address(session, user_id=principal.user_id, address_id=address_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{address_id}/default")
async def set_default_address(
    address_id: uuid.UUID, principal: CurrentUser, session: SessionDep
) -> AddressRead:
    """Make this the default of its kind, in place of the previous one."""
    address = await addresses.set_default(session, user_id=principal.user_id, address_id=address_id)
    return AddressRead.from_domain(address)
