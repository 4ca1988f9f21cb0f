"""A whole platform for order-saga tests: a database of the test's own, the API over HTTP
(each request committing, as deployed), the real worker on the test's own task queue, the
durable test payment provider, and a small two-vendor shop shipping to Germany."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.app import create_app
from commerce.payments.test_provider import PostgresTestProviderStore, TestPaymentProvider
from core import database
from core.settings import Settings
from models import (
    InventoryLevel,
    MailOutbox,
    Order,
    OrderEvent,
    Payment,
    Promotion,
    PromotionKind,
    PromotionScope,
    ShippingMethod,
    ShippingRate,
    ShippingZone,
    TaxRate,
    Vendor,
    VendorMembership,
    VendorRole,
)
from tests.catalog_factories import VariantSpec, make_product, make_vendor
from tests.conftest import _client_for, make_settings
from tests.factories import Account, sign_up
from workers.registry import Dependencies, build_worker

BERLIN = {
    "name": "Ada Buyer",
    "line1": "Unter den Linden 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
}

#: Short enough that a failing test fails fast, long enough for a loaded CI machine.
FAST_TIMINGS: dict[str, Any] = {
    "activity_retry_initial_s": 0.05,
    "activity_retry_max_s": 0.5,
    "activity_timeout_s": 10.0,
    "checkout_response_wait_s": 10.0,
}


@dataclass
class Shop:
    north: Vendor
    south: Vendor
    tee: uuid.UUID  # North, 25.00, stock 10
    mug: uuid.UUID  # South, 12.00, stock 10
    coupon: str  # 10% off, 100 uses


@dataclass
class Platform:
    client: httpx.AsyncClient
    app: FastAPI
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    temporal: Client
    provider: TestPaymentProvider
    shop: Shop

    async def shopper(self) -> Account:
        async with self.sessionmaker() as session:
            account = await sign_up(self.client, session)
        response = await self.client.put(
            "/carts/current/shipping-address", headers=account.headers, json=BERLIN
        )
        assert response.status_code == 200, response.text
        return account

    async def add(self, account: Account, variant_id: uuid.UUID, quantity: int = 1) -> None:
        response = await self.client.post(
            "/carts/current/items",
            headers=account.headers,
            json={"variant_id": str(variant_id), "quantity": quantity},
        )
        assert response.status_code == 201, response.text

    async def use_coupon(self, account: Account) -> None:
        response = await self.client.put(
            "/carts/current/coupons", headers=account.headers, json={"codes": [self.shop.coupon]}
        )
        assert response.status_code == 200, response.text

    async def checkout(
        self,
        account: Account,
        pay_with: str = "tok_ok",
        *,
        provider: str = "test",
        key: str | None = None,
    ) -> httpx.Response:
        return await self.client.post(
            "/checkout",
            headers={**account.headers, "Idempotency-Key": key or f"key-{uuid.uuid4()}"},
            json={"payment_provider": provider, "payment_token": pay_with},
        )

    async def order(self, order_id: str) -> Order:
        async with self.sessionmaker() as session:
            order = await session.get(Order, uuid.UUID(order_id))
            assert order is not None
            return order

    async def wait_for(self, order_id: str, *statuses: str, within: float = 30.0) -> Order:
        """Poll the stored order until its status is one of ``statuses``."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            order = await self.order(order_id)
            if order.status.value in statuses:
                return order
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"order {order_id} is {order.status}, not {statuses}")
            await asyncio.sleep(0.05)

    async def eventually(
        self, check: Callable[[], Awaitable[bool]], *, within: float = 30.0
    ) -> None:
        deadline = asyncio.get_running_loop().time() + within
        while not await check():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("condition not met in time")
            await asyncio.sleep(0.05)

    async def stock(self, variant_id: uuid.UUID) -> tuple[int, int]:
        """(on hand, reserved) over all warehouses."""
        async with self.sessionmaker() as session:
            row = (
                await session.execute(
                    select(
                        func.coalesce(func.sum(InventoryLevel.on_hand), 0),
                        func.coalesce(func.sum(InventoryLevel.reserved), 0),
                    ).where(InventoryLevel.variant_id == variant_id)
                )
            ).one()
            return int(row[0]), int(row[1])

    async def payments(self, order_id: str) -> list[Payment]:
        async with self.sessionmaker() as session:
            rows = await session.scalars(
                select(Payment)
                .where(Payment.order_id == uuid.UUID(order_id))
                .order_by(Payment.attempt)
            )
            return list(rows.all())

    async def events(self, order_id: str) -> list[str]:
        async with self.sessionmaker() as session:
            rows = await session.scalars(
                select(OrderEvent.type)
                .where(OrderEvent.order_id == uuid.UUID(order_id))
                .order_by(OrderEvent.id)
            )
            return list(rows.all())

    async def mails(self, to: str) -> list[MailOutbox]:
        async with self.sessionmaker() as session:
            rows = await session.scalars(
                select(MailOutbox)
                .where(MailOutbox.to_address == to)
                .order_by(MailOutbox.created_at)
            )
            return list(rows.all())

    async def coupon_uses(self) -> int:
        async with self.sessionmaker() as session:
            used = await session.scalar(
                select(Promotion.times_used).where(Promotion.code == self.shop.coupon)
            )
            return int(used or 0)


