"""Transactional email: queued in the caller's transaction, delivered after commit.

Services call ``queue_mail`` with the session they already hold, so a message exists only if
the transaction that caused it commits. A ``MailDispatcher`` (in a worker process) delivers
pending ``mail_outbox`` rows through a ``MailTransport``: SMTP when a host is configured, a log
line otherwise. Delivery is at least once: a crash between the server's acceptance and the
``sent_at`` commit resends the row, with the same Message-ID so receivers can tell.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import email.utils
import logging
import smtplib
import ssl
import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage as MimeMessage
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import metrics
from core.clock import SYSTEM_CLOCK, Clock
from core.money import format_money
from core.settings import Settings
from models import MailOutbox

logger = logging.getLogger(__name__)

SMTP_TIMEOUT_S = 15.0
# A row that failed waits before its next attempt, doubling up to the cap, so a message the
# server keeps refusing neither hammers it nor fills every drain ahead of newer mail.
RETRY_BASE_S = 5.0
RETRY_MAX_S = 300.0


@dataclass(frozen=True)
class EmailMessage:
    """One plain-text email to one recipient; ``template`` names what kind it is."""

    to: str
    subject: str
    text: str
    template: str

    def __post_init__(self) -> None:
        # These become headers; a line break in one would let it write headers of its own.
        for name in ("to", "subject"):
            value = getattr(self, name)
            if "\r" in value or "\n" in value:
                raise ValueError(f"email {name} must not contain a line break")


def message_id_for(outbox_id: uuid.UUID) -> str:
    """The Message-ID header of an outbox row: the same on every delivery attempt."""
    return f"<{outbox_id}@emporium>"


async def queue_mail(session: AsyncSession, message: EmailMessage) -> uuid.UUID:
    """Add ``message`` to the outbox in the caller's transaction; return the outbox row id.

    Nothing is sent until that transaction commits and a dispatcher picks the row up.
    """
    row = MailOutbox(
        id=uuid.uuid4(),
        to_address=message.to,
        subject=message.subject,
        body_text=message.text,
        template=message.template,
    )
    session.add(row)
    # Flushed here so a message the table cannot hold fails in the service that wrote it.
    await session.flush()
    return row.id


# --- Templates ------------------------------------------------------------------------------


# --- composing: every email's words are a template in templates/ ------------------------------

_TEMPLATES = Path(__file__).parent / "templates"


def _plural(value: int, unit: str) -> str:
    return f"{value} {unit}" if value == 1 else f"{value} {unit}s"


def short_id(some_id: uuid.UUID | str) -> str:
    """The first group of an id, as people read it in emails: ``1F2E3D4C``."""
    return str(some_id).split("-")[0].upper()


_environment = Environment(
    loader=FileSystemLoader(_TEMPLATES),
    # Plain text, not HTML: nothing to escape, and a missing value is an error, not a blank.
    autoescape=False,  # noqa: S701
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_environment.filters["money"] = format_money
_environment.filters["plural"] = _plural
_environment.filters["short"] = short_id


def compose(template: str, *, to: str, **values: Any) -> EmailMessage:
    """The email ``templates/{template}.txt`` makes of ``values``: its first line is
    ``Subject: ...``, then a blank line, then the body. Templates are Jinja (plain text, a
    value missing from ``values`` is an error); filters: ``money(currency)``,
    ``plural(unit)``, ``short``."""
    rendered = _environment.get_template(f"{template}.txt").render(**values)
    header, _, text = rendered.partition("\n\n")
    if not header.startswith("Subject: ") or "\n" in header:
        raise ValueError(f"template {template!r} does not start with one Subject: line")
    return EmailMessage(
        to=to, subject=header.removeprefix("Subject: "), text=text, template=template
    )


def _link(storefront_url: str, path: str, token: str) -> str:
    return f"{storefront_url.rstrip('/')}{path}?{urlencode({'token': token})}"


def verify_email(
    *, to: str, username: str, token: str, storefront_url: str, expires_hours: int
) -> EmailMessage:
    """Ask a new account holder to confirm their email address."""
    link = _link(storefront_url, "/account/verify-email", token)
    return compose("verify_email", to=to, username=username, link=link, expires_hours=expires_hours)


def reset_password(
    *, to: str, username: str, token: str, storefront_url: str, expires_minutes: int
) -> EmailMessage:
    """Send a password reset link to the account's address."""
    link = _link(storefront_url, "/account/reset-password", token)
    return compose(
        "reset_password", to=to, username=username, link=link, expires_minutes=expires_minutes
    )


