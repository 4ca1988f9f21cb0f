"""Prometheus metrics of this process (README, "Observability"), on a registry of its own.

The API serves them on ``GET /metrics``; the worker on a port of its own
(``EMPORIUM_WORKER_METRICS_ADDRESS``, ``workers/metrics.py``), together with the Temporal
SDK's. Each figure is counted where its event happens: a checkout placed in the API, an order
confirmed or closed by the activity whose database transition moved it (so a retried activity
that finds the order moved counts nothing), a webhook where it is verified and stored.

Label sets are bounded: a route is its template (``/orders/{order_id}``), never a path, a
request that matched no route is ``unmatched``, and a method outside the HTTP verbs the API
serves is ``other``; providers, carriers and activities are the configured or registered
ones; a reason is a short code (``label``) or ``other``. No id, email or token is ever a label.
"""

from __future__ import annotations

import re
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

REGISTRY = CollectorRegistry()

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_CODE = re.compile(r"[a-z][a-z0-9_]{0,47}")

#: Latency buckets of steps that take milliseconds to seconds.
_STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Buckets of waits that take seconds to hours (placed to confirmed, webhook lag).
_WAIT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0)


def label(value: str | None, *, default: str = "other") -> str:
    """``value`` as a label when it is a short lower-case code (``card_declined``), else
    ``default``: a provider's free text never becomes a label of its own."""
    if value is None:
        return default
    code = value.strip().lower()
    return code if _CODE.fullmatch(code) else default


_ON_COMMIT = "emporium.metrics_on_commit"


def count_on_commit(session: AsyncSession, counter: Any) -> None:
    """Increment ``counter`` (a labelled child) when ``session``'s transaction commits, and
    not at all if it rolls back: what the count says happened did happen."""
    session.sync_session.info.setdefault(_ON_COMMIT, []).append(counter)


@event.listens_for(Session, "after_commit")
def _counted(session: Session) -> None:
    for counter in session.info.pop(_ON_COMMIT, ()):
        counter.inc()


@event.listens_for(Session, "after_rollback")
def _not_counted(session: Session) -> None:
    session.info.pop(_ON_COMMIT, None)


# --- the API's requests ------------------------------------------------------------------------

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


# --- shoppers' flow ----------------------------------------------------------------------------

CHECKOUTS_PLACED = Counter(
    "emporium_checkouts_placed",
    "Orders placed by POST /checkout (counted once per order, not per retried request), "
    "by payment provider",
    ["provider"],
    registry=REGISTRY,
)
CHECKOUTS_CONFIRMED = Counter(
    "emporium_checkouts_confirmed",
    "Orders confirmed (paid and stock committed), by payment provider",
    ["provider"],
    registry=REGISTRY,
)
CHECKOUTS_FAILED = Counter(
    "emporium_checkouts_failed",
    "Orders that ended before confirmation, by the status they ended in "
    "(payment_failed, cancelled) and why (out_of_stock, payment_declined, "
    "payment_window_expired, cancelled_by_shopper, failed_<step error>...)",
    ["status", "reason"],
    registry=REGISTRY,
)
ORDERS_CANCELLED = Counter(
    "emporium_orders_cancelled",
    "Confirmed orders cancelled before shipping (by the shopper, the vendors or operations), "
    "by reason",
    ["reason"],
    registry=REGISTRY,
)
CHECKOUT_TO_CONFIRMED = Histogram(
    "emporium_checkout_confirm_seconds",
    "Time from an order placed to confirmed (includes the shopper's time for 3-D Secure or "
    "PayPal approval)",
    buckets=_WAIT_BUCKETS,
    registry=REGISTRY,
)
STOCK_OUTS = Counter(
    "emporium_stock_outs",
    "Orders refused at reservation because a line's stock ran out",
    registry=REGISTRY,
)

# --- payments ----------------------------------------------------------------------------------

PAYMENT_ATTEMPTS = Counter(
    "emporium_payment_attempts",
    "Payment authorizations answered by a provider, by provider and outcome "
    "(authorized, requires_action, declined)",
    ["provider", "outcome"],
    registry=REGISTRY,
)
PAYMENT_DECLINES = Counter(
    "emporium_payment_declines",
    "Payment authorizations declined, by provider and the provider's decline code",
    ["provider", "reason"],
    registry=REGISTRY,
)

# --- the sagas' steps --------------------------------------------------------------------------

