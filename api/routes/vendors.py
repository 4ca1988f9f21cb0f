"""Selling on Emporium: applying, the vendor's profile and staff, and admin oversight."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, Response, status

from api.access import AdminUser, CurrentUser, VendorManager, VendorOwner, VendorStaff, VerifiedUser
from api.deps import NowDep, SessionDep, SettingsDep
from api.schemas.pagination import PageCursor, PageLimit
from api.schemas.vendors import (
    InvitationAccept,
    InvitationCreate,
    InvitationRead,
    MembershipRoleChange,
    MyVendorList,
    MyVendorRead,
    StaffList,
    StaffRead,
    Suspension,
    VendorApply,
    VendorPage,
    VendorRead,
    VendorUpdate,
)
from commerce.accounts.users import get_user
from commerce.catalog import vendors
from models import VendorStatus

router = APIRouter(tags=["vendors"])


@router.post("/vendors", status_code=201)
async def apply(body: VendorApply, principal: VerifiedUser, session: SessionDep) -> VendorRead:
    """Apply to sell. You become the vendor's owner; admins approve the application."""
    vendor = await vendors.apply(
        session,
        user=principal.user,
        name=body.name,
        description=body.description,
        contact_email=body.contact_email,
    )
    return VendorRead.from_domain(vendor)


@router.get("/me/vendors")
async def my_vendors(principal: CurrentUser, session: SessionDep) -> MyVendorList:
    found = await vendors.memberships_of(session, user_id=principal.user_id)
    return MyVendorList.whole(
        [MyVendorRead(vendor=VendorRead.from_domain(v), role=role) for v, role in found]
    )


@router.get("/vendors/{vendor_id}")
async def read_vendor(member: VendorStaff, session: SessionDep) -> VendorRead:
    return VendorRead.from_domain(await vendors.get_vendor(session, vendor_id=member.vendor_id))


@router.patch("/vendors/{vendor_id}")
async def update_vendor(
    body: VendorUpdate, member: VendorManager, session: SessionDep
) -> VendorRead:
    vendor = await vendors.update_profile(
        session, vendor_id=member.vendor_id, changes=body.model_dump(exclude_unset=True)
    )
    return VendorRead.from_domain(vendor)


@router.get("/vendors/{vendor_id}/staff")
async def list_staff(member: VendorStaff, session: SessionDep) -> StaffList:
    staff = await vendors.list_staff(session, vendor_id=member.vendor_id)
    return StaffList.whole([StaffRead.from_domain(user, role) for user, role in staff])


@router.post("/vendors/{vendor_id}/invitations", status_code=201)
async def invite(
    body: InvitationCreate,
    member: VendorOwner,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> InvitationRead:
    invitation = await vendors.invite(
        session,
        settings=settings,
        vendor_id=member.vendor_id,
        invited_by=member.user_id,
        email=body.email,
        role=body.role,
        now=now,
    )
    return InvitationRead(
        id=invitation.id,
        email=invitation.email_key,
        role=invitation.role,
        expires_at=invitation.expires_at,
    )


@router.post("/vendor-invitations/accept")
async def accept_invitation(
    body: InvitationAccept,
    principal: VerifiedUser,
    session: SessionDep,
    now: NowDep,
) -> MyVendorRead:
    vendor, role = await vendors.accept_invitation(
        session, user=principal.user, token=body.token, now=now
    )
    return MyVendorRead(vendor=VendorRead.from_domain(vendor), role=role)


@router.put("/vendors/{vendor_id}/staff/{user_id}")
async def change_role(
    user_id: uuid.UUID, body: MembershipRoleChange, member: VendorOwner, session: SessionDep
) -> StaffRead:
    membership = await vendors.change_role(
        session, vendor_id=member.vendor_id, user_id=user_id, role=body.role
    )
    user = await get_user(session, membership.user_id)
    return StaffRead.from_domain(user, membership.role)


@router.delete("/vendors/{vendor_id}/staff/{user_id}", status_code=204)
async def remove_staff(user_id: uuid.UUID, member: VendorOwner, session: SessionDep) -> Response:
    await vendors.remove_staff(session, vendor_id=member.vendor_id, user_id=user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- admin --------------------------------------------------------------------------------


@router.get("/admin/vendors")
async def admin_list_vendors(
    _: AdminUser,
    session: SessionDep,
    status_filter: VendorStatus | None = Query(default=None, alias="status"),
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> VendorPage:
    """Vendors, newest first; ``status=pending`` is the queue of applications."""
    page = await vendors.list_vendors(session, status=status_filter, limit=limit, cursor=cursor)
    return VendorPage(
        items=[VendorRead.from_domain(v) for v in page.items], next_cursor=page.next_cursor
    )


@router.post("/admin/vendors/{vendor_id}/approve")
async def approve(
    vendor_id: uuid.UUID, _: AdminUser, session: SessionDep, now: NowDep
) -> VendorRead:
    return VendorRead.from_domain(await vendors.approve(session, vendor_id=vendor_id, now=now))


@router.post("/admin/vendors/{vendor_id}/suspend")
async def suspend(
    vendor_id: uuid.UUID,
    body: Suspension,
    _: AdminUser,
    session: SessionDep,
    now: NowDep,
) -> VendorRead:
    """The vendor's products disappear from the storefront and cannot be bought."""
    vendor = await vendors.suspend(session, vendor_id=vendor_id, reason=body.reason, now=now)
    return VendorRead.from_domain(vendor)


@router.post("/admin/vendors/{vendor_id}/reinstate")
async def reinstate(
    vendor_id: uuid.UUID, _: AdminUser, session: SessionDep, now: NowDep
) -> VendorRead:
    return VendorRead.from_domain(await vendors.reinstate(session, vendor_id=vendor_id, now=now))
