from __future__ import annotations

import datetime

import pytest

from commerce.accounts.address_rules import FieldProblem
from commerce.accounts.payment_tokens import (
    KNOWN_BRANDS,
    looks_like_card_number,
    normalize_brand,
    validate_saved_method,
)

TODAY = datetime.date(2025, 6, 15)
STRIPE_TOKEN = "pm_1MqLiJLkdIwHu7ixUEgbFdYF"
PAYPAL_TOKEN = "8kk8451t"
VISA = "4242424242424242"


def _validate(**overrides: object) -> list[FieldProblem]:
    arguments: dict[str, object] = {
        "provider": "stripe",
        "provider_token": STRIPE_TOKEN,
        "brand": "visa",
        "last4": "4242",
        "exp_month": 12,
        "exp_year": 2030,
        "today": TODAY,
    }
    arguments.update(overrides)
    return validate_saved_method(**arguments)  # type: ignore[arg-type]


def _kinds(problems: list[FieldProblem]) -> list[tuple[str, str]]:
    return [(problem.field, problem.type) for problem in problems]


# --- card number detection


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111111",  # Visa
        "4242 4242 4242 4242",
        "4222222222222",  # Visa, 13 digits
        "5555555555554444",  # Mastercard
        "5555-5555-5555-4444",
        "2223003122003222",  # Mastercard 2-series
        "378282246310005",  # American Express, 15 digits
        "3782 822463 10005",
        "6011111111111117",  # Discover
        "30569309025904",  # Diners Club, 14 digits
        "3566002020360505",  # JCB
        "6200000000000005",  # UnionPay
        "6205500000000000004",  # UnionPay, 19 digits
        " 4242-4242 4242-4242 ",
        "\uff14\uff12\uff14\uff12" * 4,  # full-width digits
    ],
)
def test_card_numbers_are_recognised(number: str) -> None:
    assert looks_like_card_number(number)


@pytest.mark.parametrize(
    "value",
    [
        "4111111111111112",  # 16 digits failing the Luhn check
        "4242424242424241",
        "424242424242",  # 12 digits
        "42424242424242424242",  # 20 digits
        "4242.4242.4242.4242",
        "4242 4242 4242 424x",
        STRIPE_TOKEN,
        "pm_1Abc",
        PAYPAL_TOKEN,
        "4242",
        "",
    ],
)
def test_other_values_are_not_card_numbers(value: str) -> None:
    assert not looks_like_card_number(value)


def test_twelve_luhn_valid_digits_are_too_short() -> None:
    assert not looks_like_card_number("000000000000")
    assert looks_like_card_number("0000000000000")


# --- valid methods


def test_a_stripe_card_is_valid() -> None:
    assert _validate() == []


def test_a_paypal_method_without_card_details_is_valid() -> None:
    problems = _validate(
        provider="paypal",
        provider_token=PAYPAL_TOKEN,
        brand="paypal",
        last4=None,
        exp_month=None,
        exp_year=None,
    )
    assert problems == []


@pytest.mark.parametrize(
    "token",
    ["pm_123456", "pm_1MqLiJLkdIwHu7ixUEgbFdYF", "pm_card_visa", "pm_" + "a" * 250],
)
def test_stripe_payment_method_ids(token: str) -> None:
    assert _validate(provider_token=token) == []


@pytest.mark.parametrize("token", ["8kk8451t", "5C991763VB2781612", "ABC-123", "a" * 64])
def test_paypal_vault_tokens(token: str) -> None:
    assert _validate(provider="paypal", provider_token=token) == []


# --- provider and token


@pytest.mark.parametrize("provider", ["braintree", "Stripe", " stripe", "adyen"])
def test_unknown_provider(provider: str) -> None:
    assert _kinds(_validate(provider=provider)) == [("provider", "invalid_provider")]


def test_missing_provider_and_token() -> None:
    assert _kinds(_validate(provider="", provider_token="")) == [
        ("provider", "required"),
        ("provider_token", "required"),
    ]


@pytest.mark.parametrize(
    "token",
    [
        "tok_1MqLiJLkdIwHu7ix",  # a one-time Card token, not a PaymentMethod
        "card_1MqLiJLkdIwHu7ix",
        "pm_12345",  # too short
        "pm_" + "a" * 251,  # too long
        "pm_abc-defgh",
        " pm_1MqLiJLkdIwHu7ix",
        "pm_1MqLiJLkdIwHu7ix\n",
        "PM_1MqLiJLkdIwHu7ix",
    ],
)
def test_stripe_token_in_the_wrong_shape(token: str) -> None:
    assert _kinds(_validate(provider_token=token)) == [("provider_token", "invalid_token")]


@pytest.mark.parametrize("token", ["abc12", "a" * 65, "abc_12345", "abc 12345", "abc12345\n"])
def test_paypal_token_in_the_wrong_shape(token: str) -> None:
    problems = _validate(provider="paypal", provider_token=token)
    assert _kinds(problems) == [("provider_token", "invalid_token")]


