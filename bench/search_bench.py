"""Catalog search at catalog scale: full reindex, then GET /search under load.

    .venv/bin/python bench/search_bench.py [--products 100000] [--seconds 10] [--concurrency 32]

1. Creates a database of its own (`emporium_bench_<random>`) on DATABASE_URL's server (else
   127.0.0.1:5432, user postgres), migrates it and loads a synthetic catalog with COPY:
   vendors (a few suspended), a two-level category tree, products (some drafts and archived)
   with 1-4 variants each (sizes, colours, some inactive) and stock (some sold out, some fully
   reserved), titles/brands/tags/descriptions drawn from a fixed vocabulary (seeded).
2. Runs `SearchIndexer.reindex_all` on the PostgreSQL backend: seconds and documents/s.
3. Starts the API in a subprocess as `emporium api` does (uvicorn, one process, uvloop +
   httptools, access log off) with the search backend attached, and drives each query for
   `--seconds` with `--concurrency` concurrent httpx clients: requests/s, p50, p99.
4. Drops the database.

The load generator runs on the same 2 cores as the API and PostgreSQL: compare ratios with
../shared/LIMITS.md, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LIMITS_PG_SELECT_TPS = 22_500
LIMITS_API_SELECT_BY_KEY_RPS = 750

BRANDS = [
    "Acme", "Northwind", "Fjordline", "Alpenglow", "Kestrel", "Marlowe", "Oakridge", "Pioneer",
    "Quillon", "Rivergate", "Saltmarsh", "Tidewater", "Umbra", "Vantage", "Willowby", "Yarrow",
    "Zephyr", "Bramble", "Cobalt", "Driftwood", "Ember", "Foxglove", "Granite", "Heron",
    "Ironbark", "Juniper", "Kinfolk", "Lumen", "Mistral", "Nimbus", "Orchard", "Peregrine",
    "Crème Atelier", "Café Noir", "Bjørn & Co", "Señorita", "Über", "Løvenskiold",
]  # fmt: skip
ADJECTIVES = [
    "classic", "lightweight", "organic", "vintage", "slim", "relaxed", "waterproof", "heavy",
    "soft", "recycled", "insulated", "breathable", "handmade", "cropped", "oversized", "quilted",
    "ribbed", "brushed", "washed", "tailored", "everyday", "premium", "rustic", "modern",
]  # fmt: skip
MATERIALS = [
    "merino", "cotton", "linen", "denim", "cashmere", "leather", "wool", "fleece", "silk",
    "bamboo", "hemp", "canvas", "suede", "corduroy", "alpaca", "nylon", "ceramic", "oak",
    "walnut", "steel", "copper", "stoneware", "glass", "porcelain",
]  # fmt: skip
# Top category -> (subcategory -> nouns).
CATALOG = {
    "clothing": {
        "knitwear": ["sweater", "cardigan", "jumper", "turtleneck", "vest"],
        "t-shirts": ["tee", "t-shirt", "henley", "tank top", "polo"],
        "outerwear": ["jacket", "parka", "raincoat", "overcoat", "gilet"],
        "trousers": ["chinos", "jeans", "joggers", "trousers", "shorts"],
    },
    "accessories": {
        "hats": ["beanie", "cap", "bucket hat", "fedora"],
        "scarves": ["scarf", "snood", "shawl"],
        "bags": ["backpack", "tote bag", "duffel", "messenger bag", "wallet"],
    },
    "footwear": {
        "boots": ["boots", "chelsea boots", "hiking boots"],
        "sneakers": ["sneakers", "trainers", "runners"],
        "socks": ["socks", "hiking socks", "ankle socks"],
    },
    "home": {
        "kitchen": ["mug", "teapot", "bowl", "plate", "kettle", "chef knife", "skillet"],
        "living": ["throw", "cushion", "vase", "lamp", "rug", "candle"],
        "bedroom": ["duvet cover", "pillowcase", "blanket", "sheet set"],
    },
    "outdoor": {
        "camping": ["tent", "sleeping bag", "camp stove", "lantern"],
        "cycling": ["cycling jersey", "bike light", "saddle bag", "gloves"],
    },
}
COLOURS = ["black", "white", "navy", "grey", "olive", "sand", "red", "blue", "green", "brown"]
SIZES = ["XS", "S", "M", "L", "XL"]
FILLER = [
    "made", "to", "last", "with", "care", "and", "finished", "by", "hand", "in", "small",
    "batches", "from", "responsibly", "sourced", "materials", "for", "everyday", "use", "at",
    "home", "or", "outdoors", "in", "every", "season", "comfortable", "durable", "and", "easy",
    "to", "look", "after", "machine", "washable", "gentle", "cycle",
]  # fmt: skip

QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("text 'merino sweater', facets", {"q": "merino sweater"}),
    (
        "typo 'mernio', in stock, < 50.00",
        {"q": "mernio", "in_stock": "true", "price_max": "5000"},
    ),
    ("prefix 'jack' (as typed)", {"q": "jack", "facets": "false"}),
    (
        "category clothing, price asc, facets",
        {"category": "clothing", "sort": "price_asc"},
    ),
    (
        "knitwear+brand+size:M+colour, rating",
        {
            "category": "clothing/knitwear",
            "brand": ["Acme", "Northwind", "Fjordline"],
            "option": ["size:M", "colour:navy", "colour:grey"],
            "sort": "rating",
        },
    ),
    ("browse everything, newest, facets", {}),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_url() -> str:
    return os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _plain(url: str, database: str | None = None) -> str:
    """A libpq URL (psycopg); SQLAlchemy's driver suffix removed."""
    parsed = make_url(url).set(drivername="postgresql")
    if database:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def _sqlalchemy(url: str) -> str:
    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


