"""The one place that says which workflows and activities a worker runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from activities.demo import DemoActivities
from core.settings import Settings
from workflows.demo import SeedDemoCatalogWorkflow

WORKFLOWS: Sequence[type] = (SeedDemoCatalogWorkflow,)


@dataclass(frozen=True)
class Dependencies:
    """What activities need from the outside world, built once per worker process."""

    sessionmaker: async_sessionmaker[AsyncSession]


def activities(deps: Dependencies) -> list[Callable[..., object]]:
    demo = DemoActivities(deps.sessionmaker)
    return [demo.seed_demo_catalog]


def build_worker(
    client: Client, settings: Settings, deps: Dependencies, *, task_queue: str | None = None
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue or settings.temporal_task_queue,
        workflows=WORKFLOWS,
        activities=activities(deps),
        graceful_shutdown_timeout=settings.worker_shutdown_grace,
    )
