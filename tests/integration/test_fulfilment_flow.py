"""The whole life of a two-vendor order: checkout, both parts shipped and delivered through
carrier webhooks, one unit returned and refunded; at the end the ledger, the stock, the
invoices and the payment provider all agree. Real PostgreSQL, Temporal, worker and HTTP."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from commerce.fulfilment.carriers import SimulatedCarrier
from models import (
    Invoice,
    InvoiceKind,
    LedgerEntry,
    LedgerKind,
    OrderLine,
    OrderVendorPart,
    Refund,
    RefundStatus,
)
from tests.order_harness import Platform, platform, vendor_owner
from workers.registry import WORKFLOWS
from workflows.contracts.orders import order_workflow_id
from workflows.contracts.shipments import shipment_workflow_id

pytestmark = pytest.mark.slow

SECRET = "whsec_flow_carrier_0123456789"
HISTORIES = Path(__file__).resolve().parents[1] / "histories"


def _commission(amount: int) -> int:
    return (amount * 1000 + 5000) // 10_000  # 10%, half up


async def _replay(p: Platform, name: str, workflow_id: str) -> None:
    """This run's history replays on today's code; kept for the replay test when recording."""
    history = await p.temporal.get_workflow_handle(workflow_id).fetch_history()
    result = await Replayer(workflows=WORKFLOWS).replay_workflow(history)
    assert result.replay_failure is None
    if os.environ.get("RECORD_WORKFLOW_HISTORIES") == "1":
        (HISTORIES / f"{name}.json").write_text(history.to_json() + "\n")


async def test_checkout_to_delivery_to_return_to_refund(
    fresh_database_url: str, temporal_env: WorkflowEnvironment, temporal_address: str
) -> None:
    async with platform(
        fresh_database_url,
        temporal_env.client,
        temporal_address,
        carrier_webhook_secret=SECRET,
        tracking_recheck_s=0.5,
    ) as p:
        shopper = await p.shopper()
        await p.add(shopper, p.shop.tee, 2)
        await p.add(shopper, p.shop.mug, 1)
        await p.use_coupon(shopper)
        placed = await p.checkout(shopper, "tok_ok")
        assert placed.json()["status"] == "confirmed", placed.text
        order_id = placed.json()["order_id"]
        oid = uuid.UUID(order_id)

        # Each vendor accepts, buys a label; the carrier reports both parcels delivered.
        carrier = SimulatedCarrier(webhook_secret=SECRET)
        owners = {}
        for vendor in (p.shop.north, p.shop.south):
            owner = await vendor_owner(p, vendor)
            owners[vendor.id] = owner

            async def listed(
                vendor_id: uuid.UUID = vendor.id, headers: dict = owner.headers
            ) -> bool:
                found = await p.client.get(f"/vendors/{vendor_id}/shipments", headers=headers)
                return found.status_code == 200 and len(found.json()["items"]) == 1

            await p.eventually(listed)
            [part] = (
                await p.client.get(f"/vendors/{vendor.id}/shipments", headers=owner.headers)
            ).json()["items"]
            accepted = await p.client.post(
                f"/vendors/{vendor.id}/shipments/{part['id']}/accept", headers=owner.headers
            )
            assert accepted.status_code == 200, accepted.text
            label = await p.client.post(
                f"/vendors/{vendor.id}/shipments/{part['id']}/label", headers=owner.headers
            )
            assert label.status_code == 200, label.text
            for status in ("in_transit", "delivered"):
                body, headers = carrier.signed_webhook(
                    tracking_number=label.json()["tracking_number"], status=status
                )
                answer = await p.client.post(
                    "/webhooks/carriers/simulated", content=body, headers=headers
                )
                assert answer.status_code == 200, answer.text
        await p.wait_for(order_id, "delivered")

        # The shopper sends one tee back; North approves, receives it, and the refund runs.
        async with p.sessionmaker() as session:
            tee_line = await session.scalar(
                select(OrderLine).where(OrderLine.order_id == oid, OrderLine.sku == "N-TEE")
            )
            assert tee_line is not None
        north = p.shop.north
        asked = await p.client.post(
            f"/orders/{order_id}/returns",
            headers=shopper.headers,
            json={
                "vendor_id": str(north.id),
                "reason": "too small",
                "lines": [{"order_line_id": str(tee_line.id), "quantity": 1}],
            },
        )
        assert asked.status_code == 201, asked.text
        return_id = asked.json()["id"]
        north_headers = owners[north.id].headers
        approved = await p.client.post(
            f"/vendors/{north.id}/returns/{return_id}/approve", headers=north_headers
        )
        assert approved.status_code == 200, approved.text
        received = await p.client.post(
            f"/vendors/{north.id}/returns/{return_id}/receive",
            headers=north_headers,
            json={"inspection_note": "as new"},
        )
        assert received.status_code == 200, received.text

        async def refunded() -> bool:
            answer = await p.client.get(
                f"/orders/{order_id}/returns/{return_id}", headers=shopper.headers
            )
            return answer.json()["status"] == "refunded"

        await p.eventually(refunded, within=60)

        # --- everyone agrees ------------------------------------------------------------
        async with p.sessionmaker() as session:
            [refund] = (await session.scalars(select(Refund).where(Refund.order_id == oid))).all()
            parts = {
                part.vendor_id: part
                for part in (
                    await session.scalars(
                        select(OrderVendorPart).where(OrderVendorPart.order_id == oid)
                    )
                ).all()
            }
            entries = (
                await session.execute(
                    select(LedgerEntry.vendor_id, LedgerEntry.kind, LedgerEntry.amount).where(
                        LedgerEntry.order_id == oid
                    )
                )
            ).all()
            documents = (
                await session.execute(
                    select(Invoice.vendor_id, Invoice.kind, Invoice.total).where(
                        Invoice.order_id == oid
                    )
                )
            ).all()
            tee_line = await session.get(OrderLine, tee_line.id, populate_existing=True)
            assert tee_line is not None
        assert refund.status == RefundStatus.SUCCEEDED
        # One of two tees: half the line's total (its discount and tax included).
        assert refund.amount == tee_line.total // 2 or refund.amount == tee_line.total - (
            tee_line.total // 2
        )
        assert tee_line.returned_quantity == 1

        order = await p.order(order_id)
        payment = (await p.payments(order_id))[0]
        assert (payment.captured_amount, payment.refunded_amount) == (
            order.grand_total,
            refund.amount,
        )
        assert payment.provider_payment_id is not None
        state = await p.provider.inspect(payment.provider_payment_id)
        assert state is not None
        assert (state.captured, state.refunded, state.captures, len(state.refunds)) == (
            order.grand_total,
            refund.amount,
            1,
            1,
        )

        assert await p.stock(p.shop.tee) == (9, 0)  # 10 - 2 sold + 1 back
        assert await p.stock(p.shop.mug) == (9, 0)

        def ledger(vendor_id: uuid.UUID) -> dict[LedgerKind, int]:
            sums: dict[LedgerKind, int] = {}
            for vendor, kind, amount in entries:
                if vendor == vendor_id:
                    sums[kind] = sums.get(kind, 0) + amount
            return sums

        north_total, south_total = parts[north.id].total, parts[p.shop.south.id].total
        assert ledger(north.id) == {
            LedgerKind.SALE: north_total,
            LedgerKind.COMMISSION: -_commission(north_total),
            LedgerKind.REFUND: -refund.amount,
            LedgerKind.COMMISSION_REFUND: _commission(refund.amount),
        }
        assert ledger(p.shop.south.id) == {
            LedgerKind.SALE: south_total,
            LedgerKind.COMMISSION: -_commission(south_total),
        }
        # What the vendors' books hold is what the shopper paid minus what came back.
        assert (
            sum(
                amount
                for _, kind, amount in entries
                if kind in (LedgerKind.SALE, LedgerKind.REFUND)
            )
            == order.grand_total - refund.amount
        )
        balance = (await p.client.get(f"/vendors/{north.id}/ledger", headers=north_headers)).json()
        [eur] = balance["balances"]
        assert eur["balance"] == {"amount": sum(ledger(north.id).values()), "currency": "EUR"}

        assert sorted((str(v), k.value, t) for v, k, t in documents) == sorted(
            [
                (str(north.id), InvoiceKind.INVOICE.value, north_total),
                (str(p.shop.south.id), InvoiceKind.INVOICE.value, south_total),
                (str(north.id), InvoiceKind.CREDIT_NOTE.value, refund.amount),
            ]
        )
        mails = [m.template for m in await p.mails(shopper.email)]
        for template in ("order_confirmation", "order_shipped", "order_delivered"):
            assert template in mails
        assert "refund_issued" in mails

        for name, workflow_id in (
            ("order_delivered", order_workflow_id(order_id)),
            ("shipment_delivered", shipment_workflow_id(order_id, str(north.id))),
            ("return_refunded", f"return:{return_id}"),
            ("refund_for_return", f"refund:{refund.id}"),
        ):
            await _replay(p, name, workflow_id)
