"""Saved payment methods: what may be stored, and refusing anything that could be a card.

We store only a provider's token (a Stripe PaymentMethod id, a PayPal vault token) plus what a
shopper needs to recognise the method. Card numbers stay with the provider, and so does the
PCI DSS scope: a raw card number that reached our database, or just our logs, would bring it
back. So every field is screened, not only the token.
"""

from __future__ import annotations

import datetime
import re
import unicodedata

from commerce.accounts.address_rules import FieldProblem

PROVIDERS: frozenset[str] = frozenset({"stripe", "paypal"})

KNOWN_BRANDS: frozenset[str] = frozenset(
    {"visa", "mastercard", "amex", "discover", "diners", "jcb", "unionpay", "paypal", "unknown"}
)
MAX_BRAND_LENGTH = 40

# Stripe's legacy Card objects and its display_brand spell some brands out in full.
_BRAND_ALIASES = {"american express": "amex", "diners club": "diners"}

_TOKEN_SHAPES = {
    # PaymentMethod ids; tok_, card_ and src_ ids belong to APIs that cannot be reused later.
    "stripe": (re.compile(r"pm_[A-Za-z0-9_]{6,250}", re.ASCII), "a Stripe PaymentMethod id (pm_…)"),
    "paypal": (
        re.compile(r"[A-Za-z0-9-]{6,64}", re.ASCII),
        "a PayPal vault token (6 to 64 letters, digits or hyphens)",
    ),
}

_RAW_CARD_MESSAGE = (
    "Only payment provider tokens are accepted; card numbers must go to the provider, not to us."
)

# Card numbers (ISO/IEC 7812 PANs) are 13 to 19 digits. Anything that looks like one, with or
# without separators, inside any value.
_MIN_PAN_DIGITS, _MAX_PAN_DIGITS = 13, 19
_DIGIT_RUN = re.compile(r"\d(?:[\s\-]?\d)*")


def looks_like_card_number(value: str) -> bool:
    """True when ``value`` could be a card number: 13 to 19 digits passing the Luhn check,
    once spaces and hyphens are removed.

    Full-width digits count too (they are still a card number to whoever reads them).
    """
    compact = re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", value))
    return (
        _MIN_PAN_DIGITS <= len(compact) <= _MAX_PAN_DIGITS
        and compact.isascii()
        and compact.isdigit()
        and _passes_luhn(compact)
    )


def normalize_brand(brand: str | None) -> str | None:
    """The canonical lower-case brand ("Visa" -> "visa", "American Express" -> "amex").

    None when no brand is given or it is blank. An unknown brand comes back trimmed and
    lower-cased; :func:`validate_saved_method` is what refuses it.
    """
    if brand is None:
        return None
    lowered = " ".join(brand.split()).casefold()
    if not lowered:
        return None
    key = " ".join(lowered.replace("_", " ").replace("-", " ").split())
    return _BRAND_ALIASES.get(key, lowered)


def validate_saved_method(
    *,
    provider: str,
    provider_token: str,
    brand: str | None,
    last4: str | None,
    exp_month: int | None,
    exp_year: int | None,
    today: datetime.date,
) -> list[FieldProblem]:
    """Every problem with a payment method about to be saved, in field order; empty if none.

    A card valid through ``exp_month``/``exp_year`` expires after the last day of that month,
    judged against ``today`` (passed in, so the rule is pure and testable). Values are not
    rewritten here: store ``normalize_brand(brand)``. Messages never repeat what was sent.
    """
    problems: list[FieldProblem] = []

    def report(field: str, kind: str, message: str) -> None:
        problems.append(FieldProblem(field, message, kind))

    def is_card_number(field: str, value: str | None) -> bool:
        if value is not None and _contains_card_number(value):
            report(field, "raw_card_data", _RAW_CARD_MESSAGE)
            return True
        return False

    if is_card_number("provider", provider):
        pass  # nothing more worth saying about a field holding a card number
    elif not provider:
        report("provider", "required", "Provider is required.")
    elif provider not in PROVIDERS:
        report("provider", "invalid_provider", "Provider must be one of: paypal, stripe.")

    if is_card_number("provider_token", provider_token):
        pass
    elif not provider_token:
        report("provider_token", "required", "Provider token is required.")
    elif provider in _TOKEN_SHAPES:
        shape, description = _TOKEN_SHAPES[provider]
        if not shape.fullmatch(provider_token):
            report("provider_token", "invalid_token", f"Provider token must be {description}.")

    normalized_brand = normalize_brand(brand)
    if is_card_number("brand", brand) or normalized_brand is None:
        pass
    elif len(normalized_brand) > MAX_BRAND_LENGTH:
        report("brand", "too_long", f"Brand must be at most {MAX_BRAND_LENGTH} characters.")
    elif normalized_brand not in KNOWN_BRANDS:
        known = ", ".join(sorted(KNOWN_BRANDS))
        report("brand", "invalid_brand", f"Brand must be one of: {known}.")

    if is_card_number("last4", last4) or last4 is None:
        pass
    elif not re.fullmatch(r"[0-9]{4}", last4):
        report("last4", "invalid_last4", "Last 4 must be exactly 4 digits.")

    month_ok = exp_month is not None and 1 <= exp_month <= 12
    year_ok = exp_year is not None and 1000 <= exp_year <= 9999
    if exp_month is not None and not month_ok:
        report("exp_month", "invalid_exp_month", "Expiry month must be 1 to 12.")
    if exp_year is not None and not year_ok:
        report("exp_year", "invalid_exp_year", "Expiry year must have 4 digits, such as 2030.")
    # An expiry is a month: half of one is not something a shopper can check against a card.
    if exp_month is None and exp_year is not None:
        report("exp_month", "required", "Expiry month is required with an expiry year.")
    if exp_year is None and exp_month is not None:
        report("exp_year", "required", "Expiry year is required with an expiry month.")
    if month_ok and year_ok and (exp_year, exp_month) < (today.year, today.month):
        report("exp_year", "expired", "The card has expired.")

    order = ("provider", "provider_token", "brand", "last4", "exp_month", "exp_year")
    return sorted(problems, key=lambda problem: order.index(problem.field))


def _contains_card_number(value: str) -> bool:
    # A card number prefixed or suffixed ("pm_4242424242424242") is still a card number.
    text = unicodedata.normalize("NFKC", value)
    return any(looks_like_card_number(run.group()) for run in _DIGIT_RUN.finditer(text))


def _passes_luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0
