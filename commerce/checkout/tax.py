"""Tax rates: what the platform charges per destination and product tax class.

Admins keep the table; checkout reads it through :func:`rates_for`, whose result feeds
``commerce.checkout.pricing.price_cart(tax_rates=...)`` directly.

A rate is for a country (ISO 3166-1 alpha-2) and optionally a region inside it (the bare
ISO 3166-2 subdivision code, ``"CA"`` for California, as ``commerce.accounts.address_rules``
stores an address's region), and one tax class (``"standard"``, ``"reduced"``, ...). For a
destination with a region, a region's rate replaces the country's rate of the same class, and
the country's other classes still apply: a US state sets its own ``standard`` without having to
repeat every class.

Rates are in basis points (``2000`` is 20%), 0 to 10000. Nothing here guesses a missing rate:
a destination without a ``standard`` rate gets what exists, and the caller decides whether that
destination can be sold to.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

import pycountry
from sqlalchemy import ColumnElement, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.errors import Conflict, DomainError, NotFound
from models import TaxRate

TAX_CLASS = re.compile(r"^[a-z0-9_-]{1,40}$")
MAX_RATE_BP = 10_000
MAX_REGION_LENGTH = 100  # tax_rates.region
# The unique index over (country, coalesce(region, ''), tax_class).
_UNIQUE_INDEX = "uq_tax_rates_destination_class"
_FIELDS = ("country", "region", "tax_class", "rate_bp")


class InvalidTaxRate(DomainError):
    status, code, title = 422, "invalid_tax_rate", "The tax rate is not valid"


class TaxRateExists(Conflict):
    code, title = "tax_rate_exists", "A rate for this destination and tax class already exists"


class TaxRateNotFound(NotFound):
    code, title = "tax_rate_not_found", "No such tax rate"


def _invalid(field: str, message: str) -> InvalidTaxRate:
    # Named like request validation errors, so a client shows it next to the right input.
    return InvalidTaxRate(
        message, errors=[{"loc": ["body", field], "message": message, "type": InvalidTaxRate.code}]
    )


# --- normalising input (pure) -----------------------------------------------------------------


def normalize_country(country: object) -> str:
    """An upper-case ISO 3166-1 alpha-2 code that pycountry knows."""
    code = country.strip().upper() if isinstance(country, str) else ""
    if len(code) != 2 or not code.isascii() or pycountry.countries.get(alpha_2=code) is None:
        raise _invalid("country", f"{country!r} is not an ISO 3166-1 alpha-2 country code.")
    return code


def region_key(country: str, region: str | None) -> str | None:
    """The form a region is stored and looked up in: upper case, without the country prefix
    (``"us-ca"`` and ``"CA"`` are both ``"CA"``); None for no region. No validation: a lookup
    for an unknown region simply finds no regional rate."""
    if region is None:
        return None
    key = " ".join(region.split()).upper()
    return key.removeprefix(f"{country}-") or None


def normalize_region(country: str, region: object) -> str | None:
    """A region of ``country`` as a bare ISO 3166-2 subdivision code, or None.

    Only subdivision codes are accepted, not names: a rate keyed by a name would never match
    the codes that addresses are normalised to, and would silently charge the country's rate.
    """
    if region is None:
        return None
    if not isinstance(region, str):
        raise _invalid("region", "region must be text.")
    key = region_key(country, region)
    if key is None:
        return None
    subdivisions = pycountry.subdivisions.get(country_code=country) or []
    known = {subdivision.code.split("-", 1)[1] for subdivision in subdivisions}
    if len(key) > MAX_REGION_LENGTH or key not in known:
        raise _invalid("region", f"{region!r} is not an ISO 3166-2 subdivision code of {country}.")
    return key


def normalize_tax_class(tax_class: object) -> str:
    if not isinstance(tax_class, str) or not TAX_CLASS.match(tax_class):
        raise _invalid(
            "tax_class",
            "A tax class is 1 to 40 lower-case letters, digits, '_' or '-' (e.g. 'standard').",
        )
    return tax_class


def normalize_rate_bp(rate_bp: object) -> int:
    # bool is an int subclass, and True as a rate is a bug, not 1 bp.
    if isinstance(rate_bp, bool) or not isinstance(rate_bp, int):
        raise _invalid("rate_bp", "rate_bp must be an integer number of basis points.")
    if not 0 <= rate_bp <= MAX_RATE_BP:
        raise _invalid("rate_bp", f"rate_bp must be between 0 and {MAX_RATE_BP} (100%).")
    return rate_bp


# --- admin services ---------------------------------------------------------------------------


async def list_rates(
    session: AsyncSession, *, country: str | None = None, tax_class: str | None = None
) -> list[TaxRate]:
    """Every rate, optionally of one country or class, by country, region (country-wide first)
    and class."""
    query = select(TaxRate).order_by(
        TaxRate.country, TaxRate.region.asc().nulls_first(), TaxRate.tax_class
    )
    if country is not None:
        query = query.where(TaxRate.country == country.strip().upper())
    if tax_class is not None:
        query = query.where(TaxRate.tax_class == tax_class)
    return list((await session.scalars(query)).all())


async def get_rate(session: AsyncSession, *, rate_id: uuid.UUID) -> TaxRate:
    rate = await session.get(TaxRate, rate_id)
    if rate is None:
        raise TaxRateNotFound()
    return rate


async def create_rate(
    session: AsyncSession,
    *,
    country: str,
    region: str | None = None,
    tax_class: str,
    rate_bp: int,
) -> TaxRate:
    """Add a rate. Raises :class:`InvalidTaxRate` (422) or :class:`TaxRateExists` (409)."""
    values = _validated(
        {"country": country, "region": region, "tax_class": tax_class, "rate_bp": rate_bp}
    )
    rate = TaxRate(**values)
    await _store(session, rate)
    return rate


async def update_rate(
    session: AsyncSession, *, rate_id: uuid.UUID, changes: Mapping[str, Any]
) -> TaxRate:
    """Change some of a rate's fields (keys of ``changes`` among country, region, tax_class and
    rate_bp; ``region: None`` makes it country-wide). The result is validated as a whole:
    changing the country re-checks the region against the new one."""
    unknown = set(changes) - set(_FIELDS)
    if unknown:
        raise InvalidTaxRate(f"Unknown fields: {', '.join(sorted(unknown))}.")
    rate = await get_rate(session, rate_id=rate_id)
    merged = {field: getattr(rate, field) for field in _FIELDS} | dict(changes)
    for field, value in _validated(merged).items():
        setattr(rate, field, value)
    await _store(session, rate)
    return rate


async def delete_rate(session: AsyncSession, *, rate_id: uuid.UUID) -> None:
    await session.delete(await get_rate(session, rate_id=rate_id))
    await session.flush()


# --- checkout ---------------------------------------------------------------------------------


async def rates_for(
    session: AsyncSession, *, country: str, region: str | None = None
) -> dict[str, int]:
    """``{tax_class: rate_bp}`` at a destination: the country's rates, each replaced by the
    region's rate of the same class where one exists. Empty for a country without rates; a
    missing ``"standard"`` is the caller's to handle (it cannot be priced)."""
    country = country.strip().upper()
    key = region_key(country, region)
    scope: ColumnElement[bool] = TaxRate.region.is_(None)
    if key is not None:
        scope = or_(scope, TaxRate.region == key)
    found = await session.execute(
        select(TaxRate.tax_class, TaxRate.rate_bp)
        .where(TaxRate.country == country, scope)
        # Country-wide rows first, so a regional row of the same class overwrites its entry.
        .order_by(TaxRate.region.asc().nulls_first())
    )
    return {tax_class: rate_bp for tax_class, rate_bp in found.all()}


