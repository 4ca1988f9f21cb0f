"""The emails an order sends: to the shopper (confirmed, cancelled, payment failed) and to
each vendor (a new order to ship). Queued through the mail outbox in the caller's transaction."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.mail import EmailMessage, queue_mail
from commerce.orders import OrderDetail
from core.money import format_money
from models import Order, PlatformRole, Shipment, User, Vendor, VendorMembership, VendorRole


def _short(order_id: uuid.UUID) -> str:
    return str(order_id).split("-")[0].upper()


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
    money = order.currency
    rows = [
        f"  {line.quantity} x {line.title} ({line.sku})  {format_money(line.total, money)}"
        for line in detail.lines
    ]
    totals = [
        f"Items:     {format_money(order.items_subtotal, money)}",
        *(
            [f"Discounts: -{format_money(order.discount_total, money)}"]
            if order.discount_total
            else []
        ),
        f"Shipping:  {format_money(order.shipping_total, money)}",
        f"Tax:       {format_money(order.tax_total, money)}"
        + (" (included)" if order.prices_include_tax else ""),
        f"Total:     {format_money(order.grand_total, money)}",
    ]
    dates = _dates(detail)
    text = (
        f"Thank you for your order {_short(order.id)}.\n\n"
        "We have your payment and the sellers are preparing your items:\n\n"
        + "\n".join(rows)
        + "\n\n"
        + "\n".join(totals)
        + "\n\n"
        + (f"Estimated delivery: {dates}.\n\n" if dates else "")
        + f"Follow your order at {storefront_url.rstrip('/')}/account/orders/{order.id}\n\n"
        "The Emporium team\n"
    )
    return EmailMessage(
        to=to,
        subject=f"Order {_short(order.id)} confirmed",
        text=text,
        template="order_confirmation",
    )


def order_closed(*, to: str, order: Order, paid: bool, reason: str) -> EmailMessage:
    """The order will not go ahead: cancelled, or its payment failed."""
    money = format_money(order.grand_total, order.currency)
    if paid:
        body = f"Your payment of {money} has been refunded to the way you paid."
    else:
        body = f"You have not been charged; the {money} held on your payment method is released."
    failed = reason.startswith("payment")
    title = "could not be paid" if failed else "was cancelled"
    text = (
        f"Your order {_short(order.id)} {title} ({reason.replace('_', ' ')}).\n\n"
        f"{body}\n\nThe Emporium team\n"
    )
    return EmailMessage(
        to=to,
        subject=f"Order {_short(order.id)} {title}",
        text=text,
        template="order_payment_failed" if failed else "order_cancelled",
    )


def vendor_new_order(*, to: str, vendor: Vendor, detail: OrderDetail) -> EmailMessage:
    """Tell a vendor what to ship (only its own lines, never the shopper's payment)."""
    order = detail.order
    lines = [line for line in detail.lines if line.vendor_id == vendor.id]
    part = next(part for part in detail.parts if part.vendor_id == vendor.id)
    rows = "\n".join(f"  {line.quantity} x {line.title} ({line.sku})" for line in lines)
    text = (
        f"{vendor.name} has a new paid order, {_short(order.id)}:\n\n{rows}\n\n"
        f"Ship with: {part.shipping_method_name}.\n\nThe Emporium team\n"
    )
    return EmailMessage(
        to=to,
        subject=f"New order {_short(order.id)} to ship",
        text=text,
        template="vendor_new_order",
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
    short = _short(order.id)
    if kind == "shipped":
        eta = shipment.estimated_delivery_latest
        text = (
            f"Your items from {vendor_name} (order {short}) are on their way.\n\n"
            f"Carrier: {shipment.carrier}\nTracking number: {shipment.tracking_number}\n"
            + (f"Expected by: {eta.isoformat()}\n" if eta else "")
            + "\nThe Emporium team\n"
        )
        subject = f"Order {short}: shipped"
    elif kind == "delivered":
        text = (
            f"Your items from {vendor_name} (order {short}) have been delivered.\n\n"
            "Something not right? You can ask for a return from your order page.\n\n"
            "The Emporium team\n"
        )
        subject = f"Order {short}: delivered"
    else:
        text = (
            f"{vendor_name} could not confirm your items of order {short} in time, so that "
            "part of the order is cancelled. Its price is being refunded to the way you "
            "paid.\n\nThe Emporium team\n"
        )
        subject = f"Order {short}: part cancelled"
    return EmailMessage(to=to, subject=subject, text=text, template=f"order_{kind}")


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
                session,
                EmailMessage(
                    to=address,
                    subject=f"Order {_short(order.id)}: cancelled, not accepted in time",
                    text=(
                        f"{vendor.name} did not accept its part of order {_short(order.id)} "
                        "in time. It has been cancelled and refunded to the shopper.\n\n"
                        "The Emporium team\n"
                    ),
                    template="vendor_part_unaccepted",
                ),
            )
        for address in await operations_recipients(session):
            await queue_mail(
                session,
                EmailMessage(
                    to=address,
                    subject=f"Unaccepted order part: {order.id}",
                    text=(
                        f"Vendor {vendor.name} ({vendor.id}) missed the acceptance deadline "
                        f"of order {order.id}; its part was cancelled and refunded.\n"
                    ),
                    template="ops_part_unaccepted",
                ),
            )


async def operations_recipients(session: AsyncSession) -> list[str]:
    """Every active admin and operations user's address."""
    rows = await session.scalars(
        select(User.email)
        .where(User.platform_role.in_([PlatformRole.ADMIN, PlatformRole.OPERATIONS]))
        .order_by(User.email)
    )
    return [email for email in rows.all() if email]
