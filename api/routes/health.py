"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, Request

from api.access import Public
from api.problems import Problem, problem_response
from api.schemas.health import (
    Health,
    Readiness,
)
from core.database import ping

router = APIRouter(tags=["health"], dependencies=[Public])
log = logging.getLogger("emporium.api")

CHECK_TIMEOUT_S = 2.0


@router.get("/healthz", summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


async def _check(name: str, probe: Awaitable[object]) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await probe
    except Exception as error:
        log.warning("readiness check failed", extra={"check": name, "error": repr(error)})
        return "unavailable"
    return "ok"


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="PostgreSQL and Temporal are reachable",
    responses={503: {"model": Problem, "description": "A dependency is unreachable"}},
)
async def readyz(request: Request) -> Any:
    state = request.app.state
    database, temporal = await asyncio.gather(
        _check("database", ping(state.engine)),
        _check("temporal", state.temporal.service_client.check_health()),
    )
    checks = {"database": database, "temporal": temporal}
    if all(value == "ok" for value in checks.values()):
        return Readiness(status="ready", checks=checks)
    failing = ", ".join(name for name, value in checks.items() if value != "ok")
    return problem_response(
        503,
        "not_ready",
        "Service not ready",
        f"Unreachable: {failing}.",
        instance="/readyz",
        checks=checks,
        headers={"Retry-After": "2"},
    )
