"""Returns end to end: the shopper's and the vendor's API, the real worker running
``ReturnWorkflow`` and its child ``RefundWorkflow``, real Temporal, real PostgreSQL and the
durable test payment provider. Each test has a database and a task queue of its own.

A delivered shipment is written straight into ``shipments`` (status delivered, delivered_at):
the shipment steps are not what these tests are about."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from commerce.aftersales import returns
from models import (
    OrderLine,
    Payment,
    PaymentStatus,
    Refund,
    RefundSource,
    RefundStatus,
    ReturnRequest,
    Shipment,
    ShipmentStatus,
    Vendor,
    VendorMembership,
    VendorRole,
)
from tests.factories import Account, sign_up
from tests.order_harness import Platform, platform
from workflows.contracts.returns import (
    PROGRESS_QUERY,
    ReturnProgress,
    ReturnWorkflowResult,
    return_workflow_id,
)
from workflows.contracts.search_attributes import ORDER_ID, VENDOR_IDS

pytestmark = pytest.mark.slow


# --- the platform ------------------------------------------------------------------------------


@pytest.fixture
def returns_env(
    fresh_database_url: str, temporal_env: WorkflowEnvironment, temporal_address: str
) -> tuple[str, Client, str]:
    """What ``returns_platform`` is built on: a database of the test's own, Temporal."""
    return fresh_database_url, temporal_env.client, temporal_address


# --- helpers -----------------------------------------------------------------------------------


async def member(p: Platform, vendor: Vendor, role: VendorRole) -> Account:
    async with p.sessionmaker() as session:
        account = await sign_up(p.client, session)
    async with p.sessionmaker.begin() as session:
        session.add(VendorMembership(vendor_id=vendor.id, user_id=uuid.UUID(account.id), role=role))
    return account


async def bought(p: Platform, *, tees: int = 2, mugs: int = 1) -> tuple[Account, str]:
    """A confirmed order of ``tees`` North tees and ``mugs`` South mugs."""
    account = await p.shopper()
    await p.add(account, p.shop.tee, tees)
    if mugs:
        await p.add(account, p.shop.mug, mugs)
    response = await p.checkout(account, "tok_ok")
    assert response.status_code == 201, response.text
    order_id = response.json()["order_id"]
    await p.wait_for(order_id, "confirmed")
    return account, order_id


async def deliver(
    p: Platform, order_id: str, vendor: Vendor, *, ago: timedelta = timedelta()
) -> None:
    """The vendor's shipment of the order, delivered ``ago``."""
    delivered_at = datetime.now(UTC) - ago
    async with p.sessionmaker.begin() as session:
        await session.execute(
            insert(Shipment)
            .values(
                id=uuid.uuid4(),
                order_id=uuid.UUID(order_id),
                vendor_id=vendor.id,
                status=ShipmentStatus.DELIVERED,
                accept_by=delivered_at,
                delivered_at=delivered_at,
            )
            .on_conflict_do_update(
                index_elements=["order_id", "vendor_id"],
                set_={"status": ShipmentStatus.DELIVERED, "delivered_at": delivered_at},
            )
        )


async def line_of(p: Platform, order_id: str, variant_id: uuid.UUID) -> OrderLine:
    async with p.sessionmaker() as session:
        line = await session.scalar(
            select(OrderLine).where(
                OrderLine.order_id == uuid.UUID(order_id), OrderLine.variant_id == variant_id
            )
        )
        assert line is not None
        return line


async def ask(
    p: Platform,
    account: Account,
    order_id: str,
    vendor: Vendor,
    lines: list[tuple[uuid.UUID, int]],
    reason: str = "Too small",
) -> httpx.Response:
    return await p.client.post(
        f"/orders/{order_id}/returns",
        headers=account.headers,
        json={
            "vendor_id": str(vendor.id),
            "reason": reason,
            "lines": [{"order_line_id": str(i), "quantity": q} for i, q in lines],
        },
    )


