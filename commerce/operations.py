"""What operations watch: work that sits past its deadline, workflows and rows that disagree,
and the snapshot of the platform's backlogs the worker publishes as metrics.

Every saga ends by a timer: an order is paid or undone within the payment window, a vendor
accepts its part by ``accept_by`` (or the part is cancelled), a return is decided by
``respond_by`` (or approved automatically). A row still in such a state past its deadline
(plus ``stuck_grace_s``) means a workflow that is not doing its job: ``past_deadline`` finds
them, ``disagreements`` compares the orders' rows with their workflows in Temporal, and
``emporium stuck-orders`` prints both with the Temporal UI link of each.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from core import metrics
from core.settings import Settings
from models import Dispute, MailOutbox, Order, ReturnRequest, SearchOutbox, Shipment
from workflows.contracts.disputes import DisputeStatus
from workflows.contracts.orders import FINAL, OrderStatus
from workflows.contracts.returns import ReturnStatus, return_workflow_id
from workflows.contracts.shipments import ShipmentStatus, shipment_workflow_id

log = logging.getLogger(__name__)

#: Statuses of an order still waiting for its payment, ended by the payment window.
AWAITING_PAYMENT = (OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT)
#: Workflows listed, and orders matched, per round trip.
BATCH = 1000
#: How far ahead a dispute's evidence deadline counts as near.
EVIDENCE_DUE_WITHIN = timedelta(hours=72)


@dataclass(frozen=True)
class Finding:
    """One thing operations should look at."""

    kind: str  # order | part | return
    id: uuid.UUID
    order_id: uuid.UUID
    status: str  # as stored
    problem: str  # past_deadline | workflow_missing | workflow_closed | workflow_still_running
    detail: str
    workflow_id: str

    @classmethod
    def order(
        cls, order_id: uuid.UUID, status: OrderStatus, workflow_id: str, problem: str, detail: str
    ) -> Finding:
        """A finding about an order's row against its workflow."""
        return cls("order", order_id, order_id, status.value, problem, detail, workflow_id)

    def ui_link(self, settings: Settings) -> str:
        """This workflow in the Temporal UI."""
        base = settings.temporal_ui_url.rstrip("/")
        namespace = quote(settings.temporal_namespace, safe="")
        return f"{base}/namespaces/{namespace}/workflows/{quote(self.workflow_id, safe='')}"


def _grace(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.stuck_grace_s)


async def past_deadline(
    session: AsyncSession, settings: Settings, *, now: datetime, limit: int = 500
) -> list[Finding]:
    """Orders, parts and returns in a state whose timer should have ended it (oldest first)."""
    grace = _grace(settings)
    window = timedelta(seconds=settings.checkout_payment_window_s)
    found: list[Finding] = []
    unpaid = await session.execute(
        select(Order.id, Order.status, Order.created_at, Order.workflow_id)
        .where(Order.status.in_(AWAITING_PAYMENT), Order.created_at < now - window - grace)
        .order_by(Order.created_at)
        .limit(limit)
    )
    for order_id, status, placed, workflow_id in unpaid:
        found.append(
            Finding(
                "order", order_id, order_id, status.value, "past_deadline",
                f"placed {placed.isoformat()}; the payment window ended "
                f"{(placed + window).isoformat()}",
                workflow_id,
            )
        )  # fmt: skip
    parts = await session.execute(
        select(Shipment.id, Shipment.order_id, Shipment.vendor_id, Shipment.accept_by)
        .where(
            Shipment.status == ShipmentStatus.AWAITING_ACCEPTANCE,
            Shipment.accept_by < now - grace,
        )
        .order_by(Shipment.accept_by)
        .limit(limit)
    )
    for part_id, order_id, vendor_id, accept_by in parts:
        found.append(
            Finding(
                "part", part_id, order_id, ShipmentStatus.AWAITING_ACCEPTANCE.value,
                "past_deadline", f"to be accepted by {accept_by.isoformat()}",
                shipment_workflow_id(str(order_id), str(vendor_id)),
            )
        )  # fmt: skip
    returns = await session.execute(
        select(ReturnRequest.id, ReturnRequest.order_id, ReturnRequest.respond_by)
        .where(
            ReturnRequest.status == ReturnStatus.REQUESTED,
            ReturnRequest.respond_by < now - grace,
        )
        .order_by(ReturnRequest.respond_by)
        .limit(limit)
    )
    for return_id, order_id, respond_by in returns:
        found.append(
            Finding(
                "return", return_id, order_id, ReturnStatus.REQUESTED.value, "past_deadline",
                f"to be decided by {respond_by.isoformat()}", return_workflow_id(str(return_id)),
            )
        )  # fmt: skip
    return found


