"""Request and response schemas of ``api/routes/admin.py``."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from api.schemas.pagination import Page
from models import PlatformRole


class MailRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    to_address: str
    subject: str
    body_text: str
    template: str
    created_at: datetime
    sent_at: datetime | None


class MailPage(Page[MailRead]):
    pass


class PlatformRoleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: PlatformRole | None
