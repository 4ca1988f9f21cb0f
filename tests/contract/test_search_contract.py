"""One contract for every search backend: the same catalog, the same questions, the same answers.

PostgreSQL always runs. Elasticsearch runs when ``ELASTICSEARCH_URL`` points at a reachable
server, and is otherwise skipped with a reason saying so (``-ra`` lists it at the end of the
run): a green run without it has NOT tested the Elasticsearch backend.

Each test has a database of its own (documents are built from committed catalog rows) and,
for Elasticsearch, an index of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from commerce.search.backend import (
    InvalidSearch,
    PriceBucket,
    RatingBucket,
    SearchBackend,
    SearchQuery,
    SearchResult,
    SearchSort,
)
from commerce.search.documents import build_documents
from commerce.search.elasticsearch import ElasticsearchSearch
from commerce.search.postgres import PostgresSearch
from models import InventoryLevel, Product, ProductStatus, Variant, Vendor, VendorStatus
from tests.catalog_factories import VariantSpec, make_category, make_product, make_vendor

ELASTICSEARCH_ENV = "ELASTICSEARCH_URL"


async def _elasticsearch_backend() -> ElasticsearchSearch:
    url = os.environ.get(ELASTICSEARCH_ENV)
    if not url:
        pytest.skip(
            f"Elasticsearch backend NOT tested: {ELASTICSEARCH_ENV} is not set "
            "(point it at an Elasticsearch 8/9 server to run the search contract against it)"
        )
    backend = ElasticsearchSearch(url, f"emporium-test-{uuid.uuid4().hex[:12]}", refresh="wait_for")
    try:
        reachable = await backend.ping()
    except Exception:  # any failure to answer means the same: not reachable
        reachable = False
    if not reachable:
        await backend.close()
        pytest.skip(f"Elasticsearch backend NOT tested: {ELASTICSEARCH_ENV}={url} is not reachable")
    await backend.reset()
    return backend


@dataclass
class SearchEnv:
    """A backend plus the database its documents are built from."""

    sessionmaker: async_sessionmaker[AsyncSession]
    backend: SearchBackend

    @asynccontextmanager
    async def catalog(self) -> AsyncIterator[AsyncSession]:
        """A session whose writes are committed at the end of the block."""
        async with self.sessionmaker.begin() as session:
            yield session

    async def publish(self, *products: Product) -> None:
        """What the indexer does for these products: index them, or remove the hidden ones."""
        async with self.sessionmaker() as session:
            batch = await build_documents(session, [product.id for product in products])
        await self.backend.index(batch.documents)
        await self.backend.delete(batch.removed)

    async def search(self, **fields: Any) -> SearchResult:
        return await self.backend.search(SearchQuery(**fields))

    async def titles(self, **fields: Any) -> list[str]:
        return [hit.title for hit in (await self.search(**fields)).hits]


@pytest.fixture(params=["postgres", "elasticsearch"])
async def env(request: pytest.FixtureRequest, fresh_database_url: str) -> AsyncIterator[SearchEnv]:
    engine = create_async_engine(fresh_database_url, poolclass=NullPool)
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    backend: SearchBackend
    try:
        if request.param == "postgres":
            backend = PostgresSearch(sessionmaker)
        else:
            backend = await _elasticsearch_backend()
        try:
            yield SearchEnv(sessionmaker, backend)
        finally:
            if isinstance(backend, ElasticsearchSearch):
                await backend.drop()
            await backend.close()
    finally:
        await engine.dispose()


def _rate(product: Product, average: str, count: int) -> None:
    product.rating_avg = Decimal(average)
    product.rating_count = count


# --- text -------------------------------------------------------------------------------------


async def test_a_title_match_ranks_above_a_description_match(env: SearchEnv) -> None:
    async with env.catalog() as s:
        vendor = await make_vendor(s)
        described = await make_product(
            s,
            vendor=vendor,
            title="Crew sweater",
            description="Knitted from fine merino wool in Portugal.",
        )
        titled = await make_product(
            s, vendor=vendor, title="Merino crew sweater", description="Warm and soft."
        )
        other = await make_product(s, vendor=vendor, title="Cotton tee", description="Light.")
    await env.publish(described, titled, other)

    result = await env.search(text="merino")

    assert [hit.product_id for hit in result.hits] == [titled.id, described.id]
    assert result.total == 2
    assert result.hits[0].score is not None
    assert result.hits[0].score > (result.hits[1].score or 0)


async def test_the_start_of_a_word_finds_the_word(env: SearchEnv) -> None:
    async with env.catalog() as s:
        vendor = await make_vendor(s)
        merino = await make_product(s, vendor=vendor, title="Merino beanie")
        cotton = await make_product(s, vendor=vendor, title="Cotton beanie")
    await env.publish(merino, cotton)

    assert await env.titles(text="meri") == ["Merino beanie"]
    assert await env.titles(text="meri bea") == ["Merino beanie"]


async def test_a_misspelt_word_still_finds_what_was_meant(env: SearchEnv) -> None:
    async with env.catalog() as s:
        vendor = await make_vendor(s)
        merino = await make_product(s, vendor=vendor, title="Merino wool sweater")
        merchant = await make_product(s, vendor=vendor, title="Merchant navy jacket")
        cotton = await make_product(s, vendor=vendor, title="Cotton sweater")
    await env.publish(merino, merchant, cotton)

    assert await env.titles(text="mernio") == ["Merino wool sweater"]
    assert await env.titles(text="mernio sweeter") == ["Merino wool sweater"]
    # A correctly spelt word is not widened to its look-alikes.
    assert await env.titles(text="merino") == ["Merino wool sweater"]


async def test_accents_fold_both_ways(env: SearchEnv) -> None:
    async with env.catalog() as s:
        vendor = await make_vendor(s)
        torch = await make_product(s, vendor=vendor, title="Crème brûlée torch")
        cafe = await make_product(s, vendor=vendor, title="Cafe espresso cups")
    await env.publish(torch, cafe)

    assert await env.titles(text="creme brulee") == ["Crème brûlée torch"]
    assert await env.titles(text="café") == ["Cafe espresso cups"]


async def test_quoted_phrases_and_excluded_words(env: SearchEnv) -> None:
    async with env.catalog() as s:
        vendor = await make_vendor(s)
        wool = await make_product(
            s, vendor=vendor, title="Crew neck sweater", description="Lambswool and wool."
        )
        cotton = await make_product(
            s, vendor=vendor, title="Sweater with a neck crew", description="Organic cotton."
        )
    await env.publish(wool, cotton)

    assert await env.titles(text='"crew neck"') == ["Crew neck sweater"]
    assert await env.titles(text="sweater -wool") == ["Sweater with a neck crew"]


# --- filters ----------------------------------------------------------------------------------


@dataclass
class _Shop:
    first: Vendor
    second: Vendor
    products: dict[str, Product]


async def _shop(env: SearchEnv) -> _Shop:
    """Five products across two vendors with every filterable property varied."""
    async with env.catalog() as s:
        first, second = await make_vendor(s), await make_vendor(s)
        a = await make_product(
            s,
            vendor=first,
            title="Alpha jumper",
            brand="Acme",
            tags=["wool", "winter"],
            variants=[
                VariantSpec("A-M", 1500, stock=5, options={"size": "M", "colour": "black"}),
                VariantSpec("A-L", 1800, stock=0, options={"size": "L", "colour": "black"}),
            ],
        )
        _rate(a, "4.50", 12)
        b = await make_product(
            s,
            vendor=first,
            title="Bravo tee",
            brand="Bolt",
            tags=["cotton"],
            variants=[VariantSpec("B-S", 3000, stock=0, options={"size": "S", "colour": "white"})],
        )
        _rate(b, "3.20", 4)
        c = await make_product(
            s,
            vendor=second,
            title="Charlie coat",
            brand="Acme",
            tags=["winter"],
            variants=[VariantSpec("C-L", 9000, stock=2, options={"size": "L", "colour": "white"})],
        )
        d = await make_product(
            s,
            vendor=second,
            title="Delta scarf",
            brand=None,
            variants=[VariantSpec("D-1", 26000, stock=3)],
        )
        _rate(d, "1.50", 2)
        # Every unit of Echo is reserved: on hand, but not available.
        e = await make_product(
            s,
            vendor=second,
            title="Echo mittens",
            brand="Bolt",
            variants=[VariantSpec("E-M", 500, stock=3, options={"size": "M"})],
        )
        await s.execute(
            update(InventoryLevel)
            .where(
                InventoryLevel.variant_id.in_(
                    Variant.__table__.select()
                    .with_only_columns(Variant.id)
                    .where(Variant.product_id == e.id)
                    .scalar_subquery()
                )
            )
            .values(reserved=3)
        )
        products = {"a": a, "b": b, "c": c, "d": d, "e": e}
    await env.publish(*products.values())
    return _Shop(first, second, products)


async def _found(env: SearchEnv, **fields: Any) -> set[str]:
    return {hit.title.split()[0].lower()[0] for hit in (await env.search(**fields)).hits}


async def test_each_filter_narrows_the_results(env: SearchEnv) -> None:
    shop = await _shop(env)

    assert await _found(env) == {"a", "b", "c", "d", "e"}
    assert await _found(env, brands=("Acme",)) == {"a", "c"}
    assert await _found(env, brands=("Acme", "Bolt")) == {"a", "b", "c", "e"}
    assert await _found(env, vendor_ids=(shop.second.id,)) == {"c", "d", "e"}
    assert await _found(env, vendor_slugs=(shop.first.slug,)) == {"a", "b"}
    # Prices compare the "from" price (cheapest active variant), inclusive at both ends.
    assert await _found(env, price_min=1500) == {"a", "b", "c", "d"}
    assert await _found(env, price_max=1500) == {"a", "e"}
    assert await _found(env, price_min=2000, price_max=9000) == {"b", "c"}
    assert await _found(env, min_rating=3.2) == {"a", "b"}
    assert await _found(env, in_stock_only=True) == {"a", "c", "d"}
    assert await _found(env, tags=("winter",)) == {"a", "c"}
    assert await _found(env, tags=("wool", "cotton")) == {"a", "b"}
    assert await _found(env, options={"size": ("L",)}) == {"a", "c"}
    assert await _found(env, options={"size": ("S", "M")}) == {"a", "b", "e"}
    assert await _found(env, options={"size": ("L",), "colour": ("white",)}) == {"c"}
    assert await _found(env, brands=("Acme",), in_stock_only=True, price_max=5000) == {"a"}
    assert await _found(env, brands=("Nobody",)) == set()


async def test_the_category_filter_takes_the_whole_subtree(env: SearchEnv) -> None:
    async with env.catalog() as s:
        vendor = await make_vendor(s)
        clothing = await make_category(s)
        tees = await make_category(s, parent=clothing)
        coats = await make_category(s, parent=clothing)
        home = await make_category(s)
        products = [
            await make_product(s, vendor=vendor, title="Plain tee", category=tees),
            await make_product(s, vendor=vendor, title="Rain coat", category=coats),
            await make_product(s, vendor=vendor, title="Gift card", category=clothing),
            await make_product(s, vendor=vendor, title="Kettle", category=home),
            await make_product(s, vendor=vendor, title="Uncategorised thing"),
        ]
    await env.publish(*products)

    assert set(await env.titles(category_path=clothing.path)) == {
        "Plain tee",
        "Rain coat",
        "Gift card",
    }
    assert await env.titles(category_path=tees.path) == ["Plain tee"]
    assert await env.titles(category_path=f"/{home.path}/") == ["Kettle"]
    result = await env.search(category_path=clothing.path)
    assert result.facets is not None
    assert dict(result.facets.categories) == {clothing.path: 3, tees.path: 1, coats.path: 1}


# --- sorting and facets -----------------------------------------------------------------------


async def test_sorts(env: SearchEnv) -> None:
    await _shop(env)

    assert await env.titles(sort=SearchSort.PRICE_ASC) == [
        "Echo mittens",
        "Alpha jumper",
        "Bravo tee",
        "Charlie coat",
        "Delta scarf",
    ]
    assert await env.titles(sort=SearchSort.PRICE_DESC) == [
        "Delta scarf",
        "Charlie coat",
        "Bravo tee",
        "Alpha jumper",
        "Echo mittens",
    ]
    rated = await env.titles(sort=SearchSort.RATING)
    assert rated[:3] == ["Alpha jumper", "Bravo tee", "Delta scarf"]
    assert set(rated[3:]) == {"Charlie coat", "Echo mittens"}  # unrated last


async def test_newest_first_and_relevance_without_words_is_newest(env: SearchEnv) -> None:
    now = datetime.now(UTC)
    async with env.catalog() as s:
        vendor = await make_vendor(s)
        products = []
        for days, title in ((3, "Old"), (1, "Newest"), (2, "Middle")):
            product = await make_product(s, vendor=vendor, title=f"{title} lamp")
            product.published_at = now - timedelta(days=days)
            products.append(product)
    await env.publish(*products)

    expected = ["Newest lamp", "Middle lamp", "Old lamp"]
    assert await env.titles(sort=SearchSort.NEWEST) == expected
    assert await env.titles() == expected
    assert await env.titles(text="lamp", sort=SearchSort.NEWEST) == expected


async def test_facets_count_the_filtered_set(env: SearchEnv) -> None:
    await _shop(env)

    everything = await env.search()
    assert everything.total == 5
    assert everything.facets is not None
    assert dict(everything.facets.brands) == {"Acme": 2, "Bolt": 2}
    assert {name: dict(values) for name, values in everything.facets.options.items()} == {
        "colour": {"black": 1, "white": 2},
        "size": {"M": 2, "L": 2, "S": 1},
    }

    result = await env.search(brands=("Acme", "Bolt"), price_max=5000)
    assert result.total == 3  # Alpha 15.00, Bravo 30.00, Echo 5.00
    facets = result.facets
    assert facets is not None
    assert dict(facets.brands) == {"Bolt": 2, "Acme": 1}
    assert list(facets.brands) == ["Bolt", "Acme"]  # most frequent first
    assert facets.prices == (
        PriceBucket(0, 1000, 1),
        PriceBucket(1000, 2500, 1),
        PriceBucket(2500, 5000, 1),
        PriceBucket(5000, 10000, 0),
        PriceBucket(10000, 25000, 0),
        PriceBucket(25000, None, 0),
    )
    assert facets.ratings == (
        RatingBucket(4, 1),
        RatingBucket(3, 2),
        RatingBucket(2, 2),
        RatingBucket(1, 2),
    )
    assert {name: dict(values) for name, values in facets.options.items()} == {
        "colour": {"black": 1, "white": 1},
        "size": {"M": 2, "L": 1, "S": 1},
    }
    assert dict(facets.categories) == {}

    with_text = await env.search(text="jumper")
    assert with_text.facets is not None
    assert dict(with_text.facets.brands) == {"Acme": 1}
    assert (await env.search(include_facets=False)).facets is None


# --- what is shown at all ---------------------------------------------------------------------


async def test_drafts_and_products_of_suspended_vendors_are_not_found(env: SearchEnv) -> None:
    async with env.catalog() as s:
        active = await make_vendor(s)
        suspended = await make_vendor(s, status=VendorStatus.SUSPENDED)
        pending = await make_vendor(s, status=VendorStatus.PENDING)
        shown = await make_product(s, vendor=active, title="Visible kettle")
        products = [
            shown,
            await make_product(s, vendor=active, title="Draft kettle", status=ProductStatus.DRAFT),
            await make_product(
                s, vendor=active, title="Archived kettle", status=ProductStatus.ARCHIVED
            ),
            await make_product(s, vendor=suspended, title="Suspended kettle"),
            await make_product(s, vendor=pending, title="Pending kettle"),
        ]
    await env.publish(*products)
    assert await env.titles(text="kettle") == ["Visible kettle"]

    # The vendor is suspended later: re-publishing (the outbox does that) hides its products.
    async with env.catalog() as s:
        await s.execute(
            update(Vendor).where(Vendor.id == active.id).values(status=VendorStatus.SUSPENDED)
        )
    await env.publish(shown)
    assert await env.titles(text="kettle") == []


async def test_deleted_products_are_gone_and_reset_empties_the_index(env: SearchEnv) -> None:
    async with env.catalog() as s:
        vendor = await make_vendor(s)
        kept = await make_product(s, vendor=vendor, title="Kept vase")
        dropped = await make_product(s, vendor=vendor, title="Dropped vase")
    await env.publish(kept, dropped)

    await env.backend.delete([dropped.id, uuid.uuid4()])  # unknown ids are ignored
    assert await env.titles(text="vase") == ["Kept vase"]
    # Indexing is idempotent.
    await env.publish(kept)
    assert (await env.search(text="vase")).total == 1

    await env.backend.reset()
    assert (await env.search()).total == 0


# --- paging -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sort",
    [SearchSort.PRICE_ASC, SearchSort.PRICE_DESC, SearchSort.RATING, SearchSort.RELEVANCE],
)
async def test_paging_visits_every_product_once_in_order(env: SearchEnv, sort: SearchSort) -> None:
    async with env.catalog() as s:
        vendor = await make_vendor(s)
        products = []
        for i in range(23):
            # Repeated prices and ratings: ties must be broken the same way on every page.
            product = await make_product(
                s,
                vendor=vendor,
                title=f"Glass jar {i}",
                description="glass " * (i % 4),
                variants=[VariantSpec(f"J{i}", 1000 + 100 * (i % 5))],
            )
            if i % 3:
                _rate(product, f"{1 + i % 4}.50", i)
            products.append(product)
    await env.publish(*products)
    text = "glass" if sort == SearchSort.RELEVANCE else None

    everything = await env.search(text=text, sort=sort, page_size=100)
    assert everything.total == 23
    second = await env.search(text=text, sort=sort, page_size=5, offset=5)
    assert [hit.product_id for hit in second.hits] == [
        hit.product_id for hit in everything.hits[5:10]
    ]

    seen: list[uuid.UUID] = []
    cursor = None
    late: Product | None = None
    for _ in range(10):
        page = await env.search(text=text, sort=sort, page_size=5, cursor=cursor)
        seen += [hit.product_id for hit in page.hits]
        cursor = page.next_cursor
        if cursor is None:
            break
        if late is None:
            # Indexed between two pages, cheapest of all (ahead of the cursor when sorting by
            # price ascending): offset paging would show a product twice, keyset does not.
            async with env.catalog() as s:
                late = await make_product(
                    s, vendor=vendor, title="Glass jar late", variants=[VariantSpec("JL", 100)]
                )
            await env.publish(late)
    assert late is not None
    assert len(seen) == len(set(seen))
    assert [p for p in seen if p != late.id] == [hit.product_id for hit in everything.hits]


async def test_a_cursor_only_continues_its_own_search(env: SearchEnv) -> None:
    async with env.catalog() as s:
        vendor = await make_vendor(s)
        products = [await make_product(s, vendor=vendor, title=f"Mug {i}") for i in range(3)]
    await env.publish(*products)
    page = await env.search(page_size=2, sort=SearchSort.PRICE_ASC)
    assert page.next_cursor is not None

    with pytest.raises(InvalidSearch) as refused:
        await env.search(page_size=2, sort=SearchSort.PRICE_DESC, cursor=page.next_cursor)
    assert refused.value.field == "cursor"
    with pytest.raises(InvalidSearch):
        await env.search(page_size=2, sort=SearchSort.PRICE_ASC, cursor="bm90IGEgY3Vyc29y")
    last = await env.search(page_size=2, sort=SearchSort.PRICE_ASC, cursor=page.next_cursor)
    assert len(last.hits) == 1
    assert last.next_cursor is None
