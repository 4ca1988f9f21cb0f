"""``TestPaymentProvider``: the built-in, deterministic payment provider for dev and tests.

Not for production. It behaves like a real provider across processes: its state (payments,
the replies remembered per idempotency key, the ``tok_flaky_N`` failure counters) lives in a
``TestProviderStore``. The dev platform, the worker and the API use ``PostgresTestProviderStore``
(table ``test_payment_records``), so the worker that authorizes, the API that receives the
webhook and a restarted worker that captures all see the same payment. Without a store it keeps
its state in memory (``MemoryTestProviderStore``), which is enough for one-process unit tests.
Every call is one unit under a lock on its idempotency key and its payment: concurrent calls on
the same payment, from any process, run one after the other.

The payment token chooses the behaviour:

* ``tok_ok`` - authorizes.
* ``tok_decline`` - declines with decline code ``card_declined``.
* ``tok_insufficient_funds`` - declines with decline code ``insufficient_funds``.
* ``tok_3ds`` - ``requires_action`` with a client secret. The test plays the shopper finishing
  the challenge with ``complete_challenge`` (passed or failed); that moves the payment to
  ``authorized`` (or ``declined``) and returns the signed webhook the provider then sends, for
  the test to deliver to the webhook route. ``parse_webhook`` only verifies and parses: it never
  changes a payment.
* ``tok_flaky_<N>`` - raises ``TransientPaymentError`` on the first N attempts with a given
  idempotency key, then authorizes (exercises activity retries; the count survives restarts).
* ``tok_slow_capture_<MS>`` - authorizes; its capture (and each refund) is stored, then
  answered only after MS milliseconds (a worker killed in that gap has captured or refunded
  without hearing about it).

Webhooks are signed like Stripe's: header ``Emporium-Test-Signature: t=<unix>,v1=<hex>`` where
``v1 = HMAC-SHA256(secret, f"{t}.{payload}")``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, TypeVar, cast

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from commerce.payments.provider import (
    Authorization,
    AuthorizationStatus,
    AuthorizeRequest,
    Capture,
    InvalidWebhook,
    PaymentDeclined,
    Refund,
    TransientPaymentError,
    WebhookEvent,
    event_time,
)
from core import webhook_signatures
from core.clock import SYSTEM_CLOCK, Clock
from core.locks import advisory_locks
from models import TestPaymentRecord

SIGNATURE_HEADER = "Emporium-Test-Signature"
DEFAULT_WEBHOOK_SECRET = "whsec_emporium_test"  # noqa: S105 - a public dev-only value
#: How old a signed webhook may be, as Stripe's default tolerance (replay protection).
WEBHOOK_TOLERANCE_S = 300

_FLAKY = re.compile(r"^tok_flaky_(\d+)$")
_SLOW_CAPTURE = re.compile(r"^tok_slow_capture_(\d{1,6})$")
_DECLINES = {"tok_decline": "card_declined", "tok_insufficient_funds": "insufficient_funds"}
_EVENT_STATUSES: frozenset[str] = frozenset(
    ("approved", "authorized", "captured", "failed", "canceled", "refunded", "disputed")
)

PaymentState = Literal["requires_action", "authorized", "captured", "voided", "declined"]

# Record kinds in the store (``test_payment_records.kind``, at most 20 characters).
_PAYMENT = "payment"
_FLAKY_ATTEMPTS = "flaky"
Operation = Literal["authorize", "capture", "void", "refund"]


# --- the store -------------------------------------------------------------------------------


class TestProviderTx(Protocol):
    """Reads and writes of JSON records inside one locked unit of a ``TestProviderStore``."""

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The record, or ``None``; sees this unit's own writes."""
        ...

    async def put(self, kind: str, key: str, data: dict[str, Any]) -> None:
        """Create or replace the record; kept only if the unit ends without an exception."""
        ...


class TestProviderStore(Protocol):
    """Where ``TestPaymentProvider`` keeps its state.

    ``locked(*keys)`` opens one all-or-nothing unit: it waits until no other unit, in any
    process sharing the store, holds any of ``keys``; writes are kept only when the block ends
    without an exception.
    """

    def locked(self, *keys: str) -> AbstractAsyncContextManager[TestProviderTx]: ...


