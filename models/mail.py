"""Outgoing mail, stored in the transaction that decided to send it (the outbox)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    DateTime,
    Index,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UUIDPrimaryKey


class MailOutbox(UUIDPrimaryKey, Base):
    """Every email the platform sends, kept for audit and, in development, for reading."""

    __tablename__ = "mail_outbox"
    __table_args__ = (
        # The dispatcher's scan: pending rows, oldest first.
        Index("ix_mail_outbox_pending", "created_at", postgresql_where=text("sent_at IS NULL")),
    )

    to_address: Mapped[str] = mapped_column(String(320), index=True)
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    template: Mapped[str] = mapped_column(String(60))
    # clock_timestamp(), not now(): mails queued in one transaction keep their order.
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()")
    )
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
