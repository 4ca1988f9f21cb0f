"""The one place that says which workflows and activities a worker runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.analytics import RollupActivities
from activities.demo import DemoActivities
from activities.disputes import DisputeActivities
from activities.orders import OrderActivities
from activities.payouts import PayoutActivities
from activities.refunds import RefundActivities
from activities.returns import ReturnActivities
from activities.shipments import ShipmentActivities
from commerce.payments.registry import PaymentProviders, build_providers
from core import telemetry
from core.clock import SYSTEM_CLOCK, Clock
from core.metrics import ActivityMetrics
from core.settings import Settings
from workflows.analytics import SalesRollupWorkflow
from workflows.demo import SeedDemoCatalogWorkflow
from workflows.disputes import DisputeWorkflow
from workflows.orders import OrderWorkflow
from workflows.payouts import PayoutWorkflow
from workflows.refunds import RefundWorkflow
from workflows.returns import ReturnWorkflow
from workflows.shipments import ShipmentWorkflow

WORKFLOWS: Sequence[type] = (
    SeedDemoCatalogWorkflow,
    OrderWorkflow,
    ShipmentWorkflow,
    RefundWorkflow,
    ReturnWorkflow,
    DisputeWorkflow,
    PayoutWorkflow,
    SalesRollupWorkflow,
)


@dataclass(frozen=True)
class Dependencies:
    """What activities need from the outside world, built once per worker process."""

    sessionmaker: async_sessionmaker[AsyncSession]
    providers: PaymentProviders
    storefront_url: str
    commission_bp: int
    clock: Clock = SYSTEM_CLOCK  # where activities read the time (core/clock.py)

    @classmethod
    def build(
        cls, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> Dependencies:
        return cls(
            sessionmaker=sessionmaker,
            providers=build_providers(settings, sessionmaker),
            storefront_url=settings.storefront_url,
            commission_bp=settings.platform_commission_bp,
        )

    async def aclose(self) -> None:
        await self.providers.aclose()


def activities(deps: Dependencies) -> list[Callable[..., object]]:
    demo = DemoActivities(deps.sessionmaker, clock=deps.clock)
    orders = OrderActivities(
        deps.sessionmaker,
        deps.providers,
        storefront_url=deps.storefront_url,
        commission_bp=deps.commission_bp,
        clock=deps.clock,
    )
    shipping = ShipmentActivities(deps.sessionmaker, clock=deps.clock)
    refunds = RefundActivities(
        deps.sessionmaker,
        deps.providers,
        deps.storefront_url,
        commission_bp=deps.commission_bp,
        clock=deps.clock,
    )
    return [
        step
        for implementation in (
            demo,
            orders,
            shipping,
            refunds,
            ReturnActivities(deps.sessionmaker, clock=deps.clock),
            DisputeActivities(deps.sessionmaker, clock=deps.clock),
            PayoutActivities(deps.sessionmaker, clock=deps.clock),
            RollupActivities(deps.sessionmaker, clock=deps.clock),
        )
        for step in steps_of(implementation)
    ]


def steps_of(implementation: object) -> list[Callable[..., object]]:
    """The activities of an implementation: every method its contract (the class of
    ``workflows.contracts`` it implements) declares, bound to the instance."""
    contracts = [
        base
        for base in type(implementation).__mro__
        if base.__module__.startswith("workflows.contracts.")
    ]
    if len(contracts) != 1:
        raise TypeError(f"{type(implementation).__name__} implements no one activity contract")
    return [
        getattr(implementation, name)
        for name, member in vars(contracts[0]).items()
        if hasattr(member, "__temporal_activity_definition")
    ]


def build_worker(
    client: Client,
    settings: Settings,
    deps: Dependencies,
    *,
    task_queue: str | None = None,
    tracer_provider: TracerProvider | None = None,
) -> Worker:
    """The worker of every workflow and activity. With ``tracer_provider``, each workflow and
    activity continues the trace of whoever started or signalled it."""
    return Worker(
        client,
        task_queue=task_queue or settings.temporal_task_queue,
        workflows=WORKFLOWS,
        activities=activities(deps),
        graceful_shutdown_timeout=settings.worker_shutdown_grace,
        interceptors=[*telemetry.worker_interceptors(tracer_provider), ActivityMetrics()],
        # The tracing interceptor runs inside the workflow sandbox: OpenTelemetry is loaded
        # once, outside it (it keeps no state a replay could see).
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules("opentelemetry")
        ),
    )
