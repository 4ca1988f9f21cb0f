"""A real SMTP server (aiosmtpd) on 127.0.0.1 that records what it receives.

Import the fixture where it is needed:
``from tests.smtp_server import smtp_server  # noqa: F401``
"""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: Message
    over_tls: bool


@dataclass
class SmtpServer:
    host: str
    port: int
    messages: list[ReceivedMail] = field(default_factory=list)
    # Addresses answered with a permanent 550 at RCPT TO, as a mailbox that does not exist.
    rejected_recipients: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, mail: ReceivedMail) -> None:
        with self._lock:
            self.messages.append(mail)


class _RecordingHandler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.server.rejected_recipients:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.server.record(
            ReceivedMail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                message=email.message_from_bytes(content, policy=email.policy.default),
                over_tls=session.ssl is not None,
            )
        )
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_smtp_server(*, tls_context: ssl.SSLContext | None = None) -> Iterator[SmtpServer]:
    """Run a recording SMTP server; with ``tls_context`` it offers (and requires) STARTTLS."""
    smtp_kwargs: dict[str, Any] = {}
    if tls_context is not None:
        smtp_kwargs = {"tls_context": tls_context, "require_starttls": True}
    # The free port is found by closing a probe socket; another process may take it between
    # the probe and the bind, so a few attempts.
    for attempt in range(5):
        server = SmtpServer(host=HOST, port=free_port())
        controller = Controller(
            _RecordingHandler(server), hostname=HOST, port=server.port, **smtp_kwargs
        )
        try:
            controller.start()
        except Exception:
            if attempt == 4:
                raise
            continue
        try:
            yield server
        finally:
            controller.stop()
        return


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain (no TLS, no AUTH) SMTP server of this test's own."""
    with running_smtp_server() as server:
        yield server
