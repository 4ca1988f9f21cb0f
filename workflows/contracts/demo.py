"""Loading the demo catalog (``SeedDemoCatalogWorkflow``): input, output and the interface of
its activity (``activities.demo``)."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity

SEED_DEMO_CATALOG_WORKFLOW = "SeedDemoCatalogWorkflow"


@dataclass(frozen=True)
class SeedDemoWorkflowInput:
    activity_timeout_s: float = 60.0


@dataclass(frozen=True)
class SeedDemoCatalogInput:
    pass


@dataclass(frozen=True)
class SeedDemoCatalogOutput:
    created: bool
    vendors: int
    products: int
    variants: int


class DemoActivities:
    """Implemented by ``activities.demo.DemoActivities``."""

    @activity.defn
    async def seed_demo_catalog(self, _: SeedDemoCatalogInput) -> SeedDemoCatalogOutput:
        """Load the demo catalog into an empty platform; a no-op if it is already there."""
        raise NotImplementedError
