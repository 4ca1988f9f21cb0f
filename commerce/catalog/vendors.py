"""Vendors: applying to sell, approval and suspension by admins, and their staff."""

from __future__ import annotations

import re
import secrets
import unicodedata
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.accounts.tokens import digest
from commerce.accounts.users import normalize_email
from commerce.errors import Conflict, DomainError, Forbidden, NotFound
from commerce.notifications import mail
from commerce.search.outbox import enqueue_reindex
from core.pagination import Page, newest_first
from core.settings import Settings
from models import (
    Product,
    User,
    Vendor,
    VendorInvitation,
    VendorMembership,
    VendorRole,
    VendorStatus,
    Warehouse,
)

MAX_VENDORS_PER_OWNER = 5
INVITATION_TTL = timedelta(days=7)


class VendorLimit(Conflict):
    code, title = "vendor_limit", "Too many vendors for one owner"


class InvalidTransition(Conflict):
    code, title = "invalid_vendor_transition", "The vendor cannot move to that status"


class InvalidInvitation(DomainError):
    status, code, title = 400, "invalid_invitation", "The invitation is invalid or has expired"


class AlreadyStaff(Conflict):
    code, title = "already_staff", "Already a member of this vendor's staff"


class LastOwner(Conflict):
    code, title = "last_owner", "A vendor must keep at least one owner"


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:60] or "vendor"


async def apply(
    session: AsyncSession,
    *,
    user: User,
    name: str,
    description: str,
    contact_email: str | None,
) -> Vendor:
    """A signed-in user applies to sell; they own the vendor, which waits for approval."""
    owned = await session.scalar(
        select(func.count())
        .select_from(VendorMembership)
        .where(VendorMembership.user_id == user.id, VendorMembership.role == VendorRole.OWNER)
    )
    if (owned or 0) >= MAX_VENDORS_PER_OWNER:
        raise VendorLimit(f"An owner may have at most {MAX_VENDORS_PER_OWNER} vendors.")
    base = slugify(name)
    slug = base
    while await session.scalar(select(Vendor.id).where(Vendor.slug == slug)) is not None:
        slug = f"{base}-{secrets.token_hex(3)}"
    vendor = Vendor(
        id=uuid.uuid4(),
        slug=slug,
        name=name.strip(),
        description=description.strip(),
        contact_email=normalize_email(contact_email)[0] if contact_email else user.email,
        status=VendorStatus.PENDING,
    )
    session.add(vendor)
    await session.flush()
    session.add_all(
        [
            Warehouse(vendor_id=vendor.id, code="main", name="Main warehouse", is_default=True),
            VendorMembership(vendor_id=vendor.id, user_id=user.id, role=VendorRole.OWNER),
        ]
    )
    await session.flush()
    return vendor


async def get_vendor(session: AsyncSession, *, vendor_id: uuid.UUID) -> Vendor:
    vendor = await session.get(Vendor, vendor_id)
    if vendor is None:
        raise NotFound("No such vendor.")
    return vendor


class InvalidTimeZone(DomainError):
    status, code, title = 422, "invalid_time_zone", "Unknown time zone"