async def disagreements(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    *,
    now: datetime,
    limit: int = 500,
) -> list[Finding]:
    """Orders whose row and workflow disagree: the workflow of an order runs exactly while
    the order is not final. Three readings, each of at most ``limit`` findings:

    - order workflows that ended without a final ``OrderStatus`` (terminated, failed, timed
      out: Temporal's visibility finds them all) whose order is still open;
    - the ``limit`` oldest open orders, each looked up in Temporal (a workflow missing);
    - running order workflows whose order is final.

    Orders placed within ``order_reconcile_after_s`` are left out: the reconciler may still
    start their workflow.
    """
    settled_by = now - timedelta(seconds=settings.order_reconcile_after_s)
    started_before = settled_by.isoformat()
    final = ", ".join(f"'{status.value}'" for status in sorted(FINAL))
    found: dict[uuid.UUID, Finding] = {}

    async def orders_among(
        workflow_ids: list[str], *, final_ones: bool
    ) -> list[tuple[uuid.UUID, OrderStatus, str]]:
        status = Order.status.in_(FINAL) if final_ones else Order.status.not_in(FINAL)
        rows = await session.execute(
            select(Order.id, Order.status, Order.workflow_id).where(
                Order.workflow_id.in_(workflow_ids), status
            )
        )
        return [(order_id, state, workflow_id) for order_id, state, workflow_id in rows]

    async def scan(query: str, *, final_ones: bool) -> list[tuple[uuid.UUID, OrderStatus, str]]:
        """Workflows matching ``query``, read a page at a time, and their orders that are
        (or are not) final, matched a batch at a time."""
        matched: list[tuple[uuid.UUID, OrderStatus, str]] = []
        batch: list[str] = []
        async for execution in client.list_workflows(query, page_size=BATCH):
            batch.append(execution.id)
            if len(batch) == BATCH:
                matched += await orders_among(batch, final_ones=final_ones)
                batch = []
                if len(matched) >= limit:
                    return matched[:limit]
        if batch:
            matched += await orders_among(batch, final_ones=final_ones)
        return matched[:limit]

    ended = await scan(
        "WorkflowType = 'OrderWorkflow' AND ExecutionStatus != 'Running' "
        f"AND OrderStatus NOT IN ({final}) AND StartTime < '{started_before}'",
        final_ones=False,
    )
    for order_id, status, workflow_id in ended:
        found[order_id] = Finding.order(
            order_id,
            status,
            workflow_id,
            "workflow_closed",
            "the order is open but its workflow ended",
        )

    open_orders = (
        await session.execute(
            select(Order.id, Order.status, Order.workflow_id)
            .where(Order.status.not_in(FINAL), Order.created_at < settled_by)
            .order_by(Order.created_at)
            .limit(limit)
        )
    ).all()
    gate = asyncio.Semaphore(16)

    async def check(order_id: uuid.UUID, status: OrderStatus, workflow_id: str) -> Finding | None:
        async with gate:
            try:
                described = await client.get_workflow_handle(workflow_id).describe()
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    raise
                return Finding.order(
                    order_id, status, workflow_id, "workflow_missing",
                    "the order is open but Temporal has no workflow for it",
                )  # fmt: skip
        if described.status == WorkflowExecutionStatus.RUNNING:
            return None
        how = described.status.name.lower() if described.status else "closed"
        return Finding.order(
            order_id, status, workflow_id, "workflow_closed",
            f"the order is open but its workflow ended ({how})",
        )  # fmt: skip

    for finding in await asyncio.gather(*(check(*row) for row in open_orders)):
        if finding is not None:
            found[finding.order_id] = finding  # the more precise reading wins

    running = await scan(
        "WorkflowType = 'OrderWorkflow' AND ExecutionStatus = 'Running' "
        f"AND StartTime < '{started_before}'",
        final_ones=True,
    )
    for order_id, status, workflow_id in running:
        found[order_id] = Finding.order(
            order_id, status, workflow_id, "workflow_still_running",
            "the order is final but its workflow still runs",
        )  # fmt: skip
    return list(found.values())


