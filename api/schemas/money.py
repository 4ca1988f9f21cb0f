"""The one shape of money in the API (README, "The API's conventions"): an object of integer
minor units and an ISO 4217 code, ``{"amount": 1999, "currency": "EUR"}`` for €19.99, in
requests and answers alike. Never a float, never a bare number beside a ``currency`` field.
"""

from __future__ import annotations

from typing import Annotated

import pycountry
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from core.money import Money as DomainMoney
from core.money import tender_currency

#: The currencies money may be in: ISO 4217 codes of legal tender (no metals, no test code).
TENDER_CURRENCIES: tuple[str, ...] = tuple(
    sorted(c.alpha_3 for c in pycountry.currencies if tender_currency(c.alpha_3) is not None)
)


def _tender(value: str) -> str:
    if value not in TENDER_CURRENCIES:
        raise ValueError("An ISO 4217 code of a currency, in upper case, e.g. EUR.")
    return value


#: A currency code as every request takes it and every answer gives it.
Currency = Annotated[
    str,
    AfterValidator(_tender),
    Field(
        description="ISO 4217 code, upper case",
        json_schema_extra={"enum": list(TENDER_CURRENCIES)},
    ),
]


class Money(BaseModel):
    """An amount of money: integer minor units of the currency, as many per major unit as
    ISO 4217 says (cents for EUR, whole yen for JPY, fils for KWD)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    amount: int = Field(description="Minor units of `currency`: 1999 EUR is €19.99")
    currency: Currency

    @classmethod
    def of(cls, amount: int, currency: str) -> Money:
        return cls.model_construct(amount=amount, currency=currency)

    @classmethod
    def from_domain(cls, money: DomainMoney) -> Money:
        return cls.of(money.amount, money.currency)

    def to_domain(self) -> DomainMoney:
        return DomainMoney(self.amount, self.currency)


def money_or_none(amount: int | None, currency: str | None) -> Money | None:
    """``Money`` when there is an amount, else ``None`` (an optional price, a limit not set)."""
    if amount is None or currency is None:
        return None
    return Money.of(amount, currency)


def money_fields(source: object, currency: str, *names: str) -> dict[str, Money]:
    """``{name: Money}`` for integer amounts ``source`` has as attributes, all in ``currency``
    (a line's unit price, subtotal, discount, tax and total)."""
    return {name: Money.of(getattr(source, name), currency) for name in names}
