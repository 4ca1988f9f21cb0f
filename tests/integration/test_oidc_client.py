"""The OIDC/OAuth client against a real provider (oidc-provider-mock), end to end.

What the mock cannot be made to do (sign with a key we choose, send a token that expired, put
several audiences in ``aud``, answer like Facebook's Graph API) is checked against a provider
played by ``httpx.MockTransport``, in the second half of this file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import string
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from commerce.accounts import oidc
from commerce.accounts.oidc import (
    AuthorizationRequest,
    OidcClient,
    OidcError,
    OidcProvider,
    VerifiedIdentity,
    pkce_challenge,
    state_matches,
)
from tests.oidc_server import (  # noqa: F401
    OidcServer,
    authorize,
    oidc_server,
    quiet_mock_warnings,
)

pytestmark = quiet_mock_warnings

REDIRECT_URI = "http://127.0.0.1:8000/auth/oidc/mock/callback"


@pytest.fixture
def sent() -> list[httpx.Request]:
    """Every request our client made to a provider, in order."""
    return []


@pytest.fixture
async def http(sent: list[httpx.Request]) -> AsyncIterator[httpx.AsyncClient]:
    async def record(request: httpx.Request) -> None:
        sent.append(request)

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as client:
        yield client


@pytest.fixture
def client(http: httpx.AsyncClient) -> OidcClient:
    return OidcClient(http)


@pytest.fixture
async def provider(oidc_server: OidcServer) -> OidcProvider:  # noqa: F811
    return await oidc_server.register_provider(redirect_uri=REDIRECT_URI)


def _query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def _subject() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"


async def _authorized(
    client: OidcClient,
    provider: OidcProvider,
    server: OidcServer,
    *,
    sub: str,
    email: str = "ada@example.com",
    email_verified: bool = True,
    name: str | None = None,
) -> tuple[AuthorizationRequest, str]:
    """Our redirect, the user's consent at the provider, and the code from the callback."""
    request = await client.authorization_request(provider, redirect_uri=REDIRECT_URI)
    code, state = await authorize(
        server, request.url, sub=sub, email=email, email_verified=email_verified, name=name
    )
    assert state_matches(request.state, state)
    return request, code


async def test_login_returns_the_identity_the_provider_asserted(
    client: OidcClient,
    provider: OidcProvider,
    oidc_server: OidcServer,  # noqa: F811
) -> None:
    sub = _subject()
    request, code = await _authorized(
        client, provider, oidc_server, sub=sub, email="ada@example.com", name="Ada Lovelace"
    )

    identity = await client.complete(
        provider,
        code=code,
        redirect_uri=REDIRECT_URI,
        code_verifier=request.code_verifier,
        nonce=request.nonce,
    )

    assert identity == VerifiedIdentity(
        provider="mock",
        subject=sub,
        email="ada@example.com",
        email_verified=True,
        name="Ada Lovelace",
    )


async def test_an_unverified_email_is_reported_unverified(
    client: OidcClient,
    provider: OidcProvider,
    oidc_server: OidcServer,  # noqa: F811
) -> None:
    sub = _subject()
    request, code = await _authorized(
        client, provider, oidc_server, sub=sub, email="bob@example.com", email_verified=False
    )

    identity = await client.complete(
        provider,
        code=code,
        redirect_uri=REDIRECT_URI,
        code_verifier=request.code_verifier,
        nonce=request.nonce,
    )

    assert (identity.subject, identity.email, identity.email_verified) == (
        sub,
        "bob@example.com",
        False,
    )
    # No name in the ID token, so userinfo was asked, and had none either.
    assert identity.name is None


