"""Invoices and credit notes: one invoice per vendor part of a paid order, one credit note per
vendor share of a succeeded refund, numbered without gaps and frozen when issued.

Numbers
    Each vendor has its own sequence per kind (``invoice_sequences``): invoices 1, 2, 3, ...
    and credit notes 1, 2, 3, ... The number is taken under the sequence row's lock
    (``SELECT ... FOR UPDATE``) in the transaction that stores the document, and the sequence
    moves on in that same transaction; a transaction that rolls back gives its number back
    with its document, so no number is ever skipped or used twice. Issuing is idempotent:
    after the lock, an invoice already stored for the (order, vendor), or a credit note for
    the (refund, vendor), is returned as it is (unique indexes guard the same). Sequence rows
    are locked in vendor id order, invoices before credit notes, so issuers never deadlock.
    The number shown is ``{PREFIX}-INV-000123`` / ``{PREFIX}-CN-000007``, the prefix being the
    vendor's slug in capitals when the document was issued.

The document
    ``invoices.document`` freezes everything a rendering needs (seller, buyer, lines, shipping,
    totals, currency, the invoice a credit note corrects), so renaming a vendor or editing a
    product never changes an issued invoice. Amounts are integer minor units. For an invoice::

        line.net = line.subtotal - line.discount
        totals.subtotal = sum(line.net) + shipping.amount
        totals.tax = sum(line.tax) + shipping.tax
        totals.total = totals.subtotal + totals.tax    (prices excluding tax)
        totals.total = totals.subtotal                 (prices including tax: the tax is inside)

    and ``totals.total`` is the vendor part's total, what the shopper paid that vendor. A
    credit note follows the same relations with its refunded lines (``line.total`` is what was
    refunded of the line, ``line.tax`` the tax inside it, in proportion to the line's own) and
    an ``adjustment`` for any refunded amount not tied to lines (goodwill, shipping). Credit
    notes store positive amounts: their kind says they are credited.

A refund's share per vendor: its ``vendor_id`` takes it all; else the vendors of its lines
(the amount split in proportion to the lines' amounts, exact when they add up to it); else
every vendor of the order in proportion to its part's total. Splits are by largest remainder,
ties to the smaller vendor id: the same rule as the vendor ledger's.

Rendering: :func:`render_html` (Jinja2, every value autoescaped), :func:`render_pdf` (fpdf2,
from the same HTML's body), :func:`as_json`. The PDF uses the PDF core fonts (no font files
to ship): characters outside Windows-1252 are written as their closest ASCII or ``?`` there,
while the HTML and JSON keep the text exactly.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from fpdf import FPDF
from fpdf.fonts import TextStyle
from jinja2 import DictLoader, Environment, StrictUndefined
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.aftersales import refunds
from commerce.checkout.pricing import round_half_up, split_by_weight
from commerce.errors import Conflict, NotFound
from core import pagination
from core.money import format_money
from models import (
    Invoice,
    InvoiceKind,
    InvoiceSequence,
    Order,
    OrderLine,
    OrderStatus,
    OrderVendorPart,
    Refund,
    RefundLine,
    RefundStatus,
    Vendor,
)

DOCUMENT_FORMAT = 1
NUMBER_WIDTH = 6
KIND_CODES: Mapping[InvoiceKind, str] = {InvoiceKind.INVOICE: "INV", InvoiceKind.CREDIT_NOTE: "CN"}
MAX_PREFIX = 24

#: Statuses of an order that was paid; ``confirmed_at`` says so too, even once cancelled.
PAID: frozenset[OrderStatus] = frozenset(
    {
        OrderStatus.CONFIRMED,
        OrderStatus.PARTIALLY_SHIPPED,
        OrderStatus.SHIPPED,
        OrderStatus.DELIVERED,
        OrderStatus.COMPLETED,
    }
)


# --- errors ------------------------------------------------------------------------------------


class InvoiceNotFound(NotFound):
    code, title = "invoice_not_found", "Invoice not found"


class OrderNotInvoiceable(Conflict):
    code, title = "order_not_invoiceable", "The order has not been paid, so it has no invoice"


class RefundNotFound(NotFound):
    code, title = "refund_not_found", "No such refund"


class RefundNotSucceeded(Conflict):
    code, title = "refund_not_succeeded", "The refund has not succeeded"


class OrderNotFound(NotFound):
    code, title = "order_not_found", "Order not found"


# --- numbers -----------------------------------------------------------------------------------


def number_prefix(slug: str) -> str:
    """``"north-wind"`` -> ``"NORTH-WIND"``: letters and digits in capitals, anything else a
    hyphen, at most 24 characters."""
    prefix = re.sub(r"[^A-Z0-9]+", "-", slug.upper()).strip("-")[:MAX_PREFIX].rstrip("-")
    return prefix or "V"


def display_number(prefix: str, kind: InvoiceKind, number: int) -> str:
    """``("NORTH", invoice, 123)`` -> ``"NORTH-INV-000123"``."""
    return f"{prefix}-{KIND_CODES[kind]}-{number:0{NUMBER_WIDTH}d}"


def number_of(invoice: Invoice) -> str:
    """The number as issued (frozen in the document)."""
    return str(invoice.document.get("number") or f"{KIND_CODES[invoice.kind]}-{invoice.number}")


async def _take_number(session: AsyncSession, *, vendor_id: uuid.UUID, kind: InvoiceKind) -> int:
    """Lock the vendor's sequence for ``kind`` until the transaction ends; its next number."""
    await session.execute(
        pg_insert(InvoiceSequence)
        .values(vendor_id=vendor_id, kind=kind, next_number=1)
        .on_conflict_do_nothing(index_elements=[InvoiceSequence.vendor_id, InvoiceSequence.kind])
    )
    number = await session.scalar(
        select(InvoiceSequence.next_number)
        .where(InvoiceSequence.vendor_id == vendor_id, InvoiceSequence.kind == kind)
        .with_for_update()
    )
    assert number is not None
    return int(number)


