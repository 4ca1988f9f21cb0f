"""The async SQLAlchemy engine and session factory, built once per process from settings."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from core.settings import Settings
from core.telemetry import instrument_engine


def create_engine(
    settings: Settings, *, url: str | None = None, tracer_provider: TracerProvider | None = None
) -> AsyncEngine:
    """The process's engine; with ``tracer_provider`` every statement is a span."""
    connect_args: dict[str, object] = {"application_name": "emporium"}
    if settings.database_statement_timeout_ms:
        connect_args["options"] = f"-c statement_timeout={settings.database_statement_timeout_ms}"
    engine = create_async_engine(
        url or settings.sqlalchemy_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_pre_ping=True,
        connect_args=connect_args,
    )
    instrument_engine(engine, tracer_provider)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: objects stay readable after the request dependency commits.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