async def test_authorization_url_carries_state_nonce_and_an_s256_challenge(
    client: OidcClient,
    provider: OidcProvider,
    oidc_server: OidcServer,  # noqa: F811
) -> None:
    request = await client.authorization_request(provider, redirect_uri=REDIRECT_URI)
    other = await client.authorization_request(provider, redirect_uri=REDIRECT_URI)

    assert request.url.startswith(f"{oidc_server.issuer}/oauth2/authorize?")
    params = _query(request.url)
    assert params == {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid email profile",
        "state": request.state,
        "nonce": request.nonce,
        "code_challenge": params["code_challenge"],
        "code_challenge_method": "S256",
    }
    digest = hashlib.sha256(request.code_verifier.encode()).digest()
    assert params["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    # RFC 7636 4.1: 43 to 128 characters from the unreserved set.
    assert 43 <= len(request.code_verifier) <= 128
    assert set(request.code_verifier) <= set(string.ascii_letters + string.digits + "-._~")
    assert len(request.state) >= 32
    assert len(request.nonce) >= 32
    # Fresh randomness every time, never derived from one another.
    assert len({request.state, request.nonce, other.state, other.nonce}) == 4
    assert request.code_verifier != other.code_verifier


async def test_token_request_sends_the_verifier_for_the_challenge_with_basic_auth(
    client: OidcClient,
    provider: OidcProvider,
    oidc_server: OidcServer,  # noqa: F811
    sent: list[httpx.Request],
) -> None:
    request, code = await _authorized(client, provider, oidc_server, sub=_subject())
    await client.complete(
        provider,
        code=code,
        redirect_uri=REDIRECT_URI,
        code_verifier=request.code_verifier,
        nonce=request.nonce,
    )

    [token_request] = [r for r in sent if r.url.path == "/oauth2/token"]
    body = {k: v[0] for k, v in parse_qs(token_request.content.decode()).items()}
    assert body == {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": request.code_verifier,
    }
    assert pkce_challenge(body["code_verifier"]) == _query(request.url)["code_challenge"]
    # The mock's discovery lists no auth methods, so RFC 8414's default applies.
    expected = base64.b64encode(f"{provider.client_id}:{provider.client_secret}".encode())
    assert token_request.headers["authorization"] == f"Basic {expected.decode()}"


async def test_the_mock_does_not_enforce_pkce(
    client: OidcClient,
    provider: OidcProvider,
    oidc_server: OidcServer,  # noqa: F811
) -> None:
    """A limitation of oidc-provider-mock 0.3, recorded so that we notice when it changes.

    Its authlib server registers no CodeChallenge extension, so ``code_challenge`` is ignored
    and any ``code_verifier`` is accepted. A real provider (Google does) refuses this exchange
    with ``invalid_grant``; that our client sends the right verifier is checked above. If this
    test starts failing, the mock enforces PKCE: turn it into a refusal test.
    """
    sub = _subject()
    request, code = await _authorized(client, provider, oidc_server, sub=sub)

    identity = await client.complete(
        provider,
        code=code,
        redirect_uri=REDIRECT_URI,
        code_verifier=pkce_challenge("a verifier of another login attempt, 43+ chars"),
        nonce=request.nonce,
    )

    assert identity.subject == sub


async def test_a_wrong_nonce_is_refused(
    client: OidcClient,
    provider: OidcProvider,
    oidc_server: OidcServer,  # noqa: F811
) -> None:
    request, code = await _authorized(client, provider, oidc_server, sub=_subject())
    other = await client.authorization_request(provider, redirect_uri=REDIRECT_URI)

    with pytest.raises(OidcError) as caught:
        await client.complete(
            provider,
            code=code,
            redirect_uri=REDIRECT_URI,
            code_verifier=request.code_verifier,
            nonce=other.nonce,
        )

    assert caught.value.code == "oidc_nonce_mismatch"


async def test_a_reused_code_is_refused_without_logging_secrets(
    client: OidcClient,
    provider: OidcProvider,
    oidc_server: OidcServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    request, code = await _authorized(client, provider, oidc_server, sub=_subject())
    arguments: dict[str, Any] = {
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": request.code_verifier,
        "nonce": request.nonce,
    }
    await client.complete(provider, **arguments)

    with caplog.at_level(logging.DEBUG, logger=oidc.__name__), pytest.raises(OidcError) as caught:
        await client.complete(provider, **arguments)

    assert caught.value.code == "oidc_provider_error"
    assert "invalid_grant" in caught.value.detail
    [record] = [r for r in caplog.records if r.name == oidc.__name__]
    assert (record.provider, record.step, record.status) == ("mock", "token", 400)  # type: ignore[attr-defined]
    logged = repr(record.__dict__) + caplog.text
    for secret in (code, request.code_verifier, provider.client_secret):
        assert secret not in logged


async def test_a_wrong_client_secret_is_refused(
    client: OidcClient,
    provider: OidcProvider,
    oidc_server: OidcServer,  # noqa: F811
) -> None:
    request, code = await _authorized(client, provider, oidc_server, sub=_subject())
    impostor = OidcProvider(
        name="mock",
        kind="oidc",
        client_id=provider.client_id,
        client_secret="not-the-secret",
        issuer=provider.issuer,
    )

    with pytest.raises(OidcError) as caught:
        await client.complete(
            impostor,
            code=code,
            redirect_uri=REDIRECT_URI,
            code_verifier=request.code_verifier,
            nonce=request.nonce,
        )

    assert caught.value.code == "oidc_provider_error"
    assert "invalid_client" in caught.value.detail


async def test_a_code_redeemed_with_another_redirect_uri_is_refused(
    client: OidcClient,
    provider: OidcProvider,
    oidc_server: OidcServer,  # noqa: F811
) -> None:
    request, code = await _authorized(client, provider, oidc_server, sub=_subject())

    with pytest.raises(OidcError) as caught:
        await client.complete(
            provider,
            code=code,
            redirect_uri="http://127.0.0.1:8000/somewhere/else",
            code_verifier=request.code_verifier,
            nonce=request.nonce,
        )

    assert caught.value.code == "oidc_provider_error"


async def test_an_id_token_for_another_client_is_refused(
    client: OidcClient,
    provider: OidcProvider,
    oidc_server: OidcServer,  # noqa: F811
) -> None:
    """A genuine token of this provider, minted for another client (another audience)."""
    other = await oidc_server.register_provider(redirect_uri=REDIRECT_URI, name="other")
    request, code = await _authorized(client, other, oidc_server, sub=_subject())
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{oidc_server.issuer}/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": request.code_verifier,
            },
            auth=(other.client_id, other.client_secret),
        )
    id_token = response.json()["id_token"]
    # The token itself is sound: its own client accepts it.
    assert (await client.verify_id_token(other, id_token, nonce=request.nonce))["aud"] == [
        other.client_id
    ]

    with pytest.raises(OidcError) as caught:
        await client.verify_id_token(provider, id_token, nonce=request.nonce)

    assert caught.value.code == "oidc_token_invalid"


