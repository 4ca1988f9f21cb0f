"""Small async factories for test data, driven through the public API where it matters."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from urllib.parse import unquote

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import MailOutbox, PlatformRole, User

STRONG_PASSWORD = "plum-Orbit-vessel-42-quietly"


@dataclass
class Account:
    id: str
    username: str
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unique(prefix: str = "user") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


async def mailed_token(session: AsyncSession, *, to: str, template: str) -> str:
    """The token from the newest email of this kind to this address."""
    body = await session.scalar(
        select(MailOutbox.body_text)
        .where(func.lower(MailOutbox.to_address) == to.lower(), MailOutbox.template == template)
        .order_by(MailOutbox.created_at.desc())
        .limit(1)
    )
    assert body is not None, f"no {template} mail to {to}"
    match = re.search(r"token=([A-Za-z0-9%_.~-]+)", body)
    assert match is not None, body
    return unquote(match.group(1))


async def sign_up(
    client: httpx.AsyncClient,
    session: AsyncSession,
    *,
    verified: bool = True,
    password: str = STRONG_PASSWORD,
    role: PlatformRole | None = None,
) -> Account:
    username = unique()
    email = f"{username}@example.com"
    response = await client.post(
        "/auth/signup", json={"username": username, "email": email, "password": password}
    )
    assert response.status_code == 201, response.text
    user_id = response.json()["id"]
    if verified:
        token = await mailed_token(session, to=email, template="verify_email")
        assert (await client.post("/auth/verify-email", json={"token": token})).status_code == 200
    if role is not None:
        user = await session.get(User, uuid.UUID(user_id))
        assert user is not None
        user.platform_role = role
        await session.flush()
    tokens = await log_in(client, email, password)
    return Account(
        user_id, username, email, password, tokens["access_token"], tokens["refresh_token"]
    )


async def log_in(client: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    response = await client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()
