"""Tokens: signed JWT access tokens (key rotation by ``kid``) and opaque random secrets."""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey

from core.clock import SYSTEM_CLOCK, Clock
from core.settings import Settings

log = logging.getLogger(__name__)

ISSUER = "emporium"
AUDIENCE = "emporium-api"
ALGORITHM = "HS256"
TokenType = Literal["access", "mfa"]


def random_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def digest(token: str) -> str:
    """What we store instead of a token: a leaked table gives no usable tokens."""
    return hashlib.sha256(token.encode()).hexdigest()


class InvalidToken(Exception):
    """Expired, tampered, signed by an unknown key, or not the expected kind of token."""


@dataclass(frozen=True)
class TokenClaims:
    subject: uuid.UUID
    token_type: TokenType
    issued_at: int
    expires_at: int
    session_id: uuid.UUID | None
    scopes: tuple[str, ...]
    method: str | None
    token_id: str


class TokenSigner:
    """Signs with the active key; verifies with any configured key, chosen by ``kid``.

    Rotation: add the new key, make it active, keep the old one until the longest-lived token
    it signed has expired, then remove it.
    """

    def __init__(self, settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        keys = {kid: secret.get_secret_value() for kid, secret in settings.jwt_keys.items()}
        if not keys:
            # Development only (production refuses to start without keys): tokens die with
            # the process.
            log.warning("no EMPORIUM_JWT_KEYS set: using a random signing key for this process")
            keys = {"ephemeral": secrets.token_urlsafe(48)}
        self._active = settings.jwt_active_kid or list(keys)[-1]
        self._keys = KeySet(
            [OctKey.import_key(secret.encode(), {"kid": kid}) for kid, secret in keys.items()]
        )
        self._signing_key = self._keys.get_by_kid(self._active)
        self.access_ttl_s = settings.access_token_ttl_s
        self.mfa_ttl_s = settings.mfa_challenge_ttl_s

    def _issue(self, claims: dict[str, Any], ttl_s: int) -> str:
        now = int(self._clock.now().timestamp())
        payload = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_s,
            "jti": uuid.uuid4().hex,
            **claims,
        }
        return jwt.encode({"alg": ALGORITHM, "kid": self._active}, payload, self._signing_key)

    def issue_access(
        self, *, user_id: uuid.UUID, session_id: uuid.UUID, scopes: tuple[str, ...], method: str
    ) -> str:
        return self._issue(
            {
                "sub": str(user_id),
                "typ": "access",
                "sid": str(session_id),
                "scope": " ".join(scopes),
                "amr": method,
            },
            self.access_ttl_s,
        )

    def issue_mfa_challenge(self, *, user_id: uuid.UUID, method: str) -> str:
        """Proof that the first factor passed; only good for the second step of a login."""
        return self._issue({"sub": str(user_id), "typ": "mfa", "amr": method}, self.mfa_ttl_s)

    def verify(self, token: str, *, expected: TokenType) -> TokenClaims:
        try:
            decoded = jwt.decode(token, self._keys, algorithms=[ALGORITHM])
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": ISSUER},
                aud={"essential": True, "value": AUDIENCE},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                jti={"essential": True},
                typ={"essential": True, "value": expected},
                leeway=5,
                now=int(self._clock.now().timestamp()),
            ).validate(decoded.claims)
            claims = decoded.claims
            session = claims.get("sid")
            return TokenClaims(
                subject=uuid.UUID(claims["sub"]),
                token_type=expected,
                issued_at=int(claims["iat"]),
                expires_at=int(claims["exp"]),
                session_id=uuid.UUID(session) if session else None,
                scopes=tuple(str(claims.get("scope", "")).split()),
                method=claims.get("amr"),
                token_id=str(claims["jti"]),
            )
        except (JoseError, ValueError, KeyError, TypeError) as error:
            raise InvalidToken(str(error) or type(error).__name__) from None
