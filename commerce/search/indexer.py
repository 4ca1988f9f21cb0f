"""Keeping the search index in step with the catalog: the outbox drain, and full rebuilds.

Delivery is at least once: outbox rows are marked processed in the transaction that claimed
them, after the backend took the documents. If the backend fails (or the indexer dies) the
transaction rolls back and the rows are pending again; indexing is idempotent, so doing a
product twice is harmless. Documents are built from the catalog as it is when the batch runs,
never from the change that queued them, so many changes to one product cost one document.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from commerce.search.backend import SearchBackend
from commerce.search.documents import build_documents, searchable_products
from commerce.search.postgres import PostgresSearch
from core.settings import Settings
from models import Product, Vendor

log = logging.getLogger(__name__)

# First key of the two-key advisory locks the indexer takes per product (the second is a hash
# of the product id): namespaced so that other advisory-lock users cannot collide with it.
ADVISORY_LOCK_NAMESPACE = 0x5EA4C4
MAX_BACKOFF_S = 60.0

_CLAIM = text(
    """
    SELECT id, product_id FROM search_outbox
    WHERE processed_at IS NULL
    ORDER BY id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)

# A product whose lock another indexer holds is left for later: two indexers working on one
# product at once could finish in the wrong order and leave the older document in the index.
_LOCK_PRODUCTS = text(
    """
    SELECT product_id FROM unnest(CAST(:product_ids AS uuid[])) AS product_id
    WHERE pg_try_advisory_xact_lock(:namespace, hashtext(product_id::text))
    """
)

_MARK_PROCESSED = text(
    "UPDATE search_outbox SET processed_at = clock_timestamp() WHERE id = ANY(:ids)"
)


@dataclass(frozen=True)
class ReindexReport:
    indexed: int
    batches: int
    seconds: float

    @property
    def documents_per_second(self) -> float:
        return self.indexed / self.seconds if self.seconds > 0 else 0.0


class SearchIndexer:
    """Drains the search outbox into a ``SearchBackend``; rebuilds the whole index on demand."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], backend: SearchBackend
    ) -> None:
        self._sessionmaker = sessionmaker
        self._backend = backend

    async def drain_once(self, limit: int = 500) -> int:
        """Index (or remove) the products of up to ``limit`` pending outbox rows.

        Returns how many outbox rows were processed. Rows that another indexer holds are
        skipped, not waited for, so any number of indexers can run side by side.
        """
        async with self._sessionmaker.begin() as session:
            claimed = (await session.execute(_CLAIM, {"limit": limit})).all()
            if not claimed:
                return 0
            product_ids = list(dict.fromkeys(row.product_id for row in claimed))
            locked = set(
                (
                    await session.execute(
                        _LOCK_PRODUCTS,
                        {"product_ids": product_ids, "namespace": ADVISORY_LOCK_NAMESPACE},
                    )
                ).scalars()
            )
            rows = [row.id for row in claimed if row.product_id in locked]
            if not rows:
                return 0
            batch = await build_documents(session, [p for p in product_ids if p in locked])
            # Inside the transaction on purpose: if the backend fails, the claim rolls back
            # and the rows are pending again for the next drain.
            await self._backend.index(batch.documents)
            await self._backend.delete(batch.removed)
            await session.execute(_MARK_PROCESSED, {"ids": rows})
        log.info(
            "search outbox drained",
            extra={
                "outbox_rows": len(rows),
                "indexed": len(batch.documents),
                "removed": len(batch.removed),
            },
        )
        return len(rows)

    async def run(self, stop: asyncio.Event, interval_s: float = 1.0, limit: int = 500) -> None:
        """Drain until ``stop`` is set: at once while there is a backlog, else every
        ``interval_s``; after a failure, back off (doubling, up to a minute) and go on."""
        failures = 0
        while not stop.is_set():
            try:
                processed = await self.drain_once(limit)
            except Exception:
                failures += 1
                delay = min(interval_s * 2**failures, MAX_BACKOFF_S)
                log.exception(
                    "search indexing failed; the outbox rows stay pending",
                    extra={"retry_in_s": delay},
                )
            else:
                failures = 0
                if processed >= limit:
                    continue
                delay = interval_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def reindex_all(self, batch_size: int = 1_000) -> ReindexReport:
        """Empty the index and index every searchable product again, ``batch_size`` at a time.

        While it runs, search shows only what has been rebuilt so far; run it to recover an
        index, change its mapping or switch backends, not routinely. The outbox keeps being
        drained meanwhile: both write current documents, so their order does not matter.
        """
        started = time.perf_counter()
        await self._backend.reset()
        indexed = batches = 0
        last: uuid.UUID | None = None
        in_flight: asyncio.Task[None] | None = None
        try:
            while True:
                async with self._sessionmaker() as session:
                    statement = (
                        select(Product.id)
                        .join(Vendor, Vendor.id == Product.vendor_id)
                        .where(*searchable_products())
                        .order_by(Product.id)
                        .limit(batch_size)
                    )
                    if last is not None:
                        statement = statement.where(Product.id > last)
                    ids = list((await session.execute(statement)).scalars())
                    if not ids:
                        break
                    batch = await build_documents(session, ids)
                last = ids[-1]
                # Build the next batch while the backend takes this one.
                if in_flight is not None:
                    await in_flight
                in_flight = asyncio.create_task(self._backend.index(batch.documents))
                indexed += len(batch.documents)
                batches += 1
            if in_flight is not None:
                await in_flight
        finally:
            if in_flight is not None and not in_flight.done():
                in_flight.cancel()
        seconds = time.perf_counter() - started
        log.info(
            "search index rebuilt",
            extra={"indexed": indexed, "batches": batches, "seconds": round(seconds, 3)},
        )
        return ReindexReport(indexed=indexed, batches=batches, seconds=seconds)

    async def pending(self) -> int:
        """Outbox rows not yet processed (for health checks and tests)."""
        async with self._sessionmaker() as session:
            statement = text("SELECT count(*) FROM search_outbox WHERE processed_at IS NULL")
            return int((await session.execute(statement)).scalar_one())


def backend_for(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> SearchBackend:
    """Elasticsearch when ``ELASTICSEARCH_URL`` is set, else PostgreSQL full-text search."""
    if settings.elasticsearch_url:
        # Imported only when used: the client costs ~0.35 s of start-up in every process.
        from commerce.search.elasticsearch import DEFAULT_INDEX, ElasticsearchSearch

        return ElasticsearchSearch(settings.elasticsearch_url, DEFAULT_INDEX)
    return PostgresSearch(sessionmaker)