@pytest.mark.parametrize("kid", [None, "attacker-key"])
async def test_an_id_token_signed_by_another_key_is_refused(
    client: OidcClient,
    provider: OidcProvider,
    kid: str | None,
) -> None:
    forger = RSAKey.generate_key(2048)
    now = int(time.time())
    claims = {
        "iss": provider.issuer,
        "aud": [provider.client_id],
        "sub": "victim",
        "email": "victim@example.com",
        "email_verified": True,
        "iat": now,
        "exp": now + 300,
        "nonce": "n",
    }
    header = {"alg": "RS256"} | ({"kid": kid} if kid else {})
    forged = jwt.encode(header, claims, forger)

    with pytest.raises(OidcError) as caught:
        await client.verify_id_token(provider, forged, nonce="n")

    assert caught.value.code == "oidc_token_invalid"


async def test_an_unsigned_id_token_is_refused(
    client: OidcClient,
    provider: OidcProvider,
) -> None:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"iss": provider.issuer, "aud": provider.client_id, "sub": "x", "nonce": "n"}
    unsigned = f"{part({'alg': 'none'})}.{part(claims | {'iat': now, 'exp': now + 60})}."

    with pytest.raises(OidcError) as caught:
        await client.verify_id_token(provider, unsigned, nonce="n")

    assert caught.value.code == "oidc_token_invalid"


async def test_discovery_and_keys_are_fetched_once_per_issuer(
    client: OidcClient,
    provider: OidcProvider,
    oidc_server: OidcServer,  # noqa: F811
    sent: list[httpx.Request],
) -> None:
    for _ in range(2):
        request, code = await _authorized(client, provider, oidc_server, sub=_subject())
        await client.complete(
            provider,
            code=code,
            redirect_uri=REDIRECT_URI,
            code_verifier=request.code_verifier,
            nonce=request.nonce,
        )

    paths = [r.url.path for r in sent]
    assert paths.count("/.well-known/openid-configuration") == 1
    assert paths.count("/jwks") == 1
    assert paths.count("/oauth2/token") == 2


