"""sales_hours and rollup_state: the hourly sales rollup the worker keeps

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sales_hours",
        sa.Column("scope", sa.Uuid(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("gross", sa.BigInteger(), nullable=False),
        sa.Column("commission", sa.BigInteger(), nullable=False),
        sa.Column("refunds", sa.BigInteger(), nullable=False),
        sa.Column("disputes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "currency", "hour", name=op.f("pk_sales_hours")),
    )
    op.create_table(
        "rollup_state",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("rolled_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rollup_state")),
    )
    # The rollup reads an hour of sales (by confirmation) and of debits (by booking) at a time.
    op.create_index("ix_orders_confirmed_at", "orders", ["confirmed_at"])
    op.create_index("ix_ledger_entries_available_at", "ledger_entries", ["available_at"])


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_available_at", table_name="ledger_entries")
    op.drop_index("ix_orders_confirmed_at", table_name="orders")
    op.drop_table("rollup_state")
    op.drop_table("sales_hours")
