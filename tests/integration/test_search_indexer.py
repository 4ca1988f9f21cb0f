"""From a catalog change to a search hit: documents, the outbox drain, full rebuilds, the API.

Runs on the PostgreSQL backend (the contract suite shows Elasticsearch answers the same). Each
test has a database of its own: the indexer commits, and concurrent indexers need real,
separately committed transactions.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from api.app import create_app
from commerce.search.backend import ProductDocument, SearchQuery
from commerce.search.documents import build_documents
from commerce.search.indexer import SearchIndexer
from commerce.search.outbox import enqueue_reindex
from commerce.search.postgres import PostgresSearch
from models import InventoryLevel, Product, ProductStatus, Variant, Warehouse
from models.search import SearchDocument
from tests.catalog_factories import VariantSpec, make_category, make_product, make_vendor
from tests.conftest import _client_for, make_settings

PROBLEM = "application/problem+json"


@pytest.fixture
async def sessionmaker(fresh_database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(fresh_database_url, poolclass=NullPool)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


@pytest.fixture
def backend(sessionmaker: async_sessionmaker[AsyncSession]) -> PostgresSearch:
    return PostgresSearch(sessionmaker)


async def _titles(backend: PostgresSearch, text_: str | None = None) -> list[str]:
    result = await backend.search(SearchQuery(text=text_, page_size=100))
    return sorted(hit.title for hit in result.hits)


async def _pending(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int(
            (
                await session.execute(
                    text("SELECT count(*) FROM search_outbox WHERE processed_at IS NULL")
                )
            ).scalar_one()
        )


class FailingBackend(PostgresSearch):
    """The search server is down: every write fails (after ``failures`` of them, it is up)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], failures: int) -> None:
        super().__init__(sessionmaker)
        self.failures = failures
        self.attempts = 0

    async def index(self, documents: Sequence[ProductDocument]) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise ConnectionError("search server unreachable")
        await super().index(documents)


