"""Fulfilment: each vendor accepts and ships its part, carriers report progress through signed
webhooks, the order follows its parts; a vendor missing its deadline has its part cancelled and
refunded; shoppers and vendors cancel unshipped lines."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date

import pytest
from sqlalchemy import func, select
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from commerce.fulfilment.carriers import SimulatedCarrier
from models import (
    DeliveredPurchase,
    LedgerEntry,
    OrderLine,
    OrderVendorPart,
    Refund,
    RefundStatus,
    Shipment,
)
from tests.factories import Account
from tests.order_harness import Platform, platform, vendor_owner
from workflows.contracts.orders import order_workflow_id
from workflows.contracts.shipments import shipment_workflow_id

pytestmark = pytest.mark.slow

SECRET = "whsec_test_carrier_0123456789"


@pytest.fixture
async def fulfilment(
    fresh_database_url: str, temporal_env: WorkflowEnvironment, temporal_address: str
) -> AsyncIterator[Platform]:
    async with platform(
        fresh_database_url,
        temporal_env.client,
        temporal_address,
        carrier_webhook_secret=SECRET,
        tracking_recheck_s=1.0,
    ) as built:
        yield built


async def _paid_two_vendor_order(p: Platform) -> tuple[Account, str]:
    account = await p.shopper()
    await p.add(account, p.shop.tee, 2)
    await p.add(account, p.shop.mug, 1)
    answer = await p.checkout(account, "tok_ok")
    assert answer.json()["status"] == "confirmed", answer.text
    order_id = answer.json()["order_id"]

    async def parts_open() -> bool:
        async with p.sessionmaker() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(Shipment)
                .where(Shipment.order_id == uuid.UUID(order_id))
            )
        return count == 2

    await p.eventually(parts_open)
    return account, order_id


async def _shipment(p: Platform, order_id: str, vendor_id: uuid.UUID) -> Shipment:
    async with p.sessionmaker() as session:
        shipment = await session.scalar(
            select(Shipment).where(
                Shipment.order_id == uuid.UUID(order_id), Shipment.vendor_id == vendor_id
            )
        )
        assert shipment is not None
        return shipment


async def test_two_vendors_ship_and_deliver(fulfilment: Platform) -> None:
    p = fulfilment
    account, order_id = await _paid_two_vendor_order(p)
    north, south = p.shop.north, p.shop.south
    north_owner, south_owner = await vendor_owner(p, north), await vendor_owner(p, south)
    north_part = await _shipment(p, order_id, north.id)
    south_part = await _shipment(p, order_id, south.id)

    # A stranger vendor cannot see or touch these parts.
    stranger = await p.shopper()
    denied = await p.client.post(
        f"/vendors/{north.id}/shipments/{north_part.id}/accept", headers=stranger.headers
    )
    assert denied.status_code in (403, 404), denied.text

    # North accepts and buys a label from the simulated carrier: shipped.
    accepted = await p.client.post(
        f"/vendors/{north.id}/shipments/{north_part.id}/accept", headers=north_owner.headers
    )
    assert accepted.json()["status"] == "accepted", accepted.text
    labelled = await p.client.post(
        f"/vendors/{north.id}/shipments/{north_part.id}/label", headers=north_owner.headers
    )
    assert labelled.status_code == 200, labelled.text
    tracking_number = labelled.json()["tracking_number"]
    assert labelled.json()["status"] == "label_created"
    assert (await p.order(order_id)).status.value == "partially_shipped"

    # The shopper can no longer cancel the whole order.
    async def not_cancellable() -> bool:
        answer = await p.client.post(f"/orders/{order_id}/cancel", headers=account.headers, json={})
        return answer.status_code == 409

    await p.eventually(not_cancellable)

    # South ships with its own carrier and enters the tracking number by hand.
    await p.client.post(
        f"/vendors/{south.id}/shipments/{south_part.id}/accept", headers=south_owner.headers
    )
    manual = await p.client.post(
        f"/vendors/{south.id}/shipments/{south_part.id}/tracking",
        headers=south_owner.headers,
        json={"carrier": "dhl", "tracking_number": "JJD0001234567"},
    )
    assert manual.json()["status"] == "label_created", manual.text
    assert (await p.order(order_id)).status.value == "shipped"

    # Carrier news for North's parcel: signed, stored once, in order.
    carrier = SimulatedCarrier(webhook_secret=SECRET)
    estimate = date(2030, 1, 2)
    in_transit = carrier.signed_webhook(
        tracking_number=tracking_number,
        status="in_transit",
        location="Hub Leipzig",
        estimated_delivery=estimate,
    )
    delivered = carrier.signed_webhook(tracking_number=tracking_number, status="delivered")
    forged = carrier.signed_webhook(tracking_number=tracking_number, status="delivered")
    bad = await p.client.post(
        "/webhooks/carriers/simulated",
        content=forged[0].replace(b"delivered", b"exception"),
        headers=forged[1],
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_carrier_webhook")
    huge = await p.client.post(
        "/webhooks/carriers/simulated", content=b"x" * (300 * 1024), headers=forged[1]
    )
    assert (huge.status_code, huge.json()["code"]) == (413, "webhook_too_large")
    for payload, headers in (in_transit, in_transit, delivered):
        answer = await p.client.post(
            "/webhooks/carriers/simulated", content=payload, headers=headers
        )
        assert answer.status_code == 200, answer.text
    repeat = await p.client.post(
        "/webhooks/carriers/simulated", content=delivered[0], headers=delivered[1]
    )
    assert repeat.json() == {"received": True, "duplicate": True}

    tracking = (await p.client.get(f"/orders/{order_id}/tracking", headers=account.headers)).json()[
        "items"
    ]
    mine = next(t for t in tracking if t["vendor_id"] == str(north.id))
    assert mine["status"] == "delivered"
    assert mine["label_url"] is None  # the label is the vendor's, not the shopper's
    assert [e["status"] for e in mine["timeline"]] == [
        "accepted",
        "label_created",
        "in_transit",
        "delivered",
    ]
    assert mine["estimated_delivery_latest"] == estimate.isoformat()
    assert (await p.order(order_id)).status.value == "shipped"

    # South's parcel arrives too: the order is delivered, the shopper may review.
    south_delivered = SimulatedCarrier(webhook_secret=SECRET)
    # A carrier we have no webhooks for: its news comes from the simulated one in this test.
    async with p.sessionmaker.begin() as session:
        row = await session.get(Shipment, south_part.id)
        assert row is not None
        row.carrier = "simulated"
    payload, headers = south_delivered.signed_webhook(
        tracking_number="JJD0001234567", status="delivered"
    )
    await p.client.post("/webhooks/carriers/simulated", content=payload, headers=headers)
    order = await p.wait_for(order_id, "delivered")
    assert order.status.value == "delivered"
    async with p.sessionmaker() as session:
        purchases = await session.scalar(
            select(func.count())
            .select_from(DeliveredPurchase)
            .where(DeliveredPurchase.order_id == uuid.UUID(order_id))
        )
    assert purchases == 2
    mails = [m.template for m in await p.mails(account.email)]
    assert mails.count("order_shipped") == 2
    assert mails.count("order_delivered") == 2

    # Both parts' workflows end delivered; the order waits for the return window.
    for vendor in (north, south):
        handle = p.temporal.get_workflow_handle(shipment_workflow_id(order_id, str(vendor.id)))
        assert await handle.result() == "delivered"
    order_handle = p.temporal.get_workflow_handle(order_workflow_id(order_id))

    async def waiting_for_completion() -> bool:
        return (await order_handle.query("status"))["status"] == "delivered"

    await p.eventually(waiting_for_completion)
    assert (await order_handle.describe()).status == WorkflowExecutionStatus.RUNNING


async def test_vendor_missing_the_acceptance_deadline(
    fresh_database_url: str, temporal_env: WorkflowEnvironment, temporal_address: str
) -> None:
    async with platform(
        fresh_database_url,
        temporal_env.client,
        temporal_address,
        shipment_accept_within_s=2.0,
        tracking_recheck_s=0.5,
    ) as p:
        account, order_id = await _paid_two_vendor_order(p)
        north_owner = await vendor_owner(p, p.shop.north)
        north_part = await _shipment(p, order_id, p.shop.north.id)
        accepted = await p.client.post(
            f"/vendors/{p.shop.north.id}/shipments/{north_part.id}/accept",
            headers=north_owner.headers,
        )
        assert accepted.status_code == 200, accepted.text
        # South never answers: after 2 s its part is cancelled, refunded and restocked.
        south = p.temporal.get_workflow_handle(shipment_workflow_id(order_id, str(p.shop.south.id)))
        assert await south.result() == "cancelled"
        async with p.sessionmaker() as session:
            refund = await session.scalar(
                select(Refund).where(Refund.order_id == uuid.UUID(order_id))
            )
            assert refund is not None
            line = await session.scalar(
                select(OrderLine).where(
                    OrderLine.order_id == uuid.UUID(order_id),
                    OrderLine.vendor_id == p.shop.south.id,
                )
            )
            assert line is not None
        assert refund.status == RefundStatus.SUCCEEDED
        async with p.sessionmaker() as session:
            part = await session.get(OrderVendorPart, (uuid.UUID(order_id), p.shop.south.id))
            assert part is not None
        # Its lines and its shipping: the whole part.
        assert refund.amount == line.total + part.shipping_amount + part.shipping_tax
        assert refund.amount == part.total
        assert line.cancelled_quantity == 1
        assert await p.stock(p.shop.mug) == (10, 0)
        payment = (await p.payments(order_id))[0]
        assert payment.refunded_amount == refund.amount
        assert payment.provider_payment_id is not None
        state = await p.provider.inspect(payment.provider_payment_id)
        assert state is not None
        assert state.refunded == refund.amount
        mails = [m.template for m in await p.mails(account.email)]
        assert "order_unaccepted" in mails
        # The vendor's ledger nets to nothing for the cancelled part.
        async with p.sessionmaker() as session:
            net = await session.scalar(
                select(func.sum(LedgerEntry.amount)).where(LedgerEntry.vendor_id == p.shop.south.id)
            )
            kinds = (
                await session.execute(
                    select(LedgerEntry.kind, LedgerEntry.amount).where(
                        LedgerEntry.vendor_id == p.shop.south.id
                    )
                )
            ).all()
        assert net == 0, kinds
        # A late acceptance is refused.
        south_owner = await vendor_owner(p, p.shop.south)
        south_part = await _shipment(p, order_id, p.shop.south.id)
        late = await p.client.post(
            f"/vendors/{p.shop.south.id}/shipments/{south_part.id}/accept",
            headers=south_owner.headers,
        )
        assert (late.status_code, late.json()["code"]) == (409, "shipment_not_acceptable")


async def test_shopper_cancels_an_unshipped_line(fulfilment: Platform) -> None:
    p = fulfilment
    account, order_id = await _paid_two_vendor_order(p)
    async with p.sessionmaker() as session:
        tee_line = await session.scalar(
            select(OrderLine).where(
                OrderLine.order_id == uuid.UUID(order_id), OrderLine.sku == "N-TEE"
            )
        )
        assert tee_line is not None
    answer = await p.client.post(
        f"/orders/{order_id}/cancel-lines",
        headers=account.headers,
        json={"lines": [{"order_line_id": str(tee_line.id), "quantity": 1}]},
    )
    assert answer.status_code == 200, answer.text
    [refund_id] = answer.json()["refund_ids"]

    async def refunded() -> bool:
        async with p.sessionmaker() as session:
            refund = await session.get(Refund, uuid.UUID(refund_id))
            return refund is not None and refund.status == RefundStatus.SUCCEEDED

    await p.eventually(refunded)

    async def restocked() -> bool:
        return await p.stock(p.shop.tee) == (9, 0)  # one of the two back on hand

    await p.eventually(restocked)
    too_many = await p.client.post(
        f"/orders/{order_id}/cancel-lines",
        headers=account.headers,
        json={"lines": [{"order_line_id": str(tee_line.id), "quantity": 5}]},
    )
    assert (too_many.status_code, too_many.json()["code"]) == (409, "lines_not_cancellable")
