"""The emails an order sends: to the shopper (confirmed, cancelled, payment failed) and to
each vendor (a new order to ship). Queued through the mail outbox in the caller's transaction."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.notifications.mail import EmailMessage, compose, queue_mail
from commerce.orders.orders import OrderDetail
from models import Order, PlatformRole, Shipment, User, Vendor, VendorMembership, VendorRole


def _dates(detail: OrderDetail) -> str | None:
    latest = [part.estimated_delivery_latest for part in detail.parts]
    earliest = [part.estimated_delivery_earliest for part in detail.parts]
    if not latest or any(day is None for day in latest + earliest):
        return None
    start = max(day for day in earliest if day is not None)
    end = max(day for day in latest if day is not None)
    return start.isoformat() if start == end else f"{start.isoformat()} to {end.isoformat()}"


def order_confirmation(*, to: str, detail: OrderDetail, storefront_url: str) -> EmailMessage:
    """The receipt: every line, the totals and when it should arrive."""
    order = detail.order
    return compose(
        "order_confirmation",
        to=to,
        order=order,
        lines=detail.lines,
        dates=_dates(detail),
        order_url=f"{storefront_url.rstrip('/')}/account/orders/{order.id}",
    )


def order_closed(*, to: str, order: Order, paid: bool, reason: str) -> EmailMessage:
    """The order will not go ahead: cancelled, or its payment failed."""
    failed = reason.startswith("payment")
    return compose(
        "order_payment_failed" if failed else "order_cancelled",
        to=to,
        order=order,
        paid=paid,
        reason=reason,
        title="could not be paid" if failed else "was cancelled",
    )


def vendor_new_order(*, to: str, vendor: Vendor, detail: OrderDetail) -> EmailMessage:
    """Tell a vendor what to ship (only its own lines, never the shopper's payment)."""
    part = next(part for part in detail.parts if part.vendor_id == vendor.id)
    return compose(
        "vendor_new_order",
        to=to,
        order=detail.order,
        vendor=vendor,
        lines=[line for line in detail.lines if line.vendor_id == vendor.id],
        shipping_method=part.shipping_method_name,
    )


async def vendor_recipients(session: AsyncSession, *, vendor: Vendor) -> list[str]:
    """The vendor's contact address, else its owners'."""
    if vendor.contact_email:
        return [vendor.contact_email]
    owners = await session.scalars(
        select(User.email)
        .join(VendorMembership, VendorMembership.user_id == User.id)
        .where(VendorMembership.vendor_id == vendor.id, VendorMembership.role == VendorRole.OWNER)
        .order_by(User.email)
    )
    return [email for email in owners.all() if email]


async def queue_vendor_new_order(
    session: AsyncSession, *, vendor: Vendor, detail: OrderDetail
) -> int:
    recipients = await vendor_recipients(session, vendor=vendor)
    for to in recipients:
        await queue_mail(session, vendor_new_order(to=to, vendor=vendor, detail=detail))
    return len(recipients)


def shipment_mail(
    *, to: str, order: Order, shipment: Shipment, vendor_name: str, kind: str
) -> EmailMessage:
    """Shipped (with tracking), delivered, or cancelled because the seller did not accept."""
    return compose(f"order_{kind}", to=to, order=order, shipment=shipment, vendor_name=vendor_name)


async def queue_shipment_mail(
    session: AsyncSession,
    *,
    to: str,
    order: Order,
    shipment: Shipment,
    vendor: Vendor | None,
    kind: str,
) -> None:
    name = vendor.name if vendor is not None else "The seller"
    await queue_mail(
        session, shipment_mail(to=to, order=order, shipment=shipment, vendor_name=name, kind=kind)
    )
    if kind == "unaccepted" and vendor is not None:
        for address in await vendor_recipients(session, vendor=vendor):
            await queue_mail(
                session, compose("vendor_part_unaccepted", to=address, order=order, vendor=vendor)
            )
        for address in await operations_recipients(session):
            await queue_mail(
                session, compose("ops_part_unaccepted", to=address, order=order, vendor=vendor)
            )


async def operations_recipients(session: AsyncSession) -> list[str]:
    """Every active admin and operations user's address."""
    rows = await session.scalars(
        select(User.email)
        .where(User.platform_role.in_([PlatformRole.ADMIN, PlatformRole.OPERATIONS]))
        .order_by(User.email)
    )
    return [email for email in rows.all() if email]