async def shopper_view(p: Platform, account: Account, order_id: str, return_id: str) -> dict:
    response = await p.client.get(
        f"/orders/{order_id}/returns/{return_id}", headers=account.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def wait_status(
    p: Platform, account: Account, order_id: str, return_id: str, status: str
) -> dict:
    seen: dict = {}

    async def reached() -> bool:
        seen.update(await shopper_view(p, account, order_id, return_id))
        return seen["status"] == status

    await p.eventually(reached, within=30)
    return seen


async def workflow_result(p: Platform, return_id: str) -> ReturnWorkflowResult:
    handle = p.temporal.get_workflow_handle(
        return_workflow_id(return_id), result_type=ReturnWorkflowResult
    )
    return await handle.result()


def templates(mails: list[Any]) -> list[str]:
    return [mail.template for mail in mails]


# --- the tests ---------------------------------------------------------------------------------


async def test_request_approve_receive_refund(returns_env: tuple[str, Client, str]) -> None:
    async with platform(*returns_env) as p:
        shopper, order_id = await bought(p, tees=2, mugs=1)
        manager = await member(p, p.shop.north, VendorRole.MANAGER)
        tee = await line_of(p, order_id, p.shop.tee)
        on_hand_before, _ = await p.stock(p.shop.tee)

        # Not delivered yet: refused.
        early = await ask(p, shopper, order_id, p.shop.north, [(tee.id, 1)])
        assert early.status_code == 409, early.text
        assert early.json()["code"] == "return_not_delivered"

        await deliver(p, order_id, p.shop.north)
        response = await ask(p, shopper, order_id, p.shop.north, [(tee.id, 1)])
        assert response.status_code == 201, response.text
        created = response.json()
        return_id = created["id"]
        assert created["status"] == "requested"
        assert created["lines"] == [
            {"order_line_id": str(tee.id), "sku": "N-TEE", "title": "Tee", "quantity": 1}
        ]
        assert [m.template for m in await p.mails("orders@north.example")][-1] == (
            "vendor_return_requested"
        )

        # Its workflow runs, findable by order and vendor.
        handle = p.temporal.get_workflow_handle(return_workflow_id(return_id))
        description = await handle.describe()
        assert description.status == WorkflowExecutionStatus.RUNNING
        attributes = description.typed_search_attributes
        assert attributes.get(ORDER_ID) == order_id
        assert attributes.get(VENDOR_IDS) == [str(p.shop.north.id)]

        # Only one of the two tees is left to return.
        over = await ask(p, shopper, order_id, p.shop.north, [(tee.id, 2)])
        assert over.status_code == 409, over.text
        assert over.json()["code"] == "return_quantity_exceeded"
        assert over.json()["lines"] == [
            {"order_line_id": str(tee.id), "requested": 2, "remaining": 1}
        ]

        # The vendor sees it and approves; the shopper is told to send the parcel.
        listed = await p.client.get(
            f"/vendors/{p.shop.north.id}/returns?status=requested", headers=manager.headers
        )
        assert listed.status_code == 200, listed.text
        assert [item["id"] for item in listed.json()["items"]] == [return_id]
        approved = await p.client.post(
            f"/vendors/{p.shop.north.id}/returns/{return_id}/approve", headers=manager.headers
        )
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "approved"
        assert approved.json()["auto_approved"] is False
        again = await p.client.post(
            f"/vendors/{p.shop.north.id}/returns/{return_id}/approve", headers=manager.headers
        )
        assert again.status_code == 409
        assert again.json()["code"] == "return_already_decided"
        assert "return_approved" in templates(await p.mails(shopper.email))
        assert (await shopper_view(p, shopper, order_id, return_id))["status"] == "approved"

        # The parcel arrives: received, units count as returned at once; then refunded.
        received = await p.client.post(
            f"/vendors/{p.shop.north.id}/returns/{return_id}/receive",
            headers=manager.headers,
            json={"inspection_note": "Unworn, tags on"},
        )
        assert received.status_code == 200, received.text
        assert received.json()["status"] == "received"
        assert (await line_of(p, order_id, p.shop.tee)).returned_quantity == 1

        done = await wait_status(p, shopper, order_id, return_id, "refunded")
        assert done["inspection_note"] == "Unworn, tags on"
        expected = (tee.total + 1) // 2  # one of two units, rounded half up
        assert done["refund"]["status"] == "succeeded"
        assert done["refund"]["amount"] == {"amount": expected, "currency": "EUR"}
        result = await workflow_result(p, return_id)
        assert (result.status, result.refund_id) == ("refunded", done["refund"]["id"])

        async with p.sessionmaker() as session:
            refund = await session.get(Refund, uuid.UUID(done["refund"]["id"]))
            assert refund is not None
            assert (refund.source, refund.status, refund.restock, refund.vendor_id) == (
                RefundSource.RETURN,
                RefundStatus.SUCCEEDED,
                True,
                p.shop.north.id,
            )
            assert refund.request_key == f"return:{return_id}"
            payment = await session.scalar(
                select(Payment).where(
                    Payment.order_id == uuid.UUID(order_id),
                    Payment.status == PaymentStatus.CAPTURED,
                )
            )
            assert payment is not None
            assert payment.refunded_amount == expected
        state = await p.provider.inspect(payment.provider_payment_id or "")
        assert state is not None
        assert (len(state.refunds), state.refunded) == (1, expected)

        # The unit is back in stock (once the refund's restock step ran).
        async def restocked() -> bool:
            return (await p.stock(p.shop.tee))[0] == on_hand_before + 1

        await p.eventually(restocked)
        assert {"return_refunded", "refund_issued"} <= set(templates(await p.mails(shopper.email)))

        # Both sides see the end; the returned unit cannot be asked back again.
        vendor_view = await p.client.get(
            f"/vendors/{p.shop.north.id}/returns/{return_id}", headers=manager.headers
        )
        assert vendor_view.json()["status"] == "refunded"
        listed = await p.client.get(f"/orders/{order_id}/returns", headers=shopper.headers)
        assert [(r["id"], r["status"]) for r in listed.json()["items"]] == [(return_id, "refunded")]
        late = await p.client.post(
            f"/orders/{order_id}/returns/{return_id}/cancel", headers=shopper.headers
        )
        assert late.status_code == 409
        assert late.json()["code"] == "return_not_cancellable"
        timeline = [
            e["type"]
            for e in (await p.client.get(f"/orders/{order_id}", headers=shopper.headers)).json()[
                "timeline"
            ]
        ]
        for step in ("return_requested", "return_approved", "return_received", "return_refunded"):
            assert step in timeline


async def test_unanswered_return_is_approved_at_the_deadline(
    returns_env: tuple[str, Client, str],
) -> None:
    async with platform(*returns_env, return_response_within_s=1.5) as p:
        shopper, order_id = await bought(p, tees=1, mugs=0)
        manager = await member(p, p.shop.north, VendorRole.MANAGER)
        tee = await line_of(p, order_id, p.shop.tee)
        await deliver(p, order_id, p.shop.north)
        response = await ask(p, shopper, order_id, p.shop.north, [(tee.id, 1)])
        assert response.status_code == 201, response.text
        return_id = response.json()["id"]

        approved = await wait_status(p, shopper, order_id, return_id, "approved")
        assert approved["auto_approved"] is True
        assert approved["decided_at"] is not None
        mails = [m for m in await p.mails(shopper.email) if m.template == "return_approved"]
        assert len(mails) == 1
        assert "did not answer in time" in mails[0].body_text

        # Too late to reject; the shopper may still withdraw before sending the parcel.
        rejected = await p.client.post(
            f"/vendors/{p.shop.north.id}/returns/{return_id}/reject",
            headers=manager.headers,
            json={"reason": "Worn"},
        )
        assert rejected.status_code == 409
        assert rejected.json()["code"] == "return_already_decided"
        withdrawn = await p.client.post(
            f"/orders/{order_id}/returns/{return_id}/cancel", headers=shopper.headers
        )
        assert withdrawn.status_code == 200, withdrawn.text
        assert withdrawn.json()["status"] == "cancelled"
        result = await workflow_result(p, return_id)
        assert (result.status, result.auto_approved, result.refund_id) == (
            "cancelled",
            True,
            None,
        )
        receive = await p.client.post(
            f"/vendors/{p.shop.north.id}/returns/{return_id}/receive",
            headers=manager.headers,
            json={"inspection_note": "Arrived anyway"},
        )
        assert receive.status_code == 409
        assert receive.json()["code"] == "return_not_approved"
        # Withdrawn units may be asked back again.
        again = await ask(p, shopper, order_id, p.shop.north, [(tee.id, 1)])
        assert again.status_code == 201, again.text


async def test_rejected_return_ends_and_frees_its_units(
    returns_env: tuple[str, Client, str],
) -> None:
    async with platform(*returns_env) as p:
        shopper, order_id = await bought(p, tees=1, mugs=0)
        manager = await member(p, p.shop.north, VendorRole.MANAGER)
        tee = await line_of(p, order_id, p.shop.tee)
        await deliver(p, order_id, p.shop.north)
        response = await ask(p, shopper, order_id, p.shop.north, [(tee.id, 1)])
        assert response.status_code == 201, response.text
        return_id = response.json()["id"]

        rejected = await p.client.post(
            f"/vendors/{p.shop.north.id}/returns/{return_id}/reject",
            headers=manager.headers,
            json={"reason": "The tee has been worn"},
        )
        assert rejected.status_code == 200, rejected.text
        body = rejected.json()
        assert (body["status"], body["rejection_reason"]) == ("rejected", "The tee has been worn")
        result = await workflow_result(p, return_id)
        assert (result.status, result.refund_id) == ("rejected", None)
        mails = [m for m in await p.mails(shopper.email) if m.template == "return_rejected"]
        assert len(mails) == 1
        assert "The tee has been worn" in mails[0].body_text
        approve = await p.client.post(
            f"/vendors/{p.shop.north.id}/returns/{return_id}/approve", headers=manager.headers
        )
        assert approve.status_code == 409
        assert approve.json()["code"] == "return_already_decided"
        assert (await line_of(p, order_id, p.shop.tee)).returned_quantity == 0
        async with p.sessionmaker() as session:
            assert (await session.scalars(select(Refund.id))).all() == []
        # A rejected return holds no units.
        again = await ask(p, shopper, order_id, p.shop.north, [(tee.id, 1)])
        assert again.status_code == 201, again.text


async def test_after_the_deadline_the_vendor_may_approve_but_not_reject(
    returns_env: tuple[str, Client, str],
) -> None:
    async with platform(*returns_env) as p:
        shopper, order_id = await bought(p, tees=1, mugs=0)
        manager = await member(p, p.shop.north, VendorRole.MANAGER)
        tee = await line_of(p, order_id, p.shop.tee)
        await deliver(p, order_id, p.shop.north)
        response = await ask(p, shopper, order_id, p.shop.north, [(tee.id, 1)])
        assert response.status_code == 201, response.text
        return_id = uuid.UUID(response.json()["id"])
        # The workflow has read the return (and measured the vendor's time: days) ...
        handle = p.temporal.get_workflow_handle(return_workflow_id(str(return_id)))

        async def waiting_for_the_vendor() -> bool:
            progress = await handle.query(PROGRESS_QUERY, result_type=ReturnProgress)
            return progress.step == "awaiting_decision"

        await p.eventually(waiting_for_the_vendor)
        # ... then the deadline passes for the database, not yet for its timer.
        async with p.sessionmaker.begin() as session:
            await session.execute(
                update(ReturnRequest)
                .where(ReturnRequest.id == return_id)
                .values(respond_by=datetime.now(UTC) - timedelta(seconds=1))
            )
        base = f"/vendors/{p.shop.north.id}/returns/{return_id}"
        late = await p.client.post(
            f"{base}/reject", headers=manager.headers, json={"reason": "Worn"}
        )
        assert late.status_code == 409
        assert late.json()["code"] == "return_response_window_over"
        approved = await p.client.post(f"{base}/approve", headers=manager.headers)
        assert approved.status_code == 200, approved.text
        assert approved.json()["auto_approved"] is False
        # The automatic approval coming second changes nothing: the database decided.
        async with p.sessionmaker.begin() as session:
            assert (
                await returns.auto_approve(session, return_id=return_id, now=datetime.now(UTC))
                is False
            )
        view = await shopper_view(p, shopper, order_id, str(return_id))
        assert (view["status"], view["auto_approved"]) == ("approved", False)
        mails = [m for m in await p.mails(shopper.email) if m.template == "return_approved"]
        assert len(mails) == 1


async def test_refusals(returns_env: tuple[str, Client, str]) -> None:
    async with platform(*returns_env) as p:
        shopper, order_id = await bought(p, tees=2, mugs=1)
        tee = await line_of(p, order_id, p.shop.tee)
        mug = await line_of(p, order_id, p.shop.mug)
        await deliver(p, order_id, p.shop.north)

        too_many = await ask(p, shopper, order_id, p.shop.north, [(tee.id, 3)])
        assert too_many.status_code == 409
        assert too_many.json()["code"] == "return_quantity_exceeded"
        other_vendor = await ask(p, shopper, order_id, p.shop.north, [(tee.id, 1), (mug.id, 1)])
        assert other_vendor.status_code == 422
        assert other_vendor.json()["code"] == "return_lines_other_vendor"
        not_delivered = await ask(p, shopper, order_id, p.shop.south, [(mug.id, 1)])
        assert not_delivered.status_code == 409
        assert not_delivered.json()["code"] == "return_not_delivered"
        unknown_line = await ask(p, shopper, order_id, p.shop.north, [(uuid.uuid4(), 1)])
        assert unknown_line.status_code == 422
        assert unknown_line.json()["code"] == "invalid_return"

        # South takes items back for 30 days (the default): delivered 31 days ago is too late.
        await deliver(p, order_id, p.shop.south, ago=timedelta(days=31))
        closed = await ask(p, shopper, order_id, p.shop.south, [(mug.id, 1)])
        assert closed.status_code == 409
        assert closed.json()["code"] == "return_window_closed"
        await deliver(p, order_id, p.shop.south, ago=timedelta(days=29))
        inside = await ask(p, shopper, order_id, p.shop.south, [(mug.id, 1)])
        assert inside.status_code == 201, inside.text

        async with p.sessionmaker() as session:
            assert len((await session.scalars(select(ReturnRequest.id))).all()) == 1


async def test_someone_elses_return_is_not_found(returns_env: tuple[str, Client, str]) -> None:
    async with platform(*returns_env) as p:
        shopper, order_id = await bought(p, tees=1, mugs=1)
        tee = await line_of(p, order_id, p.shop.tee)
        await deliver(p, order_id, p.shop.north)
        response = await ask(p, shopper, order_id, p.shop.north, [(tee.id, 1)])
        assert response.status_code == 201, response.text
        return_id = response.json()["id"]

        # Another shopper: neither the order nor its returns exist for them.
        stranger = await p.shopper()
        for call in (
            p.client.get(f"/orders/{order_id}/returns", headers=stranger.headers),
            p.client.get(f"/orders/{order_id}/returns/{return_id}", headers=stranger.headers),
            p.client.post(
                f"/orders/{order_id}/returns/{return_id}/cancel", headers=stranger.headers
            ),
            ask(p, stranger, order_id, p.shop.north, [(tee.id, 1)]),
        ):
            answer = await call
            assert answer.status_code == 404, answer.text

        # Another vendor's manager: not found through their own vendor, nor through North's.
        south = await member(p, p.shop.south, VendorRole.MANAGER)
        base = f"/vendors/{p.shop.south.id}/returns/{return_id}"
        for path in (base, f"{base}/approve"):
            answer = await (
                p.client.get(path, headers=south.headers)
                if path == base
                else p.client.post(path, headers=south.headers)
            )
            assert answer.status_code == 404, answer.text
            assert answer.json()["code"] == "return_not_found"
        listed = await p.client.get(f"/vendors/{p.shop.south.id}/returns", headers=south.headers)
        assert listed.json()["items"] == []
        north_path = f"/vendors/{p.shop.north.id}/returns/{return_id}/approve"
        assert (await p.client.post(north_path, headers=south.headers)).status_code == 404

        # North's staff may read but not decide.
        staff = await member(p, p.shop.north, VendorRole.STAFF)
        read = await p.client.get(f"/vendors/{p.shop.north.id}/returns", headers=staff.headers)
        assert [item["id"] for item in read.json()["items"]] == [return_id]
        assert (await p.client.post(north_path, headers=staff.headers)).status_code == 403
        view = await shopper_view(p, shopper, order_id, return_id)
        assert view["status"] == "requested"
