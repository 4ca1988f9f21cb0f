"""Invoices and credit notes: gapless numbers per vendor and kind (also under concurrency and
rollbacks), idempotent issuing, frozen documents whose totals add up, HTML/PDF rendering, and
who may read them over the API. Orders are written straight through the ORM (a confirmed
order as the checkout would have frozen it); one slow test checks a real checkout's order."""

from __future__ import annotations

import asyncio
import re
import uuid
import zlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool
from temporalio.testing import WorkflowEnvironment

from commerce.checkout.pricing import added_tax, included_tax, round_half_up, split_by_weight
from commerce.finance import invoices
from models import (
    Invoice,
    InvoiceKind,
    InvoiceSequence,
    Order,
    OrderLine,
    OrderStatus,
    OrderVendorPart,
    Payment,
    PaymentStatus,
    PlatformRole,
    Refund,
    RefundLine,
    RefundSource,
    RefundStatus,
    User,
    Vendor,
    VendorMembership,
    VendorRole,
)
from tests.catalog_factories import make_vendor
from tests.factories import sign_up, unique

ADDRESS = {
    "name": "Ada Buyer",
    "line1": "Unter den Linden 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
}


# --- test data -----------------------------------------------------------------------------------


@dataclass
class LineSpec:
    sku: str
    unit_price: int
    quantity: int = 1
    discount: int = 0
    rate_bp: int = 1900
    title: str | None = None


@dataclass
class PartSpec:
    vendor: Vendor
    lines: list[LineSpec]
    shipping: int = 490
    shipping_rate_bp: int = 1900
    shipping_waived: int = 0


@dataclass
class MadeOrder:
    order: Order
    parts: dict[uuid.UUID, OrderVendorPart]
    lines: list[OrderLine] = field(default_factory=list)
    payment: Payment | None = None


async def make_customer(session: AsyncSession) -> User:
    name = unique()
    user = User(
        username=name,
        username_key=name,
        email=f"{name}@example.com",
        email_key=f"{name}@example.com",
        email_verified_at=datetime.now(UTC),
    )
    session.add(user)
    await session.flush()
    return user


async def make_order(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID | None,
    parts: Sequence[PartSpec],
    inclusive: bool = False,
    status: OrderStatus = OrderStatus.CONFIRMED,
) -> MadeOrder:
    """An order as checkout freezes it, priced by commerce.checkout.pricing's rules, with a captured
    payment when it is confirmed."""
    order_id = uuid.uuid4()

    def tax_of(net: int, rate: int) -> int:
        return included_tax(net, rate) if inclusive else added_tax(net, rate)

    made_parts: list[OrderVendorPart] = []
    made_lines: list[OrderLine] = []
    for spec in parts:
        lines_total = lines_tax = items_subtotal = items_discount = 0
        for line in spec.lines:
            subtotal = line.unit_price * line.quantity
            net = subtotal - line.discount
            tax = tax_of(net, line.rate_bp)
            total = net if inclusive else net + tax
            made_lines.append(
                OrderLine(
                    id=uuid.uuid4(),
                    order_id=order_id,
                    vendor_id=spec.vendor.id,
                    sku=line.sku,
                    title=line.title or f"Product {line.sku}",
                    options={"Size": "M"},
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    subtotal=subtotal,
                    discount=line.discount,
                    tax=tax,
                    tax_rate_bp=line.rate_bp,
                    total=total,
                )
            )
            lines_total += total
            lines_tax += tax
            items_subtotal += subtotal
            items_discount += line.discount
        shipping = spec.shipping - spec.shipping_waived
        shipping_tax = tax_of(shipping, spec.shipping_rate_bp)
        made_parts.append(
            OrderVendorPart(
                order_id=order_id,
                vendor_id=spec.vendor.id,
                shipping_method_code="standard",
                shipping_method_name="Standard",
                shipping_amount=shipping,
                shipping_tax=shipping_tax,
                items_subtotal=items_subtotal,
                discount=items_discount + spec.shipping_waived,
                tax=lines_tax + shipping_tax,
                total=lines_total + shipping + (0 if inclusive else shipping_tax),
            )
        )
    confirmed = status not in {OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT}
    order = Order(
        id=order_id,
        customer_id=customer_id,
        idempotency_key=f"key-{order_id}",
        request_hash="0" * 64,
        status=status,
        currency="EUR",
        prices_include_tax=inclusive,
        items_subtotal=sum(p.items_subtotal for p in made_parts),
        discount_total=sum(p.discount for p in made_parts),
        shipping_total=sum(p.shipping_amount for p in made_parts),
        tax_total=sum(p.tax for p in made_parts),
        grand_total=sum(p.total for p in made_parts),
        contact_email="ada@example.com",
        shipping_address=dict(ADDRESS),
        payment_provider="test",
        workflow_id=f"order:{order_id}",
        confirmed_at=datetime.now(UTC) if confirmed else None,
    )
    session.add(order)
    await session.flush()
    session.add_all(made_parts + made_lines)
    payment = None
    if confirmed:
        payment = Payment(
            order_id=order_id,
            attempt=1,
            provider="test",
            provider_payment_id=f"pay-{order_id}",
            status=PaymentStatus.CAPTURED,
            amount=order.grand_total,
            currency="EUR",
            captured_amount=order.grand_total,
        )
        session.add(payment)
    await session.flush()
    return MadeOrder(order, {p.vendor_id: p for p in made_parts}, made_lines, payment)


