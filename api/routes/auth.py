"""Sign-up, sign-in (password, MFA), tokens, email verification, password reset."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from api.access import AccountsDep, CurrentUser, Public
from api.deps import NowDep, SessionDep
from api.schemas.accounts import (
    Accepted,
    Login,
    MfaLogin,
    MfaRequired,
    PasswordReset,
    PasswordResetRequest,
    RefreshRequest,
    SignUp,
    TokenPairRead,
    TokenRequest,
    UserRead,
)
from commerce.accounts import mfa, sessions, users
from commerce.accounts.context import VERIFY_PER_IP

router = APIRouter(prefix="/auth", tags=["auth"])


def client_ip(request: Request) -> str:
    # uvicorn rewrites this from X-Forwarded-For only for trusted proxies.
    return request.client.host if request.client else "unknown"


@router.post("/signup", status_code=201, dependencies=[Public])
async def sign_up(
    body: SignUp,
    request: Request,
    session: SessionDep,
    ctx: AccountsDep,
    now: NowDep,
) -> UserRead:
    """Create an account; a verification link is emailed. Sign in right away; checking out
    needs the verified address."""
    user = await users.sign_up(
        session,
        ctx=ctx,
        ip=client_ip(request),
        username=body.username,
        email=body.email,
        password=body.password,
        name=body.name,
        now=now,
    )
    return UserRead.from_domain(user)


@router.post("/verify-email", dependencies=[Public])
async def verify_email(
    body: TokenRequest,
    request: Request,
    session: SessionDep,
    ctx: AccountsDep,
    now: NowDep,
) -> UserRead:
    await ctx.limiter.hit(VERIFY_PER_IP, client_ip(request))
    return UserRead.from_domain(await users.verify_email(session, token=body.token, now=now))


@router.post("/verify-email/resend", status_code=202)
async def resend_verification(
    principal: CurrentUser,
    session: SessionDep,
    ctx: AccountsDep,
    now: NowDep,
) -> Accepted:
    await users.send_verification(session, ctx=ctx, user=principal.user, now=now)
    return Accepted(detail="A new verification link is on its way.")


@router.post(
    "/login",
    dependencies=[Public],
    responses={200: {"description": "Tokens, or an MFA challenge when MFA is on"}},
)
async def log_in(
    body: Login,
    request: Request,
    session: SessionDep,
    ctx: AccountsDep,
    now: NowDep,
) -> TokenPairRead | MfaRequired:
    result = await users.log_in(
        session,
        ctx=ctx,
        ip=client_ip(request),
        email=body.email,
        password=body.password,
        user_agent=request.headers.get("user-agent"),
        now=now,
    )
    if isinstance(result, users.MfaChallenge):
        return MfaRequired(mfa_token=result.mfa_token, expires_in=result.expires_in)
    return TokenPairRead.from_domain(result)


@router.post("/login/mfa", dependencies=[Public])
async def log_in_mfa(
    body: MfaLogin,
    request: Request,
    session: SessionDep,
    ctx: AccountsDep,
    now: NowDep,
) -> TokenPairRead:
    pair = await mfa.complete_login(
        session,
        ctx=ctx,
        ip=client_ip(request),
        mfa_token=body.mfa_token,
        code=body.code,
        recovery_code=body.recovery_code,
        user_agent=request.headers.get("user-agent"),
        now=now,
    )
    return TokenPairRead.from_domain(pair)


@router.post("/refresh", dependencies=[Public])
async def refresh(
    body: RefreshRequest, session: SessionDep, ctx: AccountsDep, now: NowDep
) -> TokenPairRead:
    """Rotate: the refresh token sent is spent and a new pair returned. Sending a spent one
    ends the session everywhere."""
    pair = await sessions.refresh_session(
        session, ctx=ctx, refresh_token=body.refresh_token, now=now
    )
    return TokenPairRead.from_domain(pair)


@router.post("/logout", status_code=204)
async def log_out(principal: CurrentUser, session: SessionDep, now: NowDep) -> Response:
    await sessions.revoke_session(
        session, session_id=principal.session_id, reason="logout", now=now
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/logout-all", status_code=204)
async def log_out_everywhere(principal: CurrentUser, session: SessionDep, now: NowDep) -> Response:
    await sessions.revoke_all_sessions(session, user=principal.user, reason="logout_all", now=now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/password-reset", status_code=202, dependencies=[Public])
async def request_password_reset(
    body: PasswordResetRequest,
    request: Request,
    session: SessionDep,
    ctx: AccountsDep,
    now: NowDep,
) -> Accepted:
    await users.request_password_reset(
        session, ctx=ctx, ip=client_ip(request), email=body.email, now=now
    )
    # The same answer whether or not the account exists.
    return Accepted(detail="If an account uses this address, a reset link is on its way.")


@router.post("/password-reset/confirm", status_code=204, dependencies=[Public])
async def reset_password(
    body: PasswordReset,
    request: Request,
    session: SessionDep,
    ctx: AccountsDep,
    now: NowDep,
) -> Response:
    await ctx.limiter.hit(VERIFY_PER_IP, client_ip(request))
    await users.reset_password(
        session, ctx=ctx, token=body.token, new_password=body.new_password, now=now
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