class _MemoryTx:
    def __init__(self, records: dict[tuple[str, str], str]) -> None:
        self._records = records
        self.writes: dict[tuple[str, str], str] = {}

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        stored = self.writes.get((kind, key), self._records.get((kind, key)))
        # Stored as JSON text, as in PostgreSQL: what comes back is a copy, never shared state.
        return None if stored is None else cast(dict[str, Any], json.loads(stored))

    async def put(self, kind: str, key: str, data: dict[str, Any]) -> None:
        self.writes[(kind, key)] = json.dumps(data)


class MemoryTestProviderStore:
    """State in this process's memory: the default, for unit tests. One lock for everything."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], str] = {}
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def _unit(self) -> AsyncIterator[TestProviderTx]:
        async with self._lock:
            tx = _MemoryTx(self._records)
            yield tx
            self._records.update(tx.writes)

    def locked(self, *keys: str) -> AbstractAsyncContextManager[TestProviderTx]:
        return self._unit()


def _row_key(key: str) -> str:
    # The column holds 255 characters; a longer idempotency key is stored under its digest.
    if len(key) <= 255:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class _PostgresTx:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        data: dict[str, Any] | None = await self._session.scalar(
            select(TestPaymentRecord.data).where(
                TestPaymentRecord.kind == kind, TestPaymentRecord.key == _row_key(key)
            )
        )
        return data

    async def put(self, kind: str, key: str, data: dict[str, Any]) -> None:
        statement = insert(TestPaymentRecord).values(kind=kind, key=_row_key(key), data=data)
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[TestPaymentRecord.kind, TestPaymentRecord.key],
                set_={
                    "data": statement.excluded.data,
                    # Bookkeeping of this simulated provider's own store, never compared.
                    "updated_at": func.clock_timestamp(),  # noqa: TID251
                },
            )
        )


class PostgresTestProviderStore:
    """State in ``test_payment_records``, shared by every process on the database.

    A unit is one transaction holding ``pg_advisory_xact_lock`` on each key, taken in sorted
    order so two units wanting the same keys cannot deadlock. READ COMMITTED (forced, whatever
    the engine's default) makes the reads after the lock see what the previous holder committed.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    @asynccontextmanager
    async def _unit(self, keys: tuple[str, ...]) -> AsyncIterator[TestProviderTx]:
        async with self._sessionmaker() as session, session.begin():
            await session.connection(execution_options={"isolation_level": "READ COMMITTED"})
            await advisory_locks(session, [("test-payments", key) for key in keys])
            yield _PostgresTx(session)

    def locked(self, *keys: str) -> AbstractAsyncContextManager[TestProviderTx]:
        return self._unit(keys)


# --- what is stored --------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedWebhook:
    """A webhook body and its headers, as the provider would POST them."""

    payload: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class TestPaymentState:
    """A payment as the test provider sees it, for tests to assert on.

    ``captures`` counts the captures that really happened (a replayed capture is not one);
    ``captured`` and ``refunded`` are amounts in minor units.
    """

    __test__ = False  # not a pytest test class

    payment_id: str
    state: PaymentState
    amount: int
    currency: str
    captured: int
    refunded: int
    captures: int
    refunds: tuple[str, ...]


@dataclass
class _Payment:
    id: str
    amount: int
    currency: str
    state: PaymentState
    client_secret: str
    captured: int = 0
    refunded: int = 0
    captures: int = 0
    refunds: list[str] = field(default_factory=list)
    capture_delay_ms: int = 0

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> _Payment:
        return cls(**data)

    def state_view(self) -> TestPaymentState:
        return TestPaymentState(
            payment_id=self.id,
            state=self.state,
            amount=self.amount,
            currency=self.currency,
            captured=self.captured,
            refunded=self.refunded,
            captures=self.captures,
            refunds=tuple(self.refunds),
        )


_Outcome = Authorization | Capture | Refund | PaymentDeclined | None
_Result = TypeVar("_Result", Authorization, Capture, Refund)


def _dump(outcome: _Outcome) -> dict[str, Any]:
    """An outcome as JSON, to be rebuilt identically by ``_load`` when the key is replayed."""
    if isinstance(outcome, PaymentDeclined):
        return {"type": "declined", "detail": outcome.detail, "reason": outcome.reason}
    if outcome is None:
        return {"type": "done"}
    kind = {Authorization: "authorization", Capture: "capture", Refund: "refund"}[type(outcome)]
    return {"type": kind, "value": asdict(outcome)}


def _load(data: dict[str, Any]) -> _Outcome:
    kind = data["type"]
    if kind == "declined":
        return PaymentDeclined(data["detail"], reason=data["reason"])
    if kind == "done":
        return None
    result_type = {"authorization": Authorization, "capture": Capture, "refund": Refund}[kind]
    return result_type(**data["value"])


def _deliver(outcome: _Outcome, expected: type[_Result]) -> _Result:
    """The result, or the refusal raised (as Stripe replays a stored error, identically)."""
    if isinstance(outcome, PaymentDeclined):
        raise outcome
    if not isinstance(outcome, expected):
        raise TypeError(f"stored outcome {outcome!r} is not a {expected.__name__}")
    return outcome


def _digest(*parts: str) -> str:
    """A short stable id fragment: same inputs, same id, run after run (deterministic tests)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]


def _fingerprint(*arguments: str | int | None) -> str:
    # A digest, not the arguments: the payment token is kept out of the table as out of logs.
    return hashlib.sha256(json.dumps(arguments).encode()).hexdigest()


def _payment_lock(payment_id: str) -> str:
    return f"payment:{payment_id}"


def _call_lock(operation: Operation, idempotency_key: str) -> str:
    return f"{operation}:{idempotency_key}"


async def _replay(
    tx: TestProviderTx, operation: Operation, key: str, fingerprint: str
) -> dict[str, Any] | None:
    """The stored outcome of an earlier call with this key, or ``None`` for a new call."""
    stored = await tx.get(operation, key)
    if stored is None:
        return None
    if stored["fingerprint"] != fingerprint:
        raise ValueError(f"idempotency key reused for a different {operation} request")
    outcome: dict[str, Any] = stored["outcome"]
    return outcome


async def _remember(
    tx: TestProviderTx, operation: Operation, key: str, fingerprint: str, outcome: _Outcome
) -> None:
    await tx.put(operation, key, {"fingerprint": fingerprint, "outcome": _dump(outcome)})


async def _load_payment(tx: TestProviderTx, payment_id: str) -> _Payment | None:
    data = await tx.get(_PAYMENT, payment_id)
    return None if data is None else _Payment.from_record(data)


async def _require_payment(tx: TestProviderTx, payment_id: str) -> _Payment:
    payment = await _load_payment(tx, payment_id)
    if payment is None:
        raise PaymentDeclined(f"no such payment {payment_id}", reason="resource_missing")
    return payment


async def _save_payment(tx: TestProviderTx, payment: _Payment) -> None:
    await tx.put(_PAYMENT, payment.id, asdict(payment))


_STATE_AFTER: dict[AuthorizationStatus, PaymentState] = {
    "authorized": "authorized",
    "requires_action": "requires_action",
    "declined": "declined",
}


def _client_secret(payment_id: str, idempotency_key: str) -> str:
    return f"{payment_id}_secret_{_digest('secret', idempotency_key)}"


def _decide(request: AuthorizeRequest, payment_id: str, currency: str) -> Authorization:
    """What the token says the authorization is (a ``tok_flaky_N`` past its failures: ok)."""
    behaviour = request.payment_token
    if behaviour in _DECLINES:
        return Authorization(
            status="declined",
            provider_payment_id=payment_id,
            amount=request.amount,
            currency=currency,
            decline_code=_DECLINES[behaviour],
            message="The card was declined.",
        )
    if behaviour == "tok_3ds":
        return Authorization(
            status="requires_action",
            provider_payment_id=payment_id,
            amount=request.amount,
            currency=currency,
            client_secret=_client_secret(payment_id, request.idempotency_key),
        )
    if (
        behaviour == "tok_ok"
        or _FLAKY.match(behaviour) is not None
        or _SLOW_CAPTURE.match(behaviour) is not None
    ):
        return Authorization(
            status="authorized",
            provider_payment_id=payment_id,
            amount=request.amount,
            currency=currency,
        )
    return Authorization(
        status="declined",
        provider_payment_id=payment_id,
        amount=request.amount,
        currency=currency,
        decline_code="invalid_payment_method",
        message="Unknown test payment token.",
    )


async def _fails_this_time(tx: TestProviderTx, request: AuthorizeRequest) -> bool:
    """Whether this ``tok_flaky_N`` attempt fails; counts the failure per idempotency key.

    A failed attempt remembers no reply: like a dropped connection, nothing happened on the
    provider, and the next attempt with the key is judged afresh.
    """
    flaky = _FLAKY.match(request.payment_token)
    if flaky is None:
        return False
    counted = await tx.get(_FLAKY_ATTEMPTS, request.idempotency_key)
    failures = 0 if counted is None else int(counted["failures"])
    if failures >= int(flaky.group(1)):
        return False
    await tx.put(_FLAKY_ATTEMPTS, request.idempotency_key, {"failures": failures + 1})
    return True


# --- the provider ----------------------------------------------------------------------------


class TestPaymentProvider:
    """The embedded default ``PaymentProvider``: deterministic, its state in a store."""

    # Not a pytest test class, whatever its name says.
    __test__ = False

    name = "test"

    def __init__(
        self,
        *,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        clock: Clock = SYSTEM_CLOCK,
        store: TestProviderStore | None = None,
    ) -> None:
        self._webhook_secret = webhook_secret
        self._clock = clock
        self._store: TestProviderStore = store if store is not None else MemoryTestProviderStore()

    # --- PaymentProvider ----------------------------------------------------------------

    async def authorize(self, request: AuthorizeRequest) -> Authorization:
        """Authorize according to the token (see the module docstring)."""
        key = request.idempotency_key
        currency = request.currency.lower()
        fingerprint = _fingerprint(request.amount, currency, request.payment_token)
        payment_id = f"pay_test_{_digest(key)}"
        async with self._store.locked(
            _call_lock("authorize", key), _payment_lock(payment_id)
        ) as tx:
            replayed = await _replay(tx, "authorize", key, fingerprint)
            if replayed is not None:
                return _deliver(_load(replayed), Authorization)

            if not await _fails_this_time(tx, request):
                authorization = _decide(request, payment_id, currency)
                await _save_payment(
                    tx,
                    _Payment(
                        id=payment_id,
                        amount=request.amount,
                        currency=currency,
                        state=_STATE_AFTER[authorization.status],
                        client_secret=_client_secret(payment_id, key),
                        capture_delay_ms=int(slow.group(1))
                        if (slow := _SLOW_CAPTURE.match(request.payment_token))
                        else 0,
                    ),
                )
                await _remember(tx, "authorize", key, fingerprint, authorization)
                return authorization
        # Raised once the unit is over, so that the failure count is kept.
        raise TransientPaymentError("test provider: simulated network failure")

    async def capture(
        self, payment_id: str, *, amount: int | None = None, idempotency_key: str
    ) -> Capture:
        """Capture once (as Stripe): a partial capture releases the rest of the authorization."""
        fingerprint = _fingerprint(payment_id, amount)
        async with self._store.locked(
            _call_lock("capture", idempotency_key), _payment_lock(payment_id)
        ) as tx:
            replayed = await _replay(tx, "capture", idempotency_key, fingerprint)
            if replayed is not None:
                outcome = _load(replayed)
            else:
                outcome = await self._capture(tx, payment_id, amount)
                await _remember(tx, "capture", idempotency_key, fingerprint, outcome)
                delay_ms = (await _require_payment(tx, payment_id)).capture_delay_ms
        if replayed is None and delay_ms:
            # Stored (the unit above committed), answered late: the caller may die first.
            await asyncio.sleep(delay_ms / 1000)
        return _deliver(outcome, Capture)

    async def _capture(
        self, tx: TestProviderTx, payment_id: str, amount: int | None
    ) -> Capture | PaymentDeclined:
        payment = await _require_payment(tx, payment_id)
        to_capture = payment.amount if amount is None else amount
        if payment.state != "authorized":
            reason = "already_captured" if payment.state == "captured" else "invalid_state"
            return PaymentDeclined(
                f"cannot capture a payment that is {payment.state}", reason=reason
            )
        if not 0 < to_capture <= payment.amount:
            return PaymentDeclined(
                "capture amount must be positive and at most the authorized amount",
                reason="amount_too_large",
            )
        payment.state = "captured"
        payment.captured = to_capture
        payment.captures += 1
        await _save_payment(tx, payment)
        return Capture(provider_payment_id=payment_id, amount=to_capture, currency=payment.currency)

    async def void(self, payment_id: str, *, idempotency_key: str) -> None:
        """Release an uncaptured authorization; voiding a declined or voided payment is a no-op."""
        fingerprint = _fingerprint(payment_id)
        async with self._store.locked(
            _call_lock("void", idempotency_key), _payment_lock(payment_id)
        ) as tx:
            replayed = await _replay(tx, "void", idempotency_key, fingerprint)
            if replayed is not None:
                outcome = _load(replayed)
            else:
                payment = await _require_payment(tx, payment_id)
                if payment.state == "captured":
                    outcome = PaymentDeclined(
                        "cannot void a captured payment; refund it", reason="already_captured"
                    )
                else:
                    outcome = None
                    if payment.state in ("authorized", "requires_action"):
                        payment.state = "voided"
                        await _save_payment(tx, payment)
                await _remember(tx, "void", idempotency_key, fingerprint, outcome)
        if isinstance(outcome, PaymentDeclined):
            raise outcome

    async def refund(
        self,
        payment_id: str,
        *,
        amount: int | None = None,
        currency: str | None = None,
        idempotency_key: str,
    ) -> Refund:
        """Refund up to what was captured and not yet refunded, in as many refunds as needed."""
        fingerprint = _fingerprint(payment_id, amount)
        async with self._store.locked(
            _call_lock("refund", idempotency_key), _payment_lock(payment_id)
        ) as tx:
            replayed = await _replay(tx, "refund", idempotency_key, fingerprint)
            if replayed is not None:
                outcome = _load(replayed)
            else:
                outcome = await self._refund(tx, payment_id, amount, idempotency_key)
                await _remember(tx, "refund", idempotency_key, fingerprint, outcome)
                delay_ms = (await _require_payment(tx, payment_id)).capture_delay_ms
        if replayed is None and delay_ms and isinstance(outcome, Refund):
            # As for captures: stored, answered late (a worker may die in between).
            await asyncio.sleep(delay_ms / 1000)
        return _deliver(outcome, Refund)

    async def _refund(
        self, tx: TestProviderTx, payment_id: str, amount: int | None, idempotency_key: str
    ) -> Refund | PaymentDeclined:
        payment = await _require_payment(tx, payment_id)
        remaining = payment.captured - payment.refunded
        to_refund = remaining if amount is None else amount
        if payment.state != "captured":
            return PaymentDeclined(
                f"cannot refund a payment that is {payment.state}", reason="invalid_state"
            )
        if remaining == 0:
            return PaymentDeclined("payment already fully refunded", reason="already_refunded")
        if not 0 < to_refund <= remaining:
            return PaymentDeclined(
                f"refund of {to_refund} exceeds the {remaining} left to refund",
                reason="amount_too_large",
            )
        refund = Refund(
            provider_refund_id=f"re_test_{_digest(idempotency_key)}",
            provider_payment_id=payment_id,
            amount=to_refund,
            currency=payment.currency,
            status="succeeded",
        )
        payment.refunded += to_refund
        payment.refunds.append(refund.provider_refund_id)
        await _save_payment(tx, payment)
        return refund

    # --- the shopper, and what tests look at --------------------------------------------

    async def complete_challenge_with_secret(
        self, client_secret: str, *, succeeded: bool = True
    ) -> SignedWebhook:
        """``complete_challenge`` as the shopper's browser calls it: with the client secret the
        checkout handed out (as Stripe.js does), which names the payment and proves the caller
        may act on it. A wrong secret is ``invalid_client_secret``."""
        payment_id, marker, _ = client_secret.rpartition("_secret_")
        if not marker or not payment_id.startswith("pay_test_"):
            raise PaymentDeclined(
                "not a test payment client secret", reason="invalid_client_secret"
            )
        async with self._store.locked(_payment_lock(payment_id)) as tx:
            payment = await _load_payment(tx, payment_id)
        if payment is None or not hmac.compare_digest(payment.client_secret, client_secret):
            raise PaymentDeclined(
                "not a test payment client secret", reason="invalid_client_secret"
            )
        return await self.complete_challenge(payment_id, succeeded=succeeded)

    async def complete_challenge(
        self, payment_id: str, *, succeeded: bool = True, event_id: str | None = None
    ) -> SignedWebhook:
        """Play the shopper finishing 3-D Secure on a ``requires_action`` payment.

        The payment becomes ``authorized`` (``declined`` when the challenge failed); returned is
        the signed webhook the provider then sends (``payment.authorized`` / ``payment.failed``),
        for the test to deliver. A payment not awaiting a challenge: ``invalid_state``; an
        unknown one: ``resource_missing``.
        """
        async with self._store.locked(_payment_lock(payment_id)) as tx:
            payment = await _require_payment(tx, payment_id)
            if payment.state != "requires_action":
                raise PaymentDeclined(
                    f"no challenge to complete on a payment that is {payment.state}",
                    reason="invalid_state",
                )
            payment.state = "authorized" if succeeded else "declined"
            await _save_payment(tx, payment)
        status: Literal["authorized", "failed"] = "authorized" if succeeded else "failed"
        event = WebhookEvent(
            provider_event_id=event_id or f"evt_test_{uuid.uuid4().hex}",
            type=f"payment.{status}",
            payment_id=payment_id,
            status=status,
            amount=payment.amount,
        )
        return self.signed_webhook(event)

    async def inspect(self, payment_id: str) -> TestPaymentState | None:
        """The payment as stored now, or ``None`` if this provider never created it."""
        async with self._store.locked(_payment_lock(payment_id)) as tx:
            payment = await _load_payment(tx, payment_id)
        return None if payment is None else payment.state_view()

    # --- webhooks -----------------------------------------------------------------------

    def signed_webhook(self, event: WebhookEvent, *, timestamp: int | None = None) -> SignedWebhook:
        """Build the body and headers the provider would send for ``event``, correctly signed.

        Tests use it to send any event (a duplicate, one out of order) to the webhook route;
        ``timestamp`` lets a test send a stale one. It changes no payment.
        """
        body = {
            "id": event.provider_event_id,
            "type": event.type,
            "payment_id": event.payment_id,
            "status": event.status,
            "amount": event.amount,
        }
        signed_at = int(self._clock.now().timestamp()) if timestamp is None else timestamp
        body["created"] = int(event.occurred_at.timestamp()) if event.occurred_at else signed_at
        payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        return SignedWebhook(
            payload=payload,
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: webhook_signatures.header(
                    self._webhook_secret, payload, signed_at
                ),
            },
        )

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """Verify the signature and parse the event; no state changes (any process may call it)."""
        self._verify(payload, headers)
        try:
            body = json.loads(payload)
            status = body.get("status")
            if status is not None and status not in _EVENT_STATUSES:
                raise ValueError(f"unknown status {status!r}")
            amount, created = body.get("amount"), body.get("created")
            return WebhookEvent(
                provider_event_id=str(body["id"]),
                type=str(body["type"]),
                payment_id=body.get("payment_id"),
                status=status,
                amount=int(amount) if amount is not None else None,
                occurred_at=event_time(created),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise InvalidWebhook(f"malformed test webhook: {error}") from None

    def _verify(self, payload: bytes, headers: Mapping[str, str]) -> None:
        lowered = {name.lower(): value for name, value in headers.items()}
        refused = webhook_signatures.problem(
            self._webhook_secret,
            payload,
            lowered.get(SIGNATURE_HEADER.lower()),
            now=self._clock.now().timestamp(),
            tolerance_s=WEBHOOK_TOLERANCE_S,
        )
        if refused is not None:
            raise InvalidWebhook(refused)
