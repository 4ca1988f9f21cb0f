"""The schema exists only through migrations, and they agree with the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

import models
from models.migrate import downgrade_engine, upgrade_engine


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, models.Base.metadata))


async def test_models_and_migrations_agree(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    assert differences == []


async def test_downgrade_to_base_removes_everything_and_upgrade_restores_it(
    fresh_database_url: str,
) -> None:
    engine = create_async_engine(fresh_database_url, poolclass=NullPool)
    try:
        await downgrade_engine(engine, "base")
        async with engine.connect() as connection:
            tables = (
                (
                    await connection.execute(
                        text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                    )
                )
                .scalars()
                .all()
            )
            types = (
                (await connection.execute(text("SELECT typname FROM pg_type WHERE typtype = 'e'")))
                .scalars()
                .all()
            )
        assert set(tables) <= {"alembic_version"}
        assert types == []

        await upgrade_engine(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
    finally:
        await engine.dispose()
