"""Money: integer minor units of an ISO 4217 currency. The one exponent table, the one
formatter, and the conversions to what each payment provider counts in.

An amount is an ``int`` in the currency's minor unit (cents for EUR, yen for JPY, fils for
KWD), never a float. ``exponent`` says how many minor units make a major one; the providers'
own exceptions (Stripe counts ISK in hundredths, PayPal takes HUF only whole) live here too,
so a provider integration converts with ``to_provider_units`` / ``from_provider_units``
rather than knowing the table itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import pycountry

# ISO 4217 minor units, where they are not 2 (ISO 4217 list one, as amended through 2024).
# fmt: off
ISO_4217_EXPONENTS: Mapping[str, int] = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
}
# fmt: on

#: Where a provider counts a currency in other units than ISO 4217 does (provider -> code ->
#: the decimals its API amounts have). Stripe: ISK and UGX are sent with two decimals (always
#: .00) and MGA with none; PayPal: HUF and TWD take whole units only (JPY is ISO already).
PROVIDER_EXPONENTS: Mapping[str, Mapping[str, int]] = {
    "stripe": {"ISK": 2, "UGX": 2, "MGA": 0},
    "paypal": {"HUF": 0, "TWD": 0},
}
#: Where a provider takes only multiples of a step, in its own units: Stripe's three-decimal
#: currencies must end in 0 (its card partners take two decimals).
PROVIDER_STEPS: Mapping[str, Mapping[str, int]] = {
    "stripe": {"BHD": 10, "JOD": 10, "KWD": 10, "OMR": 10, "TND": 10},
}


# ISO 4217 codes that are not money anyone pays with: precious metals, bond-market units,
# the IMF's drawing rights, the testing and "no currency" codes.
NOT_TENDER = frozenset(
    {"XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX"}
)


def tender_currency(value: object) -> str | None:
    """The upper-case ISO 4217 code of a currency shoppers pay with, or None if it is not one
    (how input is checked, everywhere a currency comes in)."""
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


class InvalidCurrency(ValueError):
    """Not an upper-case ISO 4217 code like 'EUR'."""


class UnpayableAmount(ValueError):
    """An amount a provider cannot take in this currency (a fraction it does not count)."""


def check_currency(currency: object) -> str:
    """``currency`` if it is an upper-case three-letter code; ``InvalidCurrency`` otherwise.
    Lower case is refused rather than guessed: "jpy" is a caller that skipped normalising,
    and would silently get two decimals."""
    if not (
        isinstance(currency, str)
        and len(currency) == 3
        and currency.isascii()
        and currency.isalpha()
        and currency.isupper()
    ):
        raise InvalidCurrency(f"currency must be an ISO 4217 code like 'EUR', not {currency!r}.")
    return currency


def exponent(currency: str) -> int:
    """How many decimals ``currency`` has: 2 unless ISO 4217 says otherwise (0 for JPY, 3 for
    KWD, 4 for CLF)."""
    return ISO_4217_EXPONENTS.get(check_currency(currency), 2)


def decimal_string(amount: int, currency: str) -> str:
    """Minor units as an exact decimal string with the currency's decimals: 1999 EUR ->
    "19.99", 1500 JPY -> "1500", 1234 KWD -> "1.234", -5 EUR -> "-0.05". What machines read
    (CSV exports, provider requests); ``parse_decimal`` reads it back."""
    places = exponent(currency)
    sign = "-" if amount < 0 else ""
    if places == 0:
        return f"{sign}{abs(amount)}"
    whole, fraction = divmod(abs(amount), 10**places)
    return f"{sign}{whole}.{fraction:0{places}d}"


def parse_decimal(text: str, currency: str) -> int:
    """An exact decimal string as minor units: "19.99" EUR -> 1999. ``ValueError`` for more
    decimals than the currency has (never a rounding) or for text that is not a number."""
    value = Decimal(text)
    if not value.is_finite():
        raise ValueError(f"{text!r} is not an amount")
    scaled = value.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{text!r} has more decimals than {currency} has")
    return int(scaled)


def format_money(amount: int, currency: str) -> str:
    """The one display form: ``decimal_string`` and the code, "19.99 EUR", "1500 JPY",
    "-0.05 EUR". No grouping and no locale: a storefront localises for its shopper; mails,
    timelines and summaries show this."""
    return f"{decimal_string(amount, currency)} {currency}"


@dataclass(frozen=True)
class Money:
    """An amount with its currency; ``str()`` is ``format_money``."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError(f"money is an int of minor units, not {self.amount!r}")
        check_currency(self.currency)

    def __str__(self) -> str:
        return format_money(self.amount, self.currency)


def provider_exponent(currency: str, provider: str) -> int:
    """How many decimals ``provider``'s API amounts in ``currency`` have."""
    return PROVIDER_EXPONENTS.get(provider, {}).get(currency, exponent(currency))


def to_provider_units(amount: int, currency: str, provider: str) -> int:
    """Our minor units as the integer ``provider`` expects: 500 ISK -> 50000 at Stripe,
    2000 MGA (20.00) -> 20 at Stripe, 123400 HUF (1234.00) -> 1234 at PayPal. Raises
    ``UnpayableAmount`` when the amount has a fraction the provider does not take."""
    ours, theirs = exponent(currency), provider_exponent(currency, provider)
    if theirs >= ours:
        converted = amount * 10 ** (theirs - ours)
    else:
        factor = 10 ** (ours - theirs)
        if amount % factor:
            raise UnpayableAmount(
                f"{provider} takes {currency} in whole units of 1/{10**theirs}: "
                f"{format_money(amount, currency)} is not one"
            )
        converted = amount // factor
    step = PROVIDER_STEPS.get(provider, {}).get(currency, 1)
    if converted % step:
        raise UnpayableAmount(
            f"{provider} takes {currency} amounts in steps of {step}: "
            f"{format_money(amount, currency)} is not one"
        )
    return converted


def from_provider_units(amount: int, currency: str, provider: str) -> int:
    """A provider's integer amount as our minor units (the inverse of ``to_provider_units``;
    a fraction we do not count, which a provider never sends for our own payments, is cut)."""
    ours, theirs = exponent(currency), provider_exponent(currency, provider)
    if ours >= theirs:
        return amount * 10 ** (ours - theirs)
    return amount // 10 ** (theirs - ours)


def provider_decimal_string(amount: int, currency: str, provider: str) -> str:
    """Our minor units as a provider's decimal string (PayPal's ``value``): 1999 EUR ->
    "19.99", 123400 HUF -> "1234". Raises ``UnpayableAmount`` like ``to_provider_units``."""
    units = to_provider_units(amount, currency, provider)
    places = provider_exponent(currency, provider)
    return f"{Decimal(units).scaleb(-places):.{places}f}"


def parse_provider_decimal(text: str, currency: str, provider: str) -> int:
    """A provider's decimal string as our minor units: "1234" HUF at PayPal -> 123400."""
    value = Decimal(text)
    if not value.is_finite():
        raise ValueError(f"{text!r} is not an amount")
    scaled = value.scaleb(provider_exponent(currency, provider))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{text!r} has more decimals than {provider} uses for {currency}")
    return from_provider_units(int(scaled), currency, provider)