# --- the catalog ------------------------------------------------------------------------------


def _copy_text(rows: Iterator[tuple[Any, ...]]) -> bytes:
    """Rows in COPY's text format: tabs, \\N for NULL, backslash escapes."""
    out = io.StringIO()
    for row in rows:
        fields = []
        for value in row:
            if value is None:
                fields.append("\\N")
                continue
            if isinstance(value, bool):
                value = "t" if value else "f"
            elif isinstance(value, (dict, list)) and not isinstance(value, str):
                value = (
                    json.dumps(value)
                    if isinstance(value, dict)
                    else "{" + ",".join(json.dumps(v) for v in value) + "}"
                )
            value = str(value)
            fields.append(value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n"))
        out.write("\t".join(fields) + "\n")
    return out.getvalue().encode()


async def load_catalog(url: str, products: int, seed: int = 7) -> dict[str, int]:
    """The synthetic catalog, written with COPY (about 6 rows per product)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    vendor_count = max(10, products // 500)
    vendors = [
        (uuid.UUID(int=rng.getrandbits(128)), f"vendor-{i:04d}", f"Vendor {i}")
        for i in range(vendor_count)
    ]
    vendor_status = {
        v[0]: ("suspended" if i % 25 == 24 else "active") for i, v in enumerate(vendors)
    }
    warehouses = {v[0]: uuid.UUID(int=rng.getrandbits(128)) for v in vendors}
    categories: list[tuple[uuid.UUID, uuid.UUID | None, str, str, str]] = []
    leaves: list[tuple[uuid.UUID, str, list[str], str]] = []
    for top, subs in CATALOG.items():
        top_id = uuid.UUID(int=rng.getrandbits(128))
        categories.append((top_id, None, top, top.title(), top))
        for sub, nouns in subs.items():
            sub_id = uuid.UUID(int=rng.getrandbits(128))
            categories.append((sub_id, top_id, f"{top}-{sub}", sub.title(), f"{top}/{sub}"))
            leaves.append((sub_id, f"{top}/{sub}", nouns, top))
    product_rows: list[tuple[Any, ...]] = []
    variant_rows: list[tuple[Any, ...]] = []
    level_rows: list[tuple[Any, ...]] = []
    apparel = {"clothing", "footwear", "accessories"}
    for i in range(products):
        product_id = uuid.UUID(int=rng.getrandbits(128))
        vendor_id = vendors[rng.randrange(vendor_count)][0]
        category_id, _, nouns, top = leaves[rng.randrange(len(leaves))]
        material, noun = rng.choice(MATERIALS), rng.choice(nouns)
        adjective = rng.choice(ADJECTIVES)
        title = f"{adjective.title()} {material} {noun}"
        brand = rng.choice(BRANDS)
        tags = sorted({material, noun.split()[-1], rng.choice(ADJECTIVES)})
        description = (
            f"A {adjective} {noun} in {material}. " + " ".join(rng.choices(FILLER, k=25)) + "."
        )
        roll = rng.random()
        status = "active" if roll < 0.95 else ("draft" if roll < 0.98 else "archived")
        published = (
            now - timedelta(minutes=rng.randrange(0, 60 * 24 * 365)) if status == "active" else None
        )
        rated = rng.random() < 0.7
        rating = f"{rng.uniform(1, 5):.2f}" if rated else None
        product_rows.append(
            (
                product_id, vendor_id, category_id, f"p-{i:07d}", title, description, brand,
                status, tags, {"material": material}, published, rating,
                rng.randrange(1, 400) if rated else 0,
            )
        )  # fmt: skip
        base = rng.choice([500, 900, 1500, 2500, 4000, 6500, 9900, 15000, 24000, 40000])
        base += rng.randrange(0, 500)
        colours = rng.sample(COLOURS, k=rng.randint(1, 2))
        sizes = rng.sample(SIZES, k=rng.randint(1, 2)) if top in apparel else [None]
        for c, colour in enumerate(colours):
            for s, size in enumerate(sizes):
                variant_id = uuid.UUID(int=rng.getrandbits(128))
                options = {"colour": colour, **({"size": size} if size else {})}
                variant_rows.append(
                    (
                        variant_id, product_id, vendor_id, f"SKU-{i:07d}-{c}{s}", options,
                        base + 100 * s, "EUR", rng.random() > 0.05,
                    )
                )  # fmt: skip
                on_hand = 0 if rng.random() < 0.2 else rng.randrange(1, 50)
                reserved = on_hand if rng.random() < 0.05 else 0
                level_rows.append((variant_id, warehouses[vendor_id], on_hand, reserved, 0))
    async with await psycopg.AsyncConnection.connect(url) as connection:
        async with connection.cursor() as cursor:
            for table, columns, rows in (
                (
                    "vendors",
                    "id, slug, name, description, status",
                    [(v[0], v[1], v[2], "", vendor_status[v[0]]) for v in vendors],
                ),
                (
                    "warehouses",
                    "id, vendor_id, code, name, is_default",
                    [(w, v, "main", "Main", True) for v, w in warehouses.items()],
                ),
                ("categories", "id, parent_id, slug, name, path", categories),
                (
                    "products",
                    "id, vendor_id, category_id, slug, title, description, brand, status, "
                    "tags, attributes, published_at, rating_avg, rating_count",
                    product_rows,
                ),
                (
                    "variants",
                    "id, product_id, vendor_id, sku, options, price_amount, currency, is_active",
                    variant_rows,
                ),
                (
                    "inventory_levels",
                    "variant_id, warehouse_id, on_hand, reserved, low_stock_threshold",
                    level_rows,
                ),
            ):
                async with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    data = _copy_text(iter(rows))
                    for start in range(0, len(data), 1 << 20):
                        await copy.write(data[start : start + (1 << 20)])
        await connection.commit()
        await connection.execute("ANALYZE")
    return {
        "vendors": len(vendors),
        "products": len(product_rows),
        "variants": len(variant_rows),
        "levels": len(level_rows),
    }


# --- the API under load -----------------------------------------------------------------------


async def _wait_ready(base: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=base) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get("/search", params={"limit": 1})).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the API did not come up")


async def drive(
    base: str, params: dict[str, Any], seconds: float, concurrency: int
) -> dict[str, float]:
    """`concurrency` clients sending the same request back to back for `seconds`."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        check = await client.get("/search", params=params)
        check.raise_for_status()
        total = check.json()["total"]
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.get("/search", params=params)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "total": total,
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "errors": errors,
    }