ACTIVITY_DURATION = Histogram(
    "emporium_activity_duration_seconds",
    "Time of one activity attempt (a saga step), by activity and outcome: completed, error "
    "(Temporal retries it) or failed (for good: the saga compensates)",
    ["activity", "outcome"],
    buckets=_STEP_BUCKETS,
    registry=REGISTRY,
)
COMPENSATIONS = Counter(
    "emporium_compensations",
    "Compensations run by an unwinding order saga, by step and what it did "
    "(released, restocked, voided, refunded, nothing)",
    ["step", "action"],
    registry=REGISTRY,
)

# --- webhooks ----------------------------------------------------------------------------------

WEBHOOKS = Counter(
    "emporium_webhooks_received",
    "Provider and carrier webhooks, by source and outcome: accepted (stored, new), duplicate "
    "(a redelivery: nothing done twice), rejected (signature or body invalid: nothing stored), "
    "unavailable (could not be processed now: 503, the provider delivers again)",
    ["source", "outcome"],
    registry=REGISTRY,
)
WEBHOOK_LAG = Histogram(
    "emporium_webhook_lag_seconds",
    "Time from the provider's event to its verified arrival here, by source",
    ["source"],
    buckets=_WAIT_BUCKETS,
    registry=REGISTRY,
)

# --- after-sales and money out -----------------------------------------------------------------

REFUNDS_OPENED = Counter(
    "emporium_refunds_opened",
    "Refunds created, by why they exist (cancellation, vendor_cancellation, return, "
    "goodwill, dispute...)",
    ["source"],
    registry=REGISTRY,
)
DISPUTES_OPENED = Counter(
    "emporium_disputes_opened",
    "Disputes (chargebacks) opened, by payment provider",
    ["provider"],
    registry=REGISTRY,
)
PAYOUT_RUNS = Counter(
    "emporium_payout_runs",
    "Payout runs finished, by outcome: paid (every payout of the run paid) or failed "
    "(at least one payout failed)",
    ["outcome"],
    registry=REGISTRY,
)
PAYOUTS = Counter(
    "emporium_payouts",
    "Payouts sent to vendors by payout runs, by status (paid, failed)",
    ["status"],
    registry=REGISTRY,
)

# --- mail --------------------------------------------------------------------------------------

MAIL_DELIVERIES = Counter(
    "emporium_mail_deliveries",
    "Emails handed to the mail transport, by outcome (sent, failed: retried later)",
    ["outcome"],
    registry=REGISTRY,
)

# --- the state of the platform (the worker's snapshot, ``commerce/operations.py``) -------------
# Set by the worker only. ``multiprocess_mode`` matters only to API processes sharing their
# counts (``api/routes/metrics.py``): there these gauges stay 0, served once, not once per pid.

MAIL_OUTBOX_PENDING = Gauge(
    "emporium_mail_outbox_pending",
    "Emails queued and not sent yet",
    registry=REGISTRY,
    multiprocess_mode="max",
)
MAIL_OUTBOX_OLDEST = Gauge(
    "emporium_mail_outbox_oldest_seconds",
    "Age of the oldest email not sent yet (0 when none waits)",
    registry=REGISTRY,
    multiprocess_mode="max",
)
SEARCH_OUTBOX_PENDING = Gauge(
    "emporium_search_outbox_pending",
    "Catalog changes not yet applied to the search index",
    registry=REGISTRY,
    multiprocess_mode="max",
)
STUCK = Gauge(
    "emporium_stuck",
    "Orders, parts, returns and refunds sitting in a state past the deadline of its timer "
    "(plus a grace), by kind and status: `emporium stuck-orders` lists them",
    ["kind", "status"],
    registry=REGISTRY,
    multiprocess_mode="max",
)
DISPUTES_EVIDENCE_DUE = Gauge(
    "emporium_disputes_evidence_due",
    "Open disputes whose evidence deadline falls within the next 72 hours (or has passed)",
    registry=REGISTRY,
    multiprocess_mode="max",
)
SNAPSHOT_TIME = Gauge(
    "emporium_snapshot_timestamp_seconds",
    "When the worker last took the platform's snapshot (unix time)",
    registry=REGISTRY,
    multiprocess_mode="max",
)


# --- the activity interceptor ------------------------------------------------------------------


class _TimedActivity(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        name = activity.info().activity_type
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await self.next.execute_activity(input)
        except ApplicationError as error:
            outcome = "failed" if error.non_retryable else "error"
            raise
        else:
            outcome = "completed"
            return result
        finally:
            ACTIVITY_DURATION.labels(name, outcome).observe(time.perf_counter() - started)


class ActivityMetrics(Interceptor):
    """Times every activity attempt of the worker (``emporium_activity_duration_seconds``)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _TimedActivity(next)
