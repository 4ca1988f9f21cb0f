"""The signed-in user's saved payment methods: provider tokens, never card data.

What may be stored is decided by :func:`commerce.accounts.payment_tokens.validate_saved_method`,
which screens every field for card numbers. Error messages never repeat what was sent.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.accounts.addresses import field_errors
from commerce.accounts.payment_tokens import normalize_brand, validate_saved_method
from commerce.errors import Conflict, DomainError, NotFound
from models import SavedPaymentMethod

_UNIQUE_PER_PROVIDER = "uq_saved_payment_methods_provider_provider_token"


class InvalidPaymentMethod(DomainError):
    status, code, title = 422, "invalid_payment_method", "The payment method is not valid"


class PaymentMethodTaken(Conflict):
    code, title = "payment_method_taken", "The payment method is saved by another account"


async def list_methods(session: AsyncSession, *, user_id: uuid.UUID) -> list[SavedPaymentMethod]:
    """The user's saved payment methods, newest first."""
    found = await session.scalars(
        select(SavedPaymentMethod)
        .where(SavedPaymentMethod.user_id == user_id)
        .order_by(SavedPaymentMethod.created_at.desc(), SavedPaymentMethod.id)
    )
    return list(found.all())


async def add_method(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    provider: str,
    provider_token: str,
    brand: str | None,
    last4: str | None,
    exp_month: int | None,
    exp_year: int | None,
    now: datetime,
) -> SavedPaymentMethod:
    """Save a provider's token for a payment method.

    Raises ``InvalidPaymentMethod`` (422, with per-field ``errors``) for anything
    ``validate_saved_method`` refuses, card numbers in any field included, and expired cards.
    Saving a token the user already saved returns the stored method unchanged, so a retried
    request is harmless; a token saved by another account raises ``PaymentMethodTaken`` (409).
    """
    problems = validate_saved_method(
        provider=provider,
        provider_token=provider_token,
        brand=brand,
        last4=last4,
        exp_month=exp_month,
        exp_year=exp_year,
        today=now.date(),
    )
    if problems:
        # Validated before any query: a card number must not reach even a SQL log.
        raise InvalidPaymentMethod(
            f"{len(problems)} problem(s) with the payment method; see `errors`.",
            errors=field_errors(problems),
        )
    existing = await _by_token(session, provider=provider, provider_token=provider_token)
    if existing is None:
        method = SavedPaymentMethod(
            id=uuid.uuid4(),
            user_id=user_id,
            provider=provider,
            provider_token=provider_token,
            brand=normalize_brand(brand),
            last4=last4,
            exp_month=exp_month,
            exp_year=exp_year,
        )
        try:
            async with session.begin_nested():
                session.add(method)
                await session.flush()
            return method
        except IntegrityError as error:
            # The same token saved concurrently (a double-clicked form): fall through to
            # answer as if this request had come second.
            if _constraint(error) != _UNIQUE_PER_PROVIDER:
                raise
        existing = await _by_token(session, provider=provider, provider_token=provider_token)
        assert existing is not None
    if existing.user_id != user_id:
        raise PaymentMethodTaken(
            "This payment method is saved by another account; ask the provider for a new one."
        )
    return existing


async def delete_method(session: AsyncSession, *, user_id: uuid.UUID, method_id: uuid.UUID) -> None:
    """Forget a saved payment method. ``NotFound`` (404) whether it does not exist or belongs
    to someone else."""
    method = await session.scalar(
        select(SavedPaymentMethod).where(
            SavedPaymentMethod.id == method_id, SavedPaymentMethod.user_id == user_id
        )
    )
    if method is None:
        raise NotFound("No such saved payment method.")
    await session.delete(method)
    await session.flush()


async def _by_token(
    session: AsyncSession, *, provider: str, provider_token: str
) -> SavedPaymentMethod | None:
    return await session.scalar(
        select(SavedPaymentMethod).where(
            SavedPaymentMethod.provider == provider,
            SavedPaymentMethod.provider_token == provider_token,
        )
    )


def _constraint(error: IntegrityError) -> str:
    diag = getattr(error.orig, "diag", None)
    return getattr(diag, "constraint_name", "") or ""