def time_zone(name: str) -> str:
    """``name`` if it is an IANA time zone this machine knows (``Europe/Berlin``), else
    ``InvalidTimeZone``."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidTimeZone(f"{name!r} is not an IANA time zone, e.g. Europe/Berlin.") from None
    return name


async def update_profile(
    session: AsyncSession, *, vendor_id: uuid.UUID, changes: dict[str, str | None]
) -> Vendor:
    vendor = await get_vendor(session, vendor_id=vendor_id)
    if changes.get("name"):
        vendor.name = str(changes["name"]).strip()
    if "description" in changes:
        vendor.description = (changes["description"] or "").strip()
    if changes.get("contact_email"):
        vendor.contact_email = normalize_email(str(changes["contact_email"]))[0]
    if changes.get("time_zone"):
        vendor.time_zone = time_zone(str(changes["time_zone"]))
    await _reindex_products(session, vendor.id)  # the vendor's name shows in results
    return vendor


async def _reindex_products(session: AsyncSession, vendor_id: uuid.UUID) -> None:
    ids = (await session.scalars(select(Product.id).where(Product.vendor_id == vendor_id))).all()
    await enqueue_reindex(session, ids)


async def _set_status(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    allowed_from: set[VendorStatus],
    to: VendorStatus,
    reason: str | None = None,
    now: datetime,
) -> Vendor:
    vendor = await session.scalar(select(Vendor).where(Vendor.id == vendor_id).with_for_update())
    if vendor is None:
        raise NotFound("No such vendor.")
    if vendor.status not in allowed_from:
        raise InvalidTransition(f"The vendor is {vendor.status.value}.")
    vendor.status = to
    if to == VendorStatus.ACTIVE:
        vendor.approved_at = vendor.approved_at or now
        vendor.suspended_at = None
        vendor.suspension_reason = None
    elif to == VendorStatus.SUSPENDED:
        vendor.suspended_at = now
        vendor.suspension_reason = reason
    # Suspension hides every product of the vendor from the storefront and search at once;
    # reinstatement brings them back.
    await _reindex_products(session, vendor.id)
    return vendor


async def approve(session: AsyncSession, *, vendor_id: uuid.UUID, now: datetime) -> Vendor:
    return await _set_status(
        session,
        vendor_id=vendor_id,
        allowed_from={VendorStatus.PENDING},
        to=VendorStatus.ACTIVE,
        now=now,
    )


async def suspend(
    session: AsyncSession, *, vendor_id: uuid.UUID, reason: str, now: datetime
) -> Vendor:
    return await _set_status(
        session,
        vendor_id=vendor_id,
        allowed_from={VendorStatus.ACTIVE, VendorStatus.PENDING},
        to=VendorStatus.SUSPENDED,
        reason=reason,
        now=now,
    )


async def reinstate(session: AsyncSession, *, vendor_id: uuid.UUID, now: datetime) -> Vendor:
    return await _set_status(
        session,
        vendor_id=vendor_id,
        allowed_from={VendorStatus.SUSPENDED},
        to=VendorStatus.ACTIVE,
        now=now,
    )


async def list_vendors(
    session: AsyncSession, *, status: VendorStatus | None, limit: int, cursor: str | None = None
) -> Page[Vendor]:
    """Vendors, newest first, a page at a time."""
    statement = select(Vendor)
    if status is not None:
        statement = statement.where(Vendor.status == status)
    return await newest_first(
        session,
        statement,
        created_at=Vendor.created_at,
        id=Vendor.id,
        scope="vendors",
        cursor=cursor,
        limit=limit,
    )


async def memberships_of(
    session: AsyncSession, *, user_id: uuid.UUID
) -> list[tuple[Vendor, VendorRole]]:
    rows = await session.execute(
        select(Vendor, VendorMembership.role)
        .join(VendorMembership, VendorMembership.vendor_id == Vendor.id)
        .where(VendorMembership.user_id == user_id)
        .order_by(Vendor.name)
    )
    return [(vendor, role) for vendor, role in rows.all()]


# --- staff --------------------------------------------------------------------------------


async def invite(
    session: AsyncSession,
    *,
    settings: Settings,
    vendor_id: uuid.UUID,
    invited_by: uuid.UUID,
    email: str,
    role: VendorRole,
    now: datetime,
) -> VendorInvitation:
    """Email a single-use link; only the account with that (verified) address can accept."""
    vendor = await get_vendor(session, vendor_id=vendor_id)
    address, key = normalize_email(email)
    token = secrets.token_urlsafe(32)
    invitation = VendorInvitation(
        vendor_id=vendor.id,
        email_key=key,
        role=role,
        token_hash=digest(token),
        invited_by=invited_by,
        expires_at=now + INVITATION_TTL,
    )
    session.add(invitation)
    await session.flush()
    await mail.queue_mail(
        session,
        mail.vendor_invitation(
            to=address,
            vendor_name=vendor.name,
            role=role.value,
            token=token,
            storefront_url=settings.storefront_url,
            expires_days=INVITATION_TTL.days,
        ),
    )
    return invitation


async def accept_invitation(
    session: AsyncSession,
    *,
    user: User,
    token: str,
    now: datetime,
) -> tuple[Vendor, VendorRole]:
    invitation = await session.scalar(
        select(VendorInvitation)
        .where(VendorInvitation.token_hash == digest(token))
        .with_for_update()
    )
    if invitation is None or invitation.accepted_at is not None or invitation.expires_at <= now:
        raise InvalidInvitation("Ask the vendor's owner for a new invitation.")
    # The link is bound to the invited address: a forwarded link is useless to others.
    if invitation.email_key != user.email_key or user.email_verified_at is None:
        raise Forbidden("Sign in with the (verified) email address the invitation was sent to.")
    existing = await session.get(VendorMembership, (invitation.vendor_id, user.id))
    if existing is not None:
        raise AlreadyStaff()
    invitation.accepted_at = now
    session.add(
        VendorMembership(vendor_id=invitation.vendor_id, user_id=user.id, role=invitation.role)
    )
    await session.flush()
    vendor = await get_vendor(session, vendor_id=invitation.vendor_id)
    return vendor, invitation.role


async def list_staff(
    session: AsyncSession, *, vendor_id: uuid.UUID
) -> list[tuple[User, VendorRole]]:
    rows = await session.execute(
        select(User, VendorMembership.role)
        .join(VendorMembership, VendorMembership.user_id == User.id)
        .where(VendorMembership.vendor_id == vendor_id)
        .order_by(User.username)
    )
    return [(user, role) for user, role in rows.all()]


async def _owners(session: AsyncSession, vendor_id: uuid.UUID) -> int:
    return (
        await session.scalar(
            select(func.count())
            .select_from(VendorMembership)
            .where(
                VendorMembership.vendor_id == vendor_id,
                VendorMembership.role == VendorRole.OWNER,
            )
        )
        or 0
    )


async def _membership(
    session: AsyncSession, vendor_id: uuid.UUID, user_id: uuid.UUID
) -> VendorMembership:
    # Lock the vendor's memberships: two owners demoting each other at once must not leave
    # the vendor with none.
    await session.execute(
        select(VendorMembership.user_id)
        .where(VendorMembership.vendor_id == vendor_id)
        .with_for_update()
    )
    membership = await session.get(VendorMembership, (vendor_id, user_id))
    if membership is None:
        raise NotFound("No such staff member.")
    return membership


async def change_role(
    session: AsyncSession, *, vendor_id: uuid.UUID, user_id: uuid.UUID, role: VendorRole
) -> VendorMembership:
    membership = await _membership(session, vendor_id, user_id)
    if (
        membership.role == VendorRole.OWNER
        and role != VendorRole.OWNER
        and await _owners(session, vendor_id) == 1
    ):
        raise LastOwner("Make someone else an owner first.")
    membership.role = role
    return membership


async def remove_staff(session: AsyncSession, *, vendor_id: uuid.UUID, user_id: uuid.UUID) -> None:
    membership = await _membership(session, vendor_id, user_id)
    if membership.role == VendorRole.OWNER and await _owners(session, vendor_id) == 1:
        raise LastOwner("Make someone else an owner first.")
    await session.delete(membership)
