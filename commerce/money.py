"""Currencies shoppers can pay with (ISO 4217), checked the same way everywhere."""

from __future__ import annotations

import pycountry

# ISO 4217 codes that are not money anyone pays with: precious metals, bond-market units,
# the IMF's drawing rights, the testing and "no currency" codes.
NOT_TENDER = frozenset(
    {"XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX"}
)


def tender_currency(value: object) -> str | None:
    """The upper-case ISO 4217 code of a currency shoppers pay with, or None if it is not one."""
    code = value.strip().upper() if isinstance(value, str) else ""
    if (
        len(code) != 3
        or not code.isascii()
        or not code.isalpha()
        or code in NOT_TENDER
        or pycountry.currencies.get(alpha_3=code) is None
    ):
        return None
    return code