def change_email(
    *, to: str, username: str, token: str, storefront_url: str, expires_hours: int
) -> EmailMessage:
    """Ask for confirmation of a new email address; ``to`` is the new address."""
    link = _link(storefront_url, "/account/confirm-email", token)
    return compose("change_email", to=to, username=username, link=link, expires_hours=expires_hours)


def password_changed(*, to: str, username: str) -> EmailMessage:
    """Tell the account holder their password was changed (a security notice)."""
    return compose("password_changed", to=to, username=username)


def account_deleted(*, to: str) -> EmailMessage:
    """Confirm that an account was deleted."""
    return compose("account_deleted", to=to)


def vendor_invitation(
    *, to: str, vendor_name: str, role: str, token: str, storefront_url: str, expires_days: int
) -> EmailMessage:
    """Invite someone to a vendor's staff."""
    link = _link(storefront_url, "/vendor/accept-invitation", token)
    return compose(
        "vendor_invitation",
        to=to,
        vendor_name=vendor_name,
        role=role,
        link=link,
        expires_days=expires_days,
    )


# --- Transports -----------------------------------------------------------------------------


class MailTransport(Protocol):
    async def deliver(self, message: EmailMessage, *, message_id: str) -> None:
        """Hand ``message`` to the outside world, or raise; ``message_id`` is the header."""
        ...


class SmtpTransport:
    """Delivers through an SMTP server (submission with STARTTLS, optional login)."""

    def __init__(self, settings: Settings) -> None:
        if not settings.smtp_host:
            raise ValueError("SmtpTransport needs smtp_host")
        self._host = settings.smtp_host
        self._port = settings.smtp_port
        self._starttls = settings.smtp_starttls
        self._username = settings.smtp_username
        self._password = settings.smtp_password
        self._mail_from = settings.mail_from

    async def deliver(self, message: EmailMessage, *, message_id: str) -> None:
        mime = self._compose(message, message_id=message_id)
        # smtplib blocks; a thread keeps the event loop serving while the server answers.
        await asyncio.to_thread(self._send, mime)

    def _compose(self, message: EmailMessage, *, message_id: str) -> MimeMessage:
        mime = MimeMessage(policy=email.policy.SMTP)
        mime["From"] = self._mail_from
        mime["To"] = message.to
        mime["Subject"] = message.subject
        mime["Date"] = email.utils.formatdate(usegmt=True)
        mime["Message-ID"] = message_id
        mime.set_content(message.text)
        return mime

    def _send(self, mime: MimeMessage) -> None:
        with smtplib.SMTP(self._host, self._port, timeout=SMTP_TIMEOUT_S) as smtp:
            # has_extn() only knows the server's extensions after EHLO; without it STARTTLS
            # would look unsupported and be skipped silently.
            smtp.ehlo()
            if self._starttls:
                # Required, not opportunistic: an attacker on the path can strip STARTTLS from
                # the EHLO answer, and these messages carry sign-in tokens and credentials.
                if not smtp.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError(
                        f"{self._host}:{self._port} does not offer STARTTLS "
                        "(set EMPORIUM_SMTP_STARTTLS=false only for a trusted local relay)"
                    )
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()  # the extensions offered over TLS may differ
            if self._username:
                password = self._password.get_secret_value() if self._password else ""
                smtp.login(self._username, password)
            smtp.send_message(mime)


class LogTransport:
    """The development default without an SMTP host: a log line instead of a delivery."""

    async def deliver(self, message: EmailMessage, *, message_id: str) -> None:
        # The body is not logged: it carries sign-in tokens. Developers read it in mail_outbox.
        logger.info(
            "mail queued for delivery",
            extra={
                "to": message.to,
                "subject": message.subject,
                "template": message.template,
                "outbox_id": message_id.strip("<>").partition("@")[0],
            },
        )


