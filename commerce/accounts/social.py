"""Social login: OAuth 2.0 / OpenID Connect identities linked to accounts by verified email.

The protocol (discovery, PKCE, ID token checks) is in ``commerce.accounts.oidc``; this module
keeps each attempt's state, nonce and verifier, and decides which account an identity is.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.accounts import sessions
from commerce.accounts.context import AccountsContext
from commerce.accounts.oidc import OidcClient, OidcError, OidcProvider, VerifiedIdentity
from commerce.accounts.tokens import digest
from commerce.accounts.users import MfaChallenge, normalize_email
from commerce.errors import Conflict, DomainError, NotFound
from core.settings import Settings
from models import Identity, OAuthLoginAttempt, User, UserStatus

ATTEMPT_TTL = timedelta(minutes=10)


class UnknownProvider(NotFound):
    code, title = "unknown_provider", "No such sign-in provider"


class RedirectNotAllowed(DomainError):
    status, code, title = 400, "redirect_uri_not_allowed", "The redirect URI is not allowed"


class InvalidState(DomainError):
    status, code, title = 400, "oidc_state_invalid", "The sign-in attempt is unknown or expired"


class EmailUnverified(DomainError):
    status, code, title = 403, "oidc_email_unverified", "The provider has not verified the email"


class IdentityTaken(Conflict):
    code, title = "identity_taken", "This identity belongs to another account"


class LastLoginMethod(Conflict):
    code, title = "last_login_method", "This is the only way to sign in to the account"


class SocialLoginFailed(DomainError):
    """The provider's answer could not be trusted (bad token, nonce mismatch)."""

    status, title = 401, "Sign-in with the provider failed"

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class ProviderUnavailable(DomainError):
    status, code, title = 502, "oidc_provider_error", "The sign-in provider did not answer well"


def configured_providers(settings: Settings) -> dict[str, OidcProvider]:
    providers: dict[str, OidcProvider] = {}
    if settings.google_client_id and settings.google_client_secret:
        providers["google"] = OidcProvider.google(
            settings.google_client_id, settings.google_client_secret.get_secret_value()
        )
    if settings.facebook_client_id and settings.facebook_client_secret:
        providers["facebook"] = OidcProvider.facebook(
            settings.facebook_client_id, settings.facebook_client_secret.get_secret_value()
        )
    for name, config in settings.oidc_providers.items():
        providers[name] = OidcProvider(
            name=name,
            kind="oidc",
            client_id=config.client_id,
            client_secret=config.client_secret.get_secret_value(),
            issuer=config.issuer,
            scopes=config.scopes,
        )
    return providers


@dataclass(frozen=True)
class SocialLogin:
    providers: dict[str, OidcProvider]
    client: OidcClient

    def provider(self, name: str) -> OidcProvider:
        found = self.providers.get(name)
        if found is None:
            raise UnknownProvider(f"Configured providers: {', '.join(sorted(self.providers))}.")
        return found


async def start(
    session: AsyncSession,
    *,
    ctx: AccountsContext,
    social: SocialLogin,
    provider_name: str,
    redirect_uri: str,
    now: datetime,
) -> tuple[str, str]:
    """Begin a sign-in: (authorization URL to send the browser to, state)."""
    provider = social.provider(provider_name)
    if redirect_uri not in ctx.settings.allowed_oauth_redirect_uris:
        raise RedirectNotAllowed("Use one of the storefront's registered callback URLs.")
    try:
        request = await social.client.authorization_request(provider, redirect_uri=redirect_uri)
    except OidcError as error:
        raise ProviderUnavailable(error.detail) from None
    session.add(
        OAuthLoginAttempt(
            provider=provider.name,
            state_hash=digest(request.state),
            nonce=request.nonce,
            code_verifier=request.code_verifier,
            redirect_uri=redirect_uri,
            expires_at=now + ATTEMPT_TTL,
        )
    )
    await session.flush()
    return request.url, request.state


async def _verified_identity(
    session: AsyncSession,
    *,
    social: SocialLogin,
    provider_name: str,
    code: str,
    state: str,
    now: datetime,
) -> VerifiedIdentity:
    provider = social.provider(provider_name)
    # Single use: of two callbacks with the same state, exactly one proceeds.
    attempt_id = await session.scalar(
        update(OAuthLoginAttempt)
        .where(
            OAuthLoginAttempt.state_hash == digest(state),
            OAuthLoginAttempt.provider == provider.name,
            OAuthLoginAttempt.used_at.is_(None),
            OAuthLoginAttempt.expires_at > now,
        )
        .values(used_at=now)
        .returning(OAuthLoginAttempt.id)
    )
    if attempt_id is None:
        raise InvalidState("Start the sign-in again.")
    attempt = await session.get(OAuthLoginAttempt, attempt_id)
    assert attempt is not None
    try:
        return await social.client.complete(
            provider,
            code=code,
            redirect_uri=attempt.redirect_uri,
            code_verifier=attempt.code_verifier,
            nonce=attempt.nonce,
        )
    except OidcError as error:
        if error.code == "oidc_provider_error":
            raise ProviderUnavailable(error.detail) from None
        raise SocialLoginFailed(error.code, error.detail) from None


