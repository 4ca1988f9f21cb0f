"""Which payment providers this deployment offers, built once per process from settings."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from commerce.errors import DomainError
from commerce.payments.provider import PaymentProvider
from commerce.payments.test_provider import PostgresTestProviderStore, TestPaymentProvider
from core.settings import Settings


class UnknownPaymentProvider(DomainError):
    status, code, title = 422, "unknown_payment_provider", "This payment provider is not offered"


class PaymentProviders(Mapping[str, PaymentProvider]):
    """The providers by name (``test``, ``stripe``, ``paypal``): only those configured."""

    def __init__(self, providers: Mapping[str, PaymentProvider]) -> None:
        self._providers = dict(providers)

    def __getitem__(self, name: str) -> PaymentProvider:
        return self._providers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._providers)

    def __len__(self) -> int:
        return len(self._providers)

    def require(self, name: str) -> PaymentProvider:
        provider = self._providers.get(name)
        if provider is None:
            raise UnknownPaymentProvider(
                f"The payment provider {name!r} is not offered here.",
                offered=sorted(self._providers),
            )
        return provider

    async def aclose(self) -> None:
        for provider in self._providers.values():
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()


def build_providers(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> PaymentProviders:
    """Stripe when its key is set, PayPal when its client is, the durable test provider unless
    turned off (it is off in production by default)."""
    providers: dict[str, PaymentProvider] = {}
    if settings.test_payments_active:
        providers["test"] = TestPaymentProvider(
            webhook_secret=settings.test_payments_webhook_secret.get_secret_value(),
            store=PostgresTestProviderStore(sessionmaker),
        )
    if settings.stripe_secret_key is not None:
        from commerce.payments.stripe_provider import StripePaymentProvider

        providers["stripe"] = StripePaymentProvider(
            settings.stripe_secret_key.get_secret_value(),
            (
                settings.stripe_webhook_secret.get_secret_value()
                if settings.stripe_webhook_secret
                else ""
            ),
            settings.stripe_api_base,
            send_receipt_fields=settings.stripe_send_receipt_fields,
        )
    if settings.paypal_client_id and settings.paypal_client_secret is not None:
        from commerce.payments.paypal_provider import SANDBOX_BASE_URL, PayPalPaymentProvider

        providers["paypal"] = PayPalPaymentProvider(
            settings.paypal_client_id,
            settings.paypal_client_secret.get_secret_value(),
            settings.paypal_base_url or SANDBOX_BASE_URL,
            settings.paypal_webhook_id,
            return_url=f"{settings.storefront_url}/checkout/paypal/return",
            cancel_url=f"{settings.storefront_url}/checkout/paypal/cancel",
        )
    return PaymentProviders(providers)
