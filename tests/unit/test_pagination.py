"""core.pagination: the one cursor codec. A cursor reads back to the key it was made from,
and anything else (edited, cut, another list's, another sort's) is refused."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.pagination import MAX_CURSOR_LENGTH, InvalidCursor, decode_cursor, encode_cursor

WHEN = datetime(2026, 12, 5, 12, 30, 15, 123456, tzinfo=UTC)
ID = uuid.UUID("6f1c2c1e-8a7d-4b8e-9d7a-0c1f2e3d4c5b")


def test_a_cursor_reads_back_to_its_key() -> None:
    cursor = encode_cursor("orders", WHEN, ID)
    assert decode_cursor(cursor, "orders", datetime, uuid.UUID) == (WHEN, ID)
    # URL-safe, unpadded: it goes in a query string as it is.
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@given(
    when=st.datetimes(timezones=st.just(timezone(timedelta(hours=5, minutes=30)))),
    number=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    text=st.text(max_size=40),  # the longest text keys: SKUs and warehouse codes
    ident=st.uuids(),
)
def test_every_kind_of_key_reads_back(
    when: datetime, number: int, text: str, ident: uuid.UUID
) -> None:
    cursor = encode_cursor("list", when, number, text, ident)
    assert decode_cursor(cursor, "list", datetime, int, str, uuid.UUID) == (
        when,
        number,
        text,
        ident,
    )


def test_a_cursor_of_another_list_or_sort_is_refused() -> None:
    cursor = encode_cursor("products:newest", WHEN, ID)
    with pytest.raises(InvalidCursor, match="another list or sort"):
        decode_cursor(cursor, "products:price_asc", datetime, uuid.UUID)
    with pytest.raises(InvalidCursor):
        decode_cursor(encode_cursor("invoices", WHEN, ID), "orders", datetime, uuid.UUID)


def test_an_edited_or_cut_cursor_is_refused() -> None:
    cursor = encode_cursor("orders", WHEN, ID)
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[-5] ^= 0x01
    edited = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    for bad in (
        edited,
        cursor[:-3],
        "",
        "not-a-cursor",
        "%%%%",
        "e30",
        "x" * (MAX_CURSOR_LENGTH + 1),
    ):
        with pytest.raises(InvalidCursor):
            decode_cursor(bad, "orders", datetime, uuid.UUID)


def test_parts_of_the_wrong_type_or_number_are_refused() -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(encode_cursor("orders", "yesterday", ID), "orders", datetime, uuid.UUID)
    with pytest.raises(InvalidCursor):
        decode_cursor(encode_cursor("orders", WHEN), "orders", datetime, uuid.UUID)
    with pytest.raises(InvalidCursor):
        decode_cursor(encode_cursor("orders", 5, ID), "orders", str, uuid.UUID)


def test_only_keys_with_an_exact_form_make_cursors() -> None:
    with pytest.raises(ValueError, match="offset"):
        encode_cursor("orders", WHEN.replace(tzinfo=None), ID)
    with pytest.raises(TypeError):
        encode_cursor("orders", 1.5, ID)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encode_cursor("orders", True, ID)
