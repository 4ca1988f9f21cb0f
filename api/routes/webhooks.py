"""Payment provider webhooks: verified, stored once, then signalled to the order workflow.

``POST /webhooks/{provider}`` does, in this order:

1. Read the raw body (at most `MAX_BODY_BYTES`) and have the provider verify its signature and
   parse it. A delivery that does not verify is refused (400) and nothing is stored.
2. Store the event under its unique provider event id and **commit**. From here on the event
   is safe whatever happens to Temporal or to this process.
3. If the event means something to an order (a normalised status) and its order is known,
   signal ``order:{id}`` with ``payment_event``, then mark the event signalled.
4. Answer 200. If Temporal cannot be reached, answer 503 instead: the provider redelivers, the
   redelivery finds the event stored but not signalled, and signals it.

So an event reaches its workflow at least once, never zero times once a 2xx was answered; a
redelivery of an event already signalled is a no-op (``duplicate: true``). An order workflow
that has already finished (or never existed) cannot take the signal: that is logged and the
event counts as handled. Events of a payment not yet known (they beat the authorize activity)
are stored without an order; the activity picks them up (``attach_early_events``).

Webhook bodies and signature headers are never logged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.access import Public
from api.deps import NowDep, PaymentProvidersDep, SessionDep, SettingsDep, TemporalDep, read_body
from api.problems import Problem
from api.schemas.webhooks import (
    WebhookReceived,
)
from commerce.aftersales import disputes
from commerce.errors import DomainError
from commerce.payments import webhooks
from commerce.payments.provider import (
    InvalidWebhook,
    PaymentError,
    PaymentProvider,
    WebhookEvent,
)
from core import metrics
from workflows.contracts.orders import PAYMENT_EVENT_SIGNAL, PaymentEventSignal, order_workflow_id

router = APIRouter(tags=["webhooks"], dependencies=[Public])
log = logging.getLogger("emporium.webhooks")

#: Providers' events are a few KiB; anything near this is not a webhook.
MAX_BODY_BYTES = 256 * 1024
#: How long a signal may take before the delivery is answered 503 (the provider retries).
SIGNAL_TIMEOUT = timedelta(seconds=5)


class UnknownWebhookProvider(DomainError):
    status, code, title = 404, "unknown_webhook_provider", "No such webhook provider"


class WebhookTooLarge(DomainError):
    status, code, title = 413, "webhook_too_large", "The webhook body is too large"


class WebhookNotDelivered(DomainError):
    """Temporal (or the provider's verification service) is unreachable: deliver again later."""

    status, code, title = 503, "webhook_not_delivered", "The webhook could not be processed now"
    headers = {"Retry-After": "30"}


async def read_webhook_body(request: Request) -> bytes:
    """The raw body (signatures are over the exact bytes), refused beyond `MAX_BODY_BYTES`."""
    return await read_body(
        request,
        limit=MAX_BODY_BYTES,
        too_large=WebhookTooLarge(f"At most {MAX_BODY_BYTES} bytes."),
    )


async def _verify(
    provider: PaymentProvider, name: str, body: bytes, request: Request
) -> WebhookEvent:
    try:
        parse_async = getattr(provider, "parse_webhook_async", None)
        if parse_async is not None:
            # PayPal verifies over HTTP: never block the event loop on it.
            event: WebhookEvent = await parse_async(body, request.headers)
        else:
            event = provider.parse_webhook(body, request.headers)
    except InvalidWebhook:
        log.info("webhook refused: signature or body invalid", extra={"provider": name})
        raise
    except PaymentError as error:
        # Could not verify right now (PayPal unreachable, our credentials refused): the
        # provider's redelivery will be verified later.
        log.warning(
            "webhook not verified: provider error",
            extra={"provider": name, "error": type(error).__name__},
        )
        raise WebhookNotDelivered("The provider could not verify the webhook; retry.") from None
    return event


async def _signal(temporal: Client, order_id: str, signal: PaymentEventSignal) -> bool:
    """Signal the order workflow; ``False`` when there is no running workflow to take it."""
    handle = temporal.get_workflow_handle(order_workflow_id(order_id))
    try:
        await handle.signal(PAYMENT_EVENT_SIGNAL, signal, rpc_timeout=SIGNAL_TIMEOUT)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        log.warning(
            "webhook stored, signal failed",
            extra={"order_id": order_id, "event_id": signal.event_id, "error": error.status.name},
        )
        raise WebhookNotDelivered("Stored; the order could not be told yet. Retry.") from None
    except RuntimeError as error:
        # A lazy client that cannot connect raises RuntimeError("Failed client connect...").
        log.warning(
            "webhook stored, Temporal unreachable",
            extra={"order_id": order_id, "event_id": signal.event_id, "error": str(error)[:200]},
        )
        raise WebhookNotDelivered("Stored; the order could not be told yet. Retry.") from None
    return True


@router.post(
    "/webhooks/{provider}",
    summary="Receive a payment provider's webhook",
    responses={
        400: {"model": Problem, "description": "The signature does not verify (nothing stored)"},
        404: {"model": Problem, "description": "No such provider is configured"},
        413: {"model": Problem, "description": "The body is too large"},
        503: {"model": Problem, "description": "Stored or not, deliver it again later"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The provider's event, exactly as it signed it. Signatures, by "
            "provider: `stripe`: `Stripe-Signature` (Stripe's scheme, checked with the "
            "endpoint secret EMPORIUM_STRIPE_WEBHOOK_SECRET); `paypal`: the "
            "`PAYPAL-TRANSMISSION-*` and `PAYPAL-AUTH-ALGO`/`PAYPAL-CERT-URL` headers, verified "
            "with PayPal's verify-webhook-signature API; `test`: `Emporium-Test-Signature`, "
            "`t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<raw body>'>` within 300 s.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def receive_webhook(
    provider: Annotated[str, Path(max_length=40, description="test, stripe or paypal")],
    request: Request,
    session: SessionDep,
    providers: PaymentProvidersDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    now: NowDep,
) -> WebhookReceived:
    """Verify, store once (committed), then signal ``order:{id}``; see the module docstring.
    A ``disputed`` event also opens the dispute and starts its workflow."""
    implementation = providers.get(provider)
    if implementation is None:
        metrics.WEBHOOKS.labels("unknown", "rejected").inc()
        raise UnknownWebhookProvider(f"No payment provider {provider!r} is configured here.")
    with count_webhook(provider) as counted:
        body = await read_webhook_body(request)
        event = await _verify(implementation, provider, body, request)
        observe_lag(provider, event.occurred_at, now)
        received = await accept(session, temporal, provider=provider, event=event, now=now)
        if event.status == "disputed":
            # A chargeback: its own workflow freezes the vendors' payout of the order. On every
            # delivery, duplicates included: a redelivery starts a workflow whose start failed.
            await disputes.open_dispute_from_webhook(
                session, temporal, settings, provider=provider, event=event, now=now
            )
        counted.duplicate = received.duplicate
    return received


class _Counted:
    duplicate = False


@contextlib.contextmanager
def count_webhook(source: str) -> Iterator[_Counted]:
    """Count one delivery from a configured ``source`` by how it ended: accepted or
    duplicate (set ``duplicate`` on what this yields), rejected (a 4xx: signature, body, size:
    nothing stored) or unavailable (a 503, or anything else: the provider delivers again)."""
    counted = _Counted()
    outcome = "unavailable"
    try:
        yield counted
    except DomainError as error:
        outcome = "rejected" if error.status < 500 else "unavailable"
        raise
    else:
        outcome = "duplicate" if counted.duplicate else "accepted"
    finally:
        metrics.WEBHOOKS.labels(source, outcome).inc()


def observe_lag(source: str, occurred_at: datetime | None, now: datetime) -> None:
    """How long the provider's event took to reach us (when the provider says when it
    happened); a clock running ahead of ours counts as no lag."""
    if occurred_at is not None:
        metrics.WEBHOOK_LAG.labels(source).observe(max((now - occurred_at).total_seconds(), 0.0))


async def accept(
    session: AsyncSession, temporal: Client, *, provider: str, event: WebhookEvent, now: datetime
) -> WebhookReceived:
    """Store a verified event once (committed), then signal its order's workflow."""
    recorded = await webhooks.record_event(session, provider=provider, event=event)
    # Stored before anyone is told: a failed signal below must not lose the event.
    await session.commit()
    context = {
        "provider": provider,
        "provider_event_id": event.provider_event_id,
        "type": event.type,
        "order_id": str(recorded.order_id) if recorded.order_id else None,
        "duplicate": recorded.duplicate,
    }
    if recorded.signalled or event.status is None or event.payment_id is None:
        log.info("webhook stored", extra=context)
        return WebhookReceived(received=True, duplicate=recorded.duplicate)
    if recorded.order_id is None:
        log.info("webhook stored; its payment is not known yet", extra=context)
        return WebhookReceived(received=True, duplicate=recorded.duplicate)

    delivered = await _signal(
        temporal,
        str(recorded.order_id),
        PaymentEventSignal(
            provider=provider,
            provider_payment_id=event.payment_id,
            status=event.status,
            event_id=event.provider_event_id,
            amount=event.amount,
        ),
    )
    if not delivered:
        log.warning("webhook stored; the order workflow is not running", extra=context)
    else:
        log.info("webhook signalled", extra=context)
    await webhooks.mark_signalled(session, event_id=recorded.id, now=now)
    return WebhookReceived(received=True, duplicate=recorded.duplicate)