async def _store(session: AsyncSession, invoice: Invoice) -> Invoice:
    """Store ``invoice`` under the number taken and move its sequence on (the same
    transaction, still under the lock)."""
    session.add(invoice)
    await session.flush()
    await session.execute(
        update(InvoiceSequence)
        .where(
            InvoiceSequence.vendor_id == invoice.vendor_id,
            InvoiceSequence.kind == invoice.kind,
        )
        .values(next_number=invoice.number + 1)
        .execution_options(synchronize_session=False)
    )
    return invoice


# --- splitting money ---------------------------------------------------------------------------


def _tax_inside(gross: int, *, tax: int, of_total: int) -> int:
    """The tax inside ``gross``, in proportion to ``tax`` inside ``of_total``, half up."""
    if gross <= 0 or of_total <= 0 or tax <= 0:
        return 0
    return round_half_up(gross * tax, of_total)


# --- the document ------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _seller(vendor: Vendor) -> dict[str, Any]:
    return {
        "vendor_id": str(vendor.id),
        "name": vendor.name,
        "slug": vendor.slug,
        "contact_email": vendor.contact_email,
    }


def _buyer(order: Order) -> dict[str, Any]:
    address = order.shipping_address or {}
    buyer: dict[str, Any] = {
        key: address.get(key)
        for key in ("name", "company", "line1", "line2", "city", "region", "postal_code")
    }
    buyer["country"] = address.get("country")
    buyer["contact_email"] = order.contact_email
    return buyer


def _line(line: OrderLine) -> dict[str, Any]:
    return {
        "order_line_id": str(line.id),
        "sku": line.sku,
        "title": line.title,
        "options": dict(line.options or {}),
        "quantity": line.quantity,
        "unit_price": line.unit_price,
        "subtotal": line.subtotal,
        "discount": line.discount,
        "net": line.subtotal - line.discount,
        "tax_rate_bp": line.tax_rate_bp,
        "tax": line.tax,
        "total": line.total,
    }


