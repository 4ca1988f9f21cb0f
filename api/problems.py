"""RFC 9457 problem details: the one shape of every error the API returns."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from commerce.errors import DomainError
from core.logs import request_id_var
from core.telemetry import current_trace_id

PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where in the request: body, query, path, header")
    message: str
    type: str = Field(description="Stable machine-readable kind, e.g. missing, int_parsing")


class Problem(BaseModel):
    """An error, as RFC 9457 problem details plus a stable ``code``."""

    type: str = Field(description="URI reference identifying the problem type: /problems/{code}")
    title: str
    status: int
    code: str = Field(description="Stable machine-readable error code")
    detail: str | None = None
    instance: str | None = Field(default=None, description="The request path")
    request_id: str | None = None
    trace_id: str | None = Field(
        default=None, description="The request's trace, when tracing is on: where to look"
    )
    errors: list[FieldError] | None = Field(
        default=None, description="Per-field problems (validation errors only)"
    )


@dataclass(frozen=True)
class ProblemType:
    code: str
    status: int
    title: str


# Errors that arise from HTTP itself rather than from the domain.
HTTP_PROBLEMS: tuple[ProblemType, ...] = (
    ProblemType("bad_request", 400, "Bad request"),
    ProblemType("unauthorized", 401, "Authentication required"),
    ProblemType("forbidden", 403, "Forbidden"),
    ProblemType("not_found", 404, "Not found"),
    ProblemType("method_not_allowed", 405, "Method not allowed"),
    ProblemType("not_acceptable", 406, "Not acceptable"),
    ProblemType("conflict", 409, "Conflict with the current state"),
    ProblemType("payload_too_large", 413, "Payload too large"),
    ProblemType("unsupported_media_type", 415, "Unsupported media type"),
    ProblemType("validation_error", 422, "The request is not valid"),
    ProblemType("invalid_input", 422, "The request contains a value that cannot be stored"),
    ProblemType("rate_limited", 429, "Too many requests"),
    ProblemType("internal_error", 500, "Internal server error"),
    ProblemType("not_ready", 503, "Service not ready"),
)
_BY_STATUS = {problem.status: problem for problem in HTTP_PROBLEMS}


def _domain_errors(cls: type[DomainError] = DomainError) -> Iterator[type[DomainError]]:
    yield cls
    for subclass in cls.__subclasses__():
        yield from _domain_errors(subclass)


def catalogue() -> dict[str, ProblemType]:
    """Every problem code the API can answer with, for /problems and the docs."""
    known = {problem.code: problem for problem in HTTP_PROBLEMS}
    for error in _domain_errors():
        known.setdefault(error.code, ProblemType(error.code, error.status, error.title))
    return dict(sorted(known.items()))


def for_status(status: int) -> ProblemType:
    return _BY_STATUS.get(status) or ProblemType(f"http_{status}", status, "HTTP error")


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "code": code,
    }
    if detail is not None:
        body["detail"] = detail
    if instance is not None:
        body["instance"] = instance
    request_id = request_id_var.get()
    if request_id is not None:
        body["request_id"] = request_id
    trace_id = current_trace_id()
    if trace_id is not None:
        body["trace_id"] = trace_id
    body.update({key: value for key, value in extra.items() if value is not None})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)
