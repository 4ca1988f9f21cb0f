"""Refunds: money going back to a shopper, one workflow per refund (``refund:{refund_id}``).

The refund row exists already, ``pending``, its amount counted against the payment (see
``commerce.aftersales.refunds.create_refund``). The workflow asks the provider with an
idempotency key derived from the refund id, so however often the step runs (a worker killed
mid-call, a timeout) the provider refunds once; then it puts units back in stock, debits the
vendors' ledger, issues the credit notes and tells the shopper. A provider's refusal for good
ends the refund ``failed`` with its amount available again.

Deterministic code only; its contract is ``workflows.contracts.refunds``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from workflows.contracts.refunds import (
        PROGRESS_QUERY,
        REFUND_WORKFLOW,
        RecordRefundInput,
        RefundActivities,
        RefundProgress,
        RefundRef,
        RefundStatus,
        RefundWorkflowInput,
        RefundWorkflowResult,
        refund_workflow_id,
    )
    from workflows.contracts.search_attributes import ORDER_ID
    from workflows.contracts.timings import CheckoutTimings

P = TypeVar("P")
R = TypeVar("R")


@workflow.defn(name=REFUND_WORKFLOW)
class RefundWorkflow:
    """One refund, from counted to confirmed by the provider and accounted for (or refused).

    Every step is retried until it succeeds (none of them may be skipped once money moved:
    a step that keeps failing shows in the Temporal UI as a retrying activity); the
    provider's refusal is not an error but the ``failed`` outcome.
    """

    def __init__(self) -> None:
        self._refund_id = ""
        self._step = "starting"
        self._status: str = RefundStatus.PENDING

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> RefundProgress:
        return RefundProgress(refund_id=self._refund_id, step=self._step, status=self._status)

    @workflow.run
    async def run(self, params: RefundWorkflowInput) -> RefundWorkflowResult:
        self._refund_id = params.refund_id
        timings = params.timings
        ref = RefundRef(params.refund_id)
        facts = await _step(RefundActivities.describe_refund, ref, timings)
        if workflow.info().typed_search_attributes.get(ORDER_ID) is None:
            # Started as a child without it: operations still find refunds by order.
            workflow.upsert_search_attributes([ORDER_ID.value_set(facts.order_id)])

        self._at("refunding", f"Refunding {facts.amount_text} at the payment provider.")
        outcome = await _step(RefundActivities.refund_at_provider, ref, timings)
        result = RefundWorkflowResult(
            refund_id=params.refund_id,
            status=outcome.status,
            amount=facts.amount,
            currency=facts.currency,
            provider_refund_id=outcome.provider_refund_id,
            failure_reason=outcome.failure_reason,
        )
        self._status = outcome.status
        if outcome.status != RefundStatus.SUCCEEDED:
            self._at(
                "done",
                f"The provider refused the refund ({outcome.failure_reason}); "
                f"{facts.amount_text} is available to refund again.",
            )
            return result

        if facts.restock:
            self._at("restocking", "Putting the refunded units back in stock.")
            await _step(RefundActivities.restock_refund, ref, timings)
        self._at("ledger", "Debiting the vendors' ledger.")
        await _step(
            RefundActivities.record_refund_in_ledger,
            RecordRefundInput(params.refund_id, params.commission_bp),
            timings,
        )
        self._at("credit_note", "Issuing the credit notes.")
        await _step(RefundActivities.issue_refund_credit_notes, ref, timings)
        self._at("notifying", "Telling the shopper.")
        await _step(RefundActivities.notify_refund_issued, ref, timings)
        self._at("done", f"{facts.amount_text} refunded.")
        return result

    def _at(self, step: str, details: str) -> None:
        self._step = step
        workflow.set_current_details(details)


async def _step(step: Callable[[Any, P], Awaitable[R]], arg: P, timings: CheckoutTimings) -> R:
    # No attempt limit: a refund half done (money back, ledger not debited) must not be
    # abandoned; backoff is capped so a recovered dependency is noticed soon.
    return await workflow.execute_activity_method(
        step,
        arg,
        start_to_close_timeout=timings.activity_timeout,
        retry_policy=timings.retry(),
    )


async def run_refund(params: RefundWorkflowInput) -> RefundWorkflowResult | None:
    """Run a refund another workflow decided on as its child, and wait for it. The one way
    workflows start refunds: ``refund:{refund_id}``, and abandoned (not cancelled) when the
    parent ends, since money that started moving finishes moving. None when that refund's
    workflow had been started already (by operations, or an earlier run of the parent): its
    outcome is then read from the database by whoever needs it."""
    with contextlib.suppress(WorkflowAlreadyStartedError):
        return await workflow.execute_child_workflow(
            RefundWorkflow.run,
            params,
            id=refund_workflow_id(params.refund_id),
            parent_close_policy=ParentClosePolicy.ABANDON,
        )
    return None