def _common(
    *,
    kind: InvoiceKind,
    prefix: str,
    number: int,
    issued_at: datetime,
    order: Order,
    vendor: Vendor,
) -> dict[str, Any]:
    return {
        "format": DOCUMENT_FORMAT,
        "kind": kind.value,
        "number": display_number(prefix, kind, number),
        "sequence_number": number,
        "issued_at": issued_at.isoformat(),
        "issue_date": issued_at.date().isoformat(),
        "order_id": str(order.id),
        "order_placed_at": _iso(order.created_at),
        "currency": order.currency,
        "prices_include_tax": order.prices_include_tax,
        "seller": _seller(vendor),
        "buyer": _buyer(order),
    }


def invoice_document(
    *,
    prefix: str,
    number: int,
    issued_at: datetime,
    order: Order,
    vendor: Vendor,
    part: OrderVendorPart,
    lines: Sequence[OrderLine],
) -> dict[str, Any]:
    """The frozen invoice for one vendor part (see the module docstring for the relations)."""
    rows = [_line(line) for line in lines]
    items_discount = sum(row["discount"] for row in rows)
    items_net = sum(row["net"] for row in rows)
    items_tax = sum(row["tax"] for row in rows)
    shipping_tax = part.shipping_tax
    subtotal = items_net + part.shipping_amount
    tax = items_tax + shipping_tax
    document = _common(
        kind=InvoiceKind.INVOICE,
        prefix=prefix,
        number=number,
        issued_at=issued_at,
        order=order,
        vendor=vendor,
    )
    document.update(
        {
            "lines": rows,
            "shipping": {
                "method": part.shipping_method_name,
                "code": part.shipping_method_code,
                "amount": part.shipping_amount,
                # What a free-shipping promotion waived (the part's discount beyond the lines').
                "discount": max(0, part.discount - items_discount),
                "tax": shipping_tax,
                "total": part.shipping_amount + (0 if order.prices_include_tax else shipping_tax),
            },
            "totals": {
                "items_subtotal": sum(row["subtotal"] for row in rows),
                "discount": part.discount,
                "items_net": items_net,
                "shipping": part.shipping_amount,
                "subtotal": subtotal,
                "tax": tax,
                "total": subtotal + (0 if order.prices_include_tax else tax),
            },
        }
    )
    return document


def credit_note_document(
    *,
    prefix: str,
    number: int,
    issued_at: datetime,
    order: Order,
    vendor: Vendor,
    part: OrderVendorPart | None,
    refund: Refund,
    share: int,
    refunded: Sequence[tuple[OrderLine, RefundLine]],
    corrects: Invoice | None,
) -> dict[str, Any]:
    """The frozen credit note for ``share`` of ``refund`` given back by ``vendor``."""
    inclusive = order.prices_include_tax
    lines_amount = sum(refund_line.amount for _, refund_line in refunded)
    if share <= lines_amount:
        # Exact when the lines add up to the share (the usual case); scaled down otherwise.
        amounts = split_by_weight(
            share, {line.id: refund_line.amount for line, refund_line in refunded}
        )
        adjustment_total = 0
    else:
        amounts = {line.id: refund_line.amount for line, refund_line in refunded}
        adjustment_total = share - lines_amount
    rows: list[dict[str, Any]] = []
    for line, refund_line in refunded:
        amount = amounts[line.id]
        tax = _tax_inside(amount, tax=line.tax, of_total=line.total)
        rows.append(
            {
                "order_line_id": str(line.id),
                "sku": line.sku,
                "title": line.title,
                "options": dict(line.options or {}),
                "quantity": refund_line.quantity,
                "unit_price": line.unit_price,
                "tax_rate_bp": line.tax_rate_bp,
                "net": amount if inclusive else amount - tax,
                "tax": tax,
                "total": amount,
            }
        )
    adjustment: dict[str, Any] | None = None
    if adjustment_total:
        tax = (
            _tax_inside(adjustment_total, tax=part.tax, of_total=part.total)
            if part is not None
            else 0
        )
        adjustment = {
            "description": refund.reason,
            "net": adjustment_total if inclusive else adjustment_total - tax,
            "tax": tax,
            "total": adjustment_total,
        }
    subtotal = sum(row["net"] for row in rows) + (adjustment["net"] if adjustment else 0)
    tax_total = sum(row["tax"] for row in rows) + (adjustment["tax"] if adjustment else 0)
    document = _common(
        kind=InvoiceKind.CREDIT_NOTE,
        prefix=prefix,
        number=number,
        issued_at=issued_at,
        order=order,
        vendor=vendor,
    )
    document.update(
        {
            "refund_id": str(refund.id),
            "refund_source": refund.source.value,
            "reason": refund.reason,
            "refunded_amount": share,
            "corrects": (
                {
                    "invoice_id": str(corrects.id),
                    "number": number_of(corrects),
                    "issue_date": corrects.document.get("issue_date"),
                }
                if corrects is not None
                else None
            ),
            "lines": rows,
            "adjustment": adjustment,
            "totals": {
                "subtotal": subtotal,
                "tax": tax_total,
                "total": subtotal + (0 if inclusive else tax_total),
            },
        }
    )
    assert document["totals"]["total"] == share
    return document


