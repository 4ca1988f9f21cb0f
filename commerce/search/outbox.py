"""Telling the search index that products changed: one call, inside the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.search import SearchOutbox


async def enqueue_reindex(session: AsyncSession, product_ids: Iterable[uuid.UUID]) -> None:
    """Queue these products for re-indexing (or removal, if gone) once the caller commits.

    Call it from every service that changes what search shows: product fields, variants,
    prices, stock (in-stock filter), ratings, vendor status (suspension hides products).
    """
    rows = [{"product_id": product_id} for product_id in dict.fromkeys(product_ids)]
    if rows:
        await session.execute(insert(SearchOutbox), rows)