async def test_a_discovery_document_naming_another_issuer_is_refused(
    client: OidcClient,
    oidc_server: OidcServer,  # noqa: F811
) -> None:
    # Same host, but the configured issuer differs from the one the document declares.
    provider = OidcProvider(
        name="mock", kind="oidc", client_id="c", client_secret="s", issuer=oidc_server.issuer + "/"
    )

    with pytest.raises(OidcError) as caught:
        await client.authorization_request(provider, redirect_uri=REDIRECT_URI)

    assert caught.value.code == "oidc_provider_error"
    assert "issuer mismatch" in caught.value.detail


async def test_an_unreachable_provider_is_a_provider_error(client: OidcClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = OidcProvider(
        name="down",
        kind="oidc",
        client_id="c",
        client_secret="s",
        issuer=f"http://127.0.0.1:{port}",
    )

    with pytest.raises(OidcError) as caught:
        await client.authorization_request(provider, redirect_uri=REDIRECT_URI)

    assert caught.value.code == "oidc_provider_error"


def test_state_matches_only_the_same_state() -> None:
    assert state_matches("s3cr3t-state", "s3cr3t-state")
    assert not state_matches("s3cr3t-state", "s3cr3t-statf")
    assert not state_matches("s3cr3t-state", "s3cr3t")
    assert not state_matches("s3cr3t-state", "")
    # A session that lost its state must not accept a callback without one.
    assert not state_matches("", "")
    # Anything a client may send is compared, not crashed on.
    assert not state_matches("s3cr3t-state", "é-state")


def test_state_matches_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    constant_time = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return constant_time(a, b)

    monkeypatch.setattr(oidc.hmac, "compare_digest", spy)

    assert state_matches("abc", "abc")
    assert not state_matches("abc", "abd")
    assert calls == [(b"abc", b"abc"), (b"abc", b"abd")]


def test_the_client_secret_stays_out_of_reprs() -> None:
    provider = OidcProvider.google("client-id", "very-secret-value")
    assert "very-secret-value" not in repr(provider)
    assert provider.issuer == "https://accounts.google.com"


# A provider played by httpx.MockTransport: for what the mock cannot be made to do.

FAKE_ISSUER = "https://login.example.test"
FAKE_CLIENT_ID = "emporium-client"
NONCE = "the-nonce-of-this-login"


class FakeIssuer:
    """An OIDC provider whose signing key, ID token claims and userinfo the test chooses."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, {"kid": "k1"})
        self.id_token_claims = self.claims()
        self.userinfo: dict[str, Any] = {}
        self.requests: list[httpx.Request] = []

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Valid claims for our client, changed by ``overrides`` (None removes a claim)."""
        now = int(time.time())
        claims = {
            "iss": FAKE_ISSUER,
            "aud": FAKE_CLIENT_ID,
            "sub": "fake-user",
            "iat": now,
            "exp": now + 300,
            "nonce": NONCE,
        } | overrides
        return {name: value for name, value in claims.items() if value is not None}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.key)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        match request.url.path:
            case "/.well-known/openid-configuration":
                return httpx.Response(
                    200,
                    json={
                        "issuer": FAKE_ISSUER,
                        "authorization_endpoint": f"{FAKE_ISSUER}/authorize",
                        "token_endpoint": f"{FAKE_ISSUER}/token",
                        "userinfo_endpoint": f"{FAKE_ISSUER}/userinfo",
                        "jwks_uri": f"{FAKE_ISSUER}/jwks",
                        "id_token_signing_alg_values_supported": ["RS256"],
                        "token_endpoint_auth_methods_supported": ["client_secret_post"],
                    },
                )
            case "/jwks":
                return httpx.Response(200, json=dict(KeySet([self.key]).as_dict()))
            case "/token":
                return httpx.Response(
                    200,
                    json={
                        "access_token": "fake-access-token",
                        "token_type": "Bearer",
                        "id_token": self.sign(self.id_token_claims),
                    },
                )
            case "/userinfo":
                return httpx.Response(200, json=self.userinfo)
        return httpx.Response(404)


@pytest.fixture
def fake() -> FakeIssuer:
    return FakeIssuer()


@pytest.fixture
async def fake_client(fake: FakeIssuer) -> AsyncIterator[OidcClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake.handle)) as http:
        yield OidcClient(http)


FAKE_PROVIDER = OidcProvider(
    name="fake", kind="oidc", client_id=FAKE_CLIENT_ID, client_secret="shh", issuer=FAKE_ISSUER
)


