"""Transactional email: the outbox follows the caller's transaction; dispatchers deliver once."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import ssl
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from commerce.notifications import mail
from commerce.notifications.mail import (
    EmailMessage,
    LogTransport,
    MailDispatcher,
    SmtpTransport,
    queue_mail,
    transport_for,
)
from core import database
from core.logs import JsonFormatter
from core.settings import Settings
from models import MailOutbox
from tests.clocks import machine_now
from tests.conftest import make_settings
from tests.smtp_server import SmtpServer, free_port, running_smtp_server

TEMPORAL = "127.0.0.1:7233"  # settings need one; these tests never contact it
TOKEN = "tok+en/with=odd&chars ü"  # every character a query string must escape


@pytest.fixture
async def outbox_db(fresh_database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A sessionmaker on a database of this test's own: dispatchers commit for real."""
    engine = create_async_engine(fresh_database_url, poolclass=NullPool)
    yield database.create_sessionmaker(engine)
    await engine.dispose()


def _smtp_settings(database_url: str, host: str, port: int, **overrides: object) -> Settings:
    values: dict[str, object] = {"smtp_host": host, "smtp_port": port, "smtp_starttls": False}
    values.update(overrides)
    return make_settings(database_url, TEMPORAL, **values)


def _message(to: str = "ada@example.com", n: int = 0) -> EmailMessage:
    return mail.reset_password(
        to=to,
        username=f"ada{n}",
        token=f"{TOKEN}-{n}",
        storefront_url="https://shop.example",
        expires_minutes=30,
    )


async def _queue(
    sessionmaker: async_sessionmaker[AsyncSession], *messages: EmailMessage
) -> list[uuid.UUID]:
    async with sessionmaker.begin() as session:
        return [await queue_mail(session, message) for message in messages]


