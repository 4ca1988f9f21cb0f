"""Domain errors. Each carries its HTTP status and a stable machine-readable code.

The API turns them into RFC 9457 problem+json; activities turn the non-retryable ones into
``ApplicationError(type=code, non_retryable=True)``.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status: int = 400
    code: str = "domain_error"
    title: str = "The request cannot be carried out"
    # True when what the service did before failing must still be stored, e.g. revoking a
    # session family on refresh-token reuse: the request commits, then answers the problem.
    commit: bool = False
    headers: dict[str, str] | None = None

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


class NotFound(DomainError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(DomainError):
    status, code, title = 409, "conflict", "Conflict with the current state"


class Unauthorized(DomainError):
    status, code, title = 401, "unauthorized", "Authentication required"
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(DomainError):
    status, code, title = 403, "forbidden", "Forbidden"
