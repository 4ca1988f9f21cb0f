"""OAuth 2.0 / OpenID Connect client for social login: Google, Facebook, any OIDC provider.

The protocol only: build the authorization URL (state, nonce, PKCE S256), exchange the code,
verify the ID token, and hand back who the provider says the user is. Linking that identity to
an account is the caller's job, and so is keeping ``state``, ``nonce`` and ``code_verifier``
between the redirect and the callback (and comparing ``state``, see `state_matches`).

Written on httpx and joserfc rather than authlib's client: the flow is a handful of requests,
authlib's httpx integration is deprecated in 1.9, and owning it lets every failure become one
`OidcError` with a stable code, with no token, code or secret ever reaching a log line.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit, urlunsplit

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet

log = logging.getLogger(__name__)

ProviderKind = Literal["oidc", "facebook"]
TokenEndpointAuthMethod = Literal["client_secret_basic", "client_secret_post"]

# Asymmetric algorithms only: with HS* the client secret would become a verification key, and
# accepting both families invites algorithm confusion. "none" is never acceptable.
ID_TOKEN_ALGORITHMS: frozenset[str] = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
# Clock skew tolerated on exp/iat between us and the provider.
CLOCK_LEEWAY_S = 60
# An unknown `kid` means the provider may have rotated its keys, so we refetch the JWKS, but
# no more often than this: otherwise forged tokens with random kids would make us hammer it.
JWKS_MIN_REFRESH_S = 60.0


class OidcError(Exception):
    """The login with a provider failed; ``code`` is stable and safe to show to the client.

    Codes: ``oidc_provider_error`` (the provider was unreachable or answered with an error,
    e.g. a reused or unknown code), ``oidc_token_invalid`` (the ID token or the identity did not
    verify), ``oidc_nonce_mismatch`` (a valid ID token, but not for this login attempt).
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class OidcProvider:
    """One configured login provider.

    ``kind="oidc"`` needs ``issuer``: the endpoints come from its discovery document unless
    given explicitly, and the ID token is checked against it. ``kind="facebook"`` is plain
    OAuth 2.0 plus the Graph API, so all three endpoints must be given (see `facebook`).
    """

    name: str
    kind: ProviderKind
    client_id: str
    client_secret: str = field(repr=False)
    issuer: str | None = None
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    jwks_uri: str | None = None
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    # None: chosen from the discovery document's token_endpoint_auth_methods_supported.
    token_endpoint_auth_method: TokenEndpointAuthMethod | None = None

    def __post_init__(self) -> None:
        if self.kind == "oidc" and not self.issuer:
            raise ValueError(f"OIDC provider {self.name!r} needs an issuer")
        if self.kind == "facebook" and not (
            self.authorization_endpoint and self.token_endpoint and self.userinfo_endpoint
        ):
            raise ValueError(f"provider {self.name!r} needs explicit endpoints")

    @classmethod
    def google(cls, client_id: str, client_secret: str) -> OidcProvider:
        """Sign in with Google (OpenID Connect, endpoints from discovery)."""
        return cls(
            name="google",
            kind="oidc",
            client_id=client_id,
            client_secret=client_secret,
            issuer="https://accounts.google.com",
        )

    @classmethod
    def facebook(cls, client_id: str, client_secret: str) -> OidcProvider:
        """Facebook Login: OAuth 2.0 code flow, identity from the Graph API ``/me``."""
        return cls(
            name="facebook",
            kind="facebook",
            client_id=client_id,
            client_secret=client_secret,
            authorization_endpoint="https://www.facebook.com/v19.0/dialog/oauth",
            token_endpoint="https://graph.facebook.com/v19.0/oauth/access_token",  # noqa: S106
            userinfo_endpoint="https://graph.facebook.com/me?fields=id,name,email",
            scopes=("email", "public_profile"),
            token_endpoint_auth_method="client_secret_post",  # noqa: S106 (a method name)
        )


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, and the three secrets the caller keeps until the callback."""

    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True)
class VerifiedIdentity:
    """Who the provider says the user is; ``(provider, subject)`` is the stable key."""

    provider: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None


@dataclass(frozen=True)
class _Endpoints:
    issuer: str | None
    authorization: str
    token: str
    userinfo: str | None
    jwks_uri: str | None
    auth_method: TokenEndpointAuthMethod
    id_token_algorithms: frozenset[str]


def state_matches(expected: str, received: str) -> bool:
    """Whether the callback's ``state`` is the one we issued, compared in constant time.

    An empty expected state never matches: a lost session must not accept an empty callback.
    """
    if not expected:
        return False
    return hmac.compare_digest(expected.encode(), received.encode())


def pkce_challenge(code_verifier: str) -> str:
    """The RFC 7636 S256 ``code_challenge`` for a ``code_verifier``."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OidcClient:
    """Talks to login providers over one shared ``httpx.AsyncClient``.

    Discovery documents and JWKS are cached per issuer for ``cache_ttl_s``; a JWKS is also
    refetched when a token names a key id it does not hold (key rotation). Concurrent misses
    may fetch twice, which is harmless, so there is no lock.
    """

    def __init__(self, http: httpx.AsyncClient, *, cache_ttl_s: float = 3600.0) -> None:
        self._http = http
        self._cache_ttl_s = cache_ttl_s
        self._discovery: dict[str, tuple[float, dict[str, Any]]] = {}
        self._jwks: dict[str, tuple[float, KeySet]] = {}

    async def authorization_request(
        self, provider: OidcProvider, *, redirect_uri: str
    ) -> AuthorizationRequest:
        """A fresh state, nonce and PKCE verifier, and the provider URL carrying them."""
        endpoints = await self._endpoints(provider)
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        # 64 random bytes give 86 characters of the unreserved alphabet (RFC 7636: 43 to 128).
        code_verifier = secrets.token_urlsafe(64)
        url = _with_query(
            endpoints.authorization,
            {
                "response_type": "code",
                "client_id": provider.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(provider.scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": pkce_challenge(code_verifier),
                "code_challenge_method": "S256",
            },
        )
        return AuthorizationRequest(url=url, state=state, nonce=nonce, code_verifier=code_verifier)

    async def complete(
        self,
        provider: OidcProvider,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
        nonce: str,
    ) -> VerifiedIdentity:
        """Exchange the callback's code and return the verified identity.

        The caller has already checked ``state``; ``nonce`` and ``code_verifier`` are the ones
        it kept from `authorization_request`.
        """
        endpoints = await self._endpoints(provider)
        tokens = await self._exchange_code(
            provider,
            endpoints,
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=code_verifier,
        )
        access_token = tokens.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise OidcError("oidc_provider_error", "token response without an access token")
        if provider.kind == "facebook":
            return await self._facebook_identity(provider, endpoints, access_token)

        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("oidc_token_invalid", "token response without an ID token")
        claims = await self.verify_id_token(provider, id_token, nonce=nonce)
        subject: str = claims["sub"]
        email, email_verified = _string(claims.get("email")), claims.get("email_verified")
        name = _string(claims.get("name"))
        if (email is None or name is None) and endpoints.userinfo:
            info = await self._request_json(
                provider,
                endpoints.userinfo,
                what="userinfo",
                headers={"Authorization": f"Bearer {access_token}"},
            )
            # OIDC Core 5.3.2: userinfo about someone else must not be mixed in.
            if info.get("sub") != subject:
                raise OidcError("oidc_token_invalid", "userinfo is about another subject")
            if email is None:
                email, email_verified = _string(info.get("email")), info.get("email_verified")
            name = name or _string(info.get("name"))
        return VerifiedIdentity(
            provider=provider.name,
            subject=subject,
            email=email,
            email_verified=email is not None and _truthy(email_verified),
            name=name,
        )

    async def verify_id_token(
        self, provider: OidcProvider, id_token: str, *, nonce: str
    ) -> dict[str, Any]:
        """The claims of ``id_token`` once signature, issuer, audience, times and nonce hold.

        Raises `OidcError` ``oidc_token_invalid``, or ``oidc_nonce_mismatch`` for a genuine
        token minted for another login attempt (a replay).
        """
        endpoints = await self._endpoints(provider)
        if endpoints.issuer is None or endpoints.jwks_uri is None:
            raise OidcError("oidc_provider_error", f"{provider.name}: not an OIDC provider")
        try:
            header = jws.extract_compact(id_token.encode()).headers()
        except (JoseError, ValueError, TypeError):
            raise OidcError("oidc_token_invalid", "ID token is not a compact JWS") from None
        alg = header.get("alg")
        if alg not in endpoints.id_token_algorithms:
            raise OidcError("oidc_token_invalid", f"ID token algorithm {alg!r} not accepted")
        kid = header.get("kid")
        keys = await self._signing_keys(provider, endpoints.jwks_uri, kid=kid, alg=alg)
        claims = _decode(id_token, keys, alg=alg)
        _check_claims(claims, issuer=endpoints.issuer, client_id=provider.client_id)
        received = claims.get("nonce")
        if not (
            nonce
            and isinstance(received, str)
            and hmac.compare_digest(nonce.encode(), received.encode())
        ):
            raise OidcError("oidc_nonce_mismatch", "ID token nonce does not match this login")
        return claims

    async def _exchange_code(
        self,
        provider: OidcProvider,
        endpoints: _Endpoints,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
    ) -> dict[str, Any]:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        headers = {"Accept": "application/json"}
        if endpoints.auth_method == "client_secret_post":
            data |= {"client_id": provider.client_id, "client_secret": provider.client_secret}
        else:
            # RFC 6749 2.3.1: each part is form-urlencoded before being joined and encoded.
            pair = f"{quote_plus(provider.client_id)}:{quote_plus(provider.client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        return await self._request_json(
            provider, endpoints.token, what="token", method="POST", data=data, headers=headers
        )

    async def _facebook_identity(
        self, provider: OidcProvider, endpoints: _Endpoints, access_token: str
    ) -> VerifiedIdentity:
        assert endpoints.userinfo is not None
        # appsecret_proof ties the call to our app secret, as "Require App Secret" demands.
        proof = hmac.new(
            provider.client_secret.encode(), access_token.encode(), hashlib.sha256
        ).hexdigest()
        info = await self._request_json(
            provider,
            # Not httpx's params=, which would drop the "fields" already in the URL.
            _with_query(endpoints.userinfo, {"appsecret_proof": proof}),
            what="userinfo",
            headers={"Authorization": f"Bearer {access_token}"},
        )
        subject = info.get("id")
        if not isinstance(subject, str) or not subject:
            raise OidcError("oidc_token_invalid", "Graph API answer without a user id")
        email = _string(info.get("email"))
        return VerifiedIdentity(
            provider=provider.name,
            subject=subject,
            email=email,
            # Facebook returns only a confirmed email (none at all otherwise), so its presence
            # is the verification; there is no email_verified field to read.
            email_verified=email is not None,
            name=_string(info.get("name")),
        )

    async def _endpoints(self, provider: OidcProvider) -> _Endpoints:
        explicit_complete = bool(
            provider.authorization_endpoint and provider.token_endpoint and provider.jwks_uri
        )
        metadata: dict[str, Any] = {}
        if provider.kind == "oidc" and not explicit_complete:
            assert provider.issuer is not None
            metadata = await self._discovery_document(provider, provider.issuer)

        authorization = provider.authorization_endpoint or metadata.get("authorization_endpoint")
        token = provider.token_endpoint or metadata.get("token_endpoint")
        if not isinstance(authorization, str) or not isinstance(token, str):
            raise OidcError("oidc_provider_error", f"{provider.name}: endpoints unknown")
        methods = metadata.get("token_endpoint_auth_methods_supported")
        auth_method = provider.token_endpoint_auth_method or _choose_auth_method(methods)
        algorithms = metadata.get("id_token_signing_alg_values_supported")
        if isinstance(algorithms, list):
            accepted = ID_TOKEN_ALGORITHMS & {a for a in algorithms if isinstance(a, str)}
        else:
            accepted = ID_TOKEN_ALGORITHMS
        return _Endpoints(
            issuer=provider.issuer,
            authorization=authorization,
            token=token,
            userinfo=provider.userinfo_endpoint or _string(metadata.get("userinfo_endpoint")),
            jwks_uri=provider.jwks_uri or _string(metadata.get("jwks_uri")),
            auth_method=auth_method,
            id_token_algorithms=frozenset(accepted),
        )

    async def _discovery_document(self, provider: OidcProvider, issuer: str) -> dict[str, Any]:
        cached = self._discovery.get(issuer)
        if cached and time.monotonic() - cached[0] < self._cache_ttl_s:
            return cached[1]
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await self._request_json(provider, url, what="discovery")
        # OIDC Discovery 4.3: a document claiming another issuer must not be used, or a
        # compromised host could vouch for tokens of an issuer it does not own.
        if document.get("issuer") != issuer:
            raise OidcError("oidc_provider_error", f"{provider.name}: discovery issuer mismatch")
        self._discovery[issuer] = (time.monotonic(), document)
        return document

    async def _signing_keys(
        self, provider: OidcProvider, jwks_uri: str, *, kid: str | None, alg: str
    ) -> list[Key]:
        cached = self._jwks.get(jwks_uri)
        age = time.monotonic() - cached[0] if cached else float("inf")
        if cached is None or age >= self._cache_ttl_s:
            candidates = _candidate_keys(await self._fetch_jwks(provider, jwks_uri), kid, alg)
        else:
            candidates = _candidate_keys(cached[1], kid, alg)
            if not candidates and age >= JWKS_MIN_REFRESH_S:
                candidates = _candidate_keys(await self._fetch_jwks(provider, jwks_uri), kid, alg)
        if not candidates:
            raise OidcError("oidc_token_invalid", "ID token signed by an unknown key")
        return candidates

    async def _fetch_jwks(self, provider: OidcProvider, jwks_uri: str) -> KeySet:
        document = await self._request_json(provider, jwks_uri, what="jwks")
        try:
            # Any JSON object is passed on (the typed form is what a valid set looks like): a
            # malformed key set raises, and is caught here.
            key_set = KeySet.import_key_set(document)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError):
            raise OidcError("oidc_provider_error", f"{provider.name}: unusable JWKS") from None
        self._jwks[jwks_uri] = (time.monotonic(), key_set)
        return key_set

    async def _request_json(
        self,
        provider: OidcProvider,
        url: str,
        *,
        what: str,
        method: str = "GET",
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One request to the provider; any failure becomes ``oidc_provider_error``.

        Logs only the provider, the step and the status: URLs and bodies may carry codes.
        """
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.HTTPError as error:
            log.warning(
                "oidc provider unreachable",
                extra={"provider": provider.name, "step": what, "error": type(error).__name__},
            )
            raise OidcError(
                "oidc_provider_error", f"{provider.name} {what}: {type(error).__name__}"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            # The OAuth "error" code (RFC 6749 5.2) is safe to keep; the description may
            # echo request values, so it is not.
            oauth_error = body.get("error") if isinstance(body, dict) else None
            log.warning(
                "oidc provider error",
                extra={
                    "provider": provider.name,
                    "step": what,
                    "status": response.status_code,
                    "oauth_error": oauth_error,
                },
            )
            detail = f"{provider.name} {what}: HTTP {response.status_code}"
            if isinstance(oauth_error, str):
                detail += f" {oauth_error}"
            raise OidcError("oidc_provider_error", detail)
        return body


def _choose_auth_method(supported: object) -> TokenEndpointAuthMethod:
    # RFC 8414: when the provider does not say, client_secret_basic is the default.
    if (
        isinstance(supported, list)
        and "client_secret_basic" not in supported
        and "client_secret_post" in supported
    ):
        return "client_secret_post"
    return "client_secret_basic"


def _candidate_keys(key_set: KeySet, kid: str | None, alg: str) -> list[Key]:
    """Signing keys that may have made a token: by kid when it names one, else all of them."""
    return [
        key
        for key in key_set.keys
        if (kid is None or key.kid == kid)
        and key.get("use") in (None, "sig")
        and key.alg in (None, alg)
    ]


def _decode(id_token: str, keys: list[Key], *, alg: str) -> dict[str, Any]:
    for key in keys:
        try:
            return jwt.decode(id_token, key, algorithms=[alg]).claims
        except (JoseError, ValueError, TypeError):
            # A token without kid is tried against each key; only a match counts.
            continue
    raise OidcError("oidc_token_invalid", "ID token signature does not verify")


def _check_claims(claims: dict[str, Any], *, issuer: str, client_id: str) -> None:
    try:
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            leeway=CLOCK_LEEWAY_S,
        ).validate(claims)
    except JoseError as error:
        raise OidcError("oidc_token_invalid", f"ID token claim rejected: {error}") from None
    # OIDC Core 3.1.3.7: with several audiences, azp must name us.
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != client_id:
        raise OidcError("oidc_token_invalid", "ID token authorized party is another client")


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _truthy(value: object) -> bool:
    # Some providers send email_verified as the string "true".
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _with_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` appended, keeping any query it already has."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))