async def test_a_valid_token_passes_with_a_little_clock_skew(
    fake: FakeIssuer, fake_client: OidcClient
) -> None:
    # Expired 30 s ago and issued 30 s "in the future": within the leeway for clock skew.
    now = int(time.time())
    token = fake.sign(fake.claims(exp=now - 30, iat=now + 30))

    claims = await fake_client.verify_id_token(FAKE_PROVIDER, token, nonce=NONCE)

    assert claims["sub"] == "fake-user"


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        pytest.param({"exp": int(time.time()) - 3600}, "oidc_token_invalid", id="expired"),
        pytest.param({"iat": int(time.time()) + 3600}, "oidc_token_invalid", id="future-iat"),
        pytest.param({"exp": None}, "oidc_token_invalid", id="no-exp"),
        pytest.param({"iat": None}, "oidc_token_invalid", id="no-iat"),
        pytest.param({"iss": "https://evil.example"}, "oidc_token_invalid", id="other-issuer"),
        pytest.param({"aud": "someone-else"}, "oidc_token_invalid", id="other-audience"),
        pytest.param({"sub": None}, "oidc_token_invalid", id="no-subject"),
        pytest.param({"sub": ""}, "oidc_token_invalid", id="blank-subject"),
        pytest.param(
            {"aud": [FAKE_CLIENT_ID, "another"]}, "oidc_token_invalid", id="multi-aud-no-azp"
        ),
        pytest.param(
            {"aud": [FAKE_CLIENT_ID, "another"], "azp": "another"},
            "oidc_token_invalid",
            id="azp-another-client",
        ),
        pytest.param({"nonce": "replayed"}, "oidc_nonce_mismatch", id="other-nonce"),
        pytest.param({"nonce": None}, "oidc_nonce_mismatch", id="no-nonce"),
    ],
)
async def test_an_id_token_with_a_bad_claim_is_refused(
    fake: FakeIssuer, fake_client: OidcClient, overrides: dict[str, Any], code: str
) -> None:
    token = fake.sign(fake.claims(**overrides))

    with pytest.raises(OidcError) as caught:
        await fake_client.verify_id_token(FAKE_PROVIDER, token, nonce=NONCE)

    assert caught.value.code == code


async def test_several_audiences_with_our_azp_are_accepted(
    fake: FakeIssuer, fake_client: OidcClient
) -> None:
    token = fake.sign(fake.claims(aud=[FAKE_CLIENT_ID, "another"], azp=FAKE_CLIENT_ID))

    claims = await fake_client.verify_id_token(FAKE_PROVIDER, token, nonce=NONCE)

    assert claims["azp"] == FAKE_CLIENT_ID


async def test_an_hmac_token_keyed_with_the_client_secret_is_refused(
    fake: FakeIssuer, fake_client: OidcClient
) -> None:
    # The client secret is no secret from the provider's other clients' point of view: a
    # symmetric token must never be taken for the provider's signature.
    key = OctKey.import_key(FAKE_PROVIDER.client_secret.encode().ljust(32, b"!"))
    token = jwt.encode({"alg": "HS256", "kid": "k1"}, fake.claims(), key)

    with pytest.raises(OidcError) as caught:
        await fake_client.verify_id_token(FAKE_PROVIDER, token, nonce=NONCE)

    assert caught.value.code == "oidc_token_invalid"


