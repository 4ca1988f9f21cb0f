"""The transactional outbox between catalog changes and the search index, and the
PostgreSQL search backend's own tables (documents and the vocabulary typos are corrected to)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class SearchOutbox(Base):
    """A product whose search document must be rebuilt (or removed).

    Written in the same transaction as the change, drained by the worker's indexer: an
    indexer that is down loses nothing, it catches up.
    """

    __tablename__ = "search_outbox"
    __table_args__ = (
        Index("ix_search_outbox_pending", "id", postgresql_where=text("processed_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # No foreign key: a deleted product's entry must survive to remove it from the index.
    product_id: Mapped[uuid.UUID] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()")
    )
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SearchDocument(Base):
    """One searchable product (active, of an active vendor), denormalised for the PostgreSQL
    search backend. Derived data: rebuilt from the catalog by the indexer, never edited.

    No foreign keys on purpose: a product deleted while a batch is being indexed must not make
    the whole batch fail; its outbox entry removes the document right after.
    """

    __tablename__ = "search_documents"
    __table_args__ = (
        Index("ix_search_documents_search_vector", "search_vector", postgresql_using="gin"),
        # jsonb_path_ops: smaller and faster than the default jsonb_ops, and the option filter
        # only ever asks containment (options @> '{"size": ["M"]}').
        Index(
            "ix_search_documents_options",
            "options",
            postgresql_using="gin",
            postgresql_ops={"options": "jsonb_path_ops"},
        ),
        Index("ix_search_documents_tags", "tags", postgresql_using="gin"),
        # The category filter is a subtree: every document lists its category and ancestors.
        Index(
            "ix_search_documents_category_ancestors",
            "category_ancestors",
            postgresql_using="gin",
        ),
        Index("ix_search_documents_vendor_id", "vendor_id"),
        Index("ix_search_documents_brand", "brand"),
    )

    product_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    vendor_id: Mapped[uuid.UUID]
    vendor_slug: Mapped[str] = mapped_column(Text)
    category_id: Mapped[uuid.UUID | None]
    category_path: Mapped[str | None] = mapped_column(Text)
    # "clothing", "clothing/t-shirts" for a product in clothing/t-shirts.
    category_ancestors: Mapped[list[str]] = mapped_column(ARRAY(Text))
    brand: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text))
    title: Mapped[str] = mapped_column(Text)
    slug: Mapped[str] = mapped_column(Text)
    # Over the active variants, in minor units of `currency`.
    price_min: Mapped[int] = mapped_column(BigInteger)
    price_max: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    rating_avg: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    rating_count: Mapped[int] = mapped_column(Integer)
    in_stock: Mapped[bool] = mapped_column(Boolean)
    # Every value each option takes over the active variants: {"size": ["M", "L"]}.
    options: Mapped[dict[str, list[str]]] = mapped_column(JSONB)
    attributes: Mapped[dict[str, str]] = mapped_column(JSONB)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # title A, brand and tags B, description C; 'simple' config over unaccent()ed text.
    search_vector: Mapped[str] = mapped_column(TSVECTOR)
    indexed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()")
    )


class SearchTerm(Base):
    """Every word the search documents contain: the vocabulary that typos are corrected
    against (pg_trgm nearest neighbours), so a misspelt word becomes the words it is close to.

    Only ever grows between full reindexes (which empty it): a word whose last product left is
    harmless, it simply matches nothing.
    """

    __tablename__ = "search_terms"
    __table_args__ = (
        # GiST rather than GIN: nearest-neighbour ordering (term <-> 'mernio') needs GiST, and
        # it serves the LIKE 'meri%' "is this a known prefix" probe too.
        Index(
            "ix_search_terms_term_trgm",
            "term",
            postgresql_using="gist",
            postgresql_ops={"term": "gist_trgm_ops"},
        ),
    )

    term: Mapped[str] = mapped_column(Text, primary_key=True)
