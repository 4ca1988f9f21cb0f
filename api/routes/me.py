"""The signed-in user's own account: profile, password, sessions, MFA, deletion."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response, status

from api.access import AccountsDep, CurrentUser, Public
from api.deps import NowDep, SessionDep
from api.routes.auth import client_ip
from api.schemas.accounts import (
    AccountDeletion,
    PasswordChange,
    ProfileUpdate,
    RecoveryCodes,
    SessionList,
    SessionRead,
    TokenRequest,
    TotpCode,
    TotpEnrolment,
    UserRead,
)
from commerce.accounts import mfa, sessions, users
from commerce.accounts.context import VERIFY_PER_IP
from commerce.errors import NotFound

router = APIRouter(prefix="/me", tags=["me"])


@router.get("")
async def read_me(principal: CurrentUser) -> UserRead:
    return UserRead.from_domain(principal.user)


@router.patch("")
async def update_me(
    body: ProfileUpdate,
    principal: CurrentUser,
    session: SessionDep,
    ctx: AccountsDep,
    now: NowDep,
) -> UserRead:
    user = await users.update_profile(
        session, ctx=ctx, user=principal.user, changes=body.model_dump(exclude_unset=True), now=now
    )
    return UserRead.from_domain(user)


@router.post("/email/confirm", dependencies=[Public])
async def confirm_email_change(
    body: TokenRequest,
    request: Request,
    session: SessionDep,
    ctx: AccountsDep,
    now: NowDep,
) -> UserRead:
    """The link sent to a new address: the change takes effect now."""
    await ctx.limiter.hit(VERIFY_PER_IP, client_ip(request))
    return UserRead.from_domain(
        await users.confirm_email_change(session, token=body.token, now=now)
    )


@router.delete("", status_code=204)
async def delete_me(
    body: AccountDeletion,
    principal: CurrentUser,
    session: SessionDep,
    ctx: AccountsDep,
    now: NowDep,
) -> Response:
    """Erase personal data; orders are kept, anonymised."""
    await users.delete_account(
        session, ctx=ctx, user=principal.user, password=body.password, now=now
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/password", status_code=204)
async def change_password(
    body: PasswordChange,
    principal: CurrentUser,
    session: SessionDep,
    ctx: AccountsDep,
    now: NowDep,
) -> Response:
    """Other sessions end; this one stays signed in."""
    await users.change_password(
        session,
        ctx=ctx,
        user=principal.user,
        current_session=principal.session_id,
        current_password=body.current_password,
        new_password=body.new_password,
        now=now,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/sessions")
async def list_sessions(principal: CurrentUser, session: SessionDep) -> SessionList:
    found = await sessions.list_sessions(session, user_id=principal.user_id)
    return SessionList.whole(
        [SessionRead.from_domain(s, current=principal.session_id) for s in found]
    )


@router.delete("/sessions/{session_id}", status_code=204)
async def end_session(
    session_id: uuid.UUID,
    principal: CurrentUser,
    session: SessionDep,
    now: NowDep,
) -> Response:
    mine = {s.id for s in await sessions.list_sessions(session, user_id=principal.user_id)}
    if session_id not in mine:
        raise NotFound("No such session.")
    await sessions.revoke_session(session, session_id=session_id, reason="ended_by_user", now=now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/mfa/totp", status_code=201)
async def enrol_totp(principal: CurrentUser, session: SessionDep) -> TotpEnrolment:
    """Start TOTP enrolment: add the secret to an authenticator app, then confirm a code."""
    enrolment = await mfa.begin_enrolment(session, user=principal.user)
    return TotpEnrolment(secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri)


@router.post("/mfa/totp/confirm")
async def confirm_totp(
    body: TotpCode,
    principal: CurrentUser,
    session: SessionDep,
    ctx: AccountsDep,
    now: NowDep,
) -> RecoveryCodes:
    codes = await mfa.confirm_enrolment(
        session, ctx=ctx, user=principal.user, code=body.code, now=now
    )
    return RecoveryCodes(recovery_codes=codes)


@router.post("/mfa/recovery-codes")
async def regenerate_recovery_codes(
    body: TotpCode,
    principal: CurrentUser,
    session: SessionDep,
    ctx: AccountsDep,
    now: NowDep,
) -> RecoveryCodes:
    codes = await mfa.regenerate_recovery_codes(
        session, ctx=ctx, user=principal.user, code=body.code, now=now
    )
    return RecoveryCodes(recovery_codes=codes)


@router.delete("/mfa", status_code=204)
async def disable_mfa(
    body: TotpCode,
    principal: CurrentUser,
    session: SessionDep,
    ctx: AccountsDep,
    now: NowDep,
) -> Response:
    await mfa.disable(session, ctx=ctx, user=principal.user, code=body.code, now=now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