class RecordingBackend(PostgresSearch):
    """Slow writes that record which products were in flight at the same time."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(sessionmaker)
        self.in_flight: set[uuid.UUID] = set()
        self.overlaps: list[uuid.UUID] = []
        self.indexed: list[uuid.UUID] = []

    async def index(self, documents: Sequence[ProductDocument]) -> None:
        ids = {document.product_id for document in documents}
        self.overlaps += list(ids & self.in_flight)
        self.in_flight |= ids
        try:
            await asyncio.sleep(0.05)
            await super().index(documents)
            self.indexed += list(ids)
        finally:
            self.in_flight -= ids


# --- documents --------------------------------------------------------------------------------


async def test_documents_summarise_active_variants_and_stock_in_any_warehouse(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker.begin() as s:
        vendor = await make_vendor(s)
        shirts = await make_category(s, parent=await make_category(s))
        product = await make_product(
            s,
            vendor=vendor,
            title="Linen shirt",
            category=shirts,
            tags=["linen"],
            variants=[
                VariantSpec("LS-S", 4500, stock=0, options={"size": "S", "colour": "sand"}),
                VariantSpec("LS-M", 4900, stock=0, options={"size": "M", "colour": "sand"}),
                VariantSpec("LS-XL", 1000, stock=9, options={"size": "XL", "colour": "red"}),
            ],
        )
        # The cheap XL is discontinued: it no longer sets the price, the options or the stock.
        await s.execute(update(Variant).where(Variant.sku == "LS-XL").values(is_active=False))
        no_variants = await make_product(s, vendor=vendor, title="Nothing to sell")
        await s.execute(
            update(Variant).where(Variant.product_id == no_variants.id).values(is_active=False)
        )
        draft = await make_product(s, vendor=vendor, status=ProductStatus.DRAFT)

    async with sessionmaker() as s:
        batch = await build_documents(s, [product.id, no_variants.id, draft.id, uuid.uuid4()])
    assert len(batch.documents) == 1
    assert len(batch.removed) == 3
    document = batch.documents[0]
    assert (document.price_min, document.price_max, document.currency) == (4500, 4900, "EUR")
    assert document.options == {"colour": ("sand",), "size": ("M", "S")}
    assert document.in_stock is False
    assert document.category_ancestors == [shirts.path.split("/")[0], shirts.path]
    assert document.vendor_slug == vendor.slug

    # Stock arrives in a second warehouse: available anywhere counts.
    async with sessionmaker.begin() as s:
        second = Warehouse(vendor_id=vendor.id, code="north", name="North", is_default=False)
        s.add(second)
        await s.flush()
        variant_id = await s.scalar(select(Variant.id).where(Variant.sku == "LS-M"))
        s.add(InventoryLevel(variant_id=variant_id, warehouse_id=second.id, on_hand=2, reserved=1))
    async with sessionmaker() as s:
        assert (await build_documents(s, [product.id])).documents[0].in_stock is True


# --- the outbox drain -------------------------------------------------------------------------


async def test_outbox_changes_become_searchable_and_hidden_products_leave(
    sessionmaker: async_sessionmaker[AsyncSession], backend: PostgresSearch
) -> None:
    async with sessionmaker.begin() as s:
        vendor = await make_vendor(s)
        lamp = await make_product(s, vendor=vendor, title="Brass lamp")
        rug = await make_product(s, vendor=vendor, title="Wool rug")
        # The same product queued three times costs one document.
        await enqueue_reindex(s, [lamp.id, rug.id])
        await enqueue_reindex(s, [lamp.id])
        await enqueue_reindex(s, [lamp.id])
    indexer = SearchIndexer(sessionmaker, backend)
    assert await _titles(backend) == []

    assert await indexer.drain_once(limit=100) == 4
    assert await _titles(backend) == ["Brass lamp", "Wool rug"]
    assert await indexer.drain_once(limit=100) == 0
    assert await indexer.pending() == 0

    async with sessionmaker.begin() as s:
        await s.execute(
            update(Product).where(Product.id == lamp.id).values(status=ProductStatus.ARCHIVED)
        )
        await s.execute(update(Product).where(Product.id == rug.id).values(title="Wool runner"))
        await enqueue_reindex(s, [lamp.id, rug.id])
    assert await indexer.drain_once() == 2
    assert await _titles(backend) == ["Wool runner"]
    assert await _titles(backend, "lamp") == []


async def test_a_failing_backend_leaves_the_rows_pending_and_a_later_drain_catches_up(
    sessionmaker: async_sessionmaker[AsyncSession], backend: PostgresSearch
) -> None:
    async with sessionmaker.begin() as s:
        vendor = await make_vendor(s)
        products = [await make_product(s, vendor=vendor, title=f"Vase {i}") for i in range(3)]
        await enqueue_reindex(s, [p.id for p in products])

    down = SearchIndexer(sessionmaker, FailingBackend(sessionmaker, failures=10**6))
    with pytest.raises(ConnectionError):
        await down.drain_once()
    assert await _pending(sessionmaker) == 3
    assert await _titles(backend) == []

    # The worker's loop survives failures, backs off, and catches up once the server is back.
    flaky = FailingBackend(sessionmaker, failures=2)
    stop = asyncio.Event()
    runner = asyncio.create_task(SearchIndexer(sessionmaker, flaky).run(stop, interval_s=0.01))
    try:
        for _ in range(500):
            if await _pending(sessionmaker) == 0:
                break
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(runner, timeout=5)
    assert flaky.attempts == 3
    assert await _pending(sessionmaker) == 0
    assert await _titles(backend) == ["Vase 0", "Vase 1", "Vase 2"]


async def test_two_indexers_at_once_process_every_row_once(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker.begin() as s:
        vendor = await make_vendor(s)
        products = [await make_product(s, vendor=vendor, title=f"Bowl {i}") for i in range(30)]
        # Interleaved duplicates: both indexers will see rows of the same products.
        await enqueue_reindex(s, [p.id for p in products])
        for product in products[::2]:
            await enqueue_reindex(s, [product.id])
    total_rows = 30 + 15
    backend = RecordingBackend(sessionmaker)
    first, second = SearchIndexer(sessionmaker, backend), SearchIndexer(sessionmaker, backend)

    async def drain(indexer: SearchIndexer) -> int:
        processed = 0
        for _ in range(200):
            done = await indexer.drain_once(limit=7)
            processed += done
            if done == 0 and await _pending(sessionmaker) == 0:
                break
        return processed

    counts = await asyncio.gather(drain(first), drain(second))

    assert sum(counts) == total_rows  # no row processed twice
    assert all(count > 0 for count in counts)  # both did work
    assert backend.overlaps == []  # never one product in two indexers at once
    assert set(backend.indexed) == {p.id for p in products}
    assert await _pending(sessionmaker) == 0


async def test_reindex_all_rebuilds_the_index_from_the_catalog(
    sessionmaker: async_sessionmaker[AsyncSession], backend: PostgresSearch
) -> None:
    async with sessionmaker.begin() as s:
        vendor = await make_vendor(s)
        products = [await make_product(s, vendor=vendor, title=f"Candle {i}") for i in range(7)]
        stale = await make_product(s, vendor=vendor, title="Stale candle")
    async with sessionmaker() as s:
        await backend.index((await build_documents(s, [stale.id])).documents)
    # Unpublished behind the index's back (no outbox entry): only a rebuild notices.
    async with sessionmaker.begin() as s:
        await s.execute(
            update(Product).where(Product.id == stale.id).values(status=ProductStatus.DRAFT)
        )

    report = await SearchIndexer(sessionmaker, backend).reindex_all(batch_size=3)

    assert (report.indexed, report.batches) == (7, 3)
    assert report.seconds > 0
    assert report.documents_per_second > 0
    assert await _titles(backend, "candle") == sorted(p.title for p in products)
    async with sessionmaker() as s:
        assert (
            await s.scalar(
                select(SearchDocument.product_id).where(SearchDocument.product_id == stale.id)
            )
            is None
        )


# --- the API ----------------------------------------------------------------------------------


@pytest.fixture
async def api(fresh_database_url: str, backend: PostgresSearch) -> AsyncIterator[httpx.AsyncClient]:
    # Temporal is connected lazily and never used by search: no server needed.
    app = create_app(make_settings(fresh_database_url, "127.0.0.1:1"))
    async for client in _client_for(app):
        app.state.search = backend
        yield client


async def test_get_search_answers_hits_facets_and_pages(
    sessionmaker: async_sessionmaker[AsyncSession],
    backend: PostgresSearch,
    api: httpx.AsyncClient,
) -> None:
    async with sessionmaker.begin() as s:
        vendor = await make_vendor(s)
        category = await make_category(s)
        products = [
            await make_product(
                s,
                vendor=vendor,
                title=f"Merino sock {colour}",
                brand="Woolly",
                category=category,
                tags=["socks"],
                variants=[
                    VariantSpec(f"S-{colour}-M", 900 + i, options={"size": "M", "colour": colour}),
                    VariantSpec(f"S-{colour}-L", 950 + i, options={"size": "L", "colour": colour}),
                ],
            )
            for i, colour in enumerate(["black", "grey", "navy"])
        ]
        await enqueue_reindex(s, [p.id for p in products])
    await SearchIndexer(sessionmaker, backend).drain_once()

    response = await api.get(
        "/search",
        params=[
            ("q", "mernio sock"),
            ("brand", "Woolly"),
            ("option", "size:M"),
            ("option", "colour:black"),
            ("option", "colour:navy"),
            ("category", category.path),
            ("sort", "price_asc"),
            ("limit", "1"),
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 2
    assert [hit["title"] for hit in body["items"]] == ["Merino sock black"]
    hit = body["items"][0]
    assert hit["price_min"]["amount"] == 900
    assert hit["options"] == {"colour": ["black"], "size": ["L", "M"]}
    assert body["facets"]["brands"] == [{"value": "Woolly", "count": 2}]
    assert {"value": "M", "count": 2} in body["facets"]["options"][1]["values"]
    assert body["facets"]["prices"][0] == {"min": 0, "max": 1000, "count": 2}
    assert body["next_cursor"]

    following = await api.get(
        "/search",
        params=[
            ("q", "mernio sock"),
            ("brand", "Woolly"),
            ("option", "size:M"),
            ("option", "colour:black"),
            ("option", "colour:navy"),
            ("category", category.path),
            ("sort", "price_asc"),
            ("limit", "1"),
            ("cursor", body["next_cursor"]),
            ("facets", "false"),
        ],
    )
    assert following.status_code == 200, following.text
    assert [hit["title"] for hit in following.json()["items"]] == ["Merino sock navy"]
    assert following.json()["facets"] is None
    assert following.json()["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"sort": "cheapest"}, "sort"),
        ({"option": "size"}, "option"),
        ({"price_min": "-1"}, "price_min"),
        ({"min_rating": "6"}, "min_rating"),
        ({"vendor_id": "not-a-uuid"}, "vendor_id"),
        ({"cursor": "garbage"}, "cursor"),
        ({"price_min": "500", "price_max": "100"}, "price_min"),
        ({"offset": "5", "cursor": "eyJ9"}, "offset"),
    ],
)
async def test_bad_search_parameters_are_422_problems(
    api: httpx.AsyncClient, params: dict[str, str], where: str
) -> None:
    response = await api.get("/search", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == "validation_error"
    assert [error["loc"][:2] for error in body["errors"]] == [["query", where]]


async def test_unreachable_search_server_is_a_503_problem(fresh_database_url: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings = make_settings(
        fresh_database_url, "127.0.0.1:1", elasticsearch_url=f"http://127.0.0.1:{closed_port}"
    )
    async for client in _client_for(create_app(settings)):
        response = await client.get("/search", params={"q": "anything"})
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "search_unavailable"


async def test_an_empty_index_answers_an_empty_page(api: httpx.AsyncClient) -> None:
    response = await api.get("/search", params={"q": "anything"})
    assert response.status_code == 200
    body = response.json()
    assert (body["total"], body["items"], body["next_cursor"]) == (0, [], None)
    assert [bucket["count"] for bucket in body["facets"]["prices"]] == [0] * 6


@pytest.mark.parametrize(
    "hostile",
    [
        "'",
        "&",
        "|",
        "!",
        ":*",
        "a & | b",
        "(()",
        "\\",
        "' OR 1=1 --",
        "-",
        '"unclosed',
        "x" * 500,
        "日本語 テスト",
        "café's <b>",
        "\u0000",
    ],
)
async def test_hostile_text_never_breaks_search(api: httpx.AsyncClient, hostile: str) -> None:
    response = await api.get("/search", params={"q": hostile})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert response.headers["content-type"] == "application/problem+json"
