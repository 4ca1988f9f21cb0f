"""Activities that load demo data."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from commerce.catalog.demo import seed_demo_catalog
from core.clock import SYSTEM_CLOCK, Clock
from workflows.contracts import demo as contract
from workflows.contracts.demo import SeedDemoCatalogInput, SeedDemoCatalogOutput


class DemoActivities(contract.DemoActivities):
    """Implements ``workflows.contracts.demo.DemoActivities``."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock

    @activity.defn
    async def seed_demo_catalog(self, _: SeedDemoCatalogInput) -> SeedDemoCatalogOutput:
        # Idempotent: the seeder checks for the demo vendor inside the same transaction, and the
        # unique slugs make a concurrent duplicate run fail rather than double the catalog.
        async with self._sessionmaker.begin() as session:
            result = await seed_demo_catalog(session, now=self._clock.now())
        activity.logger.info("demo catalog seed", extra={"catalog_loaded": result.created})
        return SeedDemoCatalogOutput(
            created=result.created,
            vendors=result.vendors,
            products=result.products,
            variants=result.variants,
        )
