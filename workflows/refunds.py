"""Refunds: money going back to a shopper, one workflow per refund (``refund:{refund_id}``).

The refund row exists already, ``pending``, its amount counted against the payment (see
``commerce.refunds.create_refund``). The workflow asks the provider with an idempotency key
derived from the refund id, so however often the step runs (a worker killed mid-call, a
timeout) the provider refunds once; then it puts units back in stock, debits the vendors'
ledger, issues the credit notes and tells the shopper. A provider's refusal for good ends the
refund ``failed`` with its amount available again.

Deterministic code only. Activities are called by name with the dataclasses below, so this
module imports nothing with I/O and the API and other workflows can import its types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.order_types import CheckoutTimings
    from workflows.search_attributes import ORDER_ID

REFUND_WORKFLOW = "RefundWorkflow"


def refund_workflow_id(refund_id: str) -> str:
    return f"refund:{refund_id}"


# --- in and out ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundWorkflowInput:
    refund_id: str
    timings: CheckoutTimings = field(default_factory=CheckoutTimings)
    # The platform's commission in basis points (given back on what is refunded); None: the
    # worker's setting (``platform_commission_bp``).
    commission_bp: int | None = None


@dataclass(frozen=True)
class RefundWorkflowResult:
    refund_id: str
    status: str  # succeeded | failed
    amount: int
    currency: str
    provider_refund_id: str | None = None
    failure_reason: str | None = None


@dataclass(frozen=True)
class RefundLineInput:
    order_line_id: str
    quantity: int


@dataclass(frozen=True)
class CreateRefundInput:
    """A refund another workflow decides on (a vendor missed its deadline, a return came
    back); ``request_key`` makes a retried activity find the refund it created."""

    order_id: str
    source: str  # models.RefundSource value
    reason: str
    lines: list[RefundLineInput] = field(default_factory=list)
    amount: int | None = None
    vendor_id: str | None = None
    restock: bool = False
    request_key: str | None = None
    requested_by: str | None = None


@dataclass(frozen=True)
class RefundRef:
    refund_id: str


@dataclass(frozen=True)
class RefundFacts:
    """What the workflow needs to know about its refund."""

    refund_id: str
    order_id: str
    status: str  # pending | succeeded | failed
    amount: int
    currency: str
    amount_text: str  # "12.00 EUR"
    restock: bool


@dataclass(frozen=True)
class ProviderRefundOutput:
    status: str  # succeeded | failed
    provider_refund_id: str | None = None
    failure_reason: str | None = None


@dataclass(frozen=True)
class RecordRefundInput:
    refund_id: str
    commission_bp: int | None = None


@dataclass(frozen=True)
class RefundProgress:
    """The ``progress`` query: where the refund is now."""

    refund_id: str
    step: str  # starting | refunding | restocking | ledger | credit_note | notifying | done
    status: str  # pending | succeeded | failed


# --- the workflow --------------------------------------------------------------------------


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
        self._status = "pending"

    @workflow.query
    def progress(self) -> RefundProgress:
        return RefundProgress(refund_id=self._refund_id, step=self._step, status=self._status)

    @workflow.run
    async def run(self, params: RefundWorkflowInput) -> RefundWorkflowResult:
        self._refund_id = params.refund_id
        timings = params.timings
        ref = RefundRef(params.refund_id)
        facts: RefundFacts = await self._run("describe_refund", ref, RefundFacts, timings)
        if workflow.info().typed_search_attributes.get(ORDER_ID) is None:
            # Started as a child without it: operations still find refunds by order.
            workflow.upsert_search_attributes([ORDER_ID.value_set(facts.order_id)])

        self._at("refunding", f"Refunding {facts.amount_text} at the payment provider.")
        outcome: ProviderRefundOutput = await self._run(
            "refund_at_provider", ref, ProviderRefundOutput, timings
        )
        result = RefundWorkflowResult(
            refund_id=params.refund_id,
            status=outcome.status,
            amount=facts.amount,
            currency=facts.currency,
            provider_refund_id=outcome.provider_refund_id,
            failure_reason=outcome.failure_reason,
        )
        self._status = outcome.status
        if outcome.status != "succeeded":
            self._at(
                "done",
                f"The provider refused the refund ({outcome.failure_reason}); "
                f"{facts.amount_text} is available to refund again.",
            )
            return result

        if facts.restock:
            self._at("restocking", "Putting the refunded units back in stock.")
            await self._run("restock_refund", ref, int, timings)
        self._at("ledger", "Debiting the vendors' ledger.")
        await self._run(
            "record_refund_in_ledger",
            RecordRefundInput(params.refund_id, params.commission_bp),
            int,
            timings,
        )
        self._at("credit_note", "Issuing the credit notes.")
        await self._run("issue_refund_credit_notes", ref, int, timings)
        self._at("notifying", "Telling the shopper.")
        await self._run("notify_refund_issued", ref, bool, timings)
        self._at("done", f"{facts.amount_text} refunded.")
        return result

    def _at(self, step: str, details: str) -> None:
        self._step = step
        workflow.set_current_details(details)

    async def _run(self, name: str, arg: Any, result_type: type, timings: CheckoutTimings) -> Any:
        # No attempt limit: a refund half done (money back, ledger not debited) must not be
        # abandoned; backoff is capped so a recovered dependency is noticed soon.
        return await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timedelta(seconds=timings.activity_timeout_s),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=timings.retry_initial_s),
                maximum_interval=timedelta(seconds=timings.retry_max_s),
                maximum_attempts=0,
            ),
        )
