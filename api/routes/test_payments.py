"""The built-in test payment provider's "bank page", so every payment path can be tried in dev:
the storefront posts the 3-D Secure client secret it got from checkout, as Stripe.js would."""

from __future__ import annotations

from fastapi import APIRouter

from api.access import Public
from api.deps import NowDep, PaymentProvidersDep, SessionDep, TemporalDep
from api.routes.webhooks import WebhookReceived, accept
from api.schemas.test_payments import (
    ChallengeResult,
)
from commerce.errors import Conflict, NotFound
from commerce.payments.provider import PaymentDeclined
from commerce.payments.test_provider import TestPaymentProvider

router = APIRouter(prefix="/test-payments", tags=["test payments"])


class TestPaymentsOff(NotFound):
    code, title = "test_payments_off", "The test payment provider is not offered here"


class TestPaymentNotFound(NotFound):
    code, title = "test_payment_not_found", "No test payment has this client secret"


class NoChallengePending(Conflict):
    code, title = "no_challenge_pending", "The payment is not waiting for a challenge"


@router.post("/challenge", dependencies=[Public])
async def complete_challenge(
    body: ChallengeResult,
    session: SessionDep,
    providers: PaymentProvidersDep,
    temporal: TemporalDep,
    now: NowDep,
) -> WebhookReceived:
    """Pass (or fail) a ``tok_3ds`` payment's challenge. The client secret is the capability,
    as with a real provider's challenge page. The provider then "sends" its webhook, which is
    verified and handled exactly like one arriving at ``POST /webhooks/test``. Only where the
    test provider is offered (never in production by default)."""
    provider = providers.get("test")
    if not isinstance(provider, TestPaymentProvider):
        raise TestPaymentsOff("The test payment provider is not offered here.")
    try:
        signed = await provider.complete_challenge_with_secret(
            body.client_secret, succeeded=body.succeeded
        )
    except PaymentDeclined as refused:
        if refused.reason == "invalid_state":
            raise NoChallengePending("The payment is not waiting for a challenge.") from None
        raise TestPaymentNotFound("No test payment has this client secret.") from None
    event = provider.parse_webhook(signed.payload, signed.headers)
    return await accept(session, temporal, provider="test", event=event, now=now)
