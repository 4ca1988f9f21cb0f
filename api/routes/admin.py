"""Administration: platform roles, and the mail outbox (how development reads its email)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query
from sqlalchemy import select

from api.access import AdminUser
from api.deps import SessionDep
from api.schemas.accounts import UserRead
from api.schemas.admin import (
    MailPage,
    MailRead,
    PlatformRoleChange,
)
from api.schemas.pagination import PageCursor, PageLimit
from commerce.accounts.users import get_user
from core.pagination import newest_first
from models import MailOutbox

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/mail-outbox")
async def list_mail(
    _: AdminUser,
    session: SessionDep,
    to: str | None = Query(default=None, max_length=320),
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> MailPage:
    """Newest first. In development (no SMTP) this is where verification and reset links
    are read."""
    statement = select(MailOutbox)
    if to is not None:
        statement = statement.where(MailOutbox.to_address == to)
    page = await newest_first(
        session,
        statement,
        created_at=MailOutbox.created_at,
        id=MailOutbox.id,
        scope="mail-outbox",
        cursor=cursor,
        limit=limit,
    )
    return MailPage(
        items=[MailRead.model_validate(row) for row in page.items], next_cursor=page.next_cursor
    )


@router.put("/users/{user_id}/role")
async def set_role(
    user_id: uuid.UUID, body: PlatformRoleChange, _: AdminUser, session: SessionDep
) -> UserRead:
    user = await get_user(session, user_id)
    user.platform_role = body.role
    return UserRead.from_domain(user)
