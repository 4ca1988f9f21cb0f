"""GTIN barcodes (GTIN-8, UPC-A/GTIN-12, EAN-13/GTIN-13, GTIN-14): the check digit.

The GS1 rule: from the rightmost digit before the check digit, weights alternate 3, 1, 3, ...
and the check digit brings the weighted sum up to a multiple of ten. It is the same for every
length because the weights are counted from the right.
"""

from __future__ import annotations

GTIN_LENGTHS = frozenset({8, 12, 13, 14})


def is_valid_gtin(code: str) -> bool:
    """True when ``code`` is 8, 12, 13 or 14 ASCII digits whose last digit is the right
    GS1 check digit. Nothing is stripped or padded: callers decide what to tidy."""
    # isdigit() alone accepts other scripts' digits and superscripts ("²").
    if len(code) not in GTIN_LENGTHS or not (code.isascii() and code.isdigit()):
        return False
    *body, check = (int(digit) for digit in code)
    total = sum(digit * (3 if index % 2 == 0 else 1) for index, digit in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check
