"""``GET /metrics``: the API's Prometheus metrics (not part of the public API's schema: it is
for the operators' Prometheus, like the health probes).

With several API processes (``emporium api --workers N``) each counts in files under
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, which ``emporium api``
sets up), and whichever process answers serves the sum of all of them.
"""

from __future__ import annotations

import hmac
import os

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from api.access import Public
from api.deps import SettingsDep
from commerce.errors import Unauthorized
from core.metrics import REGISTRY

router = APIRouter(tags=["health"], dependencies=[Public])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, settings: SettingsDep) -> Response:
    """The text exposition format; with ``EMPORIUM_METRICS_TOKEN`` set, only for its bearer."""
    if settings.metrics_token is not None:
        expected = f"Bearer {settings.metrics_token.get_secret_value()}"
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthorized("Send the metrics token as a bearer token.")
    return Response(_exposition(), media_type=CONTENT_TYPE_LATEST)


def _exposition() -> bytes:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return generate_latest(REGISTRY)
    everyone = CollectorRegistry()
    MultiProcessCollector(everyone, path=directory)
    return generate_latest(everyone)
