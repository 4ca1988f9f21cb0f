"""A PayPal-REST-speaking test server: the subset of PayPal's API the PayPal provider uses.

PayPal has no local sandbox, so this stands in for ``api-m.sandbox.paypal.com`` in tests. It
follows PayPal's documented request and response shapes (OAuth 2 client credentials, Orders v2,
Payments v2, webhook signature verification) and PayPal's error body
(``name``, ``message``, ``debug_id``, ``details[].issue``), so the official SDK parses it as it
would parse PayPal. Import the fixture where it is needed::

    from tests.paypal_server import paypal_server  # noqa: F401

What it models:

- ``POST /v1/oauth2/token``: client credentials with HTTP Basic auth, checked.
- ``POST /v2/checkout/orders`` (intent ``AUTHORIZE`` or ``CAPTURE``), ``GET`` it, and
  ``POST .../authorize``, which fails with ``ORDER_NOT_APPROVED`` until the buyer approved the
  order through its ``approve`` link (`PayPalServer.approve`).
- ``GET /v2/payments/authorizations/{id}``, its ``/capture`` and ``/void``,
  ``GET /v2/payments/captures/{id}`` and its ``/refund`` (partial or full, never above what
  is captured).
- ``PayPal-Request-Id`` on every POST: the same id on the same endpoint returns the first
  response again, as PayPal does.
- ``POST /v1/notifications/verify-webhook-signature``: ``SUCCESS`` only for a transmission this
  server emitted (`PayPalServer.emit_webhook`) for the webhook id it registered, unmodified.
- Failure injection: `PayPalServer.fail_next` makes the next API call answer 500
  ``INTERNAL_SERVER_ERROR`` or 422 ``INSTRUMENT_DECLINED``; the sandbox's own negative-testing
  header ``PayPal-Mock-Response: {"mock_application_codes": "..."}`` works too.

Not modelled: order PATCH, capture intent's ``/capture``, reauthorization, expiry of
authorizations, and real RSA signatures (the transmission signature is an HMAC kept here, which
is enough since only this server verifies it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import parse_qs

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

#: Currencies PayPal accepts without decimals (its currency codes reference).
ZERO_DECIMAL_CURRENCIES = frozenset({"HUF", "JPY", "TWD"})

FailureKind = Literal["server_error", "decline"]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _paypal_id(length: int = 17) -> str:
    """PayPal ids are upper-case alphanumerics (e.g. ``5O190127TN364715T``)."""
    alphabet = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _error(
    status: int, name: str, message: str, issue: str | None = None, description: str = ""
) -> JSONResponse:
    """An error body as PayPal returns it."""
    debug_id = secrets.token_hex(7)
    body: dict[str, Any] = {"name": name, "message": message, "debug_id": debug_id}
    if issue is not None:
        body["details"] = [{"issue": issue, "description": description or message}]
    body["links"] = [
        {
            "href": f"https://developer.paypal.com/docs/api/orders/v2/#error-{issue or name}",
            "rel": "information_link",
            "method": "GET",
        }
    ]
    return JSONResponse(body, status_code=status, headers={"Paypal-Debug-Id": debug_id})


def _unprocessable(issue: str, description: str) -> JSONResponse:
    return _error(
        422,
        "UNPROCESSABLE_ENTITY",
        "The requested action could not be performed, semantically incorrect, or failed "
        "business validation.",
        issue,
        description,
    )


def _not_found(issue: str = "INVALID_RESOURCE_ID") -> JSONResponse:
    return _error(
        404,
        "RESOURCE_NOT_FOUND",
        "The specified resource does not exist.",
        issue,
        "Specified resource ID does not exist. Please check the resource ID and try again.",
    )


def _invalid_request(issue: str, description: str) -> JSONResponse:
    return _error(
        400,
        "INVALID_REQUEST",
        "Request is not well-formed, syntactically incorrect, or violates schema.",
        issue,
        description,
    )


DECLINE_DESCRIPTION = (
    "The instrument presented was either declined by the processor or bank, or it can't be "
    "used for this payment."
)


def _money(currency: str, value: Decimal) -> dict[str, str]:
    exponent = 0 if currency in ZERO_DECIMAL_CURRENCIES else 2
    return {"currency_code": currency, "value": f"{value:.{exponent}f}"}


def _parse_money(money: Any) -> tuple[str, Decimal] | JSONResponse:
    """Validate a Money object as PayPal does: currency code, and decimals the currency allows."""
    if not isinstance(money, dict) or "currency_code" not in money or "value" not in money:
        return _invalid_request("MISSING_REQUIRED_PARAMETER", "amount is required.")
    currency = str(money["currency_code"])
    try:
        value = Decimal(str(money["value"]))
    except InvalidOperation:
        return _invalid_request("INVALID_PARAMETER_VALUE", "amount/value is not a number.")
    exponent = 0 if currency in ZERO_DECIMAL_CURRENCIES else 2
    if value.as_tuple().exponent < -exponent:  # type: ignore[operator]
        return _unprocessable(
            "DECIMAL_PRECISION", "If the currency supports decimals, only two decimal places."
        )
    if value <= 0:
        return _unprocessable("AMOUNT_MUST_BE_POSITIVE", "The amount must be positive.")
    return currency, value


@dataclass
class _Order:
    id: str
    intent: str
    currency: str
    amount: Decimal
    purchase_unit: dict[str, Any]
    return_url: str | None
    status: str = "CREATED"
    create_time: str = field(default_factory=_now)
    authorization_id: str | None = None


@dataclass
class _Authorization:
    id: str
    order_id: str
    currency: str
    amount: Decimal
    captured: Decimal = Decimal(0)
    status: str = "CREATED"
    create_time: str = field(default_factory=_now)


@dataclass
class _Capture:
    id: str
    authorization_id: str
    currency: str
    amount: Decimal
    refunded: Decimal = Decimal(0)
    status: str = "COMPLETED"
    create_time: str = field(default_factory=_now)


@dataclass(frozen=True)
class WebhookDelivery:
    """What PayPal POSTs to a webhook listener: the raw JSON body and its transmission headers."""

    body: bytes
    headers: dict[str, str]

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


class PayPalServer:
    """The running server: its base URL and credentials, plus test-only helpers."""

    def __init__(self) -> None:
        self.client_id = f"test-client-{secrets.token_hex(6)}"
        self.client_secret = secrets.token_urlsafe(24)
        self.webhook_id = _paypal_id()
        self.base_url = ""  # set once the socket is bound
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}
        self._orders: dict[str, _Order] = {}
        self._authorizations: dict[str, _Authorization] = {}
        self._captures: dict[str, _Capture] = {}
        self._idempotent: dict[tuple[str, str], tuple[int, Any]] = {}
        self._failures: list[FailureKind] = []
        # Transmissions this server emitted: id -> (signature, time, the event as sent).
        self._transmissions: dict[str, tuple[str, str, dict[str, Any]]] = {}
        self._signing_key = secrets.token_bytes(32)
        #: Every API request seen, as (method, path, PayPal-Request-Id), for assertions.
        self.requests: list[tuple[str, str, str | None]] = []
        self.app = Starlette(routes=self._routes())

    # --- test helpers ---------------------------------------------------------------------

    def fail_next(self, kind: FailureKind, times: int = 1) -> None:
        """Make the next ``times`` Orders/Payments API calls fail with a 500 or a decline."""
        with self._lock:
            self._failures.extend([kind] * times)

    async def approve(self, approval_url: str) -> httpx.Response:
        """Approve an order as the buyer does: follow the ``approve`` link and log in/pay."""
        async with httpx.AsyncClient() as http:
            separator = "&" if "?" in approval_url else "?"
            return await http.get(f"{approval_url}{separator}buyer_action=pay")

    def order(self, order_id: str) -> dict[str, Any]:
        """The order as the Orders API would return it (for webhook resources and asserts)."""
        with self._lock:
            return self._order_json(self._orders[order_id])

    def authorization(self, authorization_id: str) -> dict[str, Any]:
        with self._lock:
            return self._authorization_json(self._authorizations[authorization_id])

    def capture(self, capture_id: str) -> dict[str, Any]:
        with self._lock:
            return self._capture_json(self._captures[capture_id])

    def emit_webhook(
        self, event_type: str, resource: dict[str, Any], *, resource_type: str | None = None
    ) -> WebhookDelivery:
        """Build a webhook delivery as PayPal sends it, signed so this server will verify it."""
        event = {
            "id": f"WH-{_paypal_id(8)}-{_paypal_id(17)}",
            "event_version": "1.0",
            "create_time": _now(),
            "resource_type": resource_type or _resource_type(event_type),
            "resource_version": "2.0",
            "event_type": event_type,
            "summary": f"{event_type} event",
            "resource": resource,
            "links": [
                {
                    "href": f"{self.base_url}/v1/notifications/webhooks-events/x",
                    "rel": "self",
                    "method": "GET",
                }
            ],
        }
        body = json.dumps(event).encode()
        transmission_id = str(uuid.uuid4())
        transmission_time = _now()
        # PayPal signs "<transmission id>|<time>|<webhook id>|<crc32 of the body>" with RSA;
        # an HMAC over the same message keeps the check meaningful without a certificate.
        message = f"{transmission_id}|{transmission_time}|{self.webhook_id}|{zlib.crc32(body)}"
        signature = base64.b64encode(
            hmac.new(self._signing_key, message.encode(), hashlib.sha256).digest()
        ).decode()
        with self._lock:
            self._transmissions[transmission_id] = (signature, transmission_time, event)
        headers = {
            "paypal-transmission-id": transmission_id,
            "paypal-transmission-time": transmission_time,
            "paypal-transmission-sig": signature,
            "paypal-cert-url": f"{self.base_url}/v1/notifications/certs/CERT-360caa42",
            "paypal-auth-algo": "SHA256withRSA",
            "content-type": "application/json",
        }
        return WebhookDelivery(body=body, headers=headers)

    # --- representation -------------------------------------------------------------------

    def _link(self, path: str, rel: str, method: str = "GET") -> dict[str, str]:
        return {"href": f"{self.base_url}{path}", "rel": rel, "method": method}

    def _order_json(self, order: _Order) -> dict[str, Any]:
        unit = dict(order.purchase_unit)
        unit["amount"] = _money(order.currency, order.amount)
        unit.setdefault("reference_id", "default")
        body: dict[str, Any] = {
            "id": order.id,
            "intent": order.intent,
            "status": order.status,
            "purchase_units": [unit],
            "create_time": order.create_time,
        }
        if order.status in ("APPROVED", "COMPLETED"):
            body["payer"] = {
                "name": {"given_name": "Test", "surname": "Buyer"},
                "email_address": "buyer@example.com",
                "payer_id": "TESTBUYERID01",
            }
            body["payment_source"] = {
                "paypal": {"email_address": "buyer@example.com", "account_id": "TESTBUYERID01"}
            }
        if order.authorization_id is not None:
            authorization = self._authorizations[order.authorization_id]
            unit["payments"] = {"authorizations": [self._authorization_json(authorization)]}
        links = [self._link(f"/v2/checkout/orders/{order.id}", "self")]
        if order.status == "CREATED":
            links.append(self._link(f"/checkoutnow?token={order.id}", "approve"))
            links.append(self._link(f"/v2/checkout/orders/{order.id}", "update", "PATCH"))
        if order.status == "APPROVED":
            action = "authorize" if order.intent == "AUTHORIZE" else "capture"
            links.append(self._link(f"/v2/checkout/orders/{order.id}/{action}", action, "POST"))
        body["links"] = links
        return body

    def _authorization_json(self, authorization: _Authorization) -> dict[str, Any]:
        path = f"/v2/payments/authorizations/{authorization.id}"
        created = datetime.strptime(authorization.create_time, "%Y-%m-%dT%H:%M:%SZ")
        return {
            "id": authorization.id,
            "status": authorization.status,
            "amount": _money(authorization.currency, authorization.amount),
            "seller_protection": {"status": "ELIGIBLE"},
            "expiration_time": (created + timedelta(days=29)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "create_time": authorization.create_time,
            "update_time": _now(),
            "supplementary_data": {"related_ids": {"order_id": authorization.order_id}},
            "links": [
                self._link(path, "self"),
                self._link(f"{path}/capture", "capture", "POST"),
                self._link(f"{path}/void", "void", "POST"),
                self._link(f"/v2/checkout/orders/{authorization.order_id}", "up"),
            ],
        }

    def _capture_json(self, capture: _Capture) -> dict[str, Any]:
        path = f"/v2/payments/captures/{capture.id}"
        authorization = self._authorizations[capture.authorization_id]
        return {
            "id": capture.id,
            "status": capture.status,
            "amount": _money(capture.currency, capture.amount),
            "final_capture": authorization.status == "CAPTURED",
            "seller_protection": {"status": "ELIGIBLE"},
            "create_time": capture.create_time,
            "update_time": _now(),
            "supplementary_data": {
                "related_ids": {
                    "order_id": authorization.order_id,
                    "authorization_id": authorization.id,
                }
            },
            "links": [
                self._link(path, "self"),
                self._link(f"{path}/refund", "refund", "POST"),
                self._link(f"/v2/payments/authorizations/{authorization.id}", "up"),
            ],
        }

    # --- HTTP -------------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        return [
            Route("/v1/oauth2/token", self._token, methods=["POST"]),
            Route("/v2/checkout/orders", self._create_order, methods=["POST"]),
            Route("/v2/checkout/orders/{id}", self._get_order, methods=["GET"]),
            Route("/v2/checkout/orders/{id}/authorize", self._authorize_order, methods=["POST"]),
            Route("/checkoutnow", self._buyer_approval, methods=["GET"]),
            Route("/v2/payments/authorizations/{id}", self._get_authorization, methods=["GET"]),
            Route("/v2/payments/captures/{id}", self._get_capture, methods=["GET"]),
            Route(
                "/v2/payments/authorizations/{id}/capture",
                self._capture_authorization,
                methods=["POST"],
            ),
            Route(
                "/v2/payments/authorizations/{id}/void",
                self._void_authorization,
                methods=["POST"],
            ),
            Route("/v2/payments/captures/{id}/refund", self._refund_capture, methods=["POST"]),
            Route(
                "/v1/notifications/verify-webhook-signature",
                self._verify_webhook_signature,
                methods=["POST"],
            ),
        ]

    async def _token(self, request: Request) -> Response:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given, f"Basic {expected}"):
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Client Authentication failed"},
                status_code=401,
            )
        # Parsed by hand: Starlette's form parsing needs python-multipart, not installed here.
        form = parse_qs((await request.body()).decode())
        if form.get("grant_type") != ["client_credentials"]:
            return JSONResponse(
                {"error": "unsupported_grant_type", "error_description": "Grant type is invalid"},
                status_code=400,
            )
        token = f"A21AA{secrets.token_urlsafe(32)}"
        with self._lock:
            self._tokens[token] = time.monotonic() + 32400
        return JSONResponse(
            {
                "scope": "https://uri.paypal.com/services/payments/payment",
                "access_token": token,
                "token_type": "Bearer",
                "app_id": "APP-80W284485P519543T",
                "expires_in": 32400,
                "nonce": f"{_now()}{secrets.token_hex(8)}",
            }
        )

    async def _api_guard(self, request: Request) -> tuple[Any, Response | None]:
        """Bearer check, idempotent replay, and injected failures: what every API call does.

        Returns the parsed JSON body (or None) and, when the call is already answered, the
        response to send.
        """
        request_id = request.headers.get("paypal-request-id")
        self.requests.append((request.method, request.url.path, request_id))
        authorization = request.headers.get("authorization", "")
        token = authorization.removeprefix("Bearer ")
        with self._lock:
            expires = self._tokens.get(token) if authorization.startswith("Bearer ") else None
        if expires is None or expires < time.monotonic():
            return None, _error(
                401,
                "AUTHENTICATION_FAILURE",
                "Authentication failed due to invalid authentication credentials or a missing "
                "Authorization header.",
            )
        body: Any = None
        raw = await request.body()
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                return None, _invalid_request("MALFORMED_REQUEST_JSON", "Body is not JSON.")
        if request.method == "POST" and request_id:
            with self._lock:
                replay = self._idempotent.get((request.url.path, request_id))
            if replay is not None:
                status, payload = replay
                return body, JSONResponse(payload, status_code=status)
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure == "server_error":
            return body, _error(500, "INTERNAL_SERVER_ERROR", "An internal server error occurred.")
        mock = request.headers.get("paypal-mock-response")
        if failure == "decline" or (mock and "INSTRUMENT_DECLINED" in mock):
            return body, _unprocessable("INSTRUMENT_DECLINED", DECLINE_DESCRIPTION)
        if mock:
            code = json.loads(mock).get("mock_application_codes", "")
            return body, _unprocessable(code, f"Mocked {code}.")
        return body, None

    def _remember(self, request: Request, status: int, payload: Any) -> JSONResponse:
        """Store a successful response under its PayPal-Request-Id for replays."""
        request_id = request.headers.get("paypal-request-id")
        if request_id:
            with self._lock:
                self._idempotent[(request.url.path, request_id)] = (status, payload)
        return JSONResponse(payload, status_code=status)

    async def _create_order(self, request: Request) -> Response:
        body, answered = await self._api_guard(request)
        if answered is not None:
            return answered
        if not isinstance(body, dict):
            return _invalid_request("MISSING_REQUIRED_PARAMETER", "A body is required.")
        intent = body.get("intent")
        if intent not in ("AUTHORIZE", "CAPTURE"):
            return _invalid_request("INVALID_PARAMETER_VALUE", "intent must be AUTHORIZE.")
        units = body.get("purchase_units")
        if not isinstance(units, list) or len(units) != 1:
            return _invalid_request("MISSING_REQUIRED_PARAMETER", "One purchase unit, please.")
        parsed = _parse_money(units[0].get("amount"))
        if isinstance(parsed, Response):
            return parsed
        currency, amount = parsed
        context = body.get("application_context") or {}
        experience = (
            (body.get("payment_source") or {}).get("paypal", {}).get("experience_context", {})
        )
        order = _Order(
            id=_paypal_id(),
            intent=intent,
            currency=currency,
            amount=amount,
            purchase_unit={k: v for k, v in units[0].items() if k != "amount"},
            return_url=experience.get("return_url") or context.get("return_url"),
        )
        with self._lock:
            self._orders[order.id] = order
            payload = self._order_json(order)
        return self._remember(request, 201, payload)

    async def _get_order(self, request: Request) -> Response:
        _, answered = await self._api_guard(request)
        if answered is not None:
            return answered
        with self._lock:
            order = self._orders.get(request.path_params["id"])
            if order is None:
                return _not_found()
            return JSONResponse(self._order_json(order))

    async def _buyer_approval(self, request: Request) -> Response:
        """The buyer's side of the approve link: PayPal's checkout page, paid at once."""
        with self._lock:
            order = self._orders.get(request.query_params.get("token", ""))
            if order is None:
                return HTMLResponse("<p>Things don't appear to be working.</p>", status_code=404)
            if request.query_params.get("buyer_action") == "pay" and order.status == "CREATED":
                order.status = "APPROVED"
            return_url = order.return_url
        if order.status == "APPROVED" and return_url:
            separator = "&" if "?" in return_url else "?"
            return RedirectResponse(
                f"{return_url}{separator}token={order.id}&PayerID=TESTBUYERID01", status_code=302
            )
        return HTMLResponse(f"<p>Order {order.id}: {order.status}</p>")

    async def _authorize_order(self, request: Request) -> Response:
        _, answered = await self._api_guard(request)
        if answered is not None:
            return answered
        with self._lock:
            order = self._orders.get(request.path_params["id"])
            if order is None:
                return _not_found()
            if order.intent != "AUTHORIZE":
                return _unprocessable(
                    "ACTION_DOES_NOT_MATCH_INTENT",
                    "Order was created with an intent to 'CAPTURE'. Please use capture.",
                )
            if order.status == "CREATED":
                return _unprocessable(
                    "ORDER_NOT_APPROVED",
                    "Payer has not yet approved the Order for payment. Please redirect the "
                    "payer to the 'rel':'approve' url returned as part of the HATEOAS links "
                    "within the Create Order call or provide a valid payment_source in the "
                    "request.",
                )
            if order.status == "COMPLETED":
                return _unprocessable(
                    "ORDER_ALREADY_AUTHORIZED", "Order already has an authorization."
                )
            authorization = _Authorization(
                id=_paypal_id(), order_id=order.id, currency=order.currency, amount=order.amount
            )
            self._authorizations[authorization.id] = authorization
            order.authorization_id = authorization.id
            order.status = "COMPLETED"
            payload = self._order_json(order)
        return self._remember(request, 201, payload)

    async def _capture_authorization(self, request: Request) -> Response:
        body, answered = await self._api_guard(request)
        if answered is not None:
            return answered
        body = body or {}
        with self._lock:
            authorization = self._authorizations.get(request.path_params["id"])
            if authorization is None:
                return _not_found()
            if authorization.status == "VOIDED":
                return _unprocessable(
                    "AUTHORIZATION_VOIDED", "A voided authorization cannot be captured."
                )
            if authorization.status == "CAPTURED":
                return _unprocessable(
                    "AUTHORIZATION_ALREADY_CAPTURED",
                    "Authorization has been previously captured and hence cannot be captured "
                    "again.",
                )
            remaining = authorization.amount - authorization.captured
            amount = remaining
            if "amount" in body:
                parsed = _parse_money(body["amount"])
                if isinstance(parsed, Response):
                    return parsed
                currency, amount = parsed
                if currency != authorization.currency:
                    return _unprocessable(
                        "CURRENCY_MISMATCH", "Currency of capture must match authorization."
                    )
                if amount > remaining:
                    return _unprocessable(
                        "MAX_CAPTURE_AMOUNT_EXCEEDED",
                        "Capture amount exceeds allowable limit.",
                    )
            authorization.captured += amount
            final = (
                bool(body.get("final_capture")) or authorization.captured == authorization.amount
            )
            authorization.status = "CAPTURED" if final else "PARTIALLY_CAPTURED"
            capture = _Capture(
                id=_paypal_id(),
                authorization_id=authorization.id,
                currency=authorization.currency,
                amount=amount,
            )
            self._captures[capture.id] = capture
            payload = self._capture_json(capture)
        return self._remember(request, 201, payload)

    async def _get_authorization(self, request: Request) -> Response:
        _, answered = await self._api_guard(request)
        if answered is not None:
            return answered
        with self._lock:
            authorization = self._authorizations.get(request.path_params["id"])
            if authorization is None:
                return _not_found()
            return JSONResponse(self._authorization_json(authorization))

    async def _get_capture(self, request: Request) -> Response:
        _, answered = await self._api_guard(request)
        if answered is not None:
            return answered
        with self._lock:
            capture = self._captures.get(request.path_params["id"])
            if capture is None:
                return _not_found()
            return JSONResponse(self._capture_json(capture))

    async def _void_authorization(self, request: Request) -> Response:
        _, answered = await self._api_guard(request)
        if answered is not None:
            return answered
        with self._lock:
            authorization = self._authorizations.get(request.path_params["id"])
            if authorization is None:
                return _not_found()
            if authorization.status in ("CAPTURED", "PARTIALLY_CAPTURED"):
                return _unprocessable(
                    "PREVIOUSLY_CAPTURED",
                    "Authorization has been previously captured and hence cannot be voided.",
                )
            if authorization.status == "VOIDED":
                return _unprocessable(
                    "PREVIOUSLY_VOIDED",
                    "Authorization has been previously voided and hence cannot be voided again.",
                )
            authorization.status = "VOIDED"
            payload = self._authorization_json(authorization)
        # PayPal answers a void with 200 and the authorization when Prefer asks for it, else 204.
        if request.headers.get("prefer") == "return=representation":
            return self._remember(request, 200, payload)
        self._remember(request, 204, None)
        return Response(status_code=204)

    async def _refund_capture(self, request: Request) -> Response:
        body, answered = await self._api_guard(request)
        if answered is not None:
            return answered
        body = body or {}
        with self._lock:
            capture = self._captures.get(request.path_params["id"])
            if capture is None:
                return _not_found()
            remaining = capture.amount - capture.refunded
            if remaining <= 0:
                return _unprocessable(
                    "CAPTURE_FULLY_REFUNDED", "The capture has already been fully refunded."
                )
            amount = remaining
            if "amount" in body:
                parsed = _parse_money(body["amount"])
                if isinstance(parsed, Response):
                    return parsed
                currency, amount = parsed
                if currency != capture.currency:
                    return _unprocessable(
                        "REFUND_CURRENCY_MISMATCH",
                        "Refund must be in the same currency as the capture.",
                    )
                if amount > remaining:
                    return _unprocessable(
                        "REFUND_AMOUNT_EXCEEDED",
                        "The refund amount must be less than or equal to the capture amount "
                        "that has not yet been refunded.",
                    )
            capture.refunded += amount
            capture.status = (
                "REFUNDED" if capture.refunded == capture.amount else "PARTIALLY_REFUNDED"
            )
            refund_id = _paypal_id()
            path = f"/v2/payments/refunds/{refund_id}"
            payload = {
                "id": refund_id,
                "status": "COMPLETED",
                "amount": _money(capture.currency, amount),
                "seller_payable_breakdown": {
                    "gross_amount": _money(capture.currency, amount),
                    "total_refunded_amount": _money(capture.currency, capture.refunded),
                },
                "create_time": _now(),
                "update_time": _now(),
                "links": [
                    self._link(path, "self"),
                    self._link(f"/v2/payments/captures/{capture.id}", "up"),
                ],
            }
        return self._remember(request, 201, payload)

    async def _verify_webhook_signature(self, request: Request) -> Response:
        body, answered = await self._api_guard(request)
        if answered is not None:
            return answered
        required = (
            "auth_algo",
            "cert_url",
            "transmission_id",
            "transmission_sig",
            "transmission_time",
            "webhook_id",
            "webhook_event",
        )
        if not isinstance(body, dict) or any(body.get(name) is None for name in required):
            return _invalid_request("MISSING_REQUIRED_PARAMETER", "A required field is missing.")
        with self._lock:
            sent = self._transmissions.get(str(body["transmission_id"]))
        verified = (
            sent is not None
            and body["webhook_id"] == self.webhook_id
            and hmac.compare_digest(str(body["transmission_sig"]), sent[0])
            and body["transmission_time"] == sent[1]
            and body["webhook_event"] == sent[2]
        )
        return JSONResponse({"verification_status": "SUCCESS" if verified else "FAILURE"})


def _resource_type(event_type: str) -> str:
    if event_type.startswith("CHECKOUT.ORDER."):
        return "checkout-order"
    if event_type.startswith("PAYMENT.AUTHORIZATION."):
        return "authorization"
    if event_type == "PAYMENT.CAPTURE.REFUNDED":
        return "refund"
    if event_type.startswith("PAYMENT.CAPTURE."):
        return "capture"
    if event_type.startswith("CUSTOMER.DISPUTE."):
        return "dispute"
    return "unknown"


@pytest.fixture(scope="session")
def paypal_server() -> Iterator[PayPalServer]:
    """A PayPal test server on a free 127.0.0.1 port, in a background thread, for the session."""
    server = PayPalServer()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(server.app, log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(
        target=uv.run, kwargs={"sockets": [sock]}, name="paypal-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the PayPal test server did not start")
        time.sleep(0.01)
    try:
        yield server
    finally:
        uv.should_exit = True
        thread.join(timeout=5)
        sock.close()
