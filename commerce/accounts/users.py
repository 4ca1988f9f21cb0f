"""Accounts: sign-up, email verification, sign-in, passwords, profile, deletion."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.accounts import sessions
from commerce.accounts.context import (
    LOGIN_PER_ACCOUNT,
    LOGIN_PER_IP,
    RESET_PER_ACCOUNT,
    RESET_PER_IP,
    SIGNUP_PER_IP,
    AccountsContext,
)
from commerce.accounts.passwords import check_strength
from commerce.accounts.tokens import digest, random_token
from commerce.errors import Conflict, DomainError, NotFound, Unauthorized
from commerce.notifications import mail
from models import (
    Address,
    EmailToken,
    EmailTokenPurpose,
    Identity,
    Order,
    RecoveryCode,
    SavedPaymentMethod,
    User,
    UserStatus,
    Wishlist,
)

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,39}$")


class InvalidCredentials(Unauthorized):
    code, title = "invalid_credentials", "Email or password is incorrect"


class InvalidEmail(DomainError):
    status, code, title = 422, "invalid_email", "The email address is not valid"


class InvalidUsername(DomainError):
    status, code, title = 422, "invalid_username", "The username is not valid"


class EmailTaken(Conflict):
    code, title = "email_taken", "An account with this email address exists"


class UsernameTaken(Conflict):
    code, title = "username_taken", "The username is taken"


class InvalidEmailToken(DomainError):
    status, code, title = 400, "invalid_token", "The link is invalid or has expired"


class AlreadyVerified(Conflict):
    code, title = "already_verified", "The email address is already verified"


class WrongPassword(DomainError):
    status, code, title = 403, "wrong_password", "The current password is not correct"


def normalize_email(email: str) -> tuple[str, str]:
    """(the address as the user gave it, cleaned; the key we match on)."""
    try:
        valid = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidEmail(str(error)) from None
    return valid.normalized, valid.normalized.lower()


def normalize_username(username: str) -> tuple[str, str]:
    username = username.strip()
    if not USERNAME.match(username):
        raise InvalidUsername(
            "Use 3 to 40 letters, digits, '.', '_' or '-', starting with a letter or digit."
        )
    return username, username.lower()


def _constraint(error: IntegrityError) -> str:
    diag = getattr(error.orig, "diag", None)
    return getattr(diag, "constraint_name", "") or ""


# --- email tokens -----------------------------------------------------------------------


async def _new_email_token(
    session: AsyncSession,
    *,
    user: User,
    purpose: EmailTokenPurpose,
    ttl: timedelta,
    email: str | None = None,
    now: datetime,
) -> str:
    """A fresh single-use token; earlier unused ones for the same purpose stop working."""
    await session.execute(
        update(EmailToken)
        .where(
            EmailToken.user_id == user.id,
            EmailToken.purpose == purpose,
            EmailToken.used_at.is_(None),
        )
        .values(used_at=now)
    )
    token = random_token()
    session.add(
        EmailToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=digest(token),
            email=email,
            expires_at=now + ttl,
        )
    )
    await session.flush()
    return token


async def _consume_email_token(
    session: AsyncSession,
    *,
    token: str,
    purpose: EmailTokenPurpose,
    now: datetime,
) -> tuple[EmailToken, User]:
    # One statement: of two concurrent uses of the same link, exactly one wins.
    token_id = await session.scalar(
        update(EmailToken)
        .where(
            EmailToken.token_hash == digest(token),
            EmailToken.purpose == purpose,
            EmailToken.used_at.is_(None),
            EmailToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(EmailToken.id)
    )
    if token_id is None:
        raise InvalidEmailToken("Request a new link.")
    row = (
        await session.execute(
            select(EmailToken, User)
            .join(User, User.id == EmailToken.user_id)
            .where(EmailToken.id == token_id)
        )
    ).one()
    email_token, user = row
    if user.status != UserStatus.ACTIVE:
        raise InvalidEmailToken("Request a new link.")
    return email_token, user


# --- sign-up and verification ---------------------------------------------------------


async def sign_up(
    session: AsyncSession,
    *,
    ctx: AccountsContext,
    ip: str,
    username: str,
    email: str,
    password: str,
    name: str | None = None,
    now: datetime,
) -> User:
    """Create an unverified account and send its verification email."""
    await ctx.limiter.hit(SIGNUP_PER_IP, ip)
    email, email_key = normalize_email(email)
    username, username_key = normalize_username(username)
    check_strength(password, email=email, username=username, name=name)
    user = User(
        id=uuid.uuid4(),
        username=username,
        username_key=username_key,
        email=email,
        email_key=email_key,
        name=name,
        password_hash=await ctx.passwords.hash(password),
        password_changed_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(user)
            await session.flush()
    except IntegrityError as error:
        constraint = _constraint(error)
        if "email" in constraint:
            raise EmailTaken("Sign in, or reset your password.") from None
        if "username" in constraint:
            raise UsernameTaken("Choose another username.") from None
        raise
    await send_verification(session, ctx=ctx, user=user, now=now)
    return user


async def send_verification(
    session: AsyncSession, *, ctx: AccountsContext, user: User, now: datetime
) -> None:
    if user.email_verified_at is not None:
        raise AlreadyVerified()
    hours = ctx.settings.email_verification_ttl_hours
    token = await _new_email_token(
        session,
        user=user,
        purpose=EmailTokenPurpose.VERIFY_EMAIL,
        ttl=timedelta(hours=hours),
        now=now,
    )
    await mail.queue_mail(
        session,
        mail.verify_email(
            to=user.email,
            username=user.username,
            token=token,
            storefront_url=ctx.settings.storefront_url,
            expires_hours=hours,
        ),
    )


async def verify_email(session: AsyncSession, *, token: str, now: datetime) -> User:
    _, user = await _consume_email_token(
        session, token=token, purpose=EmailTokenPurpose.VERIFY_EMAIL, now=now
    )
    user.email_verified_at = user.email_verified_at or now
    return user


# --- sign-in ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MfaChallenge:
    mfa_token: str
    expires_in: int


async def log_in(
    session: AsyncSession,
    *,
    ctx: AccountsContext,
    ip: str,
    email: str,
    password: str,
    user_agent: str | None,
    now: datetime,
) -> sessions.TokenPair | MfaChallenge:
    """First factor. Every failure looks the same: no such user, wrong password, deleted."""
    await ctx.limiter.hit(LOGIN_PER_IP, ip)
    try:
        _, key = normalize_email(email)
    except InvalidEmail:
        key = email.strip().lower()
    await ctx.limiter.hit(LOGIN_PER_ACCOUNT, key)
    await ctx.login_guard.check(key)
    user = await session.scalar(
        select(User).where(User.email_key == key, User.status == UserStatus.ACTIVE)
    )
    if not await ctx.passwords.verify(user.password_hash if user else None, password):
        await ctx.login_guard.failure(key)
        raise InvalidCredentials("Check the email address and password.")
    if user is None or user.password_hash is None:  # unreachable: verify() was False then
        raise InvalidCredentials("Check the email address and password.")
    await ctx.login_guard.success(key)
    if ctx.passwords.needs_rehash(user.password_hash):
        user.password_hash = await ctx.passwords.hash(password)
    if user.totp_enabled_at is not None:
        return MfaChallenge(
            mfa_token=ctx.signer.issue_mfa_challenge(user_id=user.id, method="pwd"),
            expires_in=ctx.signer.mfa_ttl_s,
        )
    return await sessions.start_session(
        session, ctx=ctx, user=user, method="pwd", user_agent=user_agent, now=now
    )


# --- passwords --------------------------------------------------------------------------


async def request_password_reset(
    session: AsyncSession,
    *,
    ctx: AccountsContext,
    ip: str,
    email: str,
    now: datetime,
) -> None:
    """Send a reset link if such an account exists; the caller answers the same either way."""
    await ctx.limiter.hit(RESET_PER_IP, ip)
    try:
        _, key = normalize_email(email)
    except InvalidEmail:
        return
    await ctx.limiter.hit(RESET_PER_ACCOUNT, key)
    user = await session.scalar(
        select(User).where(User.email_key == key, User.status == UserStatus.ACTIVE)
    )
    if user is None:
        return
    minutes = ctx.settings.password_reset_ttl_minutes
    token = await _new_email_token(
        session,
        user=user,
        purpose=EmailTokenPurpose.RESET_PASSWORD,
        ttl=timedelta(minutes=minutes),
        now=now,
    )
    await mail.queue_mail(
        session,
        mail.reset_password(
            to=user.email,
            username=user.username,
            token=token,
            storefront_url=ctx.settings.storefront_url,
            expires_minutes=minutes,
        ),
    )


async def _set_password(ctx: AccountsContext, user: User, password: str, *, now: datetime) -> None:
    check_strength(password, email=user.email, username=user.username, name=user.name)
    user.password_hash = await ctx.passwords.hash(password)
    user.password_changed_at = now


async def reset_password(
    session: AsyncSession,
    *,
    ctx: AccountsContext,
    token: str,
    new_password: str,
    now: datetime,
) -> None:
    """Set a new password from a reset link; every session of the account ends."""
    _, user = await _consume_email_token(
        session, token=token, purpose=EmailTokenPurpose.RESET_PASSWORD, now=now
    )
    await _set_password(ctx, user, new_password, now=now)
    # Following the link proved control of the inbox.
    user.email_verified_at = user.email_verified_at or now
    await sessions.revoke_all_sessions(session, user=user, reason="password_reset", now=now)
    await ctx.login_guard.success(user.email_key)
    await mail.queue_mail(session, mail.password_changed(to=user.email, username=user.username))


async def change_password(
    session: AsyncSession,
    *,
    ctx: AccountsContext,
    user: User,
    current_session: uuid.UUID,
    current_password: str | None,
    new_password: str,
    now: datetime,
) -> None:
    """Change the password; every other session ends. Social-only accounts may set one."""
    if user.password_hash is not None and not await ctx.passwords.verify(
        user.password_hash, current_password or ""
    ):
        raise WrongPassword()
    await _set_password(ctx, user, new_password, now=now)
    await sessions.revoke_all_sessions(
        session, user=user, reason="password_change", keep=current_session, now=now
    )
    await mail.queue_mail(session, mail.password_changed(to=user.email, username=user.username))


# --- profile ----------------------------------------------------------------------------


async def update_profile(
    session: AsyncSession,
    *,
    ctx: AccountsContext,
    user: User,
    changes: dict[str, str | None],
    now: datetime,
) -> User:
    """Change name or phone at once; a new email address takes effect once verified."""
    if "name" in changes:
        user.name = changes["name"]
    if "phone" in changes:
        user.phone = changes["phone"]
    new_email = changes.get("email")
    if new_email is not None:
        email, key = normalize_email(new_email)
        if key != user.email_key:
            taken = await session.scalar(select(User.id).where(User.email_key == key))
            if taken is not None:
                raise EmailTaken("Use another address.")
            hours = ctx.settings.email_verification_ttl_hours
            token = await _new_email_token(
                session,
                user=user,
                purpose=EmailTokenPurpose.CHANGE_EMAIL,
                ttl=timedelta(hours=hours),
                email=email,
                now=now,
            )
            await mail.queue_mail(
                session,
                mail.change_email(
                    to=email,
                    username=user.username,
                    token=token,
                    storefront_url=ctx.settings.storefront_url,
                    expires_hours=hours,
                ),
            )
    return user


async def confirm_email_change(session: AsyncSession, *, token: str, now: datetime) -> User:
    email_token, user = await _consume_email_token(
        session, token=token, purpose=EmailTokenPurpose.CHANGE_EMAIL, now=now
    )
    assert email_token.email is not None
    email, key = normalize_email(email_token.email)
    taken = await session.scalar(select(User.id).where(User.email_key == key, User.id != user.id))
    if taken is not None:
        raise EmailTaken("Another account took this address meanwhile.")
    user.email, user.email_key = email, key
    user.email_verified_at = now
    return user


async def delete_account(
    session: AsyncSession,
    *,
    ctx: AccountsContext,
    user: User,
    password: str | None,
    now: datetime,
) -> None:
    """Erase personal data (GDPR); the account row stays, anonymised, for order records."""
    if user.password_hash is not None and not await ctx.passwords.verify(
        user.password_hash, password or ""
    ):
        raise WrongPassword()
    await mail.queue_mail(session, mail.account_deleted(to=user.email))
    await sessions.revoke_all_sessions(session, user=user, reason="account_deleted", now=now)
    for model in (Address, SavedPaymentMethod, Identity, RecoveryCode, EmailToken, Wishlist):
        await session.execute(delete(model).where(model.user_id == user.id))
    # Orders stay (for the books and the vendors) but lose what identifies the person: the
    # contact address and every part of the delivery address except the country.
    await session.execute(
        update(Order)
        .where(Order.customer_id == user.id)
        .values(
            contact_email=None,
            shipping_address=func.jsonb_build_object("country", Order.shipping_address["country"]),
        )
    )
    placeholder = f"deleted-{user.id.hex}"
    user.username = user.username_key = placeholder[:40]
    user.email = user.email_key = f"{placeholder}@deleted.invalid"
    user.email_verified_at = None
    user.name = user.phone = None
    user.password_hash = None
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    user.platform_role = None
    user.status = UserStatus.DELETED
    user.deleted_at = now


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound()
    return user
