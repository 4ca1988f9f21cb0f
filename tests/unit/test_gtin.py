"""GTIN check digits: published example codes pass, any single-digit change fails."""

from __future__ import annotations

import pytest

from commerce.catalog.gtin import is_valid_gtin

VALID = [
    "96385074",  # GTIN-8 (EAN-8)
    "73513537",  # GTIN-8
    "036000291452",  # GTIN-12 (UPC-A)
    "4006381333931",  # GTIN-13 (EAN-13)
    "5901234123457",  # GTIN-13
    "0012345678905",  # GTIN-13: a UPC-A padded with a zero
    "00012345600012",  # GTIN-14
    "10614141000415",  # GTIN-14
]


@pytest.mark.parametrize("code", VALID)
def test_published_examples_are_valid(code: str) -> None:
    assert is_valid_gtin(code)


@pytest.mark.parametrize("code", VALID)
def test_every_other_check_digit_is_refused(code: str) -> None:
    wrong = [code[:-1] + digit for digit in "0123456789" if digit != code[-1]]
    assert not any(is_valid_gtin(candidate) for candidate in wrong)


@pytest.mark.parametrize("code", VALID)
def test_a_changed_body_digit_is_caught(code: str) -> None:
    # Weights 3 and 1 are both prime to 10: a single wrong digit always changes the sum's
    # last digit.
    for index in range(len(code) - 1):
        digit = str((int(code[index]) + 1) % 10)
        assert not is_valid_gtin(code[:index] + digit + code[index + 1 :]), index


@pytest.mark.parametrize(
    "code",
    [
        "",
        "0",
        "1234567",  # 7 digits
        "40063813339",  # 11 digits
        "400638133393",  # 12 digits, wrong check digit
        "400638133393100",  # 15 digits
        "4006381333931 ",  # nothing is stripped
        " 4006381333931",
        "4006-381333931",
        "400638133393a",
        "٤٠٠٦٣٨١٣٣٣٩٣١",  # Arabic-Indic digits: digits, but not ASCII
        "4006381333931".replace("1", "¹"),  # superscripts pass str.isdigit()
    ],
)
def test_malformed_codes_are_refused(code: str) -> None:
    assert not is_valid_gtin(code)