async def _rows(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[uuid.UUID, MailOutbox]:
    async with sessionmaker() as session:
        return {row.id: row for row in await session.scalars(select(MailOutbox))}


# --- The outbox follows the transaction -----------------------------------------------------


async def test_mail_of_a_rolled_back_transaction_is_never_delivered(
    outbox_db: async_sessionmaker[AsyncSession], fresh_database_url: str, smtp_server: SmtpServer
) -> None:
    async with outbox_db() as session:
        await session.begin()
        outbox_id = await queue_mail(session, _message())
        # Written inside the transaction (so the rollback is what removes it)...
        assert await session.get(MailOutbox, outbox_id) is not None
        await session.rollback()

    settings = _smtp_settings(fresh_database_url, smtp_server.host, smtp_server.port)
    dispatcher = MailDispatcher(outbox_db, SmtpTransport(settings))
    assert await dispatcher.drain_once() == 0
    assert smtp_server.messages == []
    assert await _rows(outbox_db) == {}


async def test_committed_mail_is_delivered_once_with_its_headers(
    outbox_db: async_sessionmaker[AsyncSession], fresh_database_url: str, smtp_server: SmtpServer
) -> None:
    settings = _smtp_settings(fresh_database_url, smtp_server.host, smtp_server.port)
    message = _message(to="grace@example.com")
    [outbox_id] = await _queue(outbox_db, message)
    before = datetime.now(UTC)

    dispatcher = MailDispatcher(outbox_db, SmtpTransport(settings))
    assert await dispatcher.drain_once() == 1
    assert await dispatcher.drain_once() == 0

    assert len(smtp_server.messages) == 1
    received = smtp_server.messages[0]
    assert received.mail_from == "no-reply@emporium.localhost"
    assert received.rcpt_tos == ("grace@example.com",)
    assert received.message["From"] == settings.mail_from
    assert received.message["To"] == "grace@example.com"
    assert received.message["Subject"] == message.subject
    assert received.message["Message-ID"] == f"<{outbox_id}@emporium>"
    assert received.message["Date"].datetime > before - timedelta(minutes=1)
    assert received.message.get_content().replace("\r\n", "\n") == message.text

    sent_at = (await _rows(outbox_db))[outbox_id].sent_at
    assert sent_at is not None
    assert sent_at >= before - timedelta(seconds=1)


async def test_concurrent_dispatchers_deliver_each_message_exactly_once(
    outbox_db: async_sessionmaker[AsyncSession], fresh_database_url: str, smtp_server: SmtpServer
) -> None:
    settings = _smtp_settings(fresh_database_url, smtp_server.host, smtp_server.port)
    queued = await _queue(outbox_db, *(_message(f"user{n}@example.com", n) for n in range(20)))

    first = MailDispatcher(outbox_db, SmtpTransport(settings))
    second = MailDispatcher(outbox_db, SmtpTransport(settings))
    counts = await asyncio.gather(first.drain_once(), second.drain_once())

    assert sum(counts) == 20
    assert all(counts)  # both really took part, or this proved nothing about concurrency
    message_ids = [received.message["Message-ID"] for received in smtp_server.messages]
    assert len(message_ids) == 20
    assert sorted(message_ids) == sorted(f"<{outbox_id}@emporium>" for outbox_id in queued)
    assert all(row.sent_at is not None for row in (await _rows(outbox_db)).values())


# --- Failures leave mail pending ------------------------------------------------------------


async def test_an_unreachable_server_leaves_mail_pending_for_a_later_drain(
    outbox_db: async_sessionmaker[AsyncSession],
    fresh_database_url: str,
    smtp_server: SmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    queued = await _queue(outbox_db, _message(n=1), _message(n=2))
    nobody_listens = _smtp_settings(fresh_database_url, "127.0.0.1", free_port())

    with caplog.at_level(logging.WARNING, logger="commerce.notifications.mail"):
        assert await MailDispatcher(outbox_db, SmtpTransport(nobody_listens)).drain_once() == 0

    assert all(row.sent_at is None for row in (await _rows(outbox_db)).values())
    failed = {r.outbox_id for r in caplog.records if r.getMessage() == "mail delivery failed"}
    assert failed == {str(outbox_id) for outbox_id in queued}

    # Still deliverable once the server is back.
    reachable = _smtp_settings(fresh_database_url, smtp_server.host, smtp_server.port)
    assert await MailDispatcher(outbox_db, SmtpTransport(reachable)).drain_once() == 2
    assert len(smtp_server.messages) == 2


async def test_a_refused_recipient_does_not_hold_up_other_mail(
    outbox_db: async_sessionmaker[AsyncSession], fresh_database_url: str, smtp_server: SmtpServer
) -> None:
    settings = _smtp_settings(fresh_database_url, smtp_server.host, smtp_server.port)
    smtp_server.rejected_recipients.add("gone@example.com")
    [refused] = await _queue(outbox_db, _message("gone@example.com"))  # oldest in the outbox
    await _queue(outbox_db, *(_message(f"user{n}@example.com", n) for n in range(3)))

    dispatcher = MailDispatcher(outbox_db, SmtpTransport(settings))
    assert await dispatcher.drain_once() == 3
    assert sorted(r.rcpt_tos[0] for r in smtp_server.messages) == [
        "user0@example.com",
        "user1@example.com",
        "user2@example.com",
    ]
    assert (await _rows(outbox_db))[refused].sent_at is None

    # The refused row waits out a back-off instead of taking the one slot of the next drain.
    [later] = await _queue(outbox_db, _message("late@example.com"))
    assert await dispatcher.drain_once(limit=1) == 1
    rows = await _rows(outbox_db)
    assert rows[later].sent_at is not None
    assert rows[refused].sent_at is None


async def test_starttls_is_required_when_configured(
    outbox_db: async_sessionmaker[AsyncSession], fresh_database_url: str, smtp_server: SmtpServer
) -> None:
    # The plain server offers no STARTTLS: the token-bearing mail must not go out in clear.
    settings = _smtp_settings(
        fresh_database_url, smtp_server.host, smtp_server.port, smtp_starttls=True
    )
    [outbox_id] = await _queue(outbox_db, _message())

    assert await MailDispatcher(outbox_db, SmtpTransport(settings)).drain_once() == 0
    assert smtp_server.messages == []
    assert (await _rows(outbox_db))[outbox_id].sent_at is None


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emporium test smtp")])
    now = machine_now()  # OpenSSL checks the validity against the machine's clock
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp.pem", folder / "smtp.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_starttls_delivery_verifies_the_server_and_encrypts(
    outbox_db: async_sessionmaker[AsyncSession],
    fresh_database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cert_path, key_path = _self_signed_certificate(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_path, key_path)
    [outbox_id] = await _queue(outbox_db, _message())

    with running_smtp_server(tls_context=server_context) as server:
        settings = _smtp_settings(fresh_database_url, server.host, server.port, smtp_starttls=True)
        dispatcher = MailDispatcher(outbox_db, SmtpTransport(settings))

        # Not trusted yet: the certificate is checked, so nothing is sent.
        assert await dispatcher.drain_once() == 0
        assert server.messages == []

        # Trusted (the default context reads SSL_CERT_FILE): delivered over TLS.
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))
        assert await MailDispatcher(outbox_db, SmtpTransport(settings)).drain_once() == 1
        assert [received.over_tls for received in server.messages] == [True]
        assert server.messages[0].message["Message-ID"] == f"<{outbox_id}@emporium>"


# --- The dispatcher loop ---------------------------------------------------------------------


async def _wait_for(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        # Polled: what is awaited happens in the SMTP server's thread or a log handler.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_run_delivers_mail_queued_while_running_and_stops_on_request(
    outbox_db: async_sessionmaker[AsyncSession], fresh_database_url: str, smtp_server: SmtpServer
) -> None:
    settings = _smtp_settings(fresh_database_url, smtp_server.host, smtp_server.port)
    stop = asyncio.Event()
    running = asyncio.create_task(
        MailDispatcher(outbox_db, SmtpTransport(settings)).run(stop, interval_s=0.05)
    )
    try:
        await asyncio.sleep(0.1)  # past the first, empty drain
        [outbox_id] = await _queue(outbox_db, _message())
        await _wait_for(lambda: len(smtp_server.messages) == 1)
        assert smtp_server.messages[0].message["Message-ID"] == f"<{outbox_id}@emporium>"
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=5)


