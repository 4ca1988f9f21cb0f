"""Analytics at scale: the sales reports over a year of orders, timed, next to a plain SELECT
by key on the same connection.

    .venv/bin/python bench/analytics_bench.py [--lines 1000000] [--vendors 50] [--runs 20]

1. Creates a database of its own (`emporium_bench_<random>`) on DATABASE_URL's server (else
   127.0.0.1:5432, user postgres), migrates it, and generates in SQL a year of confirmed
   orders: ``--lines / 2`` orders of two lines each from one vendor (vendors skewed: the
   largest sells about a fifth of everything), one part each, the sale and commission ledger
   entries of each, and a refund of one order in 30; vendors in Europe/Berlin.
2. Rolls the sales up by the hour as the worker's schedule does (timed), then times,
   ``--runs`` times each after one warm-up: a plain ``SELECT`` of an order by key; the
   largest vendor's sales report (a year in days read live, and from the rollup; 30 days; a
   year in months), its best sellers over a year, its overview; the platform's sales report
   (a year in days, live and rolled up, and in months) -- each through the functions the API
   routes call, on one async connection.
3. Prints p50 and p95 of each and their ratio to the SELECT by key; drops the database.

The issue's goal is p95 under 100 ms for a year of data at 1M order lines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from commerce.analytics import overview, products, rollup, sales  # noqa: E402

ZONE = "Europe/Berlin"
FIRST, LAST = date(2025, 12, 1), date(2026, 11, 30)

GENERATE = """
INSERT INTO vendors (id, slug, name, description, status, time_zone)
SELECT gen_random_uuid(), 'v' || i, 'Vendor ' || i, '', 'active', '{zone}'
FROM generate_series(1, {vendors}) AS i;

CREATE TEMP TABLE bench_vendors AS
SELECT id, row_number() OVER (ORDER BY slug) AS n FROM vendors;

CREATE TEMP TABLE bench_orders AS
SELECT gen_random_uuid() AS id, bench_vendors.id AS vendor_id, confirmed_at, line_a, line_b, i
FROM (
    SELECT 1 + floor({vendors} * power(random(), 2))::int AS n,
           timestamptz '2025-11-30 23:00+00' + random() * interval '365 days' AS confirmed_at,
           (500 + floor(random() * 20000))::bigint AS line_a,
           (500 + floor(random() * 20000))::bigint AS line_b,
           i
    FROM generate_series(1, {orders}) AS i
) AS drawn
JOIN bench_vendors USING (n);

INSERT INTO orders (id, idempotency_key, request_hash, status, currency, prices_include_tax,
                    items_subtotal, discount_total, shipping_total, tax_total, grand_total,
                    shipping_address, payment_provider, workflow_id, confirmed_at, created_at)
SELECT id, 'bench-' || i, md5(i::text) || md5(i::text), 'completed', 'EUR', true,
       line_a + line_b, 0, 0, 0, line_a + line_b, '{{}}', 'test', 'order:' || id,
       confirmed_at, confirmed_at
FROM bench_orders;

INSERT INTO order_vendor_parts (order_id, vendor_id, shipping_method_code, shipping_method_name,
                                shipping_amount, shipping_tax, items_subtotal, discount, tax,
                                total)
SELECT id, vendor_id, 'standard', 'Standard', 0, 0, line_a + line_b, 0, 0, line_a + line_b
FROM bench_orders;

INSERT INTO order_lines (id, order_id, vendor_id, sku, title, options, quantity, unit_price,
                         subtotal, discount, tax, tax_rate_bp, total)
SELECT gen_random_uuid(), id, vendor_id, 'SKU-' || (i % 500), 'Item ' || (i % 500), '{{}}', 1,
       line, line, 0, 0, 0, line
FROM (SELECT id, vendor_id, i, line_a AS line FROM bench_orders
      UNION ALL SELECT id, vendor_id, i + 7, line_b FROM bench_orders) AS lines;

INSERT INTO ledger_entries (entry_key, vendor_id, kind, amount, currency, order_id,
                            available_at, memo)
SELECT 'sale:' || id, vendor_id, 'sale'::ledger_kind, line_a + line_b, 'EUR', id,
       confirmed_at + interval '30 days', 'Order sale'
FROM bench_orders
UNION ALL
SELECT 'commission:' || id, vendor_id, 'commission'::ledger_kind, -((line_a + line_b) / 10),
       'EUR', id, confirmed_at + interval '30 days', 'Platform commission 10%'
FROM bench_orders
UNION ALL
SELECT 'refund:' || id, vendor_id, 'refund'::ledger_kind, -line_a, 'EUR', id,
       confirmed_at + interval '3 days', 'Refund'
FROM bench_orders WHERE i % 30 = 0;