# --- issuing -----------------------------------------------------------------------------------


async def _order(session: AsyncSession, order_id: uuid.UUID) -> Order:
    order = await session.scalar(
        select(Order).where(Order.id == order_id).execution_options(populate_existing=True)
    )
    if order is None:
        raise OrderNotFound(f"No order {order_id}.")
    return order


async def _parts(session: AsyncSession, order_id: uuid.UUID) -> list[OrderVendorPart]:
    rows = await session.scalars(
        select(OrderVendorPart)
        .where(OrderVendorPart.order_id == order_id)
        .order_by(OrderVendorPart.vendor_id)
    )
    return list(rows.all())


async def _vendors(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Vendor]:
    rows = await session.scalars(select(Vendor).where(Vendor.id.in_(list(ids))))
    return {vendor.id: vendor for vendor in rows.all()}


async def _order_invoice(
    session: AsyncSession, *, order_id: uuid.UUID, vendor_id: uuid.UUID
) -> Invoice | None:
    return await session.scalar(
        select(Invoice).where(
            Invoice.order_id == order_id,
            Invoice.vendor_id == vendor_id,
            Invoice.kind == InvoiceKind.INVOICE,
        )
    )


async def issue_invoices(
    session: AsyncSession, *, order_id: uuid.UUID, now: datetime
) -> list[Invoice]:
    """One invoice per vendor part of a paid order, in vendor id order; idempotent (the
    invoices already issued are returned as they are). Never commits: the caller's
    transaction holds each vendor's invoice sequence until it ends, so keep it short.

    Raises ``OrderNotFound``, or ``OrderNotInvoiceable`` for an order never paid.
    """
    await session.flush()  # the caller's pending changes (autoflush is off) count
    order = await _order(session, order_id)
    if order.confirmed_at is None and order.status not in PAID:
        raise OrderNotInvoiceable(f"The order is {order.status.value}.")
    parts = await _parts(session, order_id)
    found = await session.scalars(
        select(Invoice).where(Invoice.order_id == order_id, Invoice.kind == InvoiceKind.INVOICE)
    )
    issued = {invoice.vendor_id: invoice for invoice in found.all()}
    missing = [part for part in parts if part.vendor_id not in issued]
    if missing:
        vendors = await _vendors(session, [part.vendor_id for part in missing])
        lines = await session.scalars(
            select(OrderLine)
            .where(OrderLine.order_id == order_id)
            .order_by(OrderLine.vendor_id, OrderLine.sku, OrderLine.id)
        )
        by_vendor: dict[uuid.UUID, list[OrderLine]] = {}
        for line in lines.all():
            by_vendor.setdefault(line.vendor_id, []).append(line)
        for part in missing:  # in vendor id order: the lock order
            number = await _take_number(session, vendor_id=part.vendor_id, kind=InvoiceKind.INVOICE)
            again = await _order_invoice(session, order_id=order_id, vendor_id=part.vendor_id)
            if again is not None:  # another transaction issued it while we waited
                issued[part.vendor_id] = again
                continue
            vendor = vendors[part.vendor_id]
            issued_at = now
            document = invoice_document(
                prefix=number_prefix(vendor.slug),
                number=number,
                issued_at=issued_at,
                order=order,
                vendor=vendor,
                part=part,
                lines=by_vendor.get(part.vendor_id, []),
            )
            totals = document["totals"]
            issued[part.vendor_id] = await _store(
                session,
                Invoice(
                    id=uuid.uuid4(),
                    vendor_id=part.vendor_id,
                    kind=InvoiceKind.INVOICE,
                    number=number,
                    order_id=order_id,
                    refund_id=None,
                    currency=order.currency,
                    subtotal=totals["subtotal"],
                    tax=totals["tax"],
                    total=totals["total"],
                    document=document,
                    issued_at=issued_at,
                ),
            )
    return [issued[part.vendor_id] for part in parts if part.vendor_id in issued]


