"""The durations every saga takes from settings, so tests can shrink them to seconds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.common import RetryPolicy


@dataclass(frozen=True)
class CheckoutTimings:
    """Every duration the sagas use (``commerce.orders.order_saga.timings`` builds it from
    settings).

    Carried in each workflow's input, so a running workflow keeps the timings it started with.
    """

    payment_window_s: float = 1800.0
    max_payment_attempts: int = 3
    activity_timeout_s: float = 30.0
    retry_initial_s: float = 1.0
    retry_max_s: float = 60.0
    payment_retry_max_attempts: int = 8
    shipment_accept_within_s: float = 172_800.0
    tracking_recheck_s: float = 3600.0

    @property
    def activity_timeout(self) -> timedelta:
        """How long one try of a step may take (``start_to_close_timeout``)."""
        return timedelta(seconds=self.activity_timeout_s)

    def retry(self, *, maximum_attempts: int = 0) -> RetryPolicy:
        """The steps' retry policy: backoff from ``retry_initial_s`` capped at ``retry_max_s``;
        ``maximum_attempts`` 0 retries until the step succeeds or fails for good."""
        return RetryPolicy(
            initial_interval=timedelta(seconds=self.retry_initial_s),
            maximum_interval=timedelta(seconds=self.retry_max_s),
            maximum_attempts=maximum_attempts,
        )
