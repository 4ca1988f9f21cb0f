"""Advisory locks: the one way the application serialises work on a key that has no row to
lock yet (an idempotency key, a reservation key, a payment id a webhook names).

Transaction-scoped (``pg_advisory_xact_lock``): held until the transaction ends, a savepoint
does not free it, nothing to release by hand. The key is a name made of parts
(``"checkout", customer_id, idempotency_key``), hashed to PostgreSQL's signed 64-bit lock id.
Two names that collide only make unrelated work wait for each other, never break anything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Keeps ("ab", "c") and ("a", "bc") apart. A part that contains it (a client's idempotency
# key could) at worst collides with another name: both then wait for each other, no more.
_SEPARATOR = "\x1f"


def lock_id(*parts: object) -> int:
    """The signed 64-bit advisory lock id of the name made of ``parts``."""
    name = _SEPARATOR.join(str(part) for part in parts)
    digest = hashlib.sha256(name.encode()).digest()[:8]
    return int.from_bytes(digest, "big", signed=True)


async def advisory_lock(session: AsyncSession, *parts: object) -> None:
    """Wait for, then hold until the transaction ends, the lock named by ``parts``."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id(*parts)})


async def advisory_locks(session: AsyncSession, names: Iterable[Sequence[object]]) -> None:
    """Several locks at once, taken in one fixed order, so two transactions wanting
    overlapping sets cannot deadlock."""
    for identifier in sorted({lock_id(*name) for name in names}):
        await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": identifier})