async def make_refund(
    session: AsyncSession,
    made: MadeOrder,
    *,
    amount: int,
    lines: Sequence[tuple[OrderLine, int, int]] = (),
    vendor_id: uuid.UUID | None = None,
    status: RefundStatus = RefundStatus.SUCCEEDED,
    source: RefundSource = RefundSource.RETURN,
) -> Refund:
    """A refund as the refund workflow leaves it; ``lines`` are (line, quantity, amount)."""
    assert made.payment is not None
    refund = Refund(
        id=uuid.uuid4(),
        order_id=made.order.id,
        payment_id=made.payment.id,
        vendor_id=vendor_id,
        amount=amount,
        currency="EUR",
        status=status,
        source=source,
        reason="Returned <damaged>",
    )
    session.add(refund)
    await session.flush()
    for line, quantity, line_amount in lines:
        session.add(
            RefundLine(
                refund_id=refund.id, order_line_id=line.id, quantity=quantity, amount=line_amount
            )
        )
    made.payment.refunded_amount += amount
    await session.flush()
    return refund


def assert_adds_up(invoice: Invoice) -> None:
    """The relations the module docstring promises, on the stored figures and the document."""
    document = invoice.document
    totals = document["totals"]
    assert (invoice.subtotal, invoice.tax, invoice.total) == (
        totals["subtotal"],
        totals["tax"],
        totals["total"],
    )
    for value in (invoice.subtotal, invoice.tax, invoice.total):
        assert isinstance(value, int)
    inclusive = document["prices_include_tax"]
    assert totals["total"] == totals["subtotal"] + (0 if inclusive else totals["tax"])
    lines = document["lines"]
    for line in lines:
        assert line["total"] == line["net"] + (0 if inclusive else line["tax"])
    if invoice.kind == InvoiceKind.INVOICE:
        shipping = document["shipping"]
        for line in lines:
            assert line["net"] == line["subtotal"] - line["discount"]
            assert line["subtotal"] == line["unit_price"] * line["quantity"]
        assert sum(line["net"] for line in lines) + shipping["amount"] == totals["subtotal"]
        assert sum(line["tax"] for line in lines) + shipping["tax"] == totals["tax"]
        assert (
            totals["items_subtotal"] - totals["discount"] + shipping["discount"]
            == (totals["items_net"])
        )
    else:
        adjustment = document["adjustment"] or {"net": 0, "tax": 0, "total": 0}
        assert sum(line["net"] for line in lines) + adjustment["net"] == totals["subtotal"]
        assert sum(line["tax"] for line in lines) + adjustment["tax"] == totals["tax"]
        assert document["refunded_amount"] == totals["total"]


def pdf_text(pdf: bytes) -> bytes:
    """The PDF's content streams, inflated: the core-font text is there as written."""
    out = [pdf]
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            out.append(zlib.decompress(match.group(1)))
        except zlib.error:
            out.append(match.group(1))
    return b"\n".join(out)


