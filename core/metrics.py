"""Prometheus metrics of this process (README, "Observability"), on a registry of its own.

Label sets are bounded: a route is its template (``/orders/{order_id}``), never a path, a
request that matched no route is ``unmatched``, and a method outside the HTTP verbs the API
serves is ``other``. No id, email or token is ever a label.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry()

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUESTS = Counter(
    "emporium_http_requests",
    "API requests answered, by method, route template and status code",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "emporium_http_request_duration_seconds",
    "Time to answer an API request, by method and route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)


def observe_request(method: str, route: str | None, status: int, seconds: float) -> None:
    """Count one answered request (``route`` None: it matched no route)."""
    verb = method if method in _METHODS else "other"
    template = route or "unmatched"
    HTTP_REQUESTS.labels(verb, template, str(status)).inc()
    HTTP_DURATION.labels(verb, template).observe(seconds)