async def single_latency(base: str, params: dict[str, Any], repeat: int = 20) -> float:
    """Median latency of one client alone (no queueing): the query's own cost."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            (await client.get("/search", params=params)).raise_for_status()
            samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10, help="per query")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=1_000, help="reindex batch")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    from commerce.search.indexer import SearchIndexer
    from commerce.search.postgres import PostgresSearch
    from core import database
    from core.settings import load_settings
    from models.migrate import upgrade_engine

    server = _server_url()
    name = f"emporium_bench_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(
        _sqlalchemy(server), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = _plain(server, name)
    api: subprocess.Popen[bytes] | None = None
    try:
        engine = create_async_engine(_sqlalchemy(url), poolclass=NullPool)
        await upgrade_engine(engine)
        await engine.dispose()

        started = time.perf_counter()
        counts = await load_catalog(url, args.products)
        load_s = time.perf_counter() - started
        print(
            f"catalog: {counts['products']:,} products, {counts['variants']:,} variants, "
            f"{counts['levels']:,} stock levels, {counts['vendors']} vendors "
            f"loaded with COPY in {load_s:.1f} s"
        )

        settings = load_settings(database_url=url, _env_file=None)
        engine = database.create_engine(settings)
        sessionmaker = database.create_sessionmaker(engine)
        report = await SearchIndexer(sessionmaker, PostgresSearch(sessionmaker)).reindex_all(
            args.batch_size
        )
        async with engine.connect() as connection:
            await connection.execute(text("ANALYZE search_documents"))
            await connection.commit()
            terms = (await connection.execute(text("SELECT count(*) FROM search_terms"))).scalar()
            size = (
                await connection.execute(
                    text("SELECT pg_size_pretty(pg_total_relation_size('search_documents'))")
                )
            ).scalar()
        await engine.dispose()
        print(
            f"reindex_all: {report.indexed:,} documents in {report.seconds:.1f} s "
            f"({report.documents_per_second:,.0f} docs/s, batches of {args.batch_size}); "
            f"search_documents {size}, {terms:,} distinct words"
        )

        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMPORIUM_")}
        env.update(
            EMPORIUM_DATABASE_URL=url,
            EMPORIUM_LOG_LEVEL="WARNING",
            PYTHONPATH=str(ROOT),
        )
        api = subprocess.Popen(  # noqa: ASYNC220 - started once, not awaited on
            [
                sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory",
                "--host", "127.0.0.1", "--port", str(port),
                "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                "--log-level", "warning",
            ],
            env=env,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        await _wait_ready(base)

        print(
            f"\nGET /search, 1 API process, {args.concurrency} concurrent clients, "
            f"{args.seconds:g} s per query\n"
        )
        header = (
            f"| query | matches | alone p50 | req/s | p50 | p99 | errors "
            f"| vs API SELECT by key ({LIMITS_API_SELECT_BY_KEY_RPS}/s) "
            f"| vs PG select-only ({LIMITS_PG_SELECT_TPS:,}/s) |"
        )
        print(header)
        print("|" + "---|" * 9)
        for label, params in QUERIES:
            alone = await single_latency(base, params)
            figures = await drive(base, params, args.seconds, args.concurrency)
            print(
                f"| {label} | {figures['total']:,} | {alone:.1f} ms "
                f"| {figures['rps']:,.0f} | {figures['p50_ms']:.0f} ms "
                f"| {figures['p99_ms']:.0f} ms | {figures['errors']} "
                f"| {figures['rps'] / LIMITS_API_SELECT_BY_KEY_RPS:.2f}x "
                f"| {figures['rps'] / LIMITS_PG_SELECT_TPS:.3f}x |",
                flush=True,
            )
    finally:
        if api is not None:
            api.terminate()
            try:
                api.wait(timeout=10)
            except subprocess.TimeoutExpired:
                api.kill()
        if not args.keep:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        else:
            print(f"kept database {name}")
        await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
