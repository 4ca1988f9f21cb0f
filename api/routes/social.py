"""Sign-in with Google, Facebook or any OpenID Connect provider; linked identities."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from api.access import AccountsDep, CurrentUser, Public
from api.deps import NowDep, SessionDep
from api.routes.auth import client_ip
from api.schemas.accounts import MfaRequired, TokenPairRead
from api.schemas.social import (
    IdentityList,
    IdentityRead,
    ProviderList,
    ProviderRead,
    SocialCallback,
    SocialStart,
    SocialStarted,
)
from commerce.accounts import social, users
from commerce.accounts.context import OIDC_PER_IP

router = APIRouter(tags=["social login"])


def _social(request: Request) -> social.SocialLogin:
    return request.app.state.social


SocialDep = Annotated[social.SocialLogin, Depends(_social)]


@router.get("/auth/oidc/providers", dependencies=[Public])
async def list_providers(social_login: SocialDep) -> ProviderList:
    return ProviderList.whole(
        [
            ProviderRead(name=name, kind=provider.kind)
            for name, provider in sorted(social_login.providers.items())
        ]
    )


async def _start(
    body: SocialStart,
    provider: str,
    request: Request,
    session: SessionDep,
    ctx: AccountsDep,
    social_login: social.SocialLogin,
    now: datetime,
) -> SocialStarted:
    await ctx.limiter.hit(OIDC_PER_IP, client_ip(request))
    url, state = await social.start(
        session,
        ctx=ctx,
        social=social_login,
        provider_name=provider,
        redirect_uri=body.redirect_uri,
        now=now,
    )
    return SocialStarted(authorization_url=url, state=state)


@router.post("/auth/oidc/{provider}/start", dependencies=[Public])
async def start_login(
    provider: str,
    body: SocialStart,
    request: Request,
    session: SessionDep,
    ctx: AccountsDep,
    social_login: SocialDep,
    now: NowDep,
) -> SocialStarted:
    """Begin signing in with a provider (state, nonce and PKCE are kept server-side)."""
    return await _start(body, provider, request, session, ctx, social_login, now)


@router.post("/auth/oidc/{provider}/callback", dependencies=[Public])
async def finish_login(
    provider: str,
    body: SocialCallback,
    request: Request,
    session: SessionDep,
    ctx: AccountsDep,
    social_login: SocialDep,
    now: NowDep,
) -> TokenPairRead | MfaRequired:
    """Finish signing in: an existing identity signs in; otherwise the account with the same
    verified email is linked, or a new one is created."""
    await ctx.limiter.hit(OIDC_PER_IP, client_ip(request))
    result = await social.complete(
        session,
        ctx=ctx,
        social=social_login,
        provider_name=provider,
        code=body.code,
        state=body.state,
        user_agent=request.headers.get("user-agent"),
        now=now,
    )
    if isinstance(result, users.MfaChallenge):
        return MfaRequired(mfa_token=result.mfa_token, expires_in=result.expires_in)
    return TokenPairRead.from_domain(result)


@router.get("/me/identities")
async def list_identities(principal: CurrentUser, session: SessionDep) -> IdentityList:
    found = await social.list_identities(session, user_id=principal.user_id)
    return IdentityList.whole([IdentityRead.from_domain(identity) for identity in found])


@router.post("/me/identities/{provider}/start")
async def start_link(
    provider: str,
    body: SocialStart,
    principal: CurrentUser,
    request: Request,
    session: SessionDep,
    ctx: AccountsDep,
    social_login: SocialDep,
    now: NowDep,
) -> SocialStarted:
    """Begin linking another provider to this account."""
    return await _start(body, provider, request, session, ctx, social_login, now)


@router.post("/me/identities/{provider}/callback", status_code=201)
async def finish_link(
    provider: str,
    body: SocialCallback,
    principal: CurrentUser,
    session: SessionDep,
    social_login: SocialDep,
    now: NowDep,
) -> IdentityRead:
    identity = await social.link(
        session,
        social=social_login,
        user=principal.user,
        provider_name=provider,
        code=body.code,
        state=body.state,
        now=now,
    )
    return IdentityRead.from_domain(identity)


@router.delete("/me/identities/{identity_id}", status_code=204)
async def unlink_identity(
    identity_id: uuid.UUID, principal: CurrentUser, session: SessionDep
) -> Response:
    await social.unlink(session, user=principal.user, identity_id=identity_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