def test_a_paypal_token_is_not_a_stripe_token() -> None:
    assert _kinds(_validate(provider_token=PAYPAL_TOKEN)) == [("provider_token", "invalid_token")]


# --- raw card data


@pytest.mark.parametrize("provider", ["stripe", "paypal"])
@pytest.mark.parametrize("token", [VISA, "4242 4242 4242 4242", "378282246310005"])
def test_a_card_number_as_the_token_is_refused(provider: str, token: str) -> None:
    problems = _validate(provider=provider, provider_token=token)
    assert _kinds(problems) == [("provider_token", "raw_card_data")]
    assert "provider tokens" in problems[0].message
    assert token not in problems[0].message


def test_a_card_number_inside_a_token_is_refused() -> None:
    problems = _validate(provider_token=f"pm_{VISA}")
    assert _kinds(problems) == [("provider_token", "raw_card_data")]


@pytest.mark.parametrize("field", ["provider", "brand", "last4"])
def test_a_card_number_in_any_field_is_refused(field: str) -> None:
    problems = _validate(**{field: "4111-1111-1111-1111"})
    assert _kinds(problems) == [(field, "raw_card_data")]


def test_no_message_repeats_what_was_sent() -> None:
    problems = _validate(
        provider="4111111111111111",
        provider_token=VISA,
        brand="5555 5555 5555 4444",
        last4="378282246310005",
    )
    assert {problem.type for problem in problems} == {"raw_card_data"}
    assert len(problems) == 4
    for problem in problems:
        assert not any(char.isdigit() for char in problem.message)


# --- card details


@pytest.mark.parametrize("last4", ["", "123", "12345", "12a4", "\uff14\uff12\uff14\uff12"])
def test_last4_must_be_four_digits(last4: str) -> None:
    assert _kinds(_validate(last4=last4)) == [("last4", "invalid_last4")]


@pytest.mark.parametrize("month", [0, 13, -1])
def test_expiry_month_range(month: int) -> None:
    assert _kinds(_validate(exp_month=month)) == [("exp_month", "invalid_exp_month")]


@pytest.mark.parametrize("year", [30, 999, 10000, 20300])
def test_expiry_year_has_four_digits(year: int) -> None:
    assert _kinds(_validate(exp_year=year)) == [("exp_year", "invalid_exp_year")]


@pytest.mark.parametrize(
    ("month", "year"),
    [(5, 2025), (12, 2024), (1, 2025), (6, 2020)],
)
def test_expired_card(month: int, year: int) -> None:
    problems = _validate(exp_month=month, exp_year=year)
    assert _kinds(problems) == [("exp_year", "expired")]


@pytest.mark.parametrize(
    ("month", "year"),
    [(6, 2025), (7, 2025), (1, 2026), (12, 2045)],
)
def test_card_valid_through_the_end_of_its_expiry_month(month: int, year: int) -> None:
    assert _validate(exp_month=month, exp_year=year) == []


def test_expiry_is_judged_against_the_given_day() -> None:
    assert _validate(exp_month=6, exp_year=2025, today=datetime.date(2025, 6, 30)) == []
    problems = _validate(exp_month=6, exp_year=2025, today=datetime.date(2025, 7, 1))
    assert _kinds(problems) == [("exp_year", "expired")]


def test_expiry_month_and_year_come_together() -> None:
    assert _kinds(_validate(exp_month=None)) == [("exp_month", "required")]
    assert _kinds(_validate(exp_year=None)) == [("exp_year", "required")]


# --- brand


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("visa", "visa"),
        ("Visa", "visa"),
        (" MASTERCARD ", "mastercard"),
        ("AmEx", "amex"),
        ("American Express", "amex"),
        ("american_express", "amex"),
        ("Diners Club", "diners"),
        ("UnionPay", "unionpay"),
        ("JCB", "jcb"),
        ("PayPal", "paypal"),
        ("Unknown", "unknown"),
        ("  ", None),
        (None, None),
    ],
)
def test_brand_normalisation(typed: str | None, stored: str | None) -> None:
    assert normalize_brand(typed) == stored
    assert _validate(brand=typed) == []


def test_known_brands_are_their_own_normal_form() -> None:
    assert all(normalize_brand(brand) == brand for brand in KNOWN_BRANDS)


@pytest.mark.parametrize("brand", ["maestro", "visa electron", "cartes_bancaires", "amex2"])
def test_unknown_brand(brand: str) -> None:
    assert _kinds(_validate(brand=brand)) == [("brand", "invalid_brand")]


def test_brand_length() -> None:
    assert _kinds(_validate(brand="v" * 41)) == [("brand", "too_long")]


# --- several problems at once


def test_every_problem_is_reported_in_field_order() -> None:
    problems = _validate(
        provider="paypal",
        provider_token="no",
        brand="maestro",
        last4="12",
        exp_month=13,
        exp_year=25,
    )
    assert _kinds(problems) == [
        ("provider_token", "invalid_token"),
        ("brand", "invalid_brand"),
        ("last4", "invalid_last4"),
        ("exp_month", "invalid_exp_month"),
        ("exp_year", "invalid_exp_year"),
    ]
