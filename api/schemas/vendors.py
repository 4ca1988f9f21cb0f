"""Request and response bodies of the vendor routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.pagination import Page
from models import User, Vendor, VendorRole, VendorStatus


class VendorApply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=2, max_length=200)
    description: str = Field(default="", max_length=5000)
    contact_email: str | None = Field(
        default=None, max_length=320, json_schema_extra={"format": "email"}
    )


class VendorUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=2, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    contact_email: str | None = Field(
        default=None, max_length=320, json_schema_extra={"format": "email"}
    )
    time_zone: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="IANA time zone (`Europe/Berlin`): the vendor's days, weeks and months in "
        "analytics",
        examples=["Europe/Berlin"],
    )


class VendorRead(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    description: str
    status: VendorStatus
    contact_email: str | None
    rating_avg: Decimal | None
    rating_count: int
    approved_at: datetime | None
    suspended_at: datetime | None
    suspension_reason: str | None
    time_zone: str = Field(description="IANA time zone of the vendor's analytics")
    created_at: datetime

    @classmethod
    def from_domain(cls, vendor: Vendor) -> VendorRead:
        return cls(
            id=vendor.id,
            slug=vendor.slug,
            name=vendor.name,
            description=vendor.description,
            status=vendor.status,
            contact_email=vendor.contact_email,
            rating_avg=vendor.rating_avg,
            rating_count=vendor.rating_count,
            approved_at=vendor.approved_at,
            suspended_at=vendor.suspended_at,
            suspension_reason=vendor.suspension_reason,
            time_zone=vendor.time_zone,
            created_at=vendor.created_at,
        )


class MyVendorRead(BaseModel):
    vendor: VendorRead
    role: VendorRole


class Suspension(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=3, max_length=500)


class InvitationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=320, json_schema_extra={"format": "email"})
    role: Literal[VendorRole.MANAGER, VendorRole.STAFF, VendorRole.OWNER]


class InvitationRead(BaseModel):
    id: uuid.UUID
    email: str
    role: VendorRole
    expires_at: datetime


class InvitationAccept(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=200)


class StaffRead(BaseModel):
    user_id: uuid.UUID
    username: str
    email: str
    role: VendorRole

    @classmethod
    def from_domain(cls, user: User, role: VendorRole) -> StaffRead:
        return cls(user_id=user.id, username=user.username, email=user.email, role=role)


class MembershipRoleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: VendorRole


class MyVendorList(Page[MyVendorRead]):
    """Comes whole: `next_cursor` is always null."""


class StaffList(Page[StaffRead]):
    """Comes whole: `next_cursor` is always null."""


class VendorPage(Page[VendorRead]):
    pass