async def test_run_survives_an_unreachable_database(caplog: pytest.LogCaptureFixture) -> None:
    engine = create_async_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere", poolclass=NullPool
    )
    dispatcher = MailDispatcher(database.create_sessionmaker(engine), LogTransport())
    stop = asyncio.Event()
    try:
        with caplog.at_level(logging.ERROR, logger="commerce.notifications.mail"):
            running = asyncio.create_task(dispatcher.run(stop, interval_s=0.02))

            def failures() -> int:
                return sum(r.getMessage() == "mail dispatcher drain failed" for r in caplog.records)

            await _wait_for(lambda: failures() >= 3)
            assert not running.done()
            stop.set()
            await asyncio.wait_for(running, timeout=5)
    finally:
        stop.set()
        await engine.dispose()


# --- The development transport ---------------------------------------------------------------


def test_transport_for_chooses_smtp_only_with_a_host() -> None:
    url = "postgresql://postgres@127.0.0.1/unused"
    assert isinstance(transport_for(make_settings(url, TEMPORAL)), LogTransport)
    assert isinstance(transport_for(_smtp_settings(url, "smtp.example", 587)), SmtpTransport)


async def test_log_transport_logs_the_envelope_but_never_the_body(
    outbox_db: async_sessionmaker[AsyncSession],
    fresh_database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = transport_for(make_settings(fresh_database_url, TEMPORAL))
    message = _message(to="grace@example.com", n=7)
    [outbox_id] = await _queue(outbox_db, message)

    with caplog.at_level(logging.DEBUG):
        assert await MailDispatcher(outbox_db, transport).drain_once() == 1

    [record] = [r for r in caplog.records if r.getMessage() == "mail queued for delivery"]
    assert (record.to, record.subject, record.template, record.outbox_id) == (
        "grace@example.com",
        message.subject,
        "reset_password",
        str(outbox_id),
    )
    assert (await _rows(outbox_db))[outbox_id].sent_at is not None
    formatter = JsonFormatter()
    logged = "\n".join(formatter.format(r) + str(vars(r)) for r in caplog.records)
    assert f"{TOKEN}-7" not in logged
    assert "tok%2Ben" not in logged  # nor the token as it appears in the link
    assert message.text not in logged


# --- Templates -------------------------------------------------------------------------------

LINK_TEMPLATES: list[tuple[Callable[..., EmailMessage], str, dict[str, int], str]] = [
    (mail.verify_email, "/account/verify-email", {"expires_hours": 48}, "48 hours"),
    (mail.reset_password, "/account/reset-password", {"expires_minutes": 30}, "30 minutes"),
    (mail.change_email, "/account/confirm-email", {"expires_hours": 1}, "1 hour."),
]


@pytest.mark.parametrize(("template", "path", "expiry", "validity"), LINK_TEMPLATES)
def test_link_templates_carry_the_token_url_encoded(
    template: Callable[..., EmailMessage], path: str, expiry: dict[str, int], validity: str
) -> None:
    message = template(
        to="ada@example.com",
        username="ada",
        token=TOKEN,
        storefront_url="https://shop.example/store/",
        **expiry,
    )
    assert message.template == template.__name__
    assert message.to == "ada@example.com"
    assert "Hi ada," in message.text
    [link] = re.findall(r"https://\S+", message.text)
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "shop.example", f"/store{path}")
    assert parse_qs(parts.query, strict_parsing=True) == {"token": [TOKEN]}
    assert TOKEN not in message.text  # only its encoded form, which survives a mail client
    assert f"The link works for {validity}" in message.text
    assert "If you didn't ask for this" in message.text or "If you didn't create" in message.text


def test_notices_tell_the_reader_what_to_do_if_it_was_not_them() -> None:
    changed = mail.password_changed(to="ada@example.com", username="ada")
    deleted = mail.account_deleted(to="ada@example.com")
    assert (changed.template, deleted.template) == ("password_changed", "account_deleted")
    assert "If it wasn't you, reset your password" in changed.text
    assert "If you didn't delete your account, contact our support team" in deleted.text


@pytest.mark.parametrize("field", ["to", "subject"])
def test_a_header_cannot_carry_a_line_break(field: str) -> None:
    values = {"to": "ada@example.com", "subject": "Hello", "text": "body", "template": "t"}
    values[field] += "\r\nBcc: everyone@example.com"
    with pytest.raises(ValueError, match="line break"):
        EmailMessage(**values)