async def issue_credit_note(
    session: AsyncSession, *, refund_id: uuid.UUID, now: datetime
) -> list[Invoice]:
    """One credit note per vendor share of a SUCCEEDED refund, in vendor id order, each
    correcting that vendor's invoice of the order (issued first if it was not yet).
    Idempotent. Raises ``RefundNotFound`` or ``RefundNotSucceeded``."""
    await session.flush()
    refund = await session.scalar(
        select(Refund).where(Refund.id == refund_id).execution_options(populate_existing=True)
    )
    if refund is None:
        raise RefundNotFound(f"No refund {refund_id}.")
    if refund.status != RefundStatus.SUCCEEDED:
        raise RefundNotSucceeded(f"The refund is {refund.status.value}.")
    shares = {
        vendor_id: share
        for vendor_id, share in (await refunds.vendor_shares(session, refund)).items()
        if share > 0
    }
    found = await session.scalars(select(Invoice).where(Invoice.refund_id == refund_id))
    issued = {note.vendor_id: note for note in found.all()}
    missing = sorted(vendor_id for vendor_id in shares if vendor_id not in issued)
    if missing:
        order = await _order(session, refund.order_id)
        # Invoice sequences before credit-note sequences: the one lock order of every issuer.
        invoices = {
            invoice.vendor_id: invoice
            for invoice in await issue_invoices(session, order_id=order.id, now=now)
        }
        parts = {part.vendor_id: part for part in await _parts(session, order.id)}
        vendors = await _vendors(session, missing)
        refunded_rows = (
            await session.execute(
                select(OrderLine, RefundLine)
                .join(RefundLine, RefundLine.order_line_id == OrderLine.id)
                .where(RefundLine.refund_id == refund_id)
                .order_by(OrderLine.vendor_id, OrderLine.sku, OrderLine.id)
            )
        ).all()
        for vendor_id in missing:
            number = await _take_number(session, vendor_id=vendor_id, kind=InvoiceKind.CREDIT_NOTE)
            again = await session.scalar(
                select(Invoice).where(
                    Invoice.refund_id == refund_id, Invoice.vendor_id == vendor_id
                )
            )
            if again is not None:
                issued[vendor_id] = again
                continue
            vendor = vendors[vendor_id]
            issued_at = now
            document = credit_note_document(
                prefix=number_prefix(vendor.slug),
                number=number,
                issued_at=issued_at,
                order=order,
                vendor=vendor,
                part=parts.get(vendor_id),
                refund=refund,
                share=shares[vendor_id],
                refunded=[(line, rl) for line, rl in refunded_rows if line.vendor_id == vendor_id],
                corrects=invoices.get(vendor_id),
            )
            totals = document["totals"]
            issued[vendor_id] = await _store(
                session,
                Invoice(
                    id=uuid.uuid4(),
                    vendor_id=vendor_id,
                    kind=InvoiceKind.CREDIT_NOTE,
                    number=number,
                    order_id=order.id,
                    refund_id=refund_id,
                    currency=refund.currency,
                    subtotal=totals["subtotal"],
                    tax=totals["tax"],
                    total=totals["total"],
                    document=document,
                    issued_at=issued_at,
                ),
            )
    return [issued[vendor_id] for vendor_id in sorted(issued)]


