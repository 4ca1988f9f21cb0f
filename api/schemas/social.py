"""Request and response schemas of ``api/routes/social.py``."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.pagination import Page
from models import Identity


class ProviderRead(BaseModel):
    name: str
    kind: str


class SocialStart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    redirect_uri: str = Field(
        min_length=1, max_length=2000, description="One of EMPORIUM_OAUTH_REDIRECT_URIS"
    )


class SocialStarted(BaseModel):
    authorization_url: str = Field(description="Send the browser here")
    state: str = Field(description="Comes back on the redirect; send it to the callback")


class SocialCallback(BaseModel):
    """What the provider put on the redirect to the storefront's callback page."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=2000)
    state: str = Field(min_length=1, max_length=200)


class IdentityRead(BaseModel):
    id: uuid.UUID
    provider: str
    email: str | None
    created_at: datetime

    @classmethod
    def from_domain(cls, identity: Identity) -> IdentityRead:
        return cls(
            id=identity.id,
            provider=identity.provider,
            email=identity.email,
            created_at=identity.created_at,
        )


class ProviderList(Page[ProviderRead]):
    """Comes whole: `next_cursor` is always null."""


class IdentityList(Page[IdentityRead]):
    """Comes whole: `next_cursor` is always null."""