async def add_shipping(
    session: AsyncSession,
    vendor: Vendor,
    *,
    code: str,
    amount: int,
    handling: int = 1,
    transit: tuple[int, int] = (2, 4),
    free_over: int | None = None,
) -> None:
    """One shipping method of ``vendor`` to Germany and France, at a flat EUR rate."""
    zone = ShippingZone(vendor_id=vendor.id, name=f"EU-{code}", countries=["DE", "FR"])
    method = ShippingMethod(
        vendor_id=vendor.id,
        code=code,
        name=code.title(),
        handling_days=handling,
        transit_days_min=transit[0],
        transit_days_max=transit[1],
    )
    session.add_all([zone, method])
    await session.flush()
    session.add(
        ShippingRate(
            method_id=method.id,
            zone_id=zone.id,
            min_weight_grams=0,
            amount=amount,
            currency="EUR",
            free_over_amount=free_over,
        )
    )


async def make_shop(
    sessionmaker: async_sessionmaker[AsyncSession], *, tee_stock: int = 10, mug_stock: int = 10
) -> Shop:
    async with sessionmaker.begin() as session:
        north = await make_vendor(session, name="North")
        south = await make_vendor(session, name="South")
        north.contact_email = "orders@north.example"
        south.contact_email = "orders@south.example"
        tee = await make_product(
            session,
            vendor=north,
            title="Tee",
            variants=[VariantSpec("N-TEE", 2500, stock=tee_stock)],
        )
        mug = await make_product(
            session,
            vendor=south,
            title="Mug",
            variants=[VariantSpec("S-MUG", 1200, stock=mug_stock)],
        )
        session.add(TaxRate(country="DE", tax_class="standard", rate_bp=1900))
        await add_shipping(session, north, code="standard", amount=490)
        await add_shipping(session, south, code="parcel", amount=590)
        coupon = f"SAVE{uuid.uuid4().hex[:6].upper()}"
        session.add(
            Promotion(
                code=coupon,
                name="10% off",
                kind=PromotionKind.PERCENTAGE,
                value=1000,
                scope=PromotionScope.CART,
                usage_limit_total=100,
            )
        )
        await session.flush()
        await session.refresh(tee, ["variants"])
        await session.refresh(mug, ["variants"])
        return Shop(
            north=north,
            south=south,
            tee=tee.variants[0].id,
            mug=mug.variants[0].id,
            coupon=coupon,
        )


@asynccontextmanager
async def platform(
    database_url: str,
    temporal: Client,
    temporal_address: str,
    *,
    with_worker: bool = True,
    shop: Callable[[async_sessionmaker[AsyncSession]], Awaitable[Shop]] = make_shop,
    tracer_provider: TracerProvider | None = None,
    **overrides: Any,
) -> AsyncIterator[Platform]:
    """The platform on ``database_url`` (migrated, empty), its own task queue."""
    settings = make_settings(
        database_url,
        temporal_address,
        temporal_task_queue=f"orders-{uuid.uuid4().hex}",
        **{**FAST_TIMINGS, **overrides},
    )
    engine = database.create_engine(settings, tracer_provider=tracer_provider)
    sessionmaker = database.create_sessionmaker(engine)
    deps = Dependencies.build(settings, sessionmaker)
    app = create_app(settings, tracer_provider=tracer_provider)
    try:
        built = await shop(sessionmaker)
        async with _worker(temporal, settings, deps, with_worker, tracer_provider):
            async for client in _client_for(app):
                yield Platform(
                    client=client,
                    app=app,
                    settings=settings,
                    sessionmaker=sessionmaker,
                    temporal=temporal,
                    provider=TestPaymentProvider(store=PostgresTestProviderStore(sessionmaker)),
                    shop=built,
                )
    finally:
        await deps.aclose()
        await engine.dispose()


@asynccontextmanager
async def _worker(
    temporal: Client,
    settings: Settings,
    deps: Dependencies,
    enabled: bool,
    tracer_provider: TracerProvider | None,
) -> AsyncIterator[None]:
    if not enabled:
        yield
        return
    async with build_worker(temporal, settings, deps, tracer_provider=tracer_provider):
        yield


async def vendor_owner(p: Platform, vendor: Vendor) -> Account:
    """A signed-in owner of ``vendor`` (may accept, ship and cancel its parts)."""
    async with p.sessionmaker() as session:
        account = await sign_up(p.client, session)
    async with p.sessionmaker.begin() as session:
        session.add(
            VendorMembership(
                vendor_id=vendor.id, user_id=uuid.UUID(account.id), role=VendorRole.OWNER
            )
        )
    return account