# --- issuing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("inclusive", [False, True])
async def test_one_invoice_per_vendor_part_whose_totals_add_up(
    db_session: AsyncSession, inclusive: bool
) -> None:
    north = await make_vendor(db_session, name="North")
    south = await make_vendor(db_session, name="South")
    north.contact_email = "orders@north.example"
    customer = await make_customer(db_session)
    made = await make_order(
        db_session,
        customer_id=customer.id,
        inclusive=inclusive,
        parts=[
            PartSpec(
                north,
                [LineSpec("N-TEE", 2500, quantity=3, discount=751), LineSpec("N-CAP", 999, 1)],
                shipping=490,
                shipping_waived=490,
            ),
            PartSpec(south, [LineSpec("S-MUG", 1234, quantity=1, rate_bp=700)], shipping=590),
        ],
    )

    issued = await invoices.issue_invoices(
        db_session, order_id=made.order.id, now=datetime.now(UTC)
    )

    assert [invoice.vendor_id for invoice in issued] == sorted([north.id, south.id])
    by_vendor = {invoice.vendor_id: invoice for invoice in issued}
    for vendor in (north, south):
        invoice = by_vendor[vendor.id]
        part = made.parts[vendor.id]
        assert invoice.kind == InvoiceKind.INVOICE
        assert invoice.number == 1  # each vendor's own sequence
        assert invoice.total == part.total
        assert invoice.tax == part.tax
        assert_adds_up(invoice)
        document = invoice.document
        assert document["number"] == f"{invoices.number_prefix(vendor.slug)}-INV-000001"
        assert document["seller"]["name"] == vendor.name
        assert document["buyer"]["name"] == "Ada Buyer"
        assert document["buyer"]["country"] == "DE"
        assert document["buyer"]["contact_email"] == "ada@example.com"
        assert document["currency"] == "EUR"
        assert document["order_id"] == str(made.order.id)
        assert document["issue_date"] == invoice.issued_at.date().isoformat()
    assert sum(invoice.total for invoice in issued) == made.order.grand_total
    assert by_vendor[north.id].document["seller"]["contact_email"] == "orders@north.example"
    assert by_vendor[north.id].document["shipping"]["discount"] == 490
    assert [line["sku"] for line in by_vendor[north.id].document["lines"]] == ["N-CAP", "N-TEE"]


