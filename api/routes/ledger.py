"""A vendor's ledger and payouts (its managers), and running payouts now (admins)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from fastapi import APIRouter, Query, Response
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError

from api.access import AdminUser, VendorManager
from api.deps import NowDep, SessionDep, SettingsDep, TemporalDep
from api.schemas.ledger import (
    CurrencyBalanceRead,
    LedgerEntryRead,
    LedgerPage,
    PayoutPage,
    PayoutRead,
    PayoutRunRead,
)
from api.schemas.money import Money
from api.schemas.pagination import PageCursor, PageLimit
from commerce.errors import DomainError
from commerce.finance import ledger
from commerce.orders.order_saga import timings
from core import pagination
from core.settings import Settings
from core.temporal import WorkflowStartFailed, start_workflow
from workflows.contracts.payouts import (
    PAYOUT_WORKFLOW,
    PayoutWorkflowInput,
    RunPayoutsOutput,
    manual_run_workflow_id,
    run_key_for,
)

router = APIRouter(tags=["ledger"])
admin_router = APIRouter(prefix="/admin/payouts", tags=["admin"])


class PayoutsUnavailable(DomainError):
    status, code, title = 503, "payouts_unavailable", "Payout processing is unavailable"


class PayoutRunFailed(DomainError):
    status, code, title = 502, "payout_run_failed", "The payout run failed"


@router.get("/vendors/{vendor_id}/ledger")
async def vendor_ledger(
    manager: VendorManager,
    session: SessionDep,
    now: NowDep,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> LedgerPage:
    """Balance, payable now and frozen per currency, and the entries, newest first."""
    vendor_id = manager.vendor_id
    balances = await ledger.balance(session, vendor_id=vendor_id)
    payable = await ledger.payable(session, vendor_id=vendor_id, now=now)
    frozen = await ledger.frozen(session, vendor_id=vendor_id)
    before = pagination.decode_cursor(cursor, "ledger", int)[0] if cursor else None
    found = await ledger.entries(session, vendor_id=vendor_id, limit=limit + 1, before_id=before)
    page = found[:limit]
    return LedgerPage(
        balances=[
            CurrencyBalanceRead(
                currency=currency,
                balance=Money.of(balances.get(currency, 0), currency),
                payable=Money.of(payable.get(currency, 0), currency),
                frozen=Money.of(frozen.get(currency, 0), currency),
            )
            for currency in sorted(balances.keys() | payable.keys() | frozen.keys())
        ],
        items=[LedgerEntryRead.from_domain(entry) for entry in page],
        next_cursor=(
            pagination.encode_cursor("ledger", page[-1].id) if len(found) > limit else None
        ),
    )


@router.get("/vendors/{vendor_id}/payouts")
async def vendor_payouts(
    manager: VendorManager,
    session: SessionDep,
    limit: PageLimit = 20,
    cursor: PageCursor = None,
) -> PayoutPage:
    """The vendor's payouts, newest first."""
    found = await ledger.payouts(
        session,
        vendor_id=manager.vendor_id,
        limit=limit,
        cursor=cursor,
    )
    return PayoutPage(
        items=[PayoutRead.from_domain(payout) for payout in found.items],
        next_cursor=found.next_cursor,
    )


async def start_payout_run(
    client: Client, settings: Settings, *, now: datetime
) -> tuple[str, str, bool]:
    """Start ``PayoutWorkflow`` keyed by ``now`` (to the second); (workflow id, run key,
    started). The same second twice is the same run: nobody is paid twice."""
    run_key = run_key_for(now)
    workflow_id = manual_run_workflow_id(run_key)
    try:
        started = await start_workflow(
            client,
            PAYOUT_WORKFLOW,
            PayoutWorkflowInput(timings=timings(settings), run_key=run_key, as_of=now.isoformat()),
            id=workflow_id,
            task_queue=settings.temporal_task_queue,
            summary="Payout run started by an admin",
        )
    except WorkflowStartFailed as error:
        raise PayoutsUnavailable("Temporal did not take the run; try again.") from error
    return workflow_id, run_key, started


@admin_router.post(
    "/run",
    status_code=202,
    responses={
        200: {"model": PayoutRunRead, "description": "With `?wait=true`: the run finished"},
    },
)
async def run_payouts_now(
    _: AdminUser,
    settings: SettingsDep,
    temporal: TemporalDep,
    response: Response,
    now: NowDep,
    wait: bool = Query(default=False, description="Wait for the run and answer its outcome"),
) -> PayoutRunRead:
    """Pay vendors now what is payable, through ``PayoutWorkflow`` (the same run the schedule
    makes, so settling and sending stay durable and idempotent). 202 with the workflow id;
    ``?wait=true`` waits for the run (up to ``EMPORIUM_PAYOUT_RUN_WAIT_S``) and answers 200
    with what it paid, or 202 if it is still going."""
    workflow_id, run_key, _started = await start_payout_run(temporal, settings, now=now)
    if not wait:
        return PayoutRunRead(workflow_id=workflow_id, run_key=run_key, finished=False)
    try:
        outcome = await asyncio.wait_for(
            temporal.get_workflow_handle(workflow_id, result_type=RunPayoutsOutput).result(),
            timeout=settings.payout_run_wait_s,
        )
    except TimeoutError:
        # Still going (or no worker has taken it yet): the run is durable, poll for it later.
        return PayoutRunRead(workflow_id=workflow_id, run_key=run_key, finished=False)
    except WorkflowFailureError as error:
        raise PayoutRunFailed(str(error.cause)) from error
    except RPCError as error:
        raise PayoutsUnavailable("Temporal did not answer; the run goes on.") from error
    response.status_code = 200
    return PayoutRunRead(
        workflow_id=workflow_id,
        run_key=run_key,
        finished=True,
        payouts=outcome.payouts,
        paid=outcome.paid,
        amounts=(
            [Money.of(amount, currency) for currency, amount in sorted(outcome.amounts.items())]
            if outcome.amounts is not None
            else None
        ),
    )
