"""The order saga: reserve, pay (with retries, 3-D Secure and redirects), capture, commit,
confirm, hand each vendor its part; or undo everything that happened, in reverse.

Deterministic code only: no I/O, no clocks but ``workflow.now()``. Every step that changes the
outside world is an activity with its compensation registered *before* it runs (a step that
timed out may still have happened), and the compensations run in reverse, shielded from
cancellation, whenever the order ends without being paid or is cancelled before shipping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts.orders import (
        CANCEL_UPDATE,
        CANCELLABLE,
        CHECKOUT_OUTCOME_UPDATE,
        COMPENSATING,
        FINAL,
        PAYMENT_EVENT_SIGNAL,
        RETRY_PAYMENT_UPDATE,
        SHIPMENT_SHIPPED_SIGNAL,
        SHOPPER_RETURNED_UPDATE,
        STATUS_QUERY,
        AuthorizePaymentInput,
        CancelOrderRequest,
        CancelOrderResult,
        CloseOrderInput,
        CompensatePaymentInput,
        OrderActivities,
        OrderRef,
        OrderStatus,
        OrderStatusView,
        OrderWorkflowInput,
        PaymentEventSignal,
        PaymentOutcomeInput,
        PaymentRef,
        PaymentStatus,
        PaymentView,
        RetryPaymentRequest,
        SetOrderStatusInput,
    )
    from workflows.contracts.search_attributes import ORDER_STATUS, PAYMENT_PROVIDER
    from workflows.contracts.shipments import (
        CompletionInput,
        ShipmentActivities,
        ShipmentStatus,
        ShipmentWorkflowInput,
        shipment_workflow_id,
    )
    from workflows.shipments import ShipmentWorkflow

#: Payment outcomes the shopper has to act on, or that end an attempt.
_SETTLED_PAYMENT = frozenset(
    {PaymentStatus.REQUIRES_ACTION, PaymentStatus.DECLINED, PaymentStatus.FAILED}
)

P = TypeVar("P")
R = TypeVar("R")


class _Abort(Exception):
    """The order will not go ahead: unwind with this final status and reason."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _error_type(error: BaseException) -> str | None:
    cause = error.cause if isinstance(error, ActivityError | ChildWorkflowError) else error
    return cause.type if isinstance(cause, ApplicationError) else None


