"""Who may call a route. Every route declares one requirement; a test fails on any that does
not. The requirement is also what authenticates: routes receive the signed-in ``Principal``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import iter_route_contexts
from sqlalchemy import select

from api.deps import SessionDep
from commerce.accounts.context import AccountsContext
from commerce.accounts.tokens import InvalidToken
from commerce.errors import DomainError, Forbidden, NotFound, Unauthorized
from models import (
    AuthSession,
    PlatformRole,
    User,
    UserStatus,
    Vendor,
    VendorMembership,
    VendorRole,
)


class InvalidAccessToken(Unauthorized):
    code, title = "invalid_token", "The access token is missing, expired or not valid"
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class EmailNotVerified(DomainError):
    status, code, title = 403, "email_not_verified", "Verify your email address first"


@dataclass(frozen=True)
class Requirement:
    """Shown in OpenAPI as ``x-access`` on every operation."""

    # "public" | "cart" (a guest's cart token or a signed-in user) | "authenticated" |
    # "verified" | "vendor" | "role"
    kind: str
    roles: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "roles": list(self.roles)}


@dataclass(frozen=True)
class Principal:
    user: User
    session_id: uuid.UUID
    method: str

    @property
    def user_id(self) -> uuid.UUID:
        return self.user.id


def accounts(request: Request) -> AccountsContext:
    return request.app.state.accounts


AccountsDep = Annotated[AccountsContext, Depends(accounts)]


def declare(requirement: Requirement) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def mark(function: Callable[..., Any]) -> Callable[..., Any]:
        # A plain attribute on the dependency, read back by requirement_of() below.
        function.requirement = requirement  # type: ignore[attr-defined]
        return function

    return mark


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidAccessToken("Send `Authorization: Bearer <access token>`.")
    return token.strip()


@declare(Requirement("public"))
async def public() -> None:
    """Anyone, signed in or not."""


@declare(Requirement("authenticated"))
async def authenticated(request: Request, session: SessionDep, ctx: AccountsDep) -> Principal:
    """A signed-in user whose session is still live (checked on every request, so logout and
    revocation take effect at once, not when the access token expires)."""
    try:
        claims = ctx.signer.verify(_bearer(request), expected="access")
    except InvalidToken:
        raise InvalidAccessToken("Refresh the access token or sign in again.") from None
    row = (
        await session.execute(
            select(User, AuthSession)
            .join(AuthSession, AuthSession.user_id == User.id)
            .where(User.id == claims.subject, AuthSession.id == claims.session_id)
        )
    ).first()
    if row is None:
        raise InvalidAccessToken("Sign in again.")
    user, auth_session = row
    revoked_all = user.sessions_revoked_at
    if (
        user.status != UserStatus.ACTIVE
        or auth_session.revoked_at is not None
        or (revoked_all is not None and claims.issued_at < int(revoked_all.timestamp()))
    ):
        raise InvalidAccessToken("Sign in again.")
    return Principal(user=user, session_id=auth_session.id, method=auth_session.method)


CurrentUser = Annotated[Principal, Depends(authenticated)]


@declare(Requirement("verified"))
async def verified(principal: CurrentUser) -> Principal:
    """A signed-in user with a verified email address (required to check out)."""
    if principal.user.email_verified_at is None:
        raise EmailNotVerified("Follow the link in the verification email, or ask for a new one.")
    return principal


VerifiedUser = Annotated[Principal, Depends(verified)]


def role(*roles: PlatformRole) -> Callable[..., Any]:
    names = tuple(sorted(r.value for r in roles))

    @declare(Requirement("role", names))
    async def has_role(principal: CurrentUser) -> Principal:
        if principal.user.platform_role not in roles:
            raise Forbidden(f"Needs the role: {' or '.join(names)}.")
        return principal

    return has_role


AdminUser = Annotated[Principal, Depends(role(PlatformRole.ADMIN))]
OperationsUser = Annotated[Principal, Depends(role(PlatformRole.ADMIN, PlatformRole.OPERATIONS))]

VENDOR_RANK = {VendorRole.STAFF: 1, VendorRole.MANAGER: 2, VendorRole.OWNER: 3}


@dataclass(frozen=True)
class VendorPrincipal:
    """A user acting for one vendor, with their role there (admins act as owners)."""

    principal: Principal
    vendor_id: uuid.UUID
    role: VendorRole

    @property
    def user_id(self) -> uuid.UUID:
        return self.principal.user_id


def vendor_member(minimum: VendorRole) -> Callable[..., Any]:
    """Staff of the vendor in the path (``vendor_id``) with at least ``minimum`` rank.

    Someone who is not staff there gets 404, not 403: whether a vendor's back office exists
    for an id is none of their business.
    """

    @declare(Requirement("vendor", (minimum.value,)))
    async def is_member(
        vendor_id: uuid.UUID, principal: CurrentUser, session: SessionDep
    ) -> VendorPrincipal:
        if principal.user.platform_role == PlatformRole.ADMIN:
            exists = await session.scalar(select(Vendor.id).where(Vendor.id == vendor_id))
            if exists is None:
                raise NotFound("No such vendor.")
            return VendorPrincipal(principal, vendor_id, VendorRole.OWNER)
        role = await session.scalar(
            select(VendorMembership.role).where(
                VendorMembership.vendor_id == vendor_id,
                VendorMembership.user_id == principal.user_id,
            )
        )
        if role is None:
            raise NotFound("No such vendor.")
        if VENDOR_RANK[role] < VENDOR_RANK[minimum]:
            raise Forbidden(f"Needs the vendor role {minimum.value} or higher.")
        return VendorPrincipal(principal, vendor_id, role)

    return is_member


VendorStaff = Annotated[VendorPrincipal, Depends(vendor_member(VendorRole.STAFF))]
VendorManager = Annotated[VendorPrincipal, Depends(vendor_member(VendorRole.MANAGER))]
VendorOwner = Annotated[VendorPrincipal, Depends(vendor_member(VendorRole.OWNER))]
Public = Depends(public)


def api_routes(routes: Sequence[Any]) -> Iterator[Any]:
    """Every API operation of the app, through included routers (each has ``dependant``)."""
    for context in iter_route_contexts(routes):
        if getattr(context, "dependant", None) is not None:
            yield context


def requirement_of(route: Any) -> Requirement | None:
    """The requirement a route declares, found anywhere among its dependencies."""
    pending = list(route.dependant.dependencies)
    found: list[Requirement] = []
    while pending:
        dependency = pending.pop()
        declared = getattr(dependency.call, "requirement", None)
        if isinstance(declared, Requirement):
            found.append(declared)
        pending.extend(dependency.dependencies)
    # The strictest one governs (e.g. `role` depends on `authenticated`).
    order = {"public": 0, "cart": 1, "authenticated": 2, "verified": 3, "vendor": 4, "role": 5}
    return max(found, key=lambda r: order[r.kind]) if found else None