# --- the snapshot ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """The platform's backlogs at one moment (published as ``emporium_*`` gauges)."""

    mail_pending: int
    mail_oldest_s: float
    search_pending: int
    stuck: dict[tuple[str, str], int]  # (kind, status) -> how many
    evidence_due: int


async def snapshot(session: AsyncSession, settings: Settings, *, now: datetime) -> Snapshot:
    """Count what waits: cheap aggregate queries over partial indexes and small open sets."""
    grace = _grace(settings)
    window = timedelta(seconds=settings.checkout_payment_window_s)
    mail_pending, mail_oldest = (
        await session.execute(
            select(func.count(), func.min(MailOutbox.created_at)).where(
                MailOutbox.sent_at.is_(None)
            )
        )
    ).one()
    search_pending = await session.scalar(
        select(func.count()).select_from(SearchOutbox).where(SearchOutbox.processed_at.is_(None))
    )
    stuck: dict[tuple[str, str], int] = {("order", s.value): 0 for s in AWAITING_PAYMENT}
    stuck[("part", ShipmentStatus.AWAITING_ACCEPTANCE.value)] = 0
    stuck[("return", ReturnStatus.REQUESTED.value)] = 0
    for status, count in await session.execute(
        select(Order.status, func.count())
        .where(Order.status.in_(AWAITING_PAYMENT), Order.created_at < now - window - grace)
        .group_by(Order.status)
    ):
        stuck[("order", status.value)] = count
    stuck[("part", ShipmentStatus.AWAITING_ACCEPTANCE.value)] = (
        await session.scalar(
            select(func.count())
            .select_from(Shipment)
            .where(
                Shipment.status == ShipmentStatus.AWAITING_ACCEPTANCE,
                Shipment.accept_by < now - grace,
            )
        )
        or 0
    )
    stuck[("return", ReturnStatus.REQUESTED.value)] = (
        await session.scalar(
            select(func.count())
            .select_from(ReturnRequest)
            .where(
                ReturnRequest.status == ReturnStatus.REQUESTED,
                ReturnRequest.respond_by < now - grace,
            )
        )
        or 0
    )
    evidence_due = await session.scalar(
        select(func.count())
        .select_from(Dispute)
        .where(
            Dispute.status == DisputeStatus.OPEN,
            Dispute.evidence_due_at < now + EVIDENCE_DUE_WITHIN,
        )
    )
    # A mail's created_at is the database's clock: this age is good to the skew between the
    # two clocks (seconds at most with NTP), which is all an alert on minutes needs.
    oldest_s = max((now - mail_oldest).total_seconds(), 0.0) if mail_oldest else 0.0
    return Snapshot(
        mail_pending=int(mail_pending),
        mail_oldest_s=oldest_s,
        search_pending=int(search_pending or 0),
        stuck=stuck,
        evidence_due=int(evidence_due or 0),
    )


def publish(taken: Snapshot, *, now: datetime) -> None:
    """Set the snapshot's gauges."""
    metrics.MAIL_OUTBOX_PENDING.set(taken.mail_pending)
    metrics.MAIL_OUTBOX_OLDEST.set(taken.mail_oldest_s)
    metrics.SEARCH_OUTBOX_PENDING.set(taken.search_pending)
    for (kind, status), count in taken.stuck.items():
        metrics.STUCK.labels(kind, status).set(count)
    metrics.DISPUTES_EVIDENCE_DUE.set(taken.evidence_due)
    metrics.SNAPSHOT_TIME.set(now.timestamp())


async def take_snapshot(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, *, now: datetime
) -> Snapshot:
    """The worker's periodic task: count, then publish."""
    async with sessionmaker() as session:
        taken = await snapshot(session, settings, now=now)
    publish(taken, now=now)
    return taken


def summarize(findings: Sequence[Finding]) -> dict[str, int]:
    """How many findings of each problem."""
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.problem] = counts.get(finding.problem, 0) + 1
    return counts
