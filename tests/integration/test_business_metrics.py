"""Both metrics endpoints after real checkouts (README, "Observability"): the API's
``GET /metrics`` and the worker's own port (ours and the Temporal SDK's), scraped and parsed
with prometheus-client's parser, counts compared before and after a confirmed checkout, a
declined one and a 3-D Secure one whose webhook arrives twice (and once forged)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client

from tests.order_harness import Platform, platform
from workers.metrics import WorkerMetrics

pytestmark = pytest.mark.slow

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> tuple[Samples, set[str]]:
    """Every sample by (name, labels), and the family names."""
    samples: Samples = {}
    families: set[str] = set()
    for family in text_string_to_metric_families(text):
        families.add(family.name)
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples, families


def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


class Scrapes:
    def __init__(self, p: Platform, worker: WorkerMetrics) -> None:
        self.p, self.worker = p, worker

    async def api(self) -> tuple[Samples, set[str]]:
        answer = await self.p.client.get("/metrics")
        assert answer.status_code == 200, answer.text
        return parse(answer.text)

    async def worker_side(self) -> tuple[Samples, set[str]]:
        async with httpx.AsyncClient() as http:
            answer = await http.get(self.worker.url)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/plain")
        return parse(answer.text)


@pytest.fixture
async def metered(
    fresh_database_url: str, temporal_address: str
) -> AsyncIterator[tuple[Platform, WorkerMetrics]]:
    worker_metrics = WorkerMetrics("127.0.0.1", 0)
    # The worker's client runs on the runtime whose SDK metrics the endpoint serves.
    client = await Client.connect(temporal_address, runtime=worker_metrics.runtime)
    worker_metrics.start()
    try:
        async with platform(
            fresh_database_url, client, temporal_address, checkout_max_payment_attempts=1
        ) as built:
            yield built, worker_metrics
    finally:
        worker_metrics.close()


async def test_a_checkout_a_decline_and_a_duplicate_webhook_are_counted(
    metered: tuple[Platform, WorkerMetrics],
) -> None:
    p, worker_metrics = metered
    scrape = Scrapes(p, worker_metrics)
    api_before, _ = await scrape.api()
    worker_before, _ = await scrape.worker_side()

    # 1. Paid and confirmed.
    paid = await p.shopper()
    await p.add(paid, p.shop.tee, 1)
    confirmed_id = (await p.checkout(paid, "tok_ok")).json()["order_id"]
    await p.wait_for(confirmed_id, "confirmed")

    # 2. Declined, with no attempt left: undone, ends payment_failed.
    declined = await p.shopper()
    await p.add(declined, p.shop.mug, 1)
    declined_id = (await p.checkout(declined, "tok_decline")).json()["order_id"]
    await p.wait_for(declined_id, "payment_failed")

    # 3. 3-D Secure: the provider's webhook arrives twice, and a forged copy once.
    challenged = await p.shopper()
    await p.add(challenged, p.shop.mug, 1)
    challenged_id = (await p.checkout(challenged, "tok_3ds")).json()["order_id"]
    payment_id = (await p.payments(challenged_id))[0].provider_payment_id
    assert payment_id is not None
    signed = await p.provider.complete_challenge(payment_id)
    for _ in range(2):
        delivered = await p.client.post(
            "/webhooks/test", content=signed.payload, headers=signed.headers
        )
        assert delivered.status_code == 200, delivered.text
    forged = await p.client.post(
        "/webhooks/test", content=signed.payload.replace(b"authorized", b"authorizeD")
    )
    assert forged.status_code == 400
    await p.wait_for(challenged_id, "confirmed")

    api_after, _ = await scrape.api()
    worker_after, families = await scrape.worker_side()

    def api_grew(name: str, **labels: str) -> float:
        k = key(name, **labels)
        return api_after.get(k, 0.0) - api_before.get(k, 0.0)

    def worker_grew(name: str, **labels: str) -> float:
        k = key(name, **labels)
        return worker_after.get(k, 0.0) - worker_before.get(k, 0.0)

    # Counted in the API.
    assert api_grew("emporium_checkouts_placed_total", provider="test") == 3
    assert api_grew("emporium_webhooks_received_total", source="test", outcome="accepted") == 1
    assert api_grew("emporium_webhooks_received_total", source="test", outcome="duplicate") == 1
    assert api_grew("emporium_webhooks_received_total", source="test", outcome="rejected") == 1
    # The two verified deliveries had their lag measured; the forged one was not read.
    assert api_grew("emporium_webhook_lag_seconds_count", source="test") == 2
    assert api_grew("emporium_http_requests_total", method="POST", route="/checkout", status="201")
    assert (
        api_grew(
            "emporium_http_requests_total",
            method="POST",
            route="/webhooks/{provider}",
            status="400",
        )
        == 1
    )

    # Counted in the worker, served on its own port.
    assert worker_grew("emporium_checkouts_confirmed_total", provider="test") == 2
    assert (
        worker_grew(
            "emporium_checkouts_failed_total", status="payment_failed", reason="payment_declined"
        )
        == 1
    )
    assert worker_grew("emporium_checkout_confirm_seconds_count") == 2
    attempts = "emporium_payment_attempts_total"
    assert worker_grew(attempts, provider="test", outcome="authorized") == 2  # tok_ok, 3-D Secure
    assert worker_grew(attempts, provider="test", outcome="requires_action") == 1
    assert worker_grew(attempts, provider="test", outcome="declined") == 1
    declines = "emporium_payment_declines_total"
    assert worker_grew(declines, provider="test", reason="card_declined") == 1
    # The declined order's saga undid its steps (its payment had nothing to undo).
    compensations = "emporium_compensations_total"
    assert worker_grew(compensations, step="restore_inventory", action="released") == 1
    assert worker_grew(compensations, step="release_promotions", action="nothing") == 1
    assert worker_grew(compensations, step="compensate_payment", action="nothing") == 1
    steps = "emporium_activity_duration_seconds_count"
    assert worker_grew(steps, activity="confirm_order", outcome="completed") == 2
    assert worker_grew(steps, activity="authorize_payment", outcome="completed") == 3
    assert worker_grew(steps, activity="close_order", outcome="completed") == 1

    # The Temporal SDK's own metrics, beside ours on the same port.
    for family in (
        "temporal_workflow_task_schedule_to_start_latency_seconds",
        "temporal_activity_execution_latency_seconds",
        "temporal_worker_task_slots_available",
        "temporal_request",
    ):
        assert family in families, sorted(f for f in families if f.startswith("temporal_"))

    # No label anywhere holds an id.
    ids = {confirmed_id, declined_id, challenged_id, payment_id, str(uuid.UUID(confirmed_id))}
    for _, labels in {**api_after, **worker_after}:
        assert not {value for _, value in labels} & ids
