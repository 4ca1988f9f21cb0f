"""core.money: the exponent table, the one formatter, and the providers' own units."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.money import (
    ISO_4217_EXPONENTS,
    InvalidCurrency,
    Money,
    UnpayableAmount,
    decimal_string,
    exponent,
    format_money,
    from_provider_units,
    parse_decimal,
    parse_provider_decimal,
    provider_decimal_string,
    tender_currency,
    to_provider_units,
)


@pytest.mark.parametrize(
    ("currency", "places"),
    [("EUR", 2), ("USD", 2), ("CHF", 2), ("HUF", 2), ("TWD", 2), ("MGA", 2), ("JPY", 0),
     ("KRW", 0), ("CLP", 0), ("VND", 0), ("ISK", 0), ("UGX", 0), ("BHD", 3), ("KWD", 3),
     ("OMR", 3), ("JOD", 3), ("TND", 3), ("IQD", 3), ("LYD", 3), ("CLF", 4)],
)  # fmt: skip
def test_exponents_are_iso_4217(currency: str, places: int) -> None:
    assert exponent(currency) == places


@pytest.mark.parametrize("currency", ["eur", "EU", "EURO", "€", "", None, 978])
def test_currency_codes_must_be_upper_case_iso(currency: Any) -> None:
    with pytest.raises(InvalidCurrency, match="ISO 4217"):
        exponent(currency)


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (1999, "EUR", "19.99 EUR"),
        (5, "EUR", "0.05 EUR"),
        (0, "EUR", "0.00 EUR"),
        (-5, "EUR", "-0.05 EUR"),
        (123456789, "USD", "1234567.89 USD"),
        (1500, "JPY", "1500 JPY"),
        (-1500, "JPY", "-1500 JPY"),
        (1234, "KWD", "1.234 KWD"),
        (7, "BHD", "0.007 BHD"),
        (12345, "CLF", "1.2345 CLF"),
    ],
)
def test_the_one_display_form(amount: int, currency: str, shown: str) -> None:
    assert format_money(amount, currency) == shown
    assert str(Money(amount, currency)) == shown


@given(
    amount=st.integers(min_value=-(10**15), max_value=10**15),
    currency=st.sampled_from(["EUR", "JPY", "KWD", "CLF", *ISO_4217_EXPONENTS]),
)
def test_decimal_strings_read_back_exactly(amount: int, currency: str) -> None:
    assert parse_decimal(decimal_string(amount, currency), currency) == amount


@pytest.mark.parametrize(("text", "currency"), [("19.999", "EUR"), ("1.5", "JPY"), ("nan", "EUR")])
def test_a_decimal_with_more_places_than_the_currency_is_refused(text: str, currency: str) -> None:
    with pytest.raises(ValueError, match=r"decimals|not an amount"):
        parse_decimal(text, currency)


@pytest.mark.parametrize("amount", [1.5, "100", True, None])
def test_money_is_an_int_of_minor_units(amount: Any) -> None:
    with pytest.raises(TypeError):
        Money(amount, "EUR")


def test_tender_currencies() -> None:
    assert tender_currency(" eur ") == "EUR"
    assert tender_currency("XAU") is None  # gold is not paid with
    assert tender_currency("ZZZ") is None
    assert tender_currency(None) is None


# --- the providers' own units ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "provider", "theirs"),
    [
        (1999, "EUR", "stripe", 1999),
        (500, "JPY", "stripe", 500),
        (500, "ISK", "stripe", 50000),  # Stripe counts ISK in hundredths (always .00)
        (7, "UGX", "stripe", 700),
        (2000, "MGA", "stripe", 20),  # Stripe counts MGA whole
        (1230, "KWD", "stripe", 1230),
        (123400, "HUF", "paypal", 1234),  # PayPal takes HUF whole
        (1500, "JPY", "paypal", 1500),
        (1999, "EUR", "test", 1999),
    ],
)
def test_amounts_in_a_providers_units_and_back(
    amount: int, currency: str, provider: str, theirs: int
) -> None:
    assert to_provider_units(amount, currency, provider) == theirs
    assert from_provider_units(theirs, currency, provider) == amount


@pytest.mark.parametrize(
    ("amount", "currency", "provider"),
    [
        (2050, "MGA", "stripe"),  # 20.50 MGA: Stripe has no fraction of an ariary
        (1234, "KWD", "stripe"),  # Stripe's three-decimal amounts must end in 0
        (123450, "HUF", "paypal"),  # 1234.50 HUF: PayPal takes whole forints
        (99, "TWD", "paypal"),
    ],
)
def test_an_amount_a_provider_cannot_take_is_refused(
    amount: int, currency: str, provider: str
) -> None:
    with pytest.raises(UnpayableAmount):
        to_provider_units(amount, currency, provider)


def test_paypal_decimal_strings() -> None:
    assert provider_decimal_string(1999, "EUR", "paypal") == "19.99"
    assert provider_decimal_string(5, "USD", "paypal") == "0.05"
    assert provider_decimal_string(1500, "JPY", "paypal") == "1500"
    assert provider_decimal_string(123400, "HUF", "paypal") == "1234"
    assert parse_provider_decimal("1234", "HUF", "paypal") == 123400
    assert parse_provider_decimal("19.99", "EUR", "paypal") == 1999
    with pytest.raises(ValueError, match="more decimals than paypal uses"):
        parse_provider_decimal("12.5", "HUF", "paypal")