async def test_issuing_again_returns_the_same_invoices(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    customer = await make_customer(db_session)
    made = await make_order(
        db_session, customer_id=customer.id, parts=[PartSpec(vendor, [LineSpec("A", 1000)])]
    )

    first = await invoices.issue_invoices(db_session, order_id=made.order.id, now=datetime.now(UTC))
    again = await invoices.issue_invoices(db_session, order_id=made.order.id, now=datetime.now(UTC))

    assert [(i.id, i.number) for i in again] == [(i.id, i.number) for i in first]
    count = await db_session.scalar(
        select(InvoiceSequence.next_number).where(
            InvoiceSequence.vendor_id == vendor.id, InvoiceSequence.kind == InvoiceKind.INVOICE
        )
    )
    assert count == 2
    second_order = await make_order(
        db_session, customer_id=customer.id, parts=[PartSpec(vendor, [LineSpec("B", 500)])]
    )
    [second] = await invoices.issue_invoices(
        db_session, order_id=second_order.order.id, now=datetime.now(UTC)
    )
    assert second.number == 2
    assert second.document["number"].endswith("-INV-000002")


async def test_an_unpaid_order_has_no_invoice(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    made = await make_order(
        db_session,
        customer_id=None,
        status=OrderStatus.AWAITING_PAYMENT,
        parts=[PartSpec(vendor, [LineSpec("A", 1000)])],
    )
    with pytest.raises(invoices.OrderNotInvoiceable):
        await invoices.issue_invoices(db_session, order_id=made.order.id, now=datetime.now(UTC))
    with pytest.raises(invoices.OrderNotFound):
        await invoices.issue_invoices(db_session, order_id=uuid.uuid4(), now=datetime.now(UTC))


@pytest.fixture
async def race_engine(fresh_database_url: str) -> AsyncIterator[AsyncEngine]:
    # NullPool: every concurrent transaction has a connection of its own, none waits for one.
    engine = create_async_engine(fresh_database_url, poolclass=NullPool)
    yield engine
    await engine.dispose()


class Abandoned(Exception):
    """Raised inside a transaction to roll it back after it issued an invoice."""


async def test_numbers_stay_gapless_under_concurrency_and_rollbacks(
    race_engine: AsyncEngine,
) -> None:
    sessionmaker = async_sessionmaker(race_engine, expire_on_commit=False)
    async with sessionmaker.begin() as session:
        vendor = await make_vendor(session)
        customer = await make_customer(session)
        orders = [
            (
                await make_order(
                    session,
                    customer_id=customer.id,
                    parts=[PartSpec(vendor, [LineSpec(f"SKU-{n}", 1000 + n)])],
                )
            ).order.id
            for n in range(25)
        ]

    async def issue(order_id: uuid.UUID, *, abandon: bool = False) -> None:
        try:
            async with sessionmaker.begin() as session:
                await invoices.issue_invoices(session, order_id=order_id, now=datetime.now(UTC))
                if abandon:
                    raise Abandoned()
        except Abandoned:
            pass

    committed, abandoned = orders[:20], orders[20:]
    # 20 orders issued concurrently, 5 of them twice at once, and 5 more whose transactions
    # take a number and then roll back.
    await asyncio.gather(
        *(issue(order_id) for order_id in committed),
        *(issue(order_id) for order_id in committed[:5]),
        *(issue(order_id, abandon=True) for order_id in abandoned),
    )
    async with sessionmaker() as session:
        numbers = {
            order_id: number
            for order_id, number in (
                await session.execute(
                    select(Invoice.order_id, Invoice.number).where(Invoice.vendor_id == vendor.id)
                )
            ).all()
        }
    assert sorted(numbers.values()) == list(range(1, 21))
    assert set(numbers) == set(committed)

    # The rolled-back numbers were given back: the next ones follow on without a gap.
    await asyncio.gather(*(issue(order_id) for order_id in abandoned))
    async with sessionmaker() as session:
        all_numbers = (
            await session.scalars(select(Invoice.number).where(Invoice.vendor_id == vendor.id))
        ).all()
        next_number = await session.scalar(
            select(InvoiceSequence.next_number).where(InvoiceSequence.vendor_id == vendor.id)
        )
    assert sorted(all_numbers) == list(range(1, 26))
    assert next_number == 26


# --- credit notes --------------------------------------------------------------------------------


async def test_credit_notes_for_refunds(db_session: AsyncSession) -> None:
    north = await make_vendor(db_session)
    south = await make_vendor(db_session)
    customer = await make_customer(db_session)
    made = await make_order(
        db_session,
        customer_id=customer.id,
        parts=[
            PartSpec(north, [LineSpec("N-TEE", 2500, quantity=3, discount=300)]),
            PartSpec(south, [LineSpec("S-MUG", 1200, quantity=1)]),
        ],
    )
    tee = next(line for line in made.lines if line.sku == "N-TEE")
    # One of three tees back: a third of its total, the rest to the largest remainder.
    one_tee = tee.total // 3
    returned = await make_refund(db_session, made, amount=one_tee, lines=[(tee, 1, one_tee)])

    # No invoice was issued yet: the credit note issues the one it corrects first.
    [note] = await invoices.issue_credit_note(
        db_session, refund_id=returned.id, now=datetime.now(UTC)
    )

    assert note.kind == InvoiceKind.CREDIT_NOTE
    assert (note.vendor_id, note.number, note.refund_id) == (north.id, 1, returned.id)
    assert note.total == one_tee
    assert note.document["number"] == f"{invoices.number_prefix(north.slug)}-CN-000001"
    assert_adds_up(note)
    [line] = note.document["lines"]
    assert (line["sku"], line["quantity"], line["total"]) == ("N-TEE", 1, one_tee)
    assert line["tax"] == round_half_up(one_tee * tee.tax, tee.total)
    north_invoice = next(
        invoice
        for invoice in await invoices.list_for_order(db_session, order_id=made.order.id)
        if invoice.kind == InvoiceKind.INVOICE and invoice.vendor_id == north.id
    )
    assert note.document["corrects"] == {
        "invoice_id": str(north_invoice.id),
        "number": north_invoice.document["number"],
        "issue_date": north_invoice.document["issue_date"],
    }
    assert note.document["refund_id"] == str(returned.id)
    assert note.document["refunded_amount"] == one_tee

    again = await invoices.issue_credit_note(
        db_session, refund_id=returned.id, now=datetime.now(UTC)
    )
    assert [n.id for n in again] == [note.id]

    # Goodwill over the whole order: split by the parts' totals, each vendor's next number.
    goodwill = await make_refund(db_session, made, amount=1001, source=RefundSource.GOODWILL)
    notes = await invoices.issue_credit_note(
        db_session, refund_id=goodwill.id, now=datetime.now(UTC)
    )
    assert {n.vendor_id: n.number for n in notes} == {north.id: 2, south.id: 1}
    assert sum(n.total for n in notes) == 1001
    expected = split_by_weight(1001, {v: p.total for v, p in made.parts.items()})
    assert {n.vendor_id: n.total for n in notes} == expected
    for n in notes:
        assert_adds_up(n)
        assert n.document["lines"] == []
        assert n.document["adjustment"]["total"] == n.total
        assert n.document["adjustment"]["description"] == "Returned <damaged>"

    # A refund of one vendor's part goes to that vendor alone.
    south_only = await make_refund(db_session, made, amount=500, vendor_id=south.id)
    [south_note] = await invoices.issue_credit_note(
        db_session, refund_id=south_only.id, now=datetime.now(UTC)
    )
    assert (south_note.vendor_id, south_note.number, south_note.total) == (south.id, 2, 500)
    assert_adds_up(south_note)


async def test_only_a_succeeded_refund_gets_a_credit_note(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session)
    made = await make_order(
        db_session, customer_id=None, parts=[PartSpec(vendor, [LineSpec("A", 1000)])]
    )
    pending = await make_refund(db_session, made, amount=100, status=RefundStatus.PENDING)
    with pytest.raises(invoices.RefundNotSucceeded):
        await invoices.issue_credit_note(db_session, refund_id=pending.id, now=datetime.now(UTC))
    with pytest.raises(invoices.RefundNotFound):
        await invoices.issue_credit_note(db_session, refund_id=uuid.uuid4(), now=datetime.now(UTC))


# --- rendering -----------------------------------------------------------------------------------


async def test_html_escapes_and_pdf_carries_the_number(db_session: AsyncSession) -> None:
    vendor = await make_vendor(db_session, name="Tools & <Co>")
    made = await make_order(
        db_session,
        customer_id=None,
        parts=[
            PartSpec(
                vendor,
                [LineSpec("X-1", 1999, title='<script>alert("x")</script> Łódź mug €')],
            )
        ],
    )
    [invoice] = await invoices.issue_invoices(
        db_session, order_id=made.order.id, now=datetime.now(UTC)
    )
    number = invoice.document["number"]

    html = invoices.render_html(invoice)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Łódź mug €" in html
    assert "Tools &amp; &lt;Co&gt;" in html
    assert number in html
    assert invoices.as_json(invoice)["document"]["lines"][0]["title"].startswith("<script>")

    pdf = invoices.render_pdf(invoice)
    assert pdf.startswith(b"%PDF")
    text = pdf_text(pdf)
    assert number.encode() in text
    # Core fonts: Windows-1252 kept, other letters as their closest ASCII.
    assert "<script>alert".encode("cp1252") in text
    assert "Lódz mug €".encode("cp1252") in text
    assert invoices.render_pdf(invoice) == pdf  # the same invoice, the same bytes


# --- the API -------------------------------------------------------------------------------------


@pytest.fixture
async def api(app: FastAPI, client: httpx.AsyncClient) -> httpx.AsyncClient:
    """The HTTP client on the app (which serves the invoice routes)."""
    return client


async def test_who_may_read_an_invoice(api: httpx.AsyncClient, db_session: AsyncSession) -> None:
    shopper = await sign_up(api, db_session)
    stranger = await sign_up(api, db_session)
    staff = await sign_up(api, db_session)
    other_staff = await sign_up(api, db_session)
    operator = await sign_up(api, db_session, role=PlatformRole.OPERATIONS)
    north = await make_vendor(db_session, owner_id=uuid.UUID(other_staff.id))
    south = await make_vendor(db_session, owner_id=uuid.UUID(other_staff.id))
    db_session.add(
        VendorMembership(vendor_id=north.id, user_id=uuid.UUID(staff.id), role=VendorRole.STAFF)
    )
    made = await make_order(
        db_session,
        customer_id=uuid.UUID(shopper.id),
        parts=[
            PartSpec(north, [LineSpec("N-1", 2500, quantity=2)]),
            PartSpec(south, [LineSpec("S-1", 1200)]),
        ],
    )
    issued = {
        i.vendor_id: i
        for i in await invoices.issue_invoices(
            db_session, order_id=made.order.id, now=datetime.now(UTC)
        )
    }
    refund = await make_refund(db_session, made, amount=700, vendor_id=north.id)
    [note] = await invoices.issue_credit_note(
        db_session, refund_id=refund.id, now=datetime.now(UTC)
    )
    north_invoice, south_invoice = issued[north.id], issued[south.id]

    # The shopper: the order's invoices and credit note, JSON and PDF.
    listed = await api.get(f"/orders/{made.order.id}/invoices", headers=shopper.headers)
    assert listed.status_code == 200, listed.text
    assert sorted((i["kind"], i["vendor_id"]) for i in listed.json()["items"]) == sorted(
        [("invoice", str(north.id)), ("invoice", str(south.id)), ("credit_note", str(north.id))]
    )
    read = await api.get(f"/invoices/{north_invoice.id}", headers=shopper.headers)
    assert read.status_code == 200, read.text
    body = read.json()
    assert body["number"] == north_invoice.document["number"]
    assert (body["subtotal"]["amount"], body["tax"]["amount"], body["total"]["amount"]) == (
        north_invoice.subtotal,
        north_invoice.tax,
        north_invoice.total,
    )
    assert body["total"]["amount"] == made.parts[north.id].total
    assert body["document"]["totals"]["total"] == body["total"]["amount"]
    pdf = await api.get(f"/invoices/{note.id}/pdf", headers=shopper.headers)
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == (
        f'attachment; filename="{note.document["number"]}.pdf"'
    )
    assert pdf.content.startswith(b"%PDF")
    assert note.document["number"].encode() in pdf_text(pdf.content)

    # Another customer: nothing exists.
    for path in (
        f"/orders/{made.order.id}/invoices",
        f"/invoices/{north_invoice.id}",
        f"/invoices/{north_invoice.id}/pdf",
        f"/invoices/{uuid.uuid4()}",
    ):
        response = await api.get(path, headers=stranger.headers)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"

    # The vendor's staff: its own invoices only.
    page = await api.get(f"/vendors/{north.id}/invoices", headers=staff.headers)
    assert page.status_code == 200, page.text
    assert {i["id"] for i in page.json()["items"]} == {str(north_invoice.id), str(note.id)}
    notes_only = await api.get(
        f"/vendors/{north.id}/invoices", params={"kind": "credit_note"}, headers=staff.headers
    )
    assert [i["id"] for i in notes_only.json()["items"]] == [str(note.id)]
    first = await api.get(f"/vendors/{north.id}/invoices?limit=1", headers=staff.headers)
    cursor = first.json()["next_cursor"]
    assert cursor is not None
    rest = await api.get(
        f"/vendors/{north.id}/invoices",
        params={"limit": 1, "cursor": cursor},
        headers=staff.headers,
    )
    assert rest.json()["next_cursor"] is None
    assert {first.json()["items"][0]["id"], rest.json()["items"][0]["id"]} == {
        str(north_invoice.id),
        str(note.id),
    }
    bad_cursor = await api.get(
        f"/vendors/{north.id}/invoices", params={"cursor": "nope"}, headers=staff.headers
    )
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["code"] == "invalid_cursor"
    own = await api.get(f"/vendors/{north.id}/invoices/{north_invoice.id}", headers=staff.headers)
    assert own.status_code == 200
    own_pdf = await api.get(
        f"/vendors/{north.id}/invoices/{north_invoice.id}/pdf", headers=staff.headers
    )
    assert own_pdf.status_code == 200
    assert own_pdf.content.startswith(b"%PDF")
    for path in (
        f"/vendors/{north.id}/invoices/{south_invoice.id}",  # another vendor's invoice
        f"/vendors/{north.id}/invoices/{south_invoice.id}/pdf",
        f"/vendors/{south.id}/invoices",  # not staff there
        f"/vendors/{south.id}/invoices/{south_invoice.id}",
    ):
        response = await api.get(path, headers=staff.headers)
        assert response.status_code == 404, path
    # The shopper is no vendor's staff.
    response = await api.get(f"/vendors/{north.id}/invoices", headers=shopper.headers)
    assert response.status_code == 404

    # Operations staff read any invoice; a shopper may not use that route.
    admin = await api.get(f"/admin/invoices/{south_invoice.id}", headers=operator.headers)
    assert admin.status_code == 200
    assert admin.json()["id"] == str(south_invoice.id)
    admin_pdf = await api.get(f"/admin/invoices/{south_invoice.id}/pdf", headers=operator.headers)
    assert admin_pdf.status_code == 200
    missing = await api.get(f"/admin/invoices/{uuid.uuid4()}", headers=operator.headers)
    assert missing.status_code == 404
    assert missing.json()["code"] == "invoice_not_found"
    forbidden = await api.get(f"/admin/invoices/{south_invoice.id}", headers=shopper.headers)
    assert forbidden.status_code == 403


async def test_invoice_routes_declare_access(api: httpx.AsyncClient, app: FastAPI) -> None:
    schema = app.openapi()
    access = {
        (path, method): operation["x-access"]["kind"]
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "invoices" in path
    }
    assert access == {
        ("/orders/{order_id}/invoices", "get"): "authenticated",
        ("/invoices/{invoice_id}", "get"): "authenticated",
        ("/invoices/{invoice_id}/pdf", "get"): "authenticated",
        ("/vendors/{vendor_id}/invoices", "get"): "vendor",
        ("/vendors/{vendor_id}/invoices/{invoice_id}", "get"): "vendor",
        ("/vendors/{vendor_id}/invoices/{invoice_id}/pdf", "get"): "vendor",
        ("/admin/invoices/{invoice_id}", "get"): "role",
        ("/admin/invoices/{invoice_id}/pdf", "get"): "role",
    }
    for path, _ in access:
        concrete = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        response = await api.get(concrete)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"


# --- a real checkout -----------------------------------------------------------------------------


@pytest.mark.slow
async def test_invoices_of_a_real_checkout_add_up_to_what_was_paid(
    fresh_database_url: str, temporal_env: WorkflowEnvironment, temporal_address: str
) -> None:
    from tests.order_harness import platform

    async with platform(fresh_database_url, temporal_env.client, temporal_address) as p:
        account = await p.shopper()
        await p.add(account, p.shop.tee, 3)
        await p.add(account, p.shop.mug, 1)
        await p.use_coupon(account)
        response = await p.checkout(account, "tok_ok")
        assert response.status_code == 201, response.text
        order_id = uuid.UUID(response.json()["order_id"])
        order = await p.wait_for(str(order_id), "confirmed")

        async with p.sessionmaker.begin() as session:
            issued = await invoices.issue_invoices(
                session, order_id=order_id, now=datetime.now(UTC)
            )
        async with p.sessionmaker() as session:
            parts = (
                await session.scalars(
                    select(OrderVendorPart).where(OrderVendorPart.order_id == order_id)
                )
            ).all()
        assert {i.vendor_id: i.total for i in issued} == {p.vendor_id: p.total for p in parts}
        assert sum(i.total for i in issued) == order.grand_total
        assert sum(i.tax for i in issued) == order.tax_total
        for invoice in issued:
            assert_adds_up(invoice)
            assert invoice.document["seller"]["contact_email"].startswith("orders@")
            assert invoice.document["buyer"]["name"] == "Ada Buyer"
            assert invoices.render_pdf(invoice).startswith(b"%PDF")
