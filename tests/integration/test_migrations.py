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


async def test_per_warehouse_stock_migrates_down_and_up_with_its_data(
    fresh_database_url: str,
) -> None:
    """0003 moves stock into per-warehouse levels; going back folds it into one level."""
    engine = create_async_engine(fresh_database_url, poolclass=NullPool)
    vendor, product, variant = ("00000000-0000-0000-0000-00000000000" + digit for digit in "123")
    try:
        await downgrade_engine(engine, "0002")
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    f"INSERT INTO vendors (id, slug, name, description, status) "
                    f"VALUES ('{vendor}', 'v', 'V', '', 'active');"
                    f"INSERT INTO products (id, vendor_id, slug, title, description, status) "
                    f"VALUES ('{product}', '{vendor}', 'p', 'P', '', 'active');"
                    f"INSERT INTO variants (id, product_id, vendor_id, sku, options, "
                    f"price_amount, currency) VALUES ('{variant}', '{product}', '{vendor}', "
                    f"'S1', '{{}}', 100, 'EUR');"
                    f"INSERT INTO inventory_levels (variant_id, on_hand, reserved, "
                    f"low_stock_threshold) VALUES ('{variant}', 7, 2, 1)"
                )
            )
        await upgrade_engine(engine)
        async with engine.begin() as connection:
            level = (
                await connection.execute(
                    text(
                        "SELECT l.on_hand, l.reserved, w.code, w.is_default FROM inventory_levels "
                        "l JOIN warehouses w ON w.id = l.warehouse_id"
                    )
                )
            ).all()
            assert [tuple(row) for row in level] == [(7, 2, "main", True)]
            await connection.execute(
                text(
                    f"INSERT INTO warehouses (id, vendor_id, code, name, is_default, created_at, "
                    f"updated_at) VALUES ('00000000-0000-0000-0000-000000000009', '{vendor}', "
                    f"'b', 'B', false, now(), now());"
                    f"INSERT INTO inventory_levels (variant_id, warehouse_id, on_hand, reserved, "
                    f"low_stock_threshold, created_at, updated_at) VALUES ('{variant}', "
                    f"'00000000-0000-0000-0000-000000000009', 5, 1, 0, now(), now())"
                )
            )
        await downgrade_engine(engine, "0002")
        async with engine.connect() as connection:
            folded = (
                await connection.execute(text("SELECT on_hand, reserved FROM inventory_levels"))
            ).all()
        assert [tuple(row) for row in folded] == [(12, 3)]
    finally:
        await engine.dispose()
