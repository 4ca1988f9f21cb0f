"""Social login end to end: our API, the real oidc-provider-mock server, a simulated browser."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from models import OAuthLoginAttempt, User
from tests.conftest import _client_for, bind_to_test_transaction, make_settings
from tests.factories import STRONG_PASSWORD, bearer, log_in, sign_up, unique
from tests.oidc_server import OidcServer, authorize, quiet_mock_warnings

pytestmark = quiet_mock_warnings

CALLBACK = "https://shop.example/account/oauth/callback"


@pytest.fixture
async def social_app(oidc_server: OidcServer, database_url: str, temporal_address: str) -> FastAPI:
    registered = await oidc_server.register_client(redirect_uris=(CALLBACK,))
    settings = make_settings(
        database_url,
        temporal_address,
        oidc_providers={
            "mock": {
                "issuer": oidc_server.issuer,
                "client_id": registered.client_id,
                "client_secret": registered.client_secret,
            }
        },
        oauth_redirect_uris=CALLBACK,
    )
    return create_app(settings)


@pytest.fixture
async def api(social_app: FastAPI, db_session: AsyncSession) -> AsyncIterator[httpx.AsyncClient]:
    """Like the `client` fixture, on the app with the mock provider configured."""
    bind_to_test_transaction(social_app, db_session)
    async for client in _client_for(social_app):
        yield client


async def _social_login(
    api: httpx.AsyncClient,
    oidc_server: OidcServer,
    *,
    sub: str,
    email: str,
    email_verified: bool = True,
) -> httpx.Response:
    started = await api.post("/auth/oidc/mock/start", json={"redirect_uri": CALLBACK})
    assert started.status_code == 200, started.text
    body = started.json()
    query = parse_qs(urlsplit(body["authorization_url"]).query)
    assert query["redirect_uri"] == [CALLBACK]
    assert query["code_challenge_method"] == ["S256"]
    code, state = await authorize(
        oidc_server, body["authorization_url"], sub=sub, email=email, email_verified=email_verified
    )
    assert state == body["state"]
    return await api.post("/auth/oidc/mock/callback", json={"code": code, "state": state})


async def test_providers_are_listed(api: httpx.AsyncClient) -> None:
    assert (await api.get("/auth/oidc/providers")).json()["items"] == [
        {"name": "mock", "kind": "oidc"}
    ]


async def test_first_social_login_creates_a_verified_account(
    api: httpx.AsyncClient, oidc_server: OidcServer
) -> None:
    email = f"{unique()}@example.com"
    response = await _social_login(api, oidc_server, sub=unique("sub"), email=email)
    assert response.status_code == 200, response.text
    me = (await api.get("/me", headers=bearer(response.json()["access_token"]))).json()
    assert me["email"] == email
    assert me["email_verified"] is True
    assert me["has_password"] is False
    identities = await api.get("/me/identities", headers=bearer(response.json()["access_token"]))
    assert [i["provider"] for i in identities.json()["items"]] == ["mock"]


async def test_same_identity_signs_in_to_the_same_account(
    api: httpx.AsyncClient, oidc_server: OidcServer
) -> None:
    sub, email = unique("sub"), f"{unique()}@example.com"
    first = await _social_login(api, oidc_server, sub=sub, email=email)
    second = await _social_login(api, oidc_server, sub=sub, email=email)
    ids = [
        (await api.get("/me", headers=bearer(r.json()["access_token"]))).json()["id"]
        for r in (first, second)
    ]
    assert ids[0] == ids[1]


async def test_existing_verified_account_is_linked_by_email(
    api: httpx.AsyncClient, oidc_server: OidcServer, db_session: AsyncSession
) -> None:
    account = await sign_up(api, db_session)
    response = await _social_login(api, oidc_server, sub=unique("sub"), email=account.email)
    assert response.status_code == 200
    me = (await api.get("/me", headers=bearer(response.json()["access_token"]))).json()
    assert me["id"] == account.id
    assert me["has_password"] is True
    await log_in(api, account.email, account.password)


async def test_unverified_provider_email_is_refused(
    api: httpx.AsyncClient, oidc_server: OidcServer, db_session: AsyncSession
) -> None:
    account = await sign_up(api, db_session)
    response = await _social_login(
        api, oidc_server, sub=unique("sub"), email=account.email, email_verified=False
    )
    assert response.status_code == 403
    assert response.json()["code"] == "oidc_email_unverified"
    identities = await api.get("/me/identities", headers=account.headers)
    assert identities.json()["items"] == []


async def test_pre_registered_unverified_account_is_claimed_not_shared(
    api: httpx.AsyncClient, oidc_server: OidcServer, db_session: AsyncSession
) -> None:
    # Someone registered the victim's address with their own password and never verified it.
    squatter = await sign_up(api, db_session, verified=False)
    response = await _social_login(api, oidc_server, sub=unique("sub"), email=squatter.email)
    assert response.status_code == 200
    me = (await api.get("/me", headers=bearer(response.json()["access_token"]))).json()
    assert me["id"] == squatter.id
    assert me["email_verified"] is True
    assert me["has_password"] is False
    # The squatter's password and session are gone.
    refused = await api.post(
        "/auth/login", json={"email": squatter.email, "password": squatter.password}
    )
    assert refused.status_code == 401
    assert (await api.get("/me", headers=squatter.headers)).status_code == 401


async def test_state_mismatch_and_replay_are_refused(
    api: httpx.AsyncClient, oidc_server: OidcServer
) -> None:
    started = (await api.post("/auth/oidc/mock/start", json={"redirect_uri": CALLBACK})).json()
    code, state = await authorize(
        oidc_server, started["authorization_url"], sub=unique("sub"), email=f"{unique()}@x.org"
    )
    forged = await api.post("/auth/oidc/mock/callback", json={"code": code, "state": "forged"})
    assert forged.status_code == 400
    assert forged.json()["code"] == "oidc_state_invalid"
    ok = await api.post("/auth/oidc/mock/callback", json={"code": code, "state": state})
    assert ok.status_code == 200
    replay = await api.post("/auth/oidc/mock/callback", json={"code": code, "state": state})
    assert replay.json()["code"] == "oidc_state_invalid"


async def test_nonce_mismatch_is_refused(
    api: httpx.AsyncClient, oidc_server: OidcServer, db_session: AsyncSession
) -> None:
    started = (await api.post("/auth/oidc/mock/start", json={"redirect_uri": CALLBACK})).json()
    code, state = await authorize(
        oidc_server, started["authorization_url"], sub=unique("sub"), email=f"{unique()}@x.org"
    )
    # The ID token will carry the nonce we sent; make our record of it disagree.
    await db_session.execute(update(OAuthLoginAttempt).values(nonce="not-the-nonce-we-sent"))
    response = await api.post("/auth/oidc/mock/callback", json={"code": code, "state": state})
    assert response.status_code == 401
    assert response.json()["code"] == "oidc_nonce_mismatch"
    created = await db_session.scalar(select(User).where(User.email.like("%@x.org")))
    assert created is None


async def test_redirect_uri_must_be_registered(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/auth/oidc/mock/start", json={"redirect_uri": "https://evil.example/steal"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "redirect_uri_not_allowed"
    unknown = await api.post("/auth/oidc/nope/start", json={"redirect_uri": CALLBACK})
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "unknown_provider"


async def test_link_list_and_unlink_identities(
    api: httpx.AsyncClient, oidc_server: OidcServer, db_session: AsyncSession
) -> None:
    account = await sign_up(api, db_session)
    other = await sign_up(api, db_session)
    started = (
        await api.post(
            "/me/identities/mock/start", headers=account.headers, json={"redirect_uri": CALLBACK}
        )
    ).json()
    code, state = await authorize(
        oidc_server, started["authorization_url"], sub=unique("sub"), email=f"{unique()}@x.org"
    )
    linked = await api.post(
        "/me/identities/mock/callback",
        headers=account.headers,
        json={"code": code, "state": state},
    )
    assert linked.status_code == 201
    identity_id = linked.json()["id"]
    # Another user cannot see or remove it.
    assert (await api.get("/me/identities", headers=other.headers)).json()["items"] == []
    stolen = await api.delete(f"/me/identities/{identity_id}", headers=other.headers)
    assert stolen.status_code == 404
    gone = await api.delete(f"/me/identities/{identity_id}", headers=account.headers)
    assert gone.status_code == 204
    assert (await api.get("/me/identities", headers=account.headers)).json()["items"] == []
    missing = await api.delete(f"/me/identities/{uuid.uuid4()}", headers=account.headers)
    assert missing.status_code == 404


async def test_the_last_way_to_sign_in_cannot_be_unlinked(
    api: httpx.AsyncClient, oidc_server: OidcServer
) -> None:
    response = await _social_login(
        api, oidc_server, sub=unique("sub"), email=f"{unique()}@example.com"
    )
    headers = bearer(response.json()["access_token"])
    [identity] = (await api.get("/me/identities", headers=headers)).json()["items"]
    refused = await api.delete(f"/me/identities/{identity['id']}", headers=headers)
    assert refused.status_code == 409
    assert refused.json()["code"] == "last_login_method"
    # With a password set, the identity may go.
    set_password = await api.post(
        "/me/password", headers=headers, json={"new_password": STRONG_PASSWORD}
    )
    assert set_password.status_code == 204
    assert (
        await api.delete(f"/me/identities/{identity['id']}", headers=headers)
    ).status_code == 204
