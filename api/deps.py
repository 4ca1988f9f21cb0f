"""Request dependencies: the database session (one transaction per request) and friends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from commerce.errors import DomainError
from commerce.payments.registry import PaymentProviders
from core.clock import Clock
from core.settings import Settings


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
        except DomainError as error:
            await (session.commit() if error.commit else session.rollback())
            raise
        except BaseException:
            await session.rollback()
            raise
        # Commit before the response is sent (scope="function"): a failed commit must turn
        # into an error response, never a 2xx for data that was not stored.
        await session.commit()


async def read_body(request: Request, *, limit: int, too_large: DomainError) -> bytes:
    """The raw body, refused with ``too_large`` as soon as it is known to exceed ``limit``
    bytes: from Content-Length when sent, else while streaming (never buffered past it)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _payment_providers(request: Request) -> PaymentProviders:
    return request.app.state.payment_providers


def _clock(request: Request) -> Clock:
    return request.app.state.clock


def _now(request: Request) -> datetime:
    """The request's instant: read once (FastAPI caches it per request) and passed down, so
    every service a request calls sees the same time."""
    return request.app.state.clock.now()


def _temporal(request: Request) -> Client:
    return request.app.state.temporal


SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(_settings)]
ClockDep = Annotated[Clock, Depends(_clock)]
NowDep = Annotated[datetime, Depends(_now)]
TemporalDep = Annotated[Client, Depends(_temporal)]
PaymentProvidersDep = Annotated[PaymentProviders, Depends(_payment_providers)]
