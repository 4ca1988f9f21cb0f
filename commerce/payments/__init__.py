"""Payments: the ``PaymentProvider`` contract and its implementations (Stripe, the test one).

``StripePaymentProvider`` lives in ``commerce.payments.stripe_provider`` and is not imported here,
so that importing the contract does not import the Stripe SDK.
"""

from __future__ import annotations

from commerce.payments.provider import (
    Authorization,
    AuthorizationStatus,
    AuthorizeRequest,
    Capture,
    InvalidWebhook,
    PaymentDeclined,
    PaymentError,
    PaymentEventStatus,
    PaymentProvider,
    Refund,
    RefundStatus,
    TransientPaymentError,
    WebhookEvent,
)
from commerce.payments.test_provider import (
    MemoryTestProviderStore,
    PostgresTestProviderStore,
    SignedWebhook,
    TestPaymentProvider,
    TestPaymentState,
    TestProviderStore,
)

__all__ = [
    "Authorization",
    "AuthorizationStatus",
    "AuthorizeRequest",
    "Capture",
    "InvalidWebhook",
    "MemoryTestProviderStore",
    "PaymentDeclined",
    "PaymentError",
    "PaymentEventStatus",
    "PaymentProvider",
    "PostgresTestProviderStore",
    "Refund",
    "RefundStatus",
    "SignedWebhook",
    "TestPaymentProvider",
    "TestPaymentState",
    "TestProviderStore",
    "TransientPaymentError",
    "WebhookEvent",
]
