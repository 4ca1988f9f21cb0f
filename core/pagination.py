"""Keyset pagination: the one cursor codec of every list.

A list is ordered by a unique key (``created_at DESC, id DESC``, or a sort column and the id),
and the next page starts after the last row of this one. The cursor a page gives out holds
that row's key, named by the list it belongs to (its ``scope``: ``"orders"``,
``"products:price_asc"``) and sealed with a digest, so an edited, truncated or borrowed
cursor (another list's, another sort's) is refused as ``InvalidCursor`` (the API answers
422 ``invalid_cursor``) instead of silently starting somewhere else. The digest is not a
secret: a cursor only says where a page starts, which any client can do by paging.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

#: A cursor longer than this was not made here (the longest real ones are ~200 characters).
MAX_CURSOR_LENGTH = 512
_DIGEST_SIZE = 8

#: What a key part may be: the types the lists sort by.
Key = datetime | uuid.UUID | int | str

T = TypeVar("T")


class InvalidCursor(ValueError):
    """Not a cursor this list gave out."""

    code = "invalid_cursor"

    def __init__(
        self, detail: str = "Use the next_cursor of the previous page, unchanged."
    ) -> None:
        super().__init__(detail)
        self.detail = detail


def encode_cursor(scope: str, *keys: Key) -> str:
    """The cursor of the page after the row whose sort key is ``keys``, in list ``scope``."""
    parts: list[object] = [scope]
    for key in keys:
        if isinstance(key, datetime):
            if key.tzinfo is None:
                raise ValueError("cursor timestamps carry their offset")
            parts.append(key.isoformat())
        elif isinstance(key, uuid.UUID):
            parts.append(str(key))
        elif isinstance(key, int | str) and not isinstance(key, bool):
            parts.append(key)
        else:
            raise TypeError(f"a cursor key is a datetime, UUID, int or str, not {key!r}")
    payload = json.dumps(parts, separators=(",", ":"), ensure_ascii=False).encode()
    digest = hashlib.blake2b(payload, digest_size=_DIGEST_SIZE).digest()
    return base64.urlsafe_b64encode(digest + payload).decode().rstrip("=")


def decode_cursor(cursor: str, scope: str, *types: type[Key]) -> tuple[Any, ...]:
    """The key a cursor of list ``scope`` was made from, one part per type in ``types``;
    ``InvalidCursor`` for anything else."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor("The cursor is too long.")
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        digest, payload = raw[:_DIGEST_SIZE], raw[_DIGEST_SIZE:]
        expected = hashlib.blake2b(payload, digest_size=_DIGEST_SIZE).digest()
        if not hmac.compare_digest(digest, expected):
            raise ValueError("digest mismatch")
        made_for, *parts = json.loads(payload)
        if len(parts) != len(types):
            raise ValueError("wrong number of parts")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor() from None
    if made_for != scope:
        raise InvalidCursor(
            "The cursor belongs to another list or sort order; start from the first page."
        )
    try:
        return tuple(_parse(part, kind) for part, kind in zip(parts, types, strict=True))
    except (ValueError, TypeError):
        raise InvalidCursor() from None


def _parse(part: object, kind: type[Key]) -> Key:
    if kind is datetime and isinstance(part, str):
        when = datetime.fromisoformat(part)
        if when.tzinfo is None:
            raise ValueError("naive timestamp")
        return when
    if kind is uuid.UUID and isinstance(part, str):
        return uuid.UUID(part)
    if kind is int and isinstance(part, int) and not isinstance(part, bool):
        return part
    if kind is str and isinstance(part, str):
        return part
    raise ValueError(f"a cursor part of the wrong type: {part!r}")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the cursor of the next (``None`` on the last page)."""

    items: list[T]
    next_cursor: str | None


async def newest_first(
    session: AsyncSession,
    statement: Select[T],
    *,
    created_at: InstrumentedAttribute[datetime],
    id: InstrumentedAttribute[uuid.UUID],
    scope: str,
    cursor: str | None,
    limit: int,
) -> Page[T]:
    """The page of ``statement``'s rows, newest first (``created_at DESC, id DESC``), that
    starts after ``cursor``: the one keyset walk of every list ordered by creation."""
    if cursor is not None:
        after_at, after_id = decode_cursor(cursor, scope, datetime, uuid.UUID)
        statement = statement.where(tuple_(created_at, id) < tuple_(after_at, after_id))
    statement = statement.order_by(created_at.desc(), id.desc()).limit(limit + 1)
    rows = list((await session.scalars(statement)).all())
    items = rows[:limit]
    if len(rows) <= limit:
        return Page(items, None)
    last = items[-1]
    return Page(items, encode_cursor(scope, getattr(last, created_at.key), getattr(last, id.key)))
