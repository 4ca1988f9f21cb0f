"""The transactional outbox between catalog changes and the search index."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, Index, text
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
