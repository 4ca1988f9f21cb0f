"""The order saga's steps: thin activities over commerce/, each idempotent.

Every activity may run more than once (a timeout after the work was done, a worker killed
mid-way): database writes are conditional or keyed, provider calls carry idempotency keys
derived from the order and attempt, and the provider replays the first answer.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import failed_for_good
from activities.refunds import send_refund
from commerce.aftersales import refunds
from commerce.catalog import inventory
from commerce.checkout import promotions
from commerce.finance import invoices, ledger
from commerce.notifications.mail import queue_mail
from commerce.orders import order_payments, orders
from commerce.orders.order_mail import order_closed, order_confirmation, queue_vendor_new_order
from commerce.payments import webhooks
from commerce.payments.provider import (
    Authorization,
    AuthorizeRequest,
    PaymentDeclined,
    PaymentError,
    PaymentProvider,
    TransientPaymentError,
)
from commerce.payments.registry import PaymentProviders
from core import metrics
from core.clock import SYSTEM_CLOCK, Clock
from core.money import format_money
from models import InventoryReservation, Refund, ReservationStatus, Vendor
from workflows.contracts import orders as contract
from workflows.contracts.orders import (
    CANCELLABLE,
    AuthorizationOutput,
    AuthorizePaymentInput,
    CaptureOutput,
    CloseOrderInput,
    CompensatePaymentInput,
    CompensatePaymentOutput,
    ConfirmOrderOutput,
    NotifyVendorInput,
    NotifyVendorOutput,
    OrderRef,
    OrderStatus,
    PaymentEventSignal,
    PaymentOutcomeInput,
    PaymentRef,
    PaymentStatus,
    ReserveInventoryOutput,
    SetOrderStatusInput,
)
from workflows.contracts.refunds import RefundSource, RefundStatus


def reservation_key(order_id: str | uuid.UUID) -> str:
    return f"order:{order_id}"


def _count_payment_answer(provider: str, outcome: str, decline_code: str | None) -> None:
    metrics.PAYMENT_ATTEMPTS.labels(provider, outcome).inc()
    if outcome == "declined":
        metrics.PAYMENT_DECLINES.labels(provider, metrics.label(decline_code)).inc()


def _latest(days: list[date | None]) -> str | None:
    known = [day for day in days if day is not None]
    return max(known).isoformat() if known else None


class OrderActivities(contract.OrderActivities):
    """Steps of ``OrderWorkflow`` and ``ShipmentWorkflow``, built once per worker."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        providers: PaymentProviders,
        *,
        storefront_url: str,
        commission_bp: int,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._providers = providers
        self._storefront_url = storefront_url
        self._commission_bp = commission_bp
        self._clock = clock

    def _provider(self, name: str) -> PaymentProvider:
        provider = self._providers.get(name)
        if provider is None:
            # Configuration, not chance: retrying cannot make a provider appear.
            raise failed_for_good("UnknownPaymentProvider", f"payment provider {name!r} is off")
        return provider

    # --- inventory ------------------------------------------------------------------------

    @activity.defn
    async def reserve_inventory(self, ref: OrderRef) -> ReserveInventoryOutput:
        """Hold every line's units under the order's key, all or nothing."""
        order_id = uuid.UUID(ref.order_id)
        async with self._sessionmaker.begin() as session:
            detail = await orders.detail(
                session, order=await orders.get_order(session, order_id=order_id)
            )
            lines = [(line.variant_id, line.quantity) for line in detail.lines if line.variant_id]
            if len(lines) != len(detail.lines):
                raise failed_for_good("OutOfStock", "a product of this order no longer exists")
            try:
                await inventory.reserve(
                    session, reservation_key=reservation_key(order_id), lines=lines
                )
            except inventory.OutOfStock as error:
                metrics.STOCK_OUTS.inc()
                shortages = [shortage.as_dict() for shortage in error.shortages]
                raise failed_for_good("OutOfStock", error.detail, shortages) from None
        return ReserveInventoryOutput(units=sum(quantity for _, quantity in lines))

    @activity.defn
    async def commit_inventory(self, ref: OrderRef) -> None:
        """Reserved units become sold."""
        async with self._sessionmaker.begin() as session:
            try:
                await inventory.commit(
                    session, reservation_key=reservation_key(ref.order_id), now=self._clock.now()
                )
            except (inventory.ReservationReleased, inventory.ReservationNotFound) as error:
                raise failed_for_good("ReservationLost", error.detail) from None

    @activity.defn
    async def restore_inventory(self, ref: OrderRef) -> None:
        """The compensation of reserve and commit: release held units, put sold ones back
        where they were taken from. Idempotent; nothing held is nothing to do."""
        key = reservation_key(ref.order_id)
        action = "nothing"
        async with self._sessionmaker.begin() as session:
            held = await inventory.get_reservation(session, reservation_key=key)
            if held.status == ReservationStatus.RESERVED:
                action = "released"
                await inventory.release(session, reservation_key=key, now=self._clock.now())
            elif held.status == ReservationStatus.COMMITTED:
                action = "restocked"
                rows = await session.scalars(
                    select(InventoryReservation).where(InventoryReservation.reservation_key == key)
                )
                for row in rows.all():
                    await inventory.restock_returned(
                        session,
                        variant_id=row.variant_id,
                        quantity=row.quantity,
                        warehouse_id=row.warehouse_id,
                        note="order cancelled before shipping",
                        return_key=f"{key}:cancelled:{row.warehouse_id}",
                    )
        metrics.COMPENSATIONS.labels("restore_inventory", action).inc()

    # --- promotions -----------------------------------------------------------------------

    @activity.defn
    async def release_promotions(self, ref: OrderRef) -> int:
        async with self._sessionmaker.begin() as session:
            released = await promotions.release_usage(session, order_id=uuid.UUID(ref.order_id))
        action = "released" if released else "nothing"
        metrics.COMPENSATIONS.labels("release_promotions", action).inc()
        return released

    # --- status ---------------------------------------------------------------------------

    @activity.defn
    async def set_order_status(self, params: SetOrderStatusInput) -> bool:
        """Move the order forward along its progression; a retry finds it moved."""
        to = OrderStatus(params.status)
        async with self._sessionmaker.begin() as session:
            return await orders.transition(
                session,
                order_id=uuid.UUID(params.order_id),
                to=to,
                allowed_from=orders.before(to),
                event=params.event,
                detail=params.detail,
            )

    @activity.defn
    async def confirm_order(self, ref: OrderRef) -> ConfirmOrderOutput:
        """Paid and committed: confirmed, promotion uses confirmed, the bought items leave the
        cart and the confirmation email is queued, all in one transaction (so once)."""
        order_id = uuid.UUID(ref.order_id)
        now = self._clock.now()
        async with self._sessionmaker.begin() as session:
            moved = await orders.transition(
                session,
                order_id=order_id,
                to=OrderStatus.CONFIRMED,
                allowed_from=orders.before(OrderStatus.CONFIRMED),
                event="confirmed",
                detail="Payment captured; the sellers have been asked to ship.",
                values={"confirmed_at": now},
            )
            order = await orders.get_order(session, order_id=order_id)
            detail = await orders.detail(session, order=order)
            if moved:
                await promotions.confirm_usage(session, order_id=order_id)
                await orders.remove_ordered_items(session, order=order)
                # The vendors' sales (less commission) and their invoices, with the status.
                await ledger.record_sale(
                    session, order_id=order_id, commission_bp=self._commission_bp, now=now
                )
                await invoices.issue_invoices(session, order_id=order_id, now=now)
                if order.contact_email:
                    await queue_mail(
                        session,
                        order_confirmation(
                            to=order.contact_email,
                            detail=detail,
                            storefront_url=self._storefront_url,
                        ),
                    )
        if moved:
            # The provider that was paid (a retried payment may have used another).
            paid_with = next(
                (p.provider for p in detail.payments if p.status == PaymentStatus.CAPTURED),
                order.payment_provider,
            )
            metrics.CHECKOUTS_CONFIRMED.labels(paid_with).inc()
            metrics.CHECKOUT_TO_CONFIRMED.observe(max((now - order.created_at).total_seconds(), 0))
        return ConfirmOrderOutput(
            _latest([p.estimated_delivery_earliest for p in detail.parts]),
            _latest([p.estimated_delivery_latest for p in detail.parts]),
        )

    @activity.defn
    async def close_order(self, params: CloseOrderInput) -> bool:
        """The end of an order that will not go ahead, after its compensations ran."""
        to = OrderStatus(params.status)
        order_id = uuid.UUID(params.order_id)
        async with self._sessionmaker.begin() as session:
            moved = await orders.transition(
                session,
                order_id=order_id,
                to=to,
                allowed_from=CANCELLABLE,
                event=params.status,
                detail=params.reason.replace("_", " "),
                data={"reason": params.reason},
                values={"cancelled_at": self._clock.now(), "cancel_reason": params.reason[:500]},
            )
            order = await orders.get_order(session, order_id=order_id)
            if moved and order.contact_email:
                await queue_mail(
                    session,
                    order_closed(
                        to=order.contact_email,
                        order=order,
                        paid=params.paid,
                        reason=params.reason,
                    ),
                )
            confirmed = order.confirmed_at is not None
        if moved:
            reason = metrics.label(params.reason)
            if confirmed:
                metrics.ORDERS_CANCELLED.labels(reason).inc()
            else:
                metrics.CHECKOUTS_FAILED.labels(to.value, reason).inc()
        return moved

    # --- payments -------------------------------------------------------------------------

    @activity.defn
    async def authorize_payment(self, params: AuthorizePaymentInput) -> AuthorizationOutput:
        """Authorize the order's total. Declines come back as a result (never retried);
        transient provider errors raise, so Temporal retries with the same idempotency key."""
        order_id = uuid.UUID(params.order_id)
        provider = self._provider(params.provider)
        async with self._sessionmaker.begin() as session:
            order = await orders.get_order(session, order_id=order_id)
            payment = await order_payments.start_attempt(
                session,
                order_id=order_id,
                attempt=params.attempt,
                provider=params.provider,
                amount=order.grand_total,
                currency=order.currency,
            )
            amount, currency, email = order.grand_total, order.currency, order.contact_email
        request = AuthorizeRequest(
            order_id=params.order_id,
            amount=amount,
            currency=currency,
            payment_token=params.payment_token,
            idempotency_key=order_payments.idempotency_key(order_id, params.attempt, "authorize"),
            customer_email=email,
            description=f"Emporium order {params.order_id}",
        )
        try:
            authorization = await provider.authorize(request)
        except TransientPaymentError:
            raise  # retried by the activity's retry policy
        except PaymentDeclined as declined:
            authorization = Authorization(
                status="declined",
                provider_payment_id=None,
                amount=amount,
                currency=currency,
                decline_code=declined.reason,
                message=declined.detail,
            )
        except (PaymentError, ValueError) as error:
            # Ours to fix (a refused parameter, a misconfigured provider): retrying cannot help
            # and the shopper cannot fix it; logged for operations, the attempt fails.
            activity.logger.error("payment provider refused our request", exc_info=True)
            raise failed_for_good("PaymentProviderError", type(error).__name__) from None
        return await self._store_authorization(
            order_id, payment.attempt, params.provider, authorization
        )

    async def _store_authorization(
        self, order_id: uuid.UUID, attempt: int, provider: str, authorization: Authorization
    ) -> AuthorizationOutput:
        async with self._sessionmaker.begin() as session:
            payment = await order_payments.get_attempt(session, order_id=order_id, attempt=attempt)
            # A retried step finds the attempt answered already: counted once.
            first_answer = payment.status == PaymentStatus.PENDING
            await order_payments.record_authorization(
                session, payment=payment, authorization=authorization
            )
            early: list[PaymentEventSignal] = []
            ids = [i for i in (authorization.provider_payment_id, payment.provider_reference) if i]
            if ids:
                for event in await webhooks.attach_early_events(
                    session,
                    provider=provider,
                    payment_ids=ids,
                    order_id=order_id,
                    now=self._clock.now(),
                ):
                    if event.status is not None and event.payment_id is not None:
                        early.append(
                            PaymentEventSignal(
                                provider=provider,
                                provider_payment_id=event.payment_id,
                                status=event.status,
                                event_id=event.provider_event_id,
                                amount=event.amount,
                            )
                        )
        if first_answer:
            _count_payment_answer(provider, authorization.status, authorization.decline_code)
        return AuthorizationOutput(
            status=authorization.status,
            provider_payment_id=authorization.provider_payment_id,
            client_secret=authorization.client_secret,
            approval_url=authorization.approval_url,
            decline_code=authorization.decline_code,
            message=authorization.message,
            early_events=early,
        )

    @activity.defn
    async def authorize_approved(self, ref: PaymentRef) -> AuthorizationOutput:
        """A redirect payment (PayPal) the buyer approved: now authorize it."""
        order_id = uuid.UUID(ref.order_id)
        async with self._sessionmaker.begin() as session:
            payment = await order_payments.get_attempt(
                session, order_id=order_id, attempt=ref.attempt
            )
            name, reference = payment.provider, payment.provider_reference
        provider = self._provider(name)
        approve = getattr(provider, "authorize_approved", None)
        if approve is None or reference is None:
            raise failed_for_good("NotARedirectPayment", f"{name} payments need no approval step")
        key = order_payments.idempotency_key(order_id, ref.attempt, "authorize-approved")
        try:
            authorization: Authorization = await approve(reference, idempotency_key=key)
        except PaymentDeclined as declined:
            authorization = Authorization(
                status="declined",
                provider_payment_id=reference,
                amount=payment.amount,
                currency=payment.currency,
                decline_code=declined.reason,
                message=declined.detail,
            )
        return await self._store_authorization(order_id, ref.attempt, name, authorization)

    @activity.defn
    async def record_payment_outcome(self, params: PaymentOutcomeInput) -> None:
        """What the provider's webhook said about a payment that needed the shopper."""
        async with self._sessionmaker.begin() as session:
            payment = await order_payments.get_attempt(
                session, order_id=uuid.UUID(params.order_id), attempt=params.attempt
            )
            provider, waited = payment.provider, payment.status == PaymentStatus.REQUIRES_ACTION
            if params.status == "authorized":
                await order_payments.record_authorization(
                    session,
                    payment=payment,
                    authorization=Authorization(
                        status="authorized",
                        provider_payment_id=payment.provider_payment_id,
                        amount=payment.amount,
                        currency=payment.currency,
                    ),
                )
            else:
                await order_payments.record_declined(
                    session, payment=payment, decline_code=params.decline_code
                )
        if waited:  # the shopper's 3-D Secure or approval ended: counted once
            _count_payment_answer(provider, params.status, params.decline_code)

    @activity.defn
    async def capture_payment(self, ref: PaymentRef) -> CaptureOutput:
        """Take the authorized money; a refusal is final (the order is then cancelled)."""
        order_id = uuid.UUID(ref.order_id)
        async with self._sessionmaker.begin() as session:
            payment = await order_payments.get_attempt(
                session, order_id=order_id, attempt=ref.attempt
            )
        if payment.provider_payment_id is None:
            raise failed_for_good("CaptureRefused", "the payment has no provider id")
        provider = self._provider(payment.provider)
        try:
            capture = await provider.capture(
                payment.provider_payment_id,
                idempotency_key=order_payments.idempotency_key(order_id, ref.attempt, "capture"),
            )
        except PaymentDeclined as declined:
            if declined.reason != "already_captured":
                raise failed_for_good("CaptureRefused", declined.detail, declined.reason) from None
            # Captured by an earlier try whose answer was lost and whose key expired.
            amount, currency = payment.amount, payment.currency
        else:
            amount, currency = capture.amount, capture.currency
        async with self._sessionmaker.begin() as session:
            payment = await order_payments.get_attempt(
                session, order_id=order_id, attempt=ref.attempt
            )
            await order_payments.record_capture(session, payment=payment, amount=amount)
            await orders.add_event(
                session,
                order_id=order_id,
                type="payment_captured",
                detail=f"{format_money(amount, payment.currency)} captured",
                data={"attempt": ref.attempt, "provider": payment.provider},
            )
        return CaptureOutput(amount=amount, currency=currency.upper())

    @activity.defn
    async def compensate_payment(self, params: CompensatePaymentInput) -> CompensatePaymentOutput:
        """Undo one payment attempt: void an authorization, refund a capture, nothing for a
        decline. An attempt whose authorize answer was lost is asked again with the same key
        (the provider replays it) so nothing stays held."""
        undone = await self._compensate_payment(params)
        metrics.COMPENSATIONS.labels("compensate_payment", undone.action).inc()
        return undone

    async def _compensate_payment(self, params: CompensatePaymentInput) -> CompensatePaymentOutput:
        order_id = uuid.UUID(params.order_id)
        async with self._sessionmaker.begin() as session:
            try:
                payment = await order_payments.get_attempt(
                    session, order_id=order_id, attempt=params.attempt
                )
            except LookupError:
                return CompensatePaymentOutput("nothing")
        provider = self._provider(payment.provider)
        payment_id = payment.provider_payment_id
        if payment.status == PaymentStatus.PENDING and payment_id is None:
            try:
                replay = await provider.authorize(
                    AuthorizeRequest(
                        order_id=params.order_id,
                        amount=payment.amount,
                        currency=payment.currency,
                        payment_token=params.payment_token,
                        idempotency_key=order_payments.idempotency_key(
                            order_id, params.attempt, "authorize"
                        ),
                    )
                )
                payment_id = replay.provider_payment_id if replay.status != "declined" else None
            except PaymentDeclined:
                payment_id = None
            else:
                # Now we know what the lost answer was: record it before undoing it.
                async with self._sessionmaker.begin() as session:
                    payment = await order_payments.get_attempt(
                        session, order_id=order_id, attempt=params.attempt
                    )
                    await order_payments.record_authorization(
                        session, payment=payment, authorization=replay
                    )
                    payment = await order_payments.get_attempt(
                        session, order_id=order_id, attempt=params.attempt
                    )
        if payment.status in (PaymentStatus.DECLINED, PaymentStatus.FAILED, PaymentStatus.VOIDED):
            return CompensatePaymentOutput("nothing")
        if payment_id is None:
            return CompensatePaymentOutput("nothing")
        if payment.status == PaymentStatus.CAPTURED:
            return await self._refund_on_cancel(order_id, params.attempt)
        try:
            await provider.void(
                payment_id,
                idempotency_key=order_payments.idempotency_key(order_id, params.attempt, "void"),
            )
        except PaymentDeclined as declined:
            if declined.reason == "already_captured":
                # Captured after all (a capture whose answer we lost): retry, which refunds.
                async with self._sessionmaker.begin() as session:
                    payment = await order_payments.get_attempt(
                        session, order_id=order_id, attempt=params.attempt
                    )
                    await order_payments.record_capture(
                        session, payment=payment, amount=payment.amount
                    )
                raise ApplicationError(
                    "payment turned out captured; refunding", type="Captured"
                ) from None
            if declined.reason not in ("invalid_state", "not_found", "resource_missing"):
                raise failed_for_good("VoidRefused", declined.detail, declined.reason) from None
        async with self._sessionmaker.begin() as session:
            payment = await order_payments.get_attempt(
                session, order_id=order_id, attempt=params.attempt
            )
            await order_payments.record_void(session, payment=payment)
        return CompensatePaymentOutput("voided")

    async def _refund_on_cancel(self, order_id: uuid.UUID, attempt: int) -> CompensatePaymentOutput:
        """Give back what is left of a captured payment, as a refund like any other (so the
        ledger and the credit notes follow): counted first (a retry finds it by its request
        key), then sent as every refund is (``send_refund``, keyed by the refund)."""
        key = f"cancel:{order_id}:{attempt}"
        async with self._sessionmaker.begin() as session:
            refund = await session.scalar(select(Refund).where(Refund.request_key == key))
            if refund is None:
                left = await refunds.remaining(session, order_id=order_id)
                if left <= 0:
                    return CompensatePaymentOutput("nothing")
                refund = await refunds.create_refund(
                    session,
                    order_id=order_id,
                    source=RefundSource.CANCELLATION,
                    reason="The order was cancelled.",
                    amount=left,
                    request_key=key,
                    now=self._clock.now(),
                )
            refund_id, amount, currency = refund.id, refund.amount, refund.currency

        async def recorded(
            session: AsyncSession, now: datetime, provider_refund_id: str | None
        ) -> None:
            await ledger.record_refund(
                session, refund_id=refund_id, commission_bp=self._commission_bp, now=now
            )
            await invoices.issue_credit_note(session, refund_id=refund_id, now=now)
            await orders.add_event(
                session,
                order_id=order_id,
                type="payment_refunded",
                detail=format_money(amount, currency) + " refunded",
                data={"attempt": attempt, "provider_refund_id": provider_refund_id},
            )

        outcome = await send_refund(
            self._sessionmaker, self._providers, refund_id, clock=self._clock, recorded=recorded
        )
        if outcome.status != RefundStatus.SUCCEEDED:
            # Marked failed (its amount can be refunded again): for operations to settle.
            raise failed_for_good("RefundRefused", f"refund {refund_id}: {outcome.failure_reason}")
        return CompensatePaymentOutput("refunded")

    # --- shipments --------------------------------------------------------------------------

    @activity.defn
    async def notify_vendor(self, params: NotifyVendorInput) -> NotifyVendorOutput:
        """Tell the vendor what to ship, once per order and vendor."""
        order_id, vendor_id = uuid.UUID(params.order_id), uuid.UUID(params.vendor_id)
        event = f"vendor_notified:{vendor_id}"
        async with self._sessionmaker.begin() as session:
            await orders.lock_order(session, order_id=order_id)
            if await orders.has_event(session, order_id=order_id, type=event):
                return NotifyVendorOutput(recipients=0)
            order = await orders.get_order(session, order_id=order_id)
            vendor = await session.get(Vendor, vendor_id)
            if vendor is None:
                raise failed_for_good("VendorNotFound", f"no vendor {vendor_id}")
            detail = await orders.detail(session, order=order)
            sent = await queue_vendor_new_order(session, vendor=vendor, detail=detail)
            await orders.add_event(
                session,
                order_id=order_id,
                type=event,
                detail=f"{vendor.name} has been asked to ship its part.",
                data={"vendor_id": str(vendor_id)},
            )
        return NotifyVendorOutput(recipients=sent)