# --- internals --------------------------------------------------------------------------------


def _validated(values: Mapping[str, Any]) -> dict[str, Any]:
    country = normalize_country(values["country"])
    return {
        "country": country,
        "region": normalize_region(country, values["region"]),
        "tax_class": normalize_tax_class(values["tax_class"]),
        "rate_bp": normalize_rate_bp(values["rate_bp"]),
    }


async def _store(session: AsyncSession, rate: TaxRate) -> None:
    """Flush ``rate``, turning a clash with another rate into :class:`TaxRateExists`."""
    # No autoflush: an updated rate would otherwise be flushed by this very query, and its
    # clash would surface as an IntegrityError instead of the answer we are looking for.
    with session.no_autoflush:
        clash = await session.scalar(
            select(TaxRate.id).where(
                TaxRate.country == rate.country,
                func.coalesce(TaxRate.region, "") == (rate.region or ""),
                TaxRate.tax_class == rate.tax_class,
                TaxRate.id != rate.id if rate.id is not None else true(),
            )
        )
    if clash is not None:
        raise _exists(rate)
    try:
        async with session.begin_nested():
            session.add(rate)
            await session.flush()
    except IntegrityError as error:
        # A concurrent transaction inserted the same destination and class after our check.
        diag = getattr(error.orig, "diag", None)
        if getattr(diag, "constraint_name", None) != _UNIQUE_INDEX:
            raise
        raise _exists(rate) from None


def _exists(rate: TaxRate) -> TaxRateExists:
    where = f"{rate.country}-{rate.region}" if rate.region else rate.country
    return TaxRateExists(f"{where} already has a {rate.tax_class!r} rate.")