# --- reading -----------------------------------------------------------------------------------


async def get(session: AsyncSession, *, invoice_id: uuid.UUID) -> Invoice:
    """Any invoice (operations staff)."""
    invoice = await session.get(Invoice, invoice_id)
    if invoice is None:
        raise InvoiceNotFound(f"No invoice {invoice_id}.")
    return invoice


async def get_for_customer(
    session: AsyncSession, *, invoice_id: uuid.UUID, customer_id: uuid.UUID
) -> Invoice:
    """An invoice of the customer's own order; anyone else's is "not found" (no IDOR)."""
    invoice = await session.scalar(
        select(Invoice)
        .join(Order, Order.id == Invoice.order_id)
        .where(Invoice.id == invoice_id, Order.customer_id == customer_id)
    )
    if invoice is None:
        raise InvoiceNotFound(f"No invoice {invoice_id}.")
    return invoice


async def get_for_vendor(
    session: AsyncSession, *, invoice_id: uuid.UUID, vendor_id: uuid.UUID
) -> Invoice:
    """An invoice the vendor issued; another vendor's is "not found"."""
    invoice = await session.scalar(
        select(Invoice).where(Invoice.id == invoice_id, Invoice.vendor_id == vendor_id)
    )
    if invoice is None:
        raise InvoiceNotFound(f"No invoice {invoice_id}.")
    return invoice


async def list_for_order(session: AsyncSession, *, order_id: uuid.UUID) -> list[Invoice]:
    """Every invoice and credit note of an order, oldest first. The caller checks whose
    order it is."""
    rows = await session.scalars(
        select(Invoice)
        .where(Invoice.order_id == order_id)
        .order_by(Invoice.issued_at, Invoice.kind, Invoice.vendor_id, Invoice.number)
    )
    return list(rows.all())


async def list_for_vendor(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    limit: int,
    cursor: str | None = None,
    kind: InvoiceKind | None = None,
) -> pagination.Page[Invoice]:
    """The vendor's invoices and credit notes, newest issued first, a page at a time."""
    query = select(Invoice).where(Invoice.vendor_id == vendor_id)
    if kind is not None:
        query = query.where(Invoice.kind == kind)
    return await pagination.newest_first(
        session,
        query,
        created_at=Invoice.issued_at,
        id=Invoice.id,
        scope="invoices",
        cursor=cursor,
        limit=limit,
    )


# --- rendering ---------------------------------------------------------------------------------


def as_json(invoice: Invoice) -> dict[str, Any]:
    """The invoice as JSON-ready data: its stored figures and the frozen document."""
    return {
        "id": str(invoice.id),
        "kind": invoice.kind.value,
        "number": number_of(invoice),
        "sequence_number": invoice.number,
        "vendor_id": str(invoice.vendor_id),
        "order_id": str(invoice.order_id),
        "refund_id": str(invoice.refund_id) if invoice.refund_id else None,
        "currency": invoice.currency,
        "subtotal": invoice.subtotal,
        "tax": invoice.tax,
        "total": invoice.total,
        "issued_at": invoice.issued_at.isoformat(),
        "document": invoice.document,
    }


def filename(invoice: Invoice, extension: str = "pdf") -> str:
    """A safe download name: ``NORTH-INV-000001.pdf``."""
    stem = re.sub(r"[^A-Za-z0-9-]+", "-", number_of(invoice)).strip("-") or str(invoice.id)
    return f"{stem}.{extension}"