@workflow.defn
class OrderWorkflow:
    """One order, from placed to handed over to its vendors (or undone).

    Id ``order:{order_id}``. Status is kept in PostgreSQL by the activities and mirrored in the
    ``OrderStatus`` search attribute; ``status`` (query) gives the live state, including what
    the shopper must do next (a 3-D Secure client secret, a PayPal approval URL).
    """

    @workflow.init
    def __init__(self, params: OrderWorkflowInput) -> None:
        self._params = params
        self._timings = params.timings
        self._status: str = OrderStatus.PENDING
        self._payment: PaymentView | None = None
        self._attempt = 0
        self._deadline: str | None = None
        self._deadline_at = workflow.now() + timedelta(seconds=self._timings.payment_window_s)
        self._cancel: CancelOrderRequest | None = None
        self._retry: RetryPaymentRequest | None = None
        self._awaiting_retry = False
        self._cancel_reason: str | None = None
        self._events: list[PaymentEventSignal] = []
        self._seen_events: set[str] = set()
        self._payment_ids: set[str] = set()
        self._shipped_vendors: set[str] = set()
        self._compensations: list[tuple[str, Callable[[], Awaitable[object]]]] = []
        self._problems: list[str] = []
        # Attempts whose outcome at the provider is unknown (its answer never came): whatever
        # they may hold is released once another attempt has paid.
        self._uncertain: list[tuple[int, str]] = []
        self._parts_started = False
        self._cancelling = False

    # --- handlers -----------------------------------------------------------------------

    @workflow.query(name=STATUS_QUERY)
    def status(self) -> OrderStatusView:
        return self._view()

    @workflow.signal(name=PAYMENT_EVENT_SIGNAL)
    def payment_event(self, event: PaymentEventSignal) -> None:
        """A verified provider webhook. Duplicates are dropped; early ones are kept for the
        payment they name; order does not matter (the strongest news wins)."""
        if event.event_id in self._seen_events:
            return
        self._seen_events.add(event.event_id)
        self._events.append(event)

    @workflow.signal(name=SHIPMENT_SHIPPED_SIGNAL)
    def shipment_shipped(self, vendor_id: str) -> None:
        self._shipped_vendors.add(vendor_id)

    @workflow.update(name=CHECKOUT_OUTCOME_UPDATE)
    async def checkout_outcome(self) -> OrderStatusView:
        """Wait until the first payment outcome is known (or the order ended), for
        ``POST /checkout`` to answer with it."""
        await workflow.wait_condition(self._settled)
        return self._view()

    @workflow.update(name=RETRY_PAYMENT_UPDATE)
    async def retry_payment(self, request: RetryPaymentRequest) -> OrderStatusView:
        """Pay again after a decline; answers with the new attempt's outcome."""
        attempt = self._attempt
        self._retry = request
        await workflow.wait_condition(lambda: self._attempt > attempt and self._settled())
        return self._view()

    @retry_payment.validator
    def _validate_retry(self, request: RetryPaymentRequest) -> None:
        if not self._awaiting_retry or self._retry is not None:
            raise ApplicationError(
                "The order is not waiting for another payment.", type="NotAwaitingPayment"
            )
        if self._attempt >= self._timings.max_payment_attempts:
            raise ApplicationError("No payment attempts are left.", type="NoAttemptsLeft")
        if not request.payment_token:
            raise ApplicationError("A payment token is required.", type="InvalidPayment")

    @workflow.update(name=SHOPPER_RETURNED_UPDATE)
    async def shopper_returned(self) -> OrderStatusView:
        """The shopper is back from the provider's approval page (PayPal): go on as if the
        provider's ``approved`` webhook had come (authorizing verifies it), and answer with
        the outcome rather than the approval link again."""
        attempt = self._attempt
        assert self._payment is not None
        self.payment_event(
            PaymentEventSignal(
                provider=self._payment.provider,
                provider_payment_id=sorted(self._payment_ids)[0],
                status="approved",
                event_id=f"return:{attempt}",
            )
        )
        await workflow.wait_condition(
            lambda: (
                self._attempt != attempt
                or self._status in FINAL
                or (
                    (self._payment is not None and self._payment.status != "requires_action")
                    and self._settled()
                )
            )
        )
        return self._view()

    @shopper_returned.validator
    def _validate_return(self) -> None:
        payment = self._payment
        if (
            payment is None
            or payment.status != "requires_action"
            or payment.approval_url is None
            or not self._payment_ids
        ):
            raise ApplicationError(
                "The order's payment is not waiting for the shopper's approval.",
                type="NotAwaitingApproval",
            )

    @workflow.update(name=CANCEL_UPDATE)
    async def cancel(self, request: CancelOrderRequest) -> CancelOrderResult:
        """Cancel before shipping: the compensations run, and this answers when they have.
        Once the vendors have their parts, the database decides whether one has shipped
        (a part may have shipped before its workflow told this one)."""
        if (
            self._status == OrderStatus.CONFIRMED
            and self._parts_started
            and workflow.patched("cancel-checks-shipped-parts")
        ):
            self._cancelling = True
            try:
                allowed = await self._run(
                    ShipmentActivities.cancel_unshipped_parts,
                    CompletionInput(self._params.order_id),
                )
            finally:
                self._cancelling = False
            if not allowed:
                return CancelOrderResult(accepted=False, status=self._status)
        self._cancel = request
        await workflow.wait_condition(lambda: self._status in FINAL)
        return CancelOrderResult(accepted=True, status=self._status)

    @cancel.validator
    def _validate_cancel(self, request: CancelOrderRequest) -> None:
        if self._cancel is not None or self._cancelling:
            raise ApplicationError("The order is already being cancelled.", type="NotCancellable")
        if self._status not in CANCELLABLE or self._shipped_vendors:
            raise ApplicationError(
                f"An order that is {self._status} cannot be cancelled.", type="NotCancellable"
            )

    # --- the saga -----------------------------------------------------------------------

    @workflow.run
    async def run(self, params: OrderWorkflowInput) -> OrderStatusView:
        try:
            await self._saga()
        except _Abort as abort:
            await self._unwind(abort.status, abort.reason)
        except (ActivityError, ChildWorkflowError) as error:
            # A step failed for good (e.g. the reserved stock was lost): nothing else will
            # make it succeed, so undo everything rather than leave the order half-done.
            workflow.logger.error("order step failed for good", extra={"error": str(error)})
            await self._unwind(
                OrderStatus.CANCELLED, f"failed_{_error_type(error) or 'step'}".lower()
            )
        except asyncio.CancelledError:
            # Cancelled from outside (operations, in the Temporal UI): undo, then end cancelled.
            await asyncio.shield(
                asyncio.ensure_future(
                    self._unwind(OrderStatus.CANCELLED, "cancelled_by_operations")
                )
            )
            raise
        return self._view()

    async def _saga(self) -> None:
        order = OrderRef(self._params.order_id)
        deadline = self._deadline_at
        self._deadline = deadline.isoformat()
        # Promotion uses were counted when the order was placed: give them back on unwind.
        self._compensate(
            "release promotion uses", self._activity_call(OrderActivities.release_promotions, order)
        )
        self._compensate(
            "restore inventory", self._activity_call(OrderActivities.restore_inventory, order)
        )
        if self._params.payment_token is None:
            raise _Abort(OrderStatus.CANCELLED, "checkout_interrupted")
        self._details("Reserving stock.")
        try:
            await self._run(OrderActivities.reserve_inventory, order)
        except ActivityError as error:
            if _error_type(error) == "OutOfStock":
                raise _Abort(OrderStatus.CANCELLED, "out_of_stock") from None
            raise
        self._check_cancel()
        await self._set_status(OrderStatus.AWAITING_PAYMENT, "awaiting_payment", "Stock reserved.")

        attempt = await self._pay(deadline)
        self._check_cancel()
        self._details("Capturing the payment.")
        try:
            await self._run(
                OrderActivities.capture_payment, PaymentRef(self._params.order_id, attempt)
            )
        except ActivityError as error:
            if _error_type(error) == "CaptureRefused":
                raise _Abort(OrderStatus.PAYMENT_FAILED, "capture_refused") from None
            raise
        self._set_payment(status="captured")
        self._check_cancel()
        await self._run(OrderActivities.commit_inventory, order)
        self._check_cancel()
        await self._run(OrderActivities.confirm_order, order)
        for earlier, token in self._uncertain:
            await self._run(
                OrderActivities.compensate_payment,
                CompensatePaymentInput(self._params.order_id, earlier, token),
                forever=True,
            )
        self._status = OrderStatus.CONFIRMED
        self._deadline = None
        self._upsert_status()
        await self._ship()

    async def _pay(self, deadline: datetime) -> int:
        """Payment attempts until one is authorized; the attempt number."""
        provider, token = self._params.payment_provider, self._params.payment_token or ""
        while True:
            self._attempt += 1
            attempt = self._attempt
            self._payment_ids = set()
            self._payment = PaymentView(attempt=attempt, provider=provider, status="pending")
            if provider != self._params.payment_provider:
                workflow.upsert_search_attributes([PAYMENT_PROVIDER.value_set(provider)])
            self._compensate(
                f"undo payment attempt {attempt}",
                self._activity_call(
                    OrderActivities.compensate_payment,
                    CompensatePaymentInput(self._params.order_id, attempt, token),
                ),
            )
            self._details(f"Authorizing payment attempt {attempt} with {provider}.")
            outcome = await self._authorize(attempt, provider, token)
            if outcome == "authorized":
                return attempt
            if outcome == "expired":
                raise _Abort(OrderStatus.PAYMENT_FAILED, "payment_window_expired")
            if outcome == "cancelled":
                raise _Abort(OrderStatus.CANCELLED, self._cancel_reason_text())
            # Declined: the shopper may pay again, another way, within the window.
            if attempt >= self._timings.max_payment_attempts:
                raise _Abort(OrderStatus.PAYMENT_FAILED, "payment_declined")
            self._awaiting_retry = True
            self._details("Payment declined; waiting for the shopper to try again.")
            got = await self._wait(lambda: self._retry is not None, deadline)
            self._awaiting_retry = False
            if got == "cancelled":
                raise _Abort(OrderStatus.CANCELLED, self._cancel_reason_text())
            if got == "expired":
                raise _Abort(OrderStatus.PAYMENT_FAILED, "payment_window_expired")
            assert self._retry is not None
            provider, token = self._retry.payment_provider, self._retry.payment_token
            self._retry = None

    async def _authorize(self, attempt: int, provider: str, token: str) -> str:
        """authorized | declined | expired | cancelled, for one attempt."""
        try:
            result = await self._run(
                OrderActivities.authorize_payment,
                AuthorizePaymentInput(self._params.order_id, attempt, provider, token),
                payment=True,
            )
        except ActivityError as error:
            # The provider stayed unreachable through every retry, or is not offered: this
            # attempt failed; the shopper may try again (maybe another way).
            self._set_payment(status="failed", decline_code=_error_type(error) or "unavailable")
            self._uncertain.append((attempt, token))
            return "declined"
        self._note_ids(result.provider_payment_id)
        for event in result.early_events:
            self.payment_event(event)
        if result.status == "authorized":
            self._set_payment(status="authorized")
            return "authorized"
        if result.status == "declined":
            self._set_payment(
                status="declined", decline_code=result.decline_code, message=result.message
            )
            return "declined"
        # requires_action: the shopper completes 3-D Secure or approves at PayPal; the
        # provider's webhook (a signal) tells us how it went.
        self._set_payment(
            status="requires_action",
            client_secret=result.client_secret,
            approval_url=result.approval_url,
        )
        self._details("Waiting for the shopper to complete the payment.")
        # The order's payment window, not a fresh one per attempt.
        got = await self._wait(lambda: self._news() is not None, self._deadline_at)
        if got != "done":
            return got
        news = self._news()
        if news == "approved":
            try:
                approved = await self._run(
                    OrderActivities.authorize_approved,
                    PaymentRef(self._params.order_id, attempt),
                    payment=True,
                )
            except ActivityError as error:
                self._set_payment(status="failed", decline_code=_error_type(error) or "unavailable")
                return "declined"
            self._note_ids(approved.provider_payment_id)
            if approved.status == "authorized":
                self._set_payment(status="authorized", client_secret=None, approval_url=None)
                return "authorized"
            self._set_payment(status="declined", decline_code=approved.decline_code)
            return "declined"
        if news == "authorized":
            await self._run(
                OrderActivities.record_payment_outcome,
                PaymentOutcomeInput(self._params.order_id, attempt, "authorized"),
            )
            self._set_payment(status="authorized", client_secret=None)
            return "authorized"
        await self._run(
            OrderActivities.record_payment_outcome,
            PaymentOutcomeInput(self._params.order_id, attempt, "declined", "challenge_failed"),
        )
        self._set_payment(status="declined", decline_code="challenge_failed", client_secret=None)
        return "declined"

    async def _ship(self) -> None:
        """Hand each vendor its part, then wait for them (or for a cancellation)."""
        handles = []
        for vendor_id in self._params.vendor_ids:
            handles.append(
                await workflow.start_child_workflow(
                    ShipmentWorkflow.run,
                    ShipmentWorkflowInput(
                        self._params.order_id,
                        vendor_id,
                        self._timings,
                        accept_within_s=self._timings.shipment_accept_within_s,
                        recheck_s=self._timings.tracking_recheck_s,
                    ),
                    id=shipment_workflow_id(self._params.order_id, vendor_id),
                    parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
                    static_summary=f"Vendor {vendor_id}'s part of order {self._params.order_id}",
                )
            )
        self._parts_started = True
        self._details("Paid; the vendors are preparing the shipments.")
        all_done = asyncio.gather(*handles)
        await workflow.wait_condition(lambda: all_done.done() or self._cancel is not None)
        if self._cancel is not None and not all_done.done():
            for handle in handles:
                handle.cancel()
            # Wait for the parts to stop (a cancelled child is an expected outcome here).
            await asyncio.gather(*handles, return_exceptions=True)
            raise _Abort(OrderStatus.CANCELLED, self._cancel_reason_text())
        outcomes = [handle.result() for handle in handles]
        if ShipmentStatus.DELIVERED not in outcomes:
            # Every part was cancelled (not accepted, or every line cancelled) and refunded.
            await self._run(
                OrderActivities.close_order,
                CloseOrderInput(self._params.order_id, "cancelled", "nothing_shipped", True),
            )
            self._status = OrderStatus.CANCELLED
            self._upsert_status()
            return
        self._status = OrderStatus.DELIVERED
        self._upsert_status()
        # Complete once the last return window has closed (returns run on their own).
        completion = await self._run(
            ShipmentActivities.completion_date, CompletionInput(self._params.order_id)
        )
        if completion.complete_at is not None:
            wait_s = (
                completion.complete_in_s
                if completion.complete_in_s is not None
                else (
                    datetime.fromisoformat(completion.complete_at) - workflow.now()
                ).total_seconds()
            )
            self._details("Delivered; completes when the return window closes.")
            if wait_s > 0:
                await workflow.sleep(wait_s)
        await self._run(ShipmentActivities.complete_order, CompletionInput(self._params.order_id))
        self._status = OrderStatus.COMPLETED
        self._upsert_status()

    # --- compensation -------------------------------------------------------------------

    def _compensate(self, label: str, step: Callable[[], Awaitable[object]]) -> None:
        self._compensations.append((label, step))

    async def _unwind(self, status: str, reason: str) -> None:
        """Run the compensations in reverse, then close the order. Each compensation is
        retried until it succeeds; one that fails for good is logged and the rest still run."""
        self._status = COMPENSATING
        self._cancel_reason = reason
        self._details(f"Undoing the order ({reason.replace('_', ' ')}).")
        paid = False
        for label, step in reversed(self._compensations):
            try:
                result = await step()
            except ActivityError as error:
                self._problems.append(f"{label}: {error.cause or error}")
                workflow.logger.error("compensation failed", extra={"step": label})
                continue
            if getattr(result, "action", None) == "refunded":
                paid = True
        self._compensations.clear()
        await self._run(
            OrderActivities.close_order,
            CloseOrderInput(self._params.order_id, status, reason, paid),
        )
        self._status = status
        self._deadline = None
        if self._payment is not None and self._payment.status in ("pending", "requires_action"):
            self._set_payment(status="failed", client_secret=None, approval_url=None)
        self._upsert_status()
        self._details(f"Ended {status}: {reason.replace('_', ' ')}.")

    # --- helpers ------------------------------------------------------------------------

    def _activity_call(
        self, step: Callable[[Any, P], Awaitable[object]], arg: P
    ) -> Callable[[], Awaitable[object]]:
        # Compensations must not give up: no attempt limit, capped backoff.
        return lambda: self._run(step, arg, forever=True)

    async def _run(
        self,
        step: Callable[[Any, P], Awaitable[R]],
        arg: P,
        *,
        payment: bool = False,
        forever: bool = False,
    ) -> R:
        """Run one step. Payment calls give up after ``payment_retry_max_attempts`` (the
        attempt then fails and the shopper may pay another way); everything else, and every
        compensation, is retried until it succeeds or fails for good."""
        timings = self._timings
        attempts = timings.payment_retry_max_attempts if payment and not forever else 0
        return await workflow.execute_activity_method(
            step,
            arg,
            start_to_close_timeout=timings.activity_timeout,
            retry_policy=timings.retry(maximum_attempts=attempts),
        )

    async def _set_status(self, status: str, event: str, detail: str) -> None:
        await self._run(
            OrderActivities.set_order_status,
            SetOrderStatusInput(self._params.order_id, status, event, detail),
        )
        self._status = status
        self._upsert_status()

    def _upsert_status(self) -> None:
        workflow.upsert_search_attributes([ORDER_STATUS.value_set(self._status)])

    def _details(self, text: str) -> None:
        workflow.set_current_details(text)

    def _check_cancel(self) -> None:
        if self._cancel is not None:
            raise _Abort(OrderStatus.CANCELLED, self._cancel_reason_text())

    def _cancel_reason_text(self) -> str:
        if self._cancel is None:
            return "cancelled"
        return f"cancelled_by_{self._cancel.by}"

    async def _wait(self, condition: Callable[[], bool], deadline: datetime) -> str:
        """done | cancelled | expired"""
        remaining = (deadline - workflow.now()).total_seconds()
        if remaining <= 0:
            return "expired"
        try:
            await workflow.wait_condition(
                lambda: condition() or self._cancel is not None, timeout=remaining
            )
        except TimeoutError:
            return "expired"
        return "cancelled" if self._cancel is not None and not condition() else "done"

    def _note_ids(self, provider_payment_id: str | None) -> None:
        if provider_payment_id:
            self._payment_ids.add(provider_payment_id)

    def _news(self) -> str | None:
        """The strongest word any webhook gave about the current attempt's payment."""
        statuses = {e.status for e in self._events if e.provider_payment_id in self._payment_ids}
        if statuses & {"authorized", "captured"}:
            return "authorized"
        if "approved" in statuses:
            return "approved"
        if statuses & {"failed", "canceled"}:
            return "failed"
        return None

    def _set_payment(self, **changes: Any) -> None:
        if self._payment is not None:
            self._payment = replace(self._payment, **changes)

    def _settled(self) -> bool:
        if self._status in FINAL or self._status == OrderStatus.CONFIRMED:
            return True
        payment = self._payment
        if payment is None or payment.status not in _SETTLED_PAYMENT:
            return False
        # A decline is an answer once the order waits for another attempt (or has ended).
        return payment.status == "requires_action" or self._awaiting_retry

    def _view(self) -> OrderStatusView:
        return OrderStatusView(
            order_id=self._params.order_id,
            status=self._status,
            payment=self._payment,
            attempts_left=max(0, self._timings.max_payment_attempts - self._attempt),
            payment_deadline=self._deadline,
            cancel_reason=self._cancel_reason,
        )
