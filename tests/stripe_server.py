"""A real Stripe API double for tests: the ``localstripe`` server (PyPI), in a subprocess.

Import the fixture where it is needed::

    from tests.stripe_server import localstripe  # noqa: F401

localstripe accepts any ``sk_test_...`` key, and raw card numbers on ``POST /v1/payment_methods``
(real Stripe does not). What it does and does not do, checked in
tests/integration/test_payment_providers.py:

* does: PaymentIntents with ``capture_method=manual`` + ``confirm=true`` (``requires_capture``),
  full and partial capture (``amount_to_capture``; the remainder becomes a refund), cancel,
  refunds (partial, full) on ``payment_intent``, 3-D Secure (4000002760003184 and friends go to
  ``requires_action``; its private ``POST /v1/payment_intents/{id}/_authenticate`` plays the
  shopper), declines on confirm (4000000000000341 = ``pm_card_chargeCustomerFail``), signed
  webhooks (``POST /_config/webhooks/{id}``), Stripe's error format (402 card_declined, 404...).
* lacks: idempotency keys (ignored: a repeated create makes a second PaymentIntent); refunds
  above the captured amount are accepted; capturing a canceled PaymentIntent is accepted;
  ``description`` / ``receipt_email`` on a PaymentIntent are rejected; 4000000000000002
  (``pm_card_visa_chargeDeclined``) declines only when *attached* to a customer, not when
  charged; ``decline_code`` is never set (only ``code: card_declined``); no rate limits or 5xx;
  no ``payment_intent.amount_capturable_updated`` / ``payment_intent.canceled`` /
  ``charge.refunded`` / ``charge.dispute.created`` webhooks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import httpx
import pytest

from tests.clocks import suite_shift, travel_prelude

# localstripe accepts any key that starts with sk_.
SECRET_KEY = "sk_test_emporium_localstripe"

# Cards localstripe knows (it applies Stripe's documented test numbers).
CARD_OK = "4242424242424242"
CARD_DECLINED_ON_CHARGE = "4000000000000341"
CARD_3DS_REQUIRED = "4000002760003184"

# localstripe pickles its whole store to the fixed path /tmp/localstripe.pickle on every write,
# which would make parallel test runs share (and race on) one file: turn that off.
_LAUNCH = (
    "import localstripe.resources as r; r.Store.dump_to_disk = lambda self: None; "
    "from localstripe.server import start; start()"
)


@dataclass(frozen=True)
class LocalStripe:
    """The running server: its base URL, a key it accepts, and test-side helpers."""

    base_url: str
    secret_key: str = SECRET_KEY

    def _post(self, path: str, data: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(
            f"{self.base_url}{path}", data=data, auth=(self.secret_key, ""), timeout=10
        )
        response.raise_for_status()
        return response.json() if response.content else {}

    def payment_method(self, number: str) -> str:
        """A card PaymentMethod id for ``number``, as Stripe.js would hand the storefront."""
        body = self._post(
            "/v1/payment_methods",
            {
                "type": "card",
                "card[number]": number,
                "card[exp_month]": "12",
                "card[exp_year]": "2034",
                "card[cvc]": "123",
            },
        )
        return str(body["id"])

    def complete_3ds(self, payment_intent_id: str, client_secret: str, *, success: bool) -> None:
        """Play the shopper passing (or failing) the 3-D Secure challenge."""
        self._post(
            f"/v1/payment_intents/{payment_intent_id}/_authenticate",
            {"client_secret": client_secret, "success": "true" if success else "false"},
        )

    def payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        response = httpx.get(
            f"{self.base_url}/v1/payment_intents/{payment_intent_id}",
            auth=(self.secret_key, ""),
            timeout=10,
        )
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def register_webhook(self, webhook_id: str, *, url: str, secret: str) -> None:
        """Have localstripe POST its events, signed with ``secret``, to ``url``."""
        self._post(f"/_config/webhooks/{webhook_id}", {"url": url, "secret": secret})


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def localstripe() -> Iterator[LocalStripe]:
    """Start localstripe on a free port for the whole run; stop it at the end."""
    port = _free_port()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            # On the suite's clock (moved by --clock-shift-days): it signs webhooks with it.
            [
                sys.executable,
                "-c",
                travel_prelude(suite_shift()) + _LAUNCH,
                "--port",
                str(port),
                "--from-scratch",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            server = LocalStripe(base_url=f"http://127.0.0.1:{port}")
            _wait_until_serving(process, server, log)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_serving(
    process: subprocess.Popen[bytes], server: LocalStripe, log: IO[bytes]
) -> None:
    deadline = time.monotonic() + 20
    while True:
        if process.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")[-2000:]
            pytest.fail(f"localstripe exited with {process.returncode}:\n{output}")
        try:
            # Any HTTP answer (even 401) means it is serving.
            httpx.get(f"{server.base_url}/v1/customers", timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                pytest.fail("localstripe did not answer within 20 s")
            time.sleep(0.1)


def stripe_signed(payload: bytes, secret: str, at: int | None = None) -> dict[str, str]:
    """Sign exactly as Stripe does: t=<unix>,v1=HMAC-SHA256(secret, f"{t}.{payload}")."""
    timestamp = int(time.time()) if at is None else at
    signature = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256
    ).hexdigest()
    return {"Stripe-Signature": f"t={timestamp},v1={signature}", "Content-Type": "application/json"}


def stripe_event(event_type: str, obj: dict[str, Any]) -> bytes:
    """A Stripe event body around ``obj``, as Stripe would POST it."""
    return json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "livemode": False,
            "api_version": "2024-06-20",
            "data": {"object": obj},
        }
    ).encode()
