"""How an activity says a step failed for good: a non-retryable ``ApplicationError`` whose
``type`` the workflow can tell apart (``OutOfStock``, ``RefundExceedsRemaining``...)."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from commerce.errors import DomainError


def failed_for_good(kind: str, message: str, *details: object) -> ApplicationError:
    """Retrying cannot help: ``kind`` is the type the workflow sees."""
    return ApplicationError(message, *details, type=kind, non_retryable=True)


def refused(error: DomainError) -> ApplicationError:
    """A domain refusal, for good: typed by its class name, its code and extras as details."""
    return failed_for_good(type(error).__name__, error.detail, {"code": error.code, **error.extra})