def transport_for(settings: Settings) -> MailTransport:
    """SMTP when ``smtp_host`` is set, otherwise the log transport."""
    if settings.smtp_host:
        return SmtpTransport(settings)
    return LogTransport()


# --- Dispatcher -----------------------------------------------------------------------------


class MailDispatcher:
    """Delivers committed outbox rows; several may run at once, in one or many processes.

    Each row is claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` in a transaction of its own
    and the lock is held until ``sent_at`` commits, so two dispatchers never send one row at the
    same time. A row whose delivery fails stays pending and is retried after a back-off kept in
    this dispatcher's memory (a restart retries at once).
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        transport: MailTransport,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._transport = transport
        self._clock = clock
        self._failures: dict[uuid.UUID, tuple[int, float]] = {}  # id -> (attempts, retry_at)

    async def drain_once(self, *, limit: int = 50) -> int:
        """Try to deliver up to ``limit`` pending rows, oldest first; return how many were sent.

        Delivery failures are logged and leave the row pending; database errors propagate.
        """
        sent = 0
        now = time.monotonic()
        waiting = [row_id for row_id, (_, retry_at) in self._failures.items() if retry_at > now]
        for _ in range(limit):
            outcome = await self._deliver_next(exclude=waiting)
            if outcome is None:
                break
            row_id, delivered = outcome
            metrics.MAIL_DELIVERIES.labels("sent" if delivered else "failed").inc()
            if delivered:
                sent += 1
            else:
                waiting.append(row_id)
        self._forget_stale(now)
        return sent

    async def _deliver_next(self, *, exclude: list[uuid.UUID]) -> tuple[uuid.UUID, bool] | None:
        async with self._sessionmaker() as session, session.begin():
            row = await session.scalar(
                select(MailOutbox)
                .where(MailOutbox.sent_at.is_(None), MailOutbox.id.not_in(exclude))
                .order_by(MailOutbox.created_at, MailOutbox.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if row is None:
                return None
            row_id = row.id
            try:
                # Built inside the try: a row written around queue_mail may not make a valid
                # message, and it must not stop the rows behind it.
                message = EmailMessage(
                    to=row.to_address,
                    subject=row.subject,
                    text=row.body_text,
                    template=row.template,
                )
                await self._transport.deliver(message, message_id=message_id_for(row_id))
            except Exception as error:
                self._record_failure(row_id, row.template, error)
                return row_id, False
            row.sent_at = self._clock.now()
        self._failures.pop(row_id, None)
        return row_id, True

    def _record_failure(self, row_id: uuid.UUID, template: str, error: Exception) -> None:
        attempts = self._failures.get(row_id, (0, 0.0))[0] + 1
        delay = min(RETRY_BASE_S * 2 ** (attempts - 1), RETRY_MAX_S)
        self._failures[row_id] = (attempts, time.monotonic() + delay)
        logger.warning(
            "mail delivery failed",
            extra={
                "outbox_id": str(row_id),
                "template": template,
                "attempts": attempts,
                "retry_in_s": delay,
                "error": f"{type(error).__name__}: {error}",
            },
        )

    def _forget_stale(self, now: float) -> None:
        # A row another dispatcher sent since is never picked here again; drop its entry.
        stale = [
            row_id
            for row_id, (_, retry_at) in self._failures.items()
            if retry_at + RETRY_MAX_S < now
        ]
        for row_id in stale:
            del self._failures[row_id]

    async def run(self, stop: asyncio.Event, *, interval_s: float = 1.0) -> None:
        """Drain until ``stop`` is set, pausing ``interval_s`` whenever nothing was sent.

        Unexpected errors (the database restarting, say) are logged and retried after the
        pause, so the loop outlives them.
        """
        while not stop.is_set():
            try:
                sent = await self.drain_once()
            except Exception:
                logger.exception("mail dispatcher drain failed")
                sent = 0
            if sent == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval_s)
