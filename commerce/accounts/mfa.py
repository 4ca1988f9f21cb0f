"""TOTP two-factor authentication (RFC 6238) with single-use recovery codes."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import pyotp
from sqlalchemy import delete, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.accounts import sessions
from commerce.accounts.context import MFA_PER_IP, MFA_PER_USER, AccountsContext
from commerce.accounts.tokens import InvalidToken, digest
from commerce.errors import Conflict, DomainError, Unauthorized
from models import RecoveryCode, User, UserStatus

ISSUER = "Emporium"
RECOVERY_CODES = 10
# Accept the previous and next 30 s step too: phones' clocks drift.
WINDOW = 1


class InvalidMfaCode(Unauthorized):
    code, title = "invalid_mfa_code", "The code is not valid"


class InvalidMfaChallenge(Unauthorized):
    code, title = "invalid_mfa_challenge", "The sign-in step has expired"


class MfaAlreadyEnabled(Conflict):
    code, title = "mfa_already_enabled", "Two-factor authentication is already on"


class MfaNotEnabled(Conflict):
    code, title = "mfa_not_enabled", "Two-factor authentication is not on"


class MfaNotEnrolled(DomainError):
    status, code, title = 409, "mfa_not_enrolled", "Start the enrolment first"


@dataclass(frozen=True)
class Enrolment:
    secret: str
    otpauth_uri: str


def _normalize_recovery(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def _new_recovery_code() -> str:
    raw = secrets.token_hex(5)  # 40 bits each; ten of them, single use
    return f"{raw[:5]}-{raw[5:]}"


async def begin_enrolment(session: AsyncSession, *, user: User) -> Enrolment:
    """A new secret, not yet in force: a code from the authenticator app must confirm it."""
    if user.totp_enabled_at is not None:
        raise MfaAlreadyEnabled()
    user.totp_secret = pyotp.random_base32()
    user.totp_last_step = None
    uri = pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    return Enrolment(secret=user.totp_secret, otpauth_uri=uri)


async def _accept_code(session: AsyncSession, *, user: User, code: str, at: float) -> bool:
    """Check a TOTP code and burn its time step, so the same code cannot be used twice."""
    if user.totp_secret is None or not code.isdigit():
        return False
    totp = pyotp.TOTP(user.totp_secret)
    current = totp.timecode(datetime.fromtimestamp(at, UTC))
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            # Conditional: of two concurrent uses of one code, exactly one passes.
            accepted = await session.scalar(
                update(User)
                .where(
                    User.id == user.id,
                    or_(User.totp_last_step.is_(None), User.totp_last_step < step),
                )
                .values(totp_last_step=step)
                .returning(User.id)
            )
            if accepted is not None:
                user.totp_last_step = step
                return True
            return False
    return False


async def confirm_enrolment(
    session: AsyncSession,
    *,
    ctx: AccountsContext,
    user: User,
    code: str,
    now: datetime,
) -> list[str]:
    """Turn MFA on; returns the recovery codes, shown to the user this once only."""
    if user.totp_enabled_at is not None:
        raise MfaAlreadyEnabled()
    if user.totp_secret is None:
        raise MfaNotEnrolled()
    await ctx.limiter.hit(MFA_PER_USER, str(user.id))
    if not await _accept_code(session, user=user, code=code.strip(), at=now.timestamp()):
        raise InvalidMfaCode("Enter the current code from your authenticator app.")
    user.totp_enabled_at = now
    return await _replace_recovery_codes(session, user=user)


async def _replace_recovery_codes(session: AsyncSession, *, user: User) -> list[str]:
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODES)]
    session.add_all(
        RecoveryCode(user_id=user.id, code_hash=digest(_normalize_recovery(code))) for code in codes
    )
    await session.flush()
    return codes


async def _use_recovery_code(
    session: AsyncSession, *, user: User, code: str, now: datetime
) -> bool:
    used = await session.scalar(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == digest(_normalize_recovery(code)),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
        .returning(RecoveryCode.id)
    )
    return used is not None


async def complete_login(
    session: AsyncSession,
    *,
    ctx: AccountsContext,
    ip: str,
    mfa_token: str,
    code: str | None,
    recovery_code: str | None,
    user_agent: str | None,
    now: datetime,
) -> sessions.TokenPair:
    """Second factor: a TOTP code (or a recovery code) after the password step."""
    await ctx.limiter.hit(MFA_PER_IP, ip)
    try:
        claims = ctx.signer.verify(mfa_token, expected="mfa")
    except InvalidToken:
        raise InvalidMfaChallenge("Sign in again.") from None
    await ctx.limiter.hit(MFA_PER_USER, str(claims.subject))
    user = await session.get(User, claims.subject)
    if (
        user is None
        or user.status != UserStatus.ACTIVE
        or user.totp_enabled_at is None
        or (
            user.sessions_revoked_at is not None
            and claims.issued_at < int(user.sessions_revoked_at.timestamp())
        )
    ):
        raise InvalidMfaChallenge("Sign in again.")
    if code:
        ok = await _accept_code(session, user=user, code=code.strip(), at=now.timestamp())
        method = f"{claims.method}+otp"
    elif recovery_code:
        ok = await _use_recovery_code(session, user=user, code=recovery_code, now=now)
        method = f"{claims.method}+recovery"
    else:
        ok, method = False, ""
    if not ok:
        raise InvalidMfaCode("Enter the current code from your authenticator app.")
    return await sessions.start_session(
        session, ctx=ctx, user=user, method=method, user_agent=user_agent, now=now
    )


async def disable(
    session: AsyncSession, *, ctx: AccountsContext, user: User, code: str, now: datetime
) -> None:
    """Turn MFA off; only with a fresh code from the app (not a recovery code)."""
    if user.totp_enabled_at is None:
        raise MfaNotEnabled()
    await ctx.limiter.hit(MFA_PER_USER, str(user.id))
    if not await _accept_code(session, user=user, code=code.strip(), at=now.timestamp()):
        raise InvalidMfaCode("Enter the current code from your authenticator app.")
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


async def regenerate_recovery_codes(
    session: AsyncSession,
    *,
    ctx: AccountsContext,
    user: User,
    code: str,
    now: datetime,
) -> list[str]:
    if user.totp_enabled_at is None:
        raise MfaNotEnabled()
    await ctx.limiter.hit(MFA_PER_USER, str(user.id))
    if not await _accept_code(session, user=user, code=code.strip(), at=now.timestamp()):
        raise InvalidMfaCode("Enter the current code from your authenticator app.")
    return await _replace_recovery_codes(session, user=user)
