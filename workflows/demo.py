"""Loading the demo catalog as a durable job: retried until the database takes it."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.contracts.demo import (
        SEED_DEMO_CATALOG_WORKFLOW,
        DemoActivities,
        SeedDemoCatalogInput,
        SeedDemoCatalogOutput,
        SeedDemoWorkflowInput,
    )


@workflow.defn(name=SEED_DEMO_CATALOG_WORKFLOW)
class SeedDemoCatalogWorkflow:
    """Load the demo catalog into an empty platform; a no-op if it is already there."""

    @workflow.run
    async def run(self, params: SeedDemoWorkflowInput) -> SeedDemoCatalogOutput:
        return await workflow.execute_activity_method(
            DemoActivities.seed_demo_catalog,
            SeedDemoCatalogInput(),
            start_to_close_timeout=timedelta(seconds=params.activity_timeout_s),
            retry_policy=RetryPolicy(maximum_attempts=10, maximum_interval=timedelta(seconds=10)),
        )