async def test_a_rotated_key_is_fetched_but_not_more_than_once_a_minute(
    fake: FakeIssuer, fake_client: OidcClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fake_client.verify_id_token(FAKE_PROVIDER, fake.sign(fake.claims()), nonce=NONCE)
    fake.key = RSAKey.generate_key(2048, {"kid": "k2"})
    rotated = jwt.encode({"alg": "RS256", "kid": "k2"}, fake.claims(), fake.key)

    # Keys fetched moments ago: an unknown kid is more likely forged than rotated.
    with pytest.raises(OidcError) as caught:
        await fake_client.verify_id_token(FAKE_PROVIDER, rotated, nonce=NONCE)
    assert caught.value.code == "oidc_token_invalid"
    assert [r.url.path for r in fake.requests].count("/jwks") == 1

    monkeypatch.setattr(oidc, "JWKS_MIN_REFRESH_S", 0.0)
    claims = await fake_client.verify_id_token(FAKE_PROVIDER, rotated, nonce=NONCE)
    assert claims["sub"] == "fake-user"
    assert [r.url.path for r in fake.requests].count("/jwks") == 2


async def test_userinfo_fills_in_what_the_id_token_lacks(
    fake: FakeIssuer, fake_client: OidcClient
) -> None:
    fake.userinfo = {
        "sub": "fake-user",
        "email": "Grace@Example.com",
        "email_verified": "true",
        "name": "Grace Hopper",
    }

    identity = await fake_client.complete(
        FAKE_PROVIDER, code="c0de", redirect_uri=REDIRECT_URI, code_verifier="v" * 43, nonce=NONCE
    )

    assert identity == VerifiedIdentity(
        provider="fake",
        subject="fake-user",
        email="Grace@Example.com",
        email_verified=True,
        name="Grace Hopper",
    )
    [token_request] = [r for r in fake.requests if r.url.path == "/token"]
    body = parse_qs(token_request.content.decode())
    # The discovery document lists only client_secret_post: the secret goes in the body.
    assert (body["client_id"], body["client_secret"]) == ([FAKE_CLIENT_ID], ["shh"])
    assert "authorization" not in token_request.headers
    [userinfo] = [r for r in fake.requests if r.url.path == "/userinfo"]
    assert userinfo.headers["authorization"] == "Bearer fake-access-token"


async def test_userinfo_about_another_subject_is_refused(
    fake: FakeIssuer, fake_client: OidcClient
) -> None:
    fake.userinfo = {"sub": "someone-else", "email": "mallory@example.com"}

    with pytest.raises(OidcError) as caught:
        await fake_client.complete(
            FAKE_PROVIDER, code="c", redirect_uri=REDIRECT_URI, code_verifier="v" * 43, nonce=NONCE
        )

    assert caught.value.code == "oidc_token_invalid"


class FakeFacebook:
    """Facebook's token endpoint and Graph API ``/me``, as far as Facebook Login uses them."""

    def __init__(self, me: dict[str, Any]) -> None:
        self.me = me
        self.requests: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if (request.url.host, request.url.path) == (
            "graph.facebook.com",
            "/v19.0/oauth/access_token",
        ):
            return httpx.Response(
                200,
                json={"access_token": "fb-token", "token_type": "bearer", "expires_in": 5183944},
            )
        if (request.url.host, request.url.path) == ("graph.facebook.com", "/me"):
            return httpx.Response(200, json=self.me)
        return httpx.Response(404, json={"error": {"message": "unknown path"}})


@pytest.mark.parametrize(
    ("me", "email", "verified"),
    [
        ({"id": "10230", "name": "Ada L", "email": "ada@fb.example"}, "ada@fb.example", True),
        # No confirmed email on the account: Facebook leaves the field out.
        ({"id": "10230", "name": "Ada L"}, None, False),
    ],
)
async def test_facebook_login_reads_the_graph_api(
    me: dict[str, Any], email: str | None, verified: bool
) -> None:
    facebook = FakeFacebook(me)
    provider = OidcProvider.facebook("fb-app", "fb-app-secret")
    async with httpx.AsyncClient(transport=httpx.MockTransport(facebook.handle)) as http:
        client = OidcClient(http)
        request = await client.authorization_request(provider, redirect_uri=REDIRECT_URI)
        identity = await client.complete(
            provider,
            code="fb-code",
            redirect_uri=REDIRECT_URI,
            code_verifier=request.code_verifier,
            nonce=request.nonce,
        )

    assert request.url.startswith("https://www.facebook.com/v19.0/dialog/oauth?")
    assert _query(request.url)["scope"] == "email public_profile"
    assert identity == VerifiedIdentity(
        provider="facebook", subject="10230", email=email, email_verified=verified, name="Ada L"
    )
    token_request, me_request = facebook.requests
    assert parse_qs(token_request.content.decode())["client_secret"] == ["fb-app-secret"]
    proof = hmac.new(b"fb-app-secret", b"fb-token", hashlib.sha256).hexdigest()
    assert dict(me_request.url.params) == {"fields": "id,name,email", "appsecret_proof": proof}
    assert me_request.headers["authorization"] == "Bearer fb-token"
