"""Invoices and credit notes: the shopper's (of their own orders), a vendor's (the ones it
issued, for its staff) and any of them for operations staff. JSON or PDF; someone else's
invoice is 404, never 403."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from api.access import CurrentUser, OperationsUser, VendorStaff
from api.deps import SessionDep
from api.schemas.invoices import (
    InvoiceList,
    InvoicePage,
    InvoiceRead,
    InvoiceSummaryRead,
)
from api.schemas.money import Money
from api.schemas.pagination import PageCursor, PageLimit
from commerce.finance import invoices
from commerce.orders import orders
from models import Invoice, InvoiceKind

router = APIRouter(tags=["invoices"])
admin_router = APIRouter(prefix="/admin/invoices", tags=["admin"])

PDF = "application/pdf"
_PDF_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {PDF: {"schema": {"type": "string", "format": "binary"}}}}
}


def _fields(invoice: Invoice) -> dict[str, Any]:
    data = invoices.as_json(invoice)
    for name in ("subtotal", "tax", "total"):
        data[name] = Money.of(data[name], invoice.currency)
    return data


def _summary(invoice: Invoice) -> InvoiceSummaryRead:
    data = _fields(invoice)
    data.pop("document")
    return InvoiceSummaryRead.model_validate(data)


def _read(invoice: Invoice) -> InvoiceRead:
    return InvoiceRead.model_validate(_fields(invoice))


async def _pdf(invoice: Invoice) -> Response:
    body = await run_in_threadpool(invoices.render_pdf, invoice)
    return Response(
        content=body,
        media_type=PDF,
        headers={
            "Content-Disposition": f'attachment; filename="{invoices.filename(invoice)}"',
            "Cache-Control": "private, no-store",
        },
    )


# --- the shopper ---------------------------------------------------------------------------------


@router.get("/orders/{order_id}/invoices")
async def list_order_invoices(
    order_id: uuid.UUID, principal: CurrentUser, session: SessionDep
) -> InvoiceList:
    """The invoices (one per seller) and credit notes of the shopper's own order."""
    order = await orders.customer_order(session, order_id=order_id, customer_id=principal.user_id)
    found = await invoices.list_for_order(session, order_id=order.id)
    return InvoiceList.whole(_summary(invoice) for invoice in found)


@router.get("/invoices/{invoice_id}")
async def read_invoice(
    invoice_id: uuid.UUID, principal: CurrentUser, session: SessionDep
) -> InvoiceRead:
    """An invoice or credit note of one of the shopper's orders."""
    invoice = await invoices.get_for_customer(
        session, invoice_id=invoice_id, customer_id=principal.user_id
    )
    return _read(invoice)


@router.get("/invoices/{invoice_id}/pdf", response_class=Response, responses=_PDF_RESPONSE)
async def download_invoice(
    invoice_id: uuid.UUID, principal: CurrentUser, session: SessionDep
) -> Response:
    """The same as a PDF download."""
    invoice = await invoices.get_for_customer(
        session, invoice_id=invoice_id, customer_id=principal.user_id
    )
    return await _pdf(invoice)


# --- the vendor ----------------------------------------------------------------------------------


@router.get("/vendors/{vendor_id}/invoices")
async def list_vendor_invoices(
    vendor_id: uuid.UUID,
    member: VendorStaff,
    session: SessionDep,
    kind: Annotated[InvoiceKind | None, Query(description="Only this kind")] = None,
    limit: PageLimit = 20,
    cursor: PageCursor = None,
) -> InvoicePage:
    """The invoices and credit notes the vendor issued, newest first."""
    found = await invoices.list_for_vendor(
        session,
        vendor_id=member.vendor_id,
        limit=limit,
        cursor=cursor,
        kind=kind,
    )
    return InvoicePage(
        items=[_summary(invoice) for invoice in found.items], next_cursor=found.next_cursor
    )


@router.get("/vendors/{vendor_id}/invoices/{invoice_id}")
async def read_vendor_invoice(
    vendor_id: uuid.UUID, invoice_id: uuid.UUID, member: VendorStaff, session: SessionDep
) -> InvoiceRead:
    invoice = await invoices.get_for_vendor(
        session, invoice_id=invoice_id, vendor_id=member.vendor_id
    )
    return _read(invoice)


@router.get(
    "/vendors/{vendor_id}/invoices/{invoice_id}/pdf",
    response_class=Response,
    responses=_PDF_RESPONSE,
)
async def download_vendor_invoice(
    vendor_id: uuid.UUID, invoice_id: uuid.UUID, member: VendorStaff, session: SessionDep
) -> Response:
    invoice = await invoices.get_for_vendor(
        session, invoice_id=invoice_id, vendor_id=member.vendor_id
    )
    return await _pdf(invoice)


# --- operations ----------------------------------------------------------------------------------


@admin_router.get("/{invoice_id}")
async def admin_read_invoice(
    invoice_id: uuid.UUID, principal: OperationsUser, session: SessionDep
) -> InvoiceRead:
    """Any invoice or credit note (support, accounting)."""
    return _read(await invoices.get(session, invoice_id=invoice_id))


@admin_router.get("/{invoice_id}/pdf", response_class=Response, responses=_PDF_RESPONSE)
async def admin_download_invoice(
    invoice_id: uuid.UUID, principal: OperationsUser, session: SessionDep
) -> Response:
    return await _pdf(await invoices.get(session, invoice_id=invoice_id))
