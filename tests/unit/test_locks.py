"""The one advisory-lock naming scheme (core/locks.py)."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from core.locks import lock_id


def test_a_name_always_gets_the_same_id() -> None:
    customer = uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")
    assert lock_id("checkout", customer, "key-1") == lock_id("checkout", str(customer), "key-1")


def test_parts_are_not_merely_concatenated() -> None:
    # "a:b" + "c" and "a" + "b:c" are different names; so are ("ab", "c") and ("a", "bc").
    assert lock_id("ab", "c") != lock_id("a", "bc")
    assert lock_id("a:b", "c") != lock_id("a", "b:c")
    assert lock_id("refund", "x") != lock_id("inventory-reservation", "x")


@given(st.lists(st.text(max_size=40), min_size=1, max_size=4))
def test_ids_fit_postgresql_bigint(parts: list[str]) -> None:
    assert -(2**63) <= lock_id(*parts) < 2**63
