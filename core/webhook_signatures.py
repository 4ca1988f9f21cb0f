"""Stripe-style webhook signatures, for the webhooks we sign ourselves (the built-in test
payment provider, the simulated carrier): header ``t=<unix>,v1=<hex>`` where
``v1 = HMAC-SHA256(secret, f"{t}.{payload}")``, checked in constant time within a tolerance
(replay protection)."""

from __future__ import annotations

import hashlib
import hmac

TOLERANCE_S = 300


def sign(secret: str, payload: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()


def header(secret: str, payload: bytes, timestamp: int) -> str:
    return f"t={timestamp},v1={sign(secret, payload, timestamp)}"


def problem(
    secret: str, payload: bytes, value: str | None, *, now: float, tolerance_s: float = TOLERANCE_S
) -> str | None:
    """Why the signature header ``value`` does not vouch for ``payload``; None if it does."""
    if not value:
        return "the signature header is missing"
    parts: dict[str, list[str]] = {}
    for item in value.split(","):
        key, _, given = item.strip().partition("=")
        parts.setdefault(key, []).append(given)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        return "the signature has no timestamp"
    expected = sign(secret, payload, timestamp)
    # compare_digest: no timing oracle on the signature.
    if not any(hmac.compare_digest(expected, given) for given in parts.get("v1", [])):
        return "the signature does not match"
    if abs(now - timestamp) > tolerance_s:
        return "the signature is outside the time tolerance"
    return None