ANALYZE;
"""


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


async def timed(runs: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    await call()  # warm-up
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        await call()
        seconds.append(time.perf_counter() - began)
    return seconds


async def measure(url: str, runs: int) -> list[tuple[str, list[float]]]:
    engine = create_async_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    results: list[tuple[str, list[float]]] = []
    try:
        async with sessionmaker() as session:
            largest, share = (
                await session.execute(
                    text(
                        "SELECT vendor_id, count(*)::float / (SELECT count(*) FROM order_lines)"
                        " FROM order_lines GROUP BY vendor_id ORDER BY 2 DESC LIMIT 1"
                    )
                )
            ).one()
            some_order = await session.scalar(text("SELECT id FROM orders LIMIT 1"))
            print(f"largest vendor: {100 * share:.1f}% of the lines")

            def report(
                session: AsyncSession,
                vendor: uuid.UUID | None,
                first: date,
                bucket: str,
                use_rollup: bool = True,
            ) -> Callable[[], Awaitable[Any]]:
                return lambda: sales.sales_report(
                    session,
                    vendor_id=vendor,
                    first=first,
                    last=LAST,
                    bucket=bucket,  # type: ignore[arg-type]
                    time_zone=ZONE,
                    use_rollup=use_rollup,
                )

            began = time.perf_counter()
            chunks = 0
            while True:
                async with sessionmaker.begin() as rolling:
                    rolled = await rollup.roll_up_chunk(
                        rolling, now=datetime(2026, 12, 1, 1, tzinfo=UTC)
                    )
                if rolled.since is None:
                    break
                chunks += 1
            hours = await session.scalar(text("SELECT count(*) FROM sales_hours"))
            print(
                f"rolled up in {time.perf_counter() - began:.1f} s ({chunks} chunks, "
                f"{hours} rows of sales_hours)"
            )

            cases: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
                (
                    "SELECT an order by key",
                    lambda: session.execute(
                        text("SELECT * FROM orders WHERE id = :id"), {"id": some_order}
                    ),
                ),
                (
                    "vendor sales, a year in days, live",
                    report(session, largest, FIRST, "day", use_rollup=False),
                ),
                ("vendor sales, a year in days", report(session, largest, FIRST, "day")),
                ("vendor sales, 30 days", report(session, largest, date(2026, 11, 1), "day")),
                ("vendor sales, a year in months", report(session, largest, FIRST, "month")),
                (
                    "vendor best sellers, a year",
                    lambda: products.top_products(
                        session, vendor_id=largest, first=FIRST, last=LAST, time_zone=ZONE
                    ),
                ),
                (
                    "vendor overview",
                    lambda: overview.vendor_overview(
                        session, vendor_id=largest, now=datetime(2026, 12, 1, tzinfo=UTC)
                    ),
                ),
                (
                    "platform sales, a year in days, live",
                    report(session, None, FIRST, "day", use_rollup=False),
                ),
                ("platform sales, a year in days", report(session, None, FIRST, "day")),
                ("platform sales, a year in months", report(session, None, FIRST, "month")),
            ]  # fmt: skip
            for name, call in cases:
                results.append((name, await timed(runs, call)))
                await session.rollback()
    finally:
        await engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--vendors", type=int, default=50)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--server-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    args = parser.parse_args()
    database = f"emporium_bench_{uuid.uuid4().hex[:8]}"
    base, _, _ = args.server_url.rpartition("/")
    url = f"{base}/{database}"
    with psycopg.connect(args.server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')  # type: ignore[arg-type]
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMPORIUM_")}
        env["EMPORIUM_DATABASE_URL"] = url
        subprocess.run(
            [sys.executable, "-m", "cli.main", "migrate"],
            env=env,
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        began = time.perf_counter()
        script = GENERATE.format(zone=ZONE, vendors=args.vendors, orders=args.lines // 2)
        with psycopg.connect(url, autocommit=True) as connection:
            for statement in script.split(";\n"):
                if statement.strip():
                    connection.execute(statement)  # type: ignore[arg-type]
        print(
            f"{args.lines // 2} orders, {args.lines} lines, {args.vendors} vendors "
            f"generated in {time.perf_counter() - began:.0f} s"
        )
        results = asyncio.run(measure(url, args.runs))
    finally:
        with psycopg.connect(args.server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')  # type: ignore[arg-type]
    key = statistics.median(results[0][1])
    print(f"\n$ .venv/bin/python bench/analytics_bench.py {' '.join(sys.argv[1:])}\n")
    print("| query | p50 | p95 | p95 / SELECT by key p50 |")
    print("|---|---|---|---|")
    for name, seconds in results:
        p50, p95 = statistics.median(seconds), _percentile(seconds, 0.95)
        print(f"| {name} | {1000 * p50:.1f} ms | {1000 * p95:.1f} ms | {p95 / key:.0f}x |")


if __name__ == "__main__":
    main()
