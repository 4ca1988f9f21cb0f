"""Disputes (chargebacks): operations read them and record the bank's decision; vendors see
the disputes on their orders. Disputes are opened by the provider's webhook
(``commerce.aftersales.disputes.open_dispute_from_webhook``), never through this API."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from api.access import OperationsUser, VendorStaff
from api.deps import NowDep, SessionDep, SettingsDep, TemporalDep
from api.problems import Problem
from api.schemas.disputes import (
    DisputeOutcomeCreate,
    DisputePage,
    DisputeRead,
    VendorDisputePage,
    VendorDisputeRead,
)
from api.schemas.money import Money
from api.schemas.pagination import PageCursor, PageLimit
from commerce.aftersales import disputes
from models import DisputeStatus

router = APIRouter(tags=["disputes"])


@router.get("/admin/disputes", tags=["admin"])
async def list_disputes(
    _: OperationsUser,
    session: SessionDep,
    status: DisputeStatus | None = None,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> DisputePage:
    """Disputes, newest first; ``status=open`` lists those freezing payouts."""
    found = await disputes.list_disputes(
        session,
        status=status,
        limit=limit,
        cursor=cursor,
    )
    page, next_cursor = found.items, found.next_cursor
    debits = await disputes.debits(session, dispute_ids=[dispute.id for dispute in page])
    return DisputePage(
        items=[DisputeRead.build(dispute, debits.get(dispute.id, {})) for dispute in page],
        next_cursor=next_cursor,
    )


@router.get("/admin/disputes/{dispute_id}", tags=["admin"], responses={404: {"model": Problem}})
async def read_dispute(
    dispute_id: uuid.UUID, _: OperationsUser, session: SessionDep
) -> DisputeRead:
    dispute = await disputes.get_dispute(session, dispute_id=dispute_id)
    debits = await disputes.debits(session, dispute_ids=[dispute.id])
    return DisputeRead.build(dispute, debits.get(dispute.id, {}))


@router.post(
    "/admin/disputes/{dispute_id}/outcome",
    tags=["admin"],
    responses={
        404: {"model": Problem, "description": "No such dispute"},
        409: {"model": Problem, "description": "The dispute is already won or lost"},
    },
)
async def record_outcome(
    dispute_id: uuid.UUID,
    body: DisputeOutcomeCreate,
    _: OperationsUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    now: NowDep,
) -> DisputeRead:
    """Record the bank's decision. The freeze on the order's payouts ends now; the dispute's
    workflow then debits the vendors if it was lost (nothing if won) and tells them. 409
    ``dispute_closed`` when an outcome was recorded already."""
    dispute = await disputes.record_outcome(
        session, dispute_id=dispute_id, outcome=body.outcome, now=now
    )
    # Stored before the workflow is told: it reads the outcome, and finds it by itself
    # should the signal not get through now.
    await session.commit()
    await disputes.tell_workflow(temporal, settings, dispute=dispute, now=now)
    return DisputeRead.build(dispute, {})


@router.get("/vendors/{vendor_id}/disputes")
async def list_vendor_disputes(
    staff: VendorStaff,
    session: SessionDep,
    status: DisputeStatus | None = None,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> VendorDisputePage:
    """Disputes on the vendor's orders, newest first."""
    found = await disputes.list_disputes(
        session,
        status=status,
        vendor_id=staff.vendor_id,
        limit=limit,
        cursor=cursor,
    )
    page, next_cursor = found.items, found.next_cursor
    debits = await disputes.debits(session, dispute_ids=[dispute.id for dispute in page])
    return VendorDisputePage(
        items=[
            VendorDisputeRead(
                id=dispute.id,
                order_id=dispute.order_id,
                amount=Money.of(dispute.amount, dispute.currency),
                status=dispute.status,
                evidence_due_at=dispute.evidence_due_at,
                closed_at=dispute.closed_at,
                created_at=dispute.created_at,
                debit=Money.of(
                    debits.get(dispute.id, {}).get(staff.vendor_id, 0), dispute.currency
                ),
            )
            for dispute in page
        ],
        next_cursor=next_cursor,
    )
