"""The worker process: runs every workflow and activity, and drains the outboxes."""

from __future__ import annotations

import asyncio
import functools
import logging
import signal

from commerce import housekeeping, operations
from commerce.aftersales import disputes, refund_saga
from commerce.analytics.rollup_schedule import ensure_rollup_schedule
from commerce.finance.payout_schedule import ensure_payout_schedule
from commerce.notifications.mail import MailDispatcher, transport_for
from commerce.orders import order_saga
from commerce.search.indexer import SearchIndexer, backend_for
from core import database, telemetry, temporal
from core.periodic import run_every
from core.settings import Settings
from workers.metrics import WorkerMetrics
from workers.registry import Dependencies, build_worker

log = logging.getLogger("emporium.worker")

# Spent counters, expired tokens and guest carts go this often (commerce/housekeeping.py).
HOUSEKEEPING_INTERVAL_S = 600.0


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Poll the task queue, deliver queued mail, keep the search index current and start the
    saga of any order whose start the API lost, until SIGTERM/SIGINT (or ``stop``); then shut
    down gracefully.

    On shutdown the worker stops polling at once and gives running activities up to
    ``worker_shutdown_grace_s`` to finish before cancelling them.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    tracer_provider = telemetry.tracer_provider_from_env(telemetry.WORKER_SERVICE)
    engine = database.create_engine(settings, tracer_provider=tracer_provider)
    deps = Dependencies.build(settings, database.create_sessionmaker(engine))
    search_backend = backend_for(settings, deps.sessionmaker)
    served = settings.worker_metrics_host_port
    worker_metrics = WorkerMetrics(*served) if served else None
    try:
        if worker_metrics is not None:
            worker_metrics.start()  # first: a taken port stops the start at once, clearly
        client = await temporal.connect(
            settings, runtime=worker_metrics.runtime if worker_metrics else None
        )
        await temporal.ensure_search_attributes(client, settings.temporal_namespace)
        if settings.environment != "production":
            # Only the simulated payout provider exists: no real money moves to vendors yet,
            # so production gets no schedule that would mark payouts paid.
            await ensure_payout_schedule(client, settings)
        await ensure_rollup_schedule(client, settings)
        worker = build_worker(client, settings, deps, tracer_provider=tracer_provider)
        # The other halves of the transactional outboxes: mail, and search index updates,
        # both committed by the API or by activities.
        mail = MailDispatcher(deps.sessionmaker, transport_for(settings), clock=deps.clock)
        indexer = SearchIndexer(deps.sessionmaker, search_backend)
        async with worker, asyncio.TaskGroup() as tasks:
            tasks.create_task(mail.run(stop))
            tasks.create_task(indexer.run(stop, interval_s=1.0))
            tasks.create_task(
                run_every(
                    settings.snapshot_interval_s,
                    stop,
                    functools.partial(operations.take_snapshot, deps.sessionmaker, settings),
                    what="metrics snapshot",
                    clock=deps.clock,
                )
            )
            tasks.create_task(
                run_every(
                    HOUSEKEEPING_INTERVAL_S,
                    stop,
                    functools.partial(housekeeping.prune_committed, deps.sessionmaker),
                    what="housekeeping",
                    clock=deps.clock,
                )
            )
            # Repairs after crashes: sagas whose start the API lost.
            for what, reconcile in (
                ("order reconciliation", order_saga.reconcile_pending),
                ("refund reconciliation", refund_saga.reconcile_pending_refunds),
                ("dispute reconciliation", disputes.reconcile_disputes),
            ):
                tasks.create_task(
                    run_every(
                        settings.order_reconcile_after_s,
                        stop,
                        functools.partial(reconcile, deps.sessionmaker, client, settings),
                        what=what,
                        clock=deps.clock,
                    )
                )
            log.info(
                "worker started",
                extra={
                    "task_queue": settings.temporal_task_queue,
                    "namespace": settings.temporal_namespace,
                    "temporal_address": settings.temporal_address,
                    "metrics": worker_metrics.url if worker_metrics else None,
                },
            )
            await stop.wait()
            log.info(
                "worker stopping; letting running activities finish",
                extra={"grace_s": settings.worker_shutdown_grace_s},
            )
        log.info("worker stopped")
    finally:
        if worker_metrics is not None:
            worker_metrics.close()
        await deps.aclose()
        await search_backend.close()
        await engine.dispose()
