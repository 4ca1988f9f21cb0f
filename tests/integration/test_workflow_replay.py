"""Determinism guard: histories recorded from real runs must replay on today's workflow code.

``tests/histories/*.json`` were recorded from earlier versions of the order saga (happy path,
decline then retry, 3-D Secure by webhook, cancellation after payment, payment window expiry,
delivered) and of the fulfilment workflows (a delivered shipment, a refunded return and its
refund, a lost dispute). A change to a workflow that would break executions already running in
production fails here; such a change needs ``workflow.patched`` (or a new workflow type).

To record fresh histories (after a deliberate, versioned change), run this module,
tests/integration/test_fulfilment_flow.py and tests/integration/test_disputes.py with
``RECORD_WORKFLOW_HISTORIES=1``: their scenarios write their histories into the folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from commerce.payments import WebhookEvent
from tests.order_harness import Platform, platform
from workers.registry import WORKFLOWS
from workflows.contracts.orders import order_workflow_id

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
RECORD = os.environ.get("RECORD_WORKFLOW_HISTORIES") == "1"


def _recorded() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


def _load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"replay-{path.stem}", json.loads(path.read_text()))


@pytest.mark.parametrize(
    "history", [_load(path) for path in _recorded()], ids=[path.stem for path in _recorded()]
)
async def test_recorded_history_replays(history: WorkflowHistory) -> None:
    result = await Replayer(workflows=WORKFLOWS).replay_workflow(
        history, raise_on_replay_failure=True
    )
    assert result.replay_failure is None


def test_histories_are_recorded() -> None:
    # Without them the guard above would pass by testing nothing.
    assert {path.stem for path in _recorded()} >= {
        "order_happy_path",
        "order_decline_then_retry",
        "order_3ds_webhook",
        "order_cancelled_after_payment",
        "order_payment_window_expired",
        "order_delivered",
        "shipment_delivered",
        "return_refunded",
        "refund_for_return",
        "dispute_lost",
    }


async def _finish(p: Platform, name: str, order_id: str) -> None:
    """Replay this run's history now, and keep it when recording."""
    handle = p.temporal.get_workflow_handle(order_workflow_id(order_id))
    history = await handle.fetch_history()
    result = await Replayer(workflows=WORKFLOWS).replay_workflow(history)
    assert result.replay_failure is None
    if RECORD:
        HISTORIES.mkdir(exist_ok=True)
        (HISTORIES / f"{name}.json").write_text(history.to_json() + "\n")


@pytest.mark.slow
async def test_scenarios_replay_and_record(
    fresh_database_url: str, temporal_env: WorkflowEnvironment, temporal_address: str
) -> None:
    async with platform(
        fresh_database_url, temporal_env.client, temporal_address, checkout_payment_window_s=3.0
    ) as p:
        account = await p.shopper()

        await p.add(account, p.shop.tee, 1)
        await p.add(account, p.shop.mug, 1)
        happy = (await p.checkout(account, "tok_ok")).json()["order_id"]
        await p.wait_for(happy, "confirmed")
        await _finish_when_vendors_told(p, happy)
        await _finish(p, "order_happy_path", happy)

        await p.add(account, p.shop.tee, 1)
        declined = (await p.checkout(account, "tok_decline")).json()["order_id"]
        retried = await p.client.post(
            f"/orders/{declined}/payment",
            headers=account.headers,
            json={"payment_provider": "test", "payment_token": "tok_ok"},
        )
        assert retried.json()["status"] == "confirmed", retried.text
        await _finish(p, "order_decline_then_retry", declined)

        await p.add(account, p.shop.mug, 1)
        challenged = (await p.checkout(account, "tok_3ds")).json()["order_id"]
        payment_id = (await p.payments(challenged))[0].provider_payment_id
        assert payment_id is not None
        signed = await p.provider.complete_challenge(payment_id)
        await p.client.post("/webhooks/test", content=signed.payload, headers=signed.headers)
        await p.wait_for(challenged, "confirmed")
        await _finish(p, "order_3ds_webhook", challenged)

        await p.add(account, p.shop.tee, 2)
        paid = (await p.checkout(account, "tok_ok")).json()["order_id"]
        cancelled = await p.client.post(f"/orders/{paid}/cancel", headers=account.headers, json={})
        assert cancelled.json()["status"] == "cancelled", cancelled.text
        await _finish(p, "order_cancelled_after_payment", paid)

        await p.add(account, p.shop.tee, 1)
        expiring = (await p.checkout(account, "tok_3ds")).json()["order_id"]
        late = p.provider.signed_webhook(
            WebhookEvent("evt_unrelated_early", "payment.captured", "pay_unknown", "captured")
        )
        await p.client.post("/webhooks/test", content=late.payload, headers=late.headers)
        await p.wait_for(expiring, "payment_failed")
        await _finish(p, "order_payment_window_expired", expiring)


async def _finish_when_vendors_told(p: Platform, order_id: str) -> None:
    async def told() -> bool:
        return sum(e.startswith("vendor_notified:") for e in await p.events(order_id)) == 2

    await p.eventually(told)