def _username_from(email: str) -> tuple[str, str]:
    base = re.sub(r"[^A-Za-z0-9_.-]", "", email.split("@", 1)[0])[:28] or "user"
    if not base[0].isalnum():
        base = "u" + base
    name = f"{base}-{secrets.token_hex(4)}"
    return name, name.lower()


async def _account_for(
    session: AsyncSession, *, identity: VerifiedIdentity, now: datetime
) -> tuple[User, bool]:
    """The account this identity signs in to, linking or creating it; (user, created)."""
    linked = await session.scalar(
        select(User)
        .join(Identity, Identity.user_id == User.id)
        .where(Identity.provider == identity.provider, Identity.subject == identity.subject)
    )
    if linked is not None:
        return linked, False
    if not identity.email or not identity.email_verified:
        raise EmailUnverified("Verify the email address with the provider, or sign up here.")
    email, key = normalize_email(identity.email)
    user = await session.scalar(
        select(User).where(User.email_key == key, User.status == UserStatus.ACTIVE)
    )
    created = user is None
    if user is None:
        username, username_key = _username_from(email)
        user = User(
            id=uuid.uuid4(),
            username=username,
            username_key=username_key,
            email=email,
            email_key=key,
            email_verified_at=now,
            name=identity.name,
        )
        session.add(user)
        await session.flush()
    elif user.email_verified_at is None:
        # Someone signed up with this address but never proved they own it; the provider
        # just did prove it for this person. Take the account over cleanly: whoever set that
        # password (perhaps an attacker who pre-registered the address) loses it and any
        # session they had.
        user.email_verified_at = now
        user.password_hash = None
        await sessions.revoke_all_sessions(session, user=user, reason="claimed_by_oidc", now=now)
    session.add(
        Identity(
            user_id=user.id,
            provider=identity.provider,
            subject=identity.subject,
            email=identity.email,
        )
    )
    await session.flush()
    return user, created


async def complete(
    session: AsyncSession,
    *,
    ctx: AccountsContext,
    social: SocialLogin,
    provider_name: str,
    code: str,
    state: str,
    user_agent: str | None,
    now: datetime,
) -> sessions.TokenPair | MfaChallenge:
    """Finish a sign-in from the provider's callback; MFA still applies if the user has it."""
    identity = await _verified_identity(
        session, social=social, provider_name=provider_name, code=code, state=state, now=now
    )
    user, _ = await _account_for(session, identity=identity, now=now)
    if user.status != UserStatus.ACTIVE:
        raise SocialLoginFailed("oidc_account_unavailable", "This account cannot sign in.")
    method = f"oidc:{identity.provider}"
    if user.totp_enabled_at is not None:
        return MfaChallenge(
            mfa_token=ctx.signer.issue_mfa_challenge(user_id=user.id, method=method),
            expires_in=ctx.signer.mfa_ttl_s,
        )
    return await sessions.start_session(
        session, ctx=ctx, user=user, method=method, user_agent=user_agent, now=now
    )


async def link(
    session: AsyncSession,
    *,
    social: SocialLogin,
    user: User,
    provider_name: str,
    code: str,
    state: str,
    now: datetime,
) -> Identity:
    """Add an identity to the signed-in user's account."""
    identity = await _verified_identity(
        session, social=social, provider_name=provider_name, code=code, state=state, now=now
    )
    existing = await session.scalar(
        select(Identity).where(
            Identity.provider == identity.provider, Identity.subject == identity.subject
        )
    )
    if existing is not None:
        if existing.user_id != user.id:
            raise IdentityTaken("Unlink it from the other account first.")
        return existing
    linked = Identity(
        user_id=user.id, provider=identity.provider, subject=identity.subject, email=identity.email
    )
    session.add(linked)
    await session.flush()
    return linked


async def list_identities(session: AsyncSession, *, user_id: uuid.UUID) -> list[Identity]:
    return list(
        (
            await session.scalars(
                select(Identity).where(Identity.user_id == user_id).order_by(Identity.created_at)
            )
        ).all()
    )


async def unlink(session: AsyncSession, *, user: User, identity_id: uuid.UUID) -> None:
    identity = await session.scalar(
        select(Identity).where(Identity.id == identity_id, Identity.user_id == user.id)
    )
    if identity is None:
        raise NotFound("No such identity.")
    count = await session.scalar(
        select(func.count()).select_from(Identity).where(Identity.user_id == user.id)
    )
    if user.password_hash is None and count == 1:
        raise LastLoginMethod("Set a password first, or link another provider.")
    await session.delete(identity)
