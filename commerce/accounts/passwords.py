"""Password hashing (Argon2id) and the strength rules a new password must meet."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

from commerce.errors import DomainError

MIN_LENGTH = 10
# Long enough for any passphrase or manager; bounded so hashing cannot be made a DoS.
MAX_LENGTH = 256
# zxcvbn scores 0-4; 3 is "safely unguessable: moderate protection from offline attack".
MIN_SCORE = 3


class WeakPassword(DomainError):
    status, code, title = 422, "weak_password", "The password is too weak"


@dataclass(frozen=True)
class PasswordPolicy:
    memory_kib: int
    time_cost: int

    @cached_property
    def hasher(self) -> PasswordHasher:
        # argon2-cffi's PasswordHasher is Argon2id.
        return PasswordHasher(time_cost=self.time_cost, memory_cost=self.memory_kib, parallelism=1)

    @cached_property
    def _dummy_hash(self) -> str:
        return self.hasher.hash("not a real password, used to spend the time")

    async def hash(self, password: str) -> str:
        # Hashing is ~50 ms of CPU by design: off the event loop.
        return await asyncio.to_thread(self.hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when the password matches. With no hash (no such user, or a social-only
        account) the same work is done, so the answer takes as long either way."""
        target = password_hash or self._dummy_hash
        try:
            matched = await asyncio.to_thread(self.hasher.verify, target, password)
        except (VerificationError, InvalidHashError):
            return False
        return bool(matched) and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        return self.hasher.check_needs_rehash(password_hash)


def check_strength(password: str, *, email: str, username: str, name: str | None = None) -> None:
    """Refuse passwords that are short, contain the account's own names, or are common."""
    reasons: list[str] = []
    if len(password) < MIN_LENGTH:
        reasons.append(f"use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        reasons.append(f"use at most {MAX_LENGTH} characters")
    lowered = password.lower()
    local_part = email.split("@", 1)[0].lower()
    for label, value in (("email address", local_part), ("username", username.lower())):
        if len(value) >= 3 and value in lowered:
            reasons.append(f"do not include your {label}")
    if not reasons:
        inputs = [email, local_part, username] + ([name] if name else [])
        result = zxcvbn(password[:100], user_inputs=inputs)
        if result["score"] < MIN_SCORE:
            warning = result["feedback"].get("warning") or "this password is easy to guess"
            reasons.append(warning[0].lower() + warning[1:].rstrip("."))
    if reasons:
        raise WeakPassword(
            "Choose a stronger password: " + "; ".join(reasons) + ".", reasons=reasons
        )