def _rate(bp: int) -> str:
    whole, fraction = divmod(bp, 100)
    return f"{whole}.{fraction:02d}".rstrip("0").rstrip(".") + "%"


def _options(options: Mapping[str, Any] | None) -> str:
    return ", ".join(f"{key}: {value}" for key, value in sorted((options or {}).items()))


# The body must stay within what fpdf2's write_html draws: headings, paragraphs with <br>,
# tables whose cells hold plain text only (never empty: "-" instead), widths on the first row.
_BODY = """\
<h1>{{ title }} {{ d.number }}</h1>
<p>Issued {{ d.issue_date }}<br>Order {{ d.order_id }}{% if d.order_placed_at %}, \
placed {{ d.order_placed_at[:10] }}{% endif %}{% if corrects %}<br>Corrects invoice \
{{ corrects.number }}{% if corrects.issue_date %} of {{ corrects.issue_date }}{% endif %}\
{% endif %}{% if reason %}<br>Reason: {{ reason }}{% endif %}</p>
<h3>Seller</h3>
<p>{{ d.seller.name }}{% if d.seller.contact_email %}<br>{{ d.seller.contact_email }}{% endif %}</p>
<h3>Bill to</h3>
<p>{% for row in buyer %}{{ row }}{% if not loop.last %}<br>{% endif %}{% endfor %}</p>
<table width="100%">
<tr><th width="14%">SKU</th><th width="32%">Item</th><th width="6%">Qty</th>\
<th width="12%">Unit price</th><th width="12%">{{ discount_label }}</th>\
<th width="7%">Rate</th><th width="17%">{{ amount_label }}</th></tr>
{% for line in lines %}<tr><td>{{ line.sku }}</td><td>{{ line.item }}</td>\
<td align="right">{{ line.quantity }}</td><td align="right">{{ line.unit_price }}</td>\
<td align="right">{{ line.discount }}</td><td align="right">{{ line.rate }}</td>\
<td align="right">{{ line.total }}</td></tr>
{% endfor %}</table>
<table width="100%">
{% for label, value in totals %}<tr>{% if loop.first %}<td width="70%">{{ label }}</td>\
<td width="30%" align="right">{{ value }}</td>{% else %}<td>{{ label }}</td>\
<td align="right">{{ value }}</td>{% endif %}</tr>
{% endfor %}</table>
<p>{{ tax_note }}</p>
"""

_PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }} {{ d.number }}</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 6px; text-align: left; }
td[align=right] { text-align: right; }
</style>
</head>
<body>
{% include "body.html" %}
</body>
</html>
"""

_templates = Environment(
    loader=DictLoader({"body.html": _BODY, "page.html": _PAGE}),
    autoescape=True,
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)
_body_template = _templates.get_template("body.html")
_page_template = _templates.get_template("page.html")


def _context(document: Mapping[str, Any]) -> dict[str, Any]:
    currency = document["currency"]
    credit = document["kind"] == InvoiceKind.CREDIT_NOTE.value
    inclusive = bool(document.get("prices_include_tax"))

    def money(amount: int) -> str:
        return format_money(int(amount), currency)

    lines = []
    for line in document.get("lines", []):
        options = _options(line.get("options"))
        lines.append(
            {
                "sku": line.get("sku") or "-",
                "item": f"{line.get('title') or '-'}" + (f" ({options})" if options else ""),
                "quantity": line.get("quantity", 0),
                "unit_price": money(line.get("unit_price", 0)),
                "discount": money(line.get("discount", 0)) if not credit else money(line["tax"]),
                "rate": _rate(int(line.get("tax_rate_bp", 0))),
                "total": money(line.get("total", 0)),
            }
        )
    totals_doc = document["totals"]
    totals: list[tuple[str, str]] = []
    if credit:
        adjustment = document.get("adjustment")
        if adjustment:
            totals.append(
                (f"Adjustment: {adjustment.get('description') or '-'}", money(adjustment["total"]))
            )
        totals += [
            ("Subtotal credited", money(totals_doc["subtotal"])),
            ("Tax credited" + (" (included)" if inclusive else ""), money(totals_doc["tax"])),
            ("Total credited", money(totals_doc["total"])),
        ]
    else:
        shipping = document.get("shipping") or {}
        totals += [
            ("Items", money(totals_doc["items_subtotal"])),
            ("Discounts", money(-int(totals_doc["discount"]))),
            (f"Shipping ({shipping.get('method') or '-'})", money(totals_doc["shipping"])),
            ("Subtotal", money(totals_doc["subtotal"])),
            ("Tax" + (" (included)" if inclusive else ""), money(totals_doc["tax"])),
            ("Total", money(totals_doc["total"])),
        ]
    buyer = document.get("buyer") or {}
    place = " ".join(str(buyer[key]) for key in ("postal_code", "city") if buyer.get(key))
    buyer_rows = [
        str(value)
        for value in (
            buyer.get("name"),
            buyer.get("company"),
            buyer.get("line1"),
            buyer.get("line2"),
            place,
            buyer.get("region"),
            buyer.get("country"),
            buyer.get("contact_email"),
        )
        if value
    ] or ["-"]
    return {
        "d": document,
        "title": "Credit note" if credit else "Invoice",
        "corrects": document.get("corrects"),
        "reason": document.get("reason"),
        "buyer": buyer_rows,
        "lines": lines,
        "totals": totals,
        "discount_label": "Tax" if credit else "Discount",
        "amount_label": "Credited" if credit else "Total",
        "tax_note": (
            "Prices include tax." if inclusive else "Prices exclude tax; tax is added per line."
        )
        + (" All amounts are credited to the buyer." if credit else ""),
    }


def _render_body(invoice: Invoice) -> str:
    return _body_template.render(**_context(invoice.document))


def render_html(invoice: Invoice) -> str:
    """The invoice as a standalone HTML page; every value is escaped."""
    context = _context(invoice.document)
    return _page_template.render(**context)


_PDF_ENCODING = "windows-1252"
# Latin letters that Unicode does not decompose into a base letter and a mark.
_UNDECOMPOSABLE = {
    "Ł": "L",
    "ł": "l",
    "Đ": "D",
    "đ": "d",
    "Ħ": "H",
    "ħ": "h",
    "\u0131": "i",
    "ŧ": "t",
}


def _pdf_text(text: str) -> str:
    """What the PDF core fonts can draw: Windows-1252 as it is, anything else as its ASCII
    decomposition (``ł`` -> ``l``) or ``?``."""
    out: list[str] = []
    for char in text:
        try:
            char.encode(_PDF_ENCODING)
            out.append(char)
        except UnicodeEncodeError:
            plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
            out.append(plain or _UNDECOMPOSABLE.get(char, "?"))
    return "".join(out)


_PDF_STYLES = {
    "h1": TextStyle(font_style="B", font_size_pt=16, color="#222222", b_margin=2),
    "h3": TextStyle(font_style="B", font_size_pt=10, color="#222222", t_margin=4, b_margin=1),
}


def render_pdf(invoice: Invoice) -> bytes:
    """The invoice as a PDF, drawn from the HTML page's body. The same invoice always gives
    the same bytes (the PDF's dates are the issue time)."""
    pdf = FPDF(format="A4")
    pdf.core_fonts_encoding = _PDF_ENCODING
    pdf.set_title(_pdf_text(number_of(invoice)))
    pdf.set_author(_pdf_text(str(invoice.document.get("seller", {}).get("name") or "")))
    pdf.set_creator("Emporium")
    pdf.set_creation_date(invoice.issued_at)
    pdf.add_page()
    pdf.set_font("helvetica", size=9)
    pdf.write_html(_pdf_text(_render_body(invoice)), tag_styles=_PDF_STYLES)
    return bytes(pdf.output())
