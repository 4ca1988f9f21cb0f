"""Vendors: applying, approval and suspension, staff invitations and roles."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import PlatformRole, Product, SearchOutbox, Vendor, Warehouse
from tests.catalog_factories import make_product
from tests.factories import Account, mailed_token, sign_up


async def _apply(client: httpx.AsyncClient, account: Account, name: str = "Acme Goods") -> dict:
    response = await client.post(
        "/vendors", headers=account.headers, json={"name": name, "description": "We sell."}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_applying_makes_a_pending_vendor_owned_by_the_applicant(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    owner = await sign_up(client, db_session)
    vendor = await _apply(client, owner, "Café Ünïcode & Co")
    assert vendor["status"] == "pending"
    assert vendor["slug"] == "cafe-unicode-co"
    mine = (await client.get("/me/vendors", headers=owner.headers)).json()["items"]
    assert [(v["vendor"]["id"], v["role"]) for v in mine] == [(vendor["id"], "owner")]
    warehouse = await db_session.scalar(
        select(Warehouse).where(Warehouse.vendor_id == uuid.UUID(vendor["id"]))
    )
    assert warehouse is not None
    assert warehouse.is_default
    # Same name again: a distinct slug.
    again = await _apply(client, owner, "Café Ünïcode & Co")
    assert again["slug"] != vendor["slug"]


async def test_unverified_users_cannot_apply(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    unverified = await sign_up(client, db_session, verified=False)
    response = await client.post("/vendors", headers=unverified.headers, json={"name": "Nope"})
    assert response.status_code == 403
    assert response.json()["code"] == "email_not_verified"


async def test_admin_approves_suspends_and_reinstates(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    owner = await sign_up(client, db_session)
    admin = await sign_up(client, db_session, role=PlatformRole.ADMIN)
    vendor = await _apply(client, owner)
    vendor_id = vendor["id"]
    assert (
        await client.post(f"/admin/vendors/{vendor_id}/approve", headers=owner.headers)
    ).status_code == 403
    approved = await client.post(f"/admin/vendors/{vendor_id}/approve", headers=admin.headers)
    assert approved.json()["status"] == "active"
    again = await client.post(f"/admin/vendors/{vendor_id}/approve", headers=admin.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_vendor_transition"

    model = await db_session.get(Vendor, uuid.UUID(vendor_id))
    assert model is not None
    product = await make_product(db_session, vendor=model)
    before = await db_session.scalar(
        select(SearchOutbox.id).where(SearchOutbox.product_id == product.id)
    )
    assert before is None
    suspended = await client.post(
        f"/admin/vendors/{vendor_id}/suspend",
        headers=admin.headers,
        json={"reason": "Counterfeit goods reported"},
    )
    assert suspended.json()["status"] == "suspended"
    assert suspended.json()["suspension_reason"] == "Counterfeit goods reported"
    # Its products are queued for removal from search.
    queued = await db_session.scalar(
        select(SearchOutbox.id).where(SearchOutbox.product_id == product.id)
    )
    assert queued is not None
    listed = await client.get(
        "/admin/vendors", headers=admin.headers, params={"status": "suspended"}
    )
    assert vendor_id in [v["id"] for v in listed.json()["items"]]
    reinstated = await client.post(f"/admin/vendors/{vendor_id}/reinstate", headers=admin.headers)
    assert reinstated.json()["status"] == "active"
    assert reinstated.json()["suspended_at"] is None


async def test_vendor_back_office_is_only_for_its_staff(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    owner = await sign_up(client, db_session)
    stranger = await sign_up(client, db_session)
    admin = await sign_up(client, db_session, role=PlatformRole.ADMIN)
    vendor_id = (await _apply(client, owner))["id"]
    assert (await client.get(f"/vendors/{vendor_id}", headers=owner.headers)).status_code == 200
    for path in (f"/vendors/{vendor_id}", f"/vendors/{vendor_id}/staff"):
        response = await client.get(path, headers=stranger.headers)
        assert response.status_code == 404, path
    patched = await client.patch(
        f"/vendors/{vendor_id}", headers=stranger.headers, json={"name": "Mine now"}
    )
    assert patched.status_code == 404
    assert (await client.get(f"/vendors/{vendor_id}", headers=admin.headers)).status_code == 200
    missing = await client.get(f"/vendors/{uuid.uuid4()}", headers=admin.headers)
    assert missing.status_code == 404


async def test_invitation_joins_staff_once_and_only_for_the_invited_address(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    owner = await sign_up(client, db_session)
    invitee = await sign_up(client, db_session)
    other = await sign_up(client, db_session)
    vendor_id = (await _apply(client, owner))["id"]
    invited = await client.post(
        f"/vendors/{vendor_id}/invitations",
        headers=owner.headers,
        json={"email": invitee.email.upper(), "role": "staff"},
    )
    assert invited.status_code == 201
    token = await mailed_token(db_session, to=invitee.email, template="vendor_invitation")

    wrong_person = await client.post(
        "/vendor-invitations/accept", headers=other.headers, json={"token": token}
    )
    assert wrong_person.status_code == 403
    accepted = await client.post(
        "/vendor-invitations/accept", headers=invitee.headers, json={"token": token}
    )
    assert accepted.status_code == 200
    assert accepted.json()["role"] == "staff"
    replay = await client.post(
        "/vendor-invitations/accept", headers=invitee.headers, json={"token": token}
    )
    assert replay.json()["code"] == "invalid_invitation"

    # Staff can read but not manage.
    assert (await client.get(f"/vendors/{vendor_id}", headers=invitee.headers)).status_code == 200
    denied = await client.patch(
        f"/vendors/{vendor_id}", headers=invitee.headers, json={"name": "Renamed"}
    )
    assert denied.status_code == 403
    cannot_invite = await client.post(
        f"/vendors/{vendor_id}/invitations",
        headers=invitee.headers,
        json={"email": other.email, "role": "manager"},
    )
    assert cannot_invite.status_code == 403
    staff = (await client.get(f"/vendors/{vendor_id}/staff", headers=invitee.headers)).json()[
        "items"
    ]
    assert {(s["user_id"], s["role"]) for s in staff} == {
        (owner.id, "owner"),
        (invitee.id, "staff"),
    }


async def test_a_vendor_always_keeps_an_owner(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    owner = await sign_up(client, db_session)
    vendor_id = (await _apply(client, owner))["id"]
    demote = await client.put(
        f"/vendors/{vendor_id}/staff/{owner.id}", headers=owner.headers, json={"role": "manager"}
    )
    assert demote.status_code == 409
    assert demote.json()["code"] == "last_owner"
    remove = await client.delete(f"/vendors/{vendor_id}/staff/{owner.id}", headers=owner.headers)
    assert remove.json()["code"] == "last_owner"
    unknown = await client.delete(
        f"/vendors/{vendor_id}/staff/{uuid.uuid4()}", headers=owner.headers
    )
    assert unknown.status_code == 404


async def test_promote_then_step_down(client: httpx.AsyncClient, db_session: AsyncSession) -> None:
    owner = await sign_up(client, db_session)
    partner = await sign_up(client, db_session)
    vendor_id = (await _apply(client, owner))["id"]
    await client.post(
        f"/vendors/{vendor_id}/invitations",
        headers=owner.headers,
        json={"email": partner.email, "role": "manager"},
    )
    token = await mailed_token(db_session, to=partner.email, template="vendor_invitation")
    await client.post("/vendor-invitations/accept", headers=partner.headers, json={"token": token})
    promoted = await client.put(
        f"/vendors/{vendor_id}/staff/{partner.id}", headers=owner.headers, json={"role": "owner"}
    )
    assert promoted.json()["role"] == "owner"
    stepped_down = await client.put(
        f"/vendors/{vendor_id}/staff/{owner.id}", headers=owner.headers, json={"role": "staff"}
    )
    assert stepped_down.status_code == 200
    products = await db_session.scalar(
        select(Product.id).where(Product.vendor_id == uuid.UUID(vendor_id))
    )
    assert products is None
