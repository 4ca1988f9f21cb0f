"""The one place that says which workflows and activities a worker runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from activities.demo import DemoActivities
from activities.disputes import DisputeActivities
from activities.orders import OrderActivities
from activities.payouts import PayoutActivities
from activities.refunds import RefundActivities
from activities.returns import ReturnActivities
from activities.shipments import ShipmentActivities
from commerce.payments.registry import PaymentProviders, build_providers
from core.clock import SYSTEM_CLOCK, Clock
from core.settings import Settings
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
        demo.seed_demo_catalog,
        orders.reserve_inventory,
        orders.commit_inventory,
        orders.restore_inventory,
        orders.release_promotions,
        orders.set_order_status,
        orders.confirm_order,
        orders.close_order,
        orders.authorize_payment,
        orders.authorize_approved,
        orders.record_payment_outcome,
        orders.capture_payment,
        orders.compensate_payment,
        orders.notify_vendor,
        shipping.open_shipment,
        shipping.shipment_state,
        shipping.cancel_unaccepted,
        shipping.cancel_unshipped_parts,
        shipping.completion_date,
        shipping.complete_order,
        refunds.create_refund,
        refunds.describe_refund,
        refunds.refund_at_provider,
        refunds.restock_refund,
        refunds.record_refund_in_ledger,
        refunds.issue_refund_credit_notes,
        refunds.notify_refund_issued,
        *ReturnActivities(deps.sessionmaker, clock=deps.clock).all(),
        *DisputeActivities(deps.sessionmaker, clock=deps.clock).all(),
        PayoutActivities(deps.sessionmaker, clock=deps.clock).run_payouts,
    ]


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
