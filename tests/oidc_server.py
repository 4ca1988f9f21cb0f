"""A real OpenID Connect provider for tests: the ``oidc-provider-mock`` package, in a thread.

Import the fixture and the browser helper where they are needed::

    from tests.oidc_server import oidc_server, authorize  # noqa: F401

The mock is authlib's authorization server behind a Flask app. It runs with
``require_client_registration=True`` so that client secrets are really checked: each test
registers its own client (`OidcServer.register_client` / `register_provider`), and uses its own
subjects, so tests sharing the session's server do not see each other.

What the mock does not do (checked in tests/integration/test_oidc_client.py): it ignores
``code_challenge`` entirely, so PKCE is not enforced, and it never sets ``kid`` on ID tokens.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from commerce.accounts.oidc import OidcProvider, TokenEndpointAuthMethod

#: For modules using the fixture: the mock calls an authlib API deprecated in authlib 1.9 on
#: every token request, from its server thread (``pytestmark = quiet_mock_warnings``).
quiet_mock_warnings = pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning")


@dataclass(frozen=True)
class RegisteredClient:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]


@dataclass(frozen=True)
class OidcServer:
    """The running provider: its issuer URL and its test-only management endpoints."""

    issuer: str

    async def register_client(
        self,
        *,
        redirect_uris: tuple[str, ...],
        token_endpoint_auth_method: TokenEndpointAuthMethod = "client_secret_basic",  # noqa: S107
    ) -> RegisteredClient:
        """Dynamic client registration (RFC 7591), the mock's way to create a client."""
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{self.issuer}/oauth2/clients",
                json={
                    "redirect_uris": list(redirect_uris),
                    "token_endpoint_auth_method": token_endpoint_auth_method,
                },
            )
        response.raise_for_status()
        body = response.json()
        return RegisteredClient(
            client_id=body["client_id"],
            client_secret=body["client_secret"],
            redirect_uris=tuple(body["redirect_uris"]),
        )

    async def register_provider(self, *, redirect_uri: str, name: str = "mock") -> OidcProvider:
        """A fresh client, as the `OidcProvider` our code is configured with."""
        client = await self.register_client(redirect_uris=(redirect_uri,))
        return OidcProvider(
            name=name,
            kind="oidc",
            client_id=client.client_id,
            client_secret=client.client_secret,
            issuer=self.issuer,
        )

    async def set_user(self, sub: str, claims: dict[str, Any]) -> None:
        """What the provider will say about ``sub`` in ID tokens and userinfo from now on."""
        async with httpx.AsyncClient() as http:
            response = await http.put(f"{self.issuer}/users/{sub}", json=claims)
        response.raise_for_status()


@pytest.fixture(scope="session")
def oidc_server() -> Iterator[OidcServer]:
    """The mock provider on 127.0.0.1, on a port the OS picked, for the whole run."""
    # The mock still imports authlib.jose, deprecated in authlib 1.9: not our warning to see.
    # authlib.deprecate installs an "always" filter when imported, which would beat ours.
    with warnings.catch_warnings():
        import authlib.deprecate  # noqa: F401

        warnings.simplefilter("ignore", DeprecationWarning)
        import oidc_provider_mock
    import werkzeug.serving

    # The package's own run_server_in_thread binds "localhost"; its public app factory under
    # werkzeug's threaded server (what that helper does inside) lets us pin 127.0.0.1, so the
    # issuer URL is exactly the address we connect to.
    app = oidc_provider_mock.app(require_client_registration=True)
    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )
    thread.start()
    try:
        yield OidcServer(issuer=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _FormFinder(HTMLParser):
    """Finds the form holding an ``<input name="sub">``: the mock's "Authorize" form."""

    def __init__(self) -> None:
        super().__init__()
        self._form: dict[str, str | None] | None = None
        self.found: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self._form = attributes
        elif tag == "input" and attributes.get("name") == "sub" and self.found is None:
            self.found = self._form

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


async def authorize(
    oidc_server: OidcServer,
    authorization_url: str,
    *,
    sub: str,
    email: str,
    email_verified: bool = True,
    name: str | None = None,
) -> tuple[str, str]:
    """Play the user's browser at the provider and return the callback's ``(code, state)``.

    The mock's form only asks for a subject; the claims it will assert about that subject are
    set first through its ``PUT /users/{sub}``. Then: GET the authorization URL, submit the form
    the way a browser would (method and action from the HTML), and read the redirect to our
    callback without following it.
    """
    claims: dict[str, Any] = {"email": email, "email_verified": email_verified}
    if name is not None:
        claims["name"] = name
    await oidc_server.set_user(sub, claims)

    async with httpx.AsyncClient(follow_redirects=False) as browser:
        page = await browser.get(authorization_url)
        assert page.status_code == 200, f"authorization page: HTTP {page.status_code}"
        finder = _FormFinder()
        finder.feed(page.text)
        form = finder.found
        assert form is not None, "no authorization form with a 'sub' field on the page"
        # No action attribute means "submit to this page", query string included.
        action = urljoin(str(page.url), form.get("action") or str(page.url))
        method = (form.get("method") or "get").upper()
        assert method == "POST", f"unexpected form method {method}"
        response = await browser.post(action, data={"sub": sub})

    assert response.status_code in (302, 303), f"authorization: HTTP {response.status_code}"
    query = parse_qs(urlsplit(response.headers["location"]).query)
    if "error" in query:
        raise AssertionError(f"provider refused the authorization: {query['error'][0]}")
    return query["code"][0], query["state"][0]
