"""Shipping: each vendor's zones, methods and table rates, and the quotes checkout shows.

A vendor describes where it ships (**zones**: named lists of countries), how (**methods**:
``standard``, ``express``, with handling and transit times in business days) and for how much
(**rates**: the price of a method into a zone for a weight band, in one currency, optionally free
from a subtotal). :func:`quote` answers "which methods can bring this parcel there, for how much,
and when", from those tables.

Weight bands are half-open, ``[min_weight_grams, max_weight_grams)``: the minimum is included,
the maximum is not, and no maximum means no upper limit. Bands therefore chain without gaps or
doubt (0-1000, 1000-2000: a 1000 g parcel is in the second), and two bands of one (method, zone)
may not overlap, or a parcel would have two prices.

Dates count business days, Monday to Friday; public holidays are not known here. An order
placed on a weekend starts counting on the Monday (see :func:`add_business_days`).

Carriers. Quotes go through the :class:`Carrier` protocol so a real carrier's API can replace
the tables later; :class:`TableRateCarrier` is the built-in one and only quotes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import pycountry
from sqlalchemy import any_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.errors import Conflict, DomainError, NotFound
from core.money import tender_currency
from models import ShippingMethod, ShippingRate, ShippingZone

METHOD_CODE = re.compile(r"^[a-z0-9_-]{1,40}$")
MAX_NAME_LENGTH = 100  # shipping_zones.name, shipping_methods.name
# Business days; a year is already absurd, and it keeps dates far from date.max.
MAX_DAYS = 365
# Below the 32-bit columns (weights) and far below the 64-bit amounts: a typo, not a price.
MAX_WEIGHT_GRAMS = 1_000_000_000
MAX_AMOUNT = 10**15


# --- errors -----------------------------------------------------------------------------------


class InvalidShippingZone(DomainError):
    status, code, title = 422, "invalid_shipping_zone", "The shipping zone is not valid"


class InvalidShippingMethod(DomainError):
    status, code, title = 422, "invalid_shipping_method", "The shipping method is not valid"


class InvalidShippingRate(DomainError):
    status, code, title = 422, "invalid_shipping_rate", "The shipping rate is not valid"


class InvalidShippingQuote(DomainError):
    status, code, title = 422, "invalid_shipping_quote", "The shipping quote request is not valid"


class ShippingZoneExists(Conflict):
    code, title = "shipping_zone_exists", "The vendor already has a zone with this name"


class ShippingMethodExists(Conflict):
    code, title = "shipping_method_exists", "The vendor already has a method with this code"


class OverlappingRates(Conflict):
    code, title = (
        "overlapping_rates",
        "The weight band overlaps another rate of the method and zone",
    )


class ShippingZoneNotFound(NotFound):
    code, title = "shipping_zone_not_found", "No such shipping zone"


class ShippingMethodNotFound(NotFound):
    code, title = "shipping_method_not_found", "No such shipping method"


class ShippingRateNotFound(NotFound):
    code, title = "shipping_rate_not_found", "No such shipping rate"


def _invalid(error: type[DomainError], field: str, message: str) -> DomainError:
    # Named like request validation errors, so a client shows it next to the right input.
    return error(message, errors=[{"loc": ["body", field], "message": message, "type": error.code}])


# --- business days (pure) ---------------------------------------------------------------------


def add_business_days(start: date, days: int) -> date:
    """``start`` plus ``days`` business days (Monday to Friday).

    A weekend ``start`` first moves to the next Monday, because nobody handles or carries a
    parcel before then: Saturday + 0 is Monday, Saturday + 1 is Tuesday. On a weekday, + 0 is
    the same day and Friday + 1 is Monday. ``days`` must not be negative.
    """
    if days < 0:
        raise ValueError(f"days must not be negative, not {days}.")
    if start.weekday() >= 5:
        start += timedelta(days=7 - start.weekday())
    weeks, rest = divmod(days, 5)
    result = start + timedelta(weeks=weeks)
    for _ in range(rest):
        result += timedelta(days=3 if result.weekday() == 4 else 1)
    return result


# --- normalising input (pure) -----------------------------------------------------------------


def normalize_countries(countries: object) -> list[str]:
    """Upper-case ISO 3166-1 alpha-2 codes, duplicates dropped, in the order given."""
    if isinstance(countries, str) or not isinstance(countries, Sequence) or not countries:
        raise _invalid(InvalidShippingZone, "countries", "A zone needs a list of country codes.")
    codes: list[str] = []
    for country in countries:
        code = country.strip().upper() if isinstance(country, str) else ""
        if len(code) != 2 or not code.isascii() or pycountry.countries.get(alpha_2=code) is None:
            raise _invalid(
                InvalidShippingZone,
                "countries",
                f"{country!r} is not an ISO 3166-1 alpha-2 country code.",
            )
        if code not in codes:
            codes.append(code)
    return codes


def normalize_currency(currency: object) -> str:
    code = tender_currency(currency)
    if code is None:
        raise _invalid(
            InvalidShippingRate, "currency", f"{currency!r} is not an ISO 4217 currency code."
        )
    return code


def _name(error: type[DomainError], name: object) -> str:
    tidy = " ".join(name.split()) if isinstance(name, str) else ""
    if not tidy or len(tidy) > MAX_NAME_LENGTH or "\x00" in tidy:
        raise _invalid(error, "name", f"A name is 1 to {MAX_NAME_LENGTH} characters.")
    return tidy


def _int(error: type[DomainError], field: str, value: object, *, minimum: int, maximum: int) -> int:
    # bool is an int subclass, and True as a number of days is a bug, not a 1.
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise _invalid(error, field, f"{field} must be an integer from {minimum} to {maximum}.")
    return value


def _method_code(code: object) -> str:
    if not isinstance(code, str) or not METHOD_CODE.match(code):
        raise _invalid(
            InvalidShippingMethod,
            "code",
            "A code is 1 to 40 lower-case letters, digits, '_' or '-' (e.g. 'express').",
        )
    return code


# --- zones ------------------------------------------------------------------------------------


async def list_zones(session: AsyncSession, *, vendor_id: uuid.UUID) -> list[ShippingZone]:
    query = select(ShippingZone).where(ShippingZone.vendor_id == vendor_id)
    return list((await session.scalars(query.order_by(ShippingZone.name))).all())


async def get_zone(
    session: AsyncSession, *, vendor_id: uuid.UUID, zone_id: uuid.UUID
) -> ShippingZone:
    """The vendor's zone; another vendor's id is not found, as if it did not exist."""
    zone = await session.get(ShippingZone, zone_id)
    if zone is None or zone.vendor_id != vendor_id:
        raise ShippingZoneNotFound()
    return zone


async def create_zone(
    session: AsyncSession, *, vendor_id: uuid.UUID, name: str, countries: Sequence[str]
) -> ShippingZone:
    """Raises :class:`InvalidShippingZone` (422) or :class:`ShippingZoneExists` (409)."""
    zone = ShippingZone(
        vendor_id=vendor_id,
        name=_name(InvalidShippingZone, name),
        countries=normalize_countries(countries),
    )
    await _store_unique(session, zone)
    return zone


async def update_zone(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    zone_id: uuid.UUID,
    changes: Mapping[str, Any],
) -> ShippingZone:
    """Change a zone's ``name`` and/or ``countries``."""
    _only(InvalidShippingZone, changes, {"name", "countries"})
    zone = await get_zone(session, vendor_id=vendor_id, zone_id=zone_id)
    if "name" in changes:
        zone.name = _name(InvalidShippingZone, changes["name"])
    if "countries" in changes:
        zone.countries = normalize_countries(changes["countries"])
    await _store_unique(session, zone)
    return zone


async def delete_zone(session: AsyncSession, *, vendor_id: uuid.UUID, zone_id: uuid.UUID) -> None:
    """Delete a zone and, with it (ON DELETE CASCADE), every rate into it."""
    await session.delete(await get_zone(session, vendor_id=vendor_id, zone_id=zone_id))
    await session.flush()


# --- methods ----------------------------------------------------------------------------------


async def list_methods(session: AsyncSession, *, vendor_id: uuid.UUID) -> list[ShippingMethod]:
    query = select(ShippingMethod).where(ShippingMethod.vendor_id == vendor_id)
    return list((await session.scalars(query.order_by(ShippingMethod.code))).all())


async def get_method(
    session: AsyncSession, *, vendor_id: uuid.UUID, method_id: uuid.UUID, lock: bool = False
) -> ShippingMethod:
    """The vendor's method; another vendor's id is not found. ``lock`` takes its row lock,
    which serialises changes to the method's rates (see :func:`create_rate`)."""
    query = select(ShippingMethod).where(
        ShippingMethod.id == method_id, ShippingMethod.vendor_id == vendor_id
    )
    method = await session.scalar(query.with_for_update() if lock else query)
    if method is None:
        raise ShippingMethodNotFound()
    return method


async def create_method(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    code: str,
    name: str,
    handling_days: int = 1,
    transit_days_min: int,
    transit_days_max: int,
    is_active: bool = True,
) -> ShippingMethod:
    """Raises :class:`InvalidShippingMethod` (422) or :class:`ShippingMethodExists` (409)."""
    method = ShippingMethod(vendor_id=vendor_id)
    _apply_method(
        method,
        {
            "code": code,
            "name": name,
            "handling_days": handling_days,
            "transit_days_min": transit_days_min,
            "transit_days_max": transit_days_max,
            "is_active": is_active,
        },
    )
    await _store_unique(session, method)
    return method


async def update_method(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    method_id: uuid.UUID,
    changes: Mapping[str, Any],
) -> ShippingMethod:
    """Change some of a method's fields; the transit range is checked on the result."""
    fields = {"code", "name", "handling_days", "transit_days_min", "transit_days_max", "is_active"}
    _only(InvalidShippingMethod, changes, fields)
    method = await get_method(session, vendor_id=vendor_id, method_id=method_id)
    _apply_method(method, {field: getattr(method, field) for field in fields} | dict(changes))
    await _store_unique(session, method)
    return method


async def delete_method(
    session: AsyncSession, *, vendor_id: uuid.UUID, method_id: uuid.UUID
) -> None:
    """Delete a method and its rates. Carts that chose it must choose again (checkout finds
    no quote for the code); deactivating it (``is_active``) keeps its rates for later."""
    await session.delete(await get_method(session, vendor_id=vendor_id, method_id=method_id))
    await session.flush()


def _apply_method(method: ShippingMethod, values: Mapping[str, Any]) -> None:
    error = InvalidShippingMethod
    handling = _int(error, "handling_days", values["handling_days"], minimum=0, maximum=MAX_DAYS)
    low = _int(error, "transit_days_min", values["transit_days_min"], minimum=0, maximum=MAX_DAYS)
    high = _int(error, "transit_days_max", values["transit_days_max"], minimum=0, maximum=MAX_DAYS)
    if low > high:
        raise _invalid(error, "transit_days_max", "transit_days_max is below transit_days_min.")
    if not isinstance(values["is_active"], bool):
        raise _invalid(error, "is_active", "is_active must be true or false.")
    method.code = _method_code(values["code"])
    method.name = _name(error, values["name"])
    method.handling_days = handling
    method.transit_days_min = low
    method.transit_days_max = high
    method.is_active = values["is_active"]


# --- rates ------------------------------------------------------------------------------------

_RATE_FIELDS = ("min_weight_grams", "max_weight_grams", "amount", "currency", "free_over_amount")


async def list_rates(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    method_id: uuid.UUID | None = None,
    zone_id: uuid.UUID | None = None,
) -> list[ShippingRate]:
    """The vendor's rates, optionally of one method and/or zone, by method, zone and band."""
    query = (
        select(ShippingRate)
        .join(ShippingMethod, ShippingMethod.id == ShippingRate.method_id)
        .where(ShippingMethod.vendor_id == vendor_id)
        .order_by(
            ShippingRate.method_id,
            ShippingRate.zone_id,
            ShippingRate.currency,
            ShippingRate.min_weight_grams,
        )
    )
    if method_id is not None:
        query = query.where(ShippingRate.method_id == method_id)
    if zone_id is not None:
        query = query.where(ShippingRate.zone_id == zone_id)
    return list((await session.scalars(query)).all())


async def get_rate(
    session: AsyncSession, *, vendor_id: uuid.UUID, rate_id: uuid.UUID
) -> ShippingRate:
    """The vendor's rate (through its method); another vendor's id is not found."""
    rate = await session.scalar(
        select(ShippingRate)
        .join(ShippingMethod, ShippingMethod.id == ShippingRate.method_id)
        .where(ShippingRate.id == rate_id, ShippingMethod.vendor_id == vendor_id)
    )
    if rate is None:
        raise ShippingRateNotFound()
    return rate


async def create_rate(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    method_id: uuid.UUID,
    zone_id: uuid.UUID,
    min_weight_grams: int = 0,
    max_weight_grams: int | None = None,
    amount: int,
    currency: str,
    free_over_amount: int | None = None,
    free_over_currency: str | None = None,
) -> ShippingRate:
    """Price ``method_id`` into ``zone_id`` (both the vendor's, else 404) for a weight band.
    ``free_over_currency``, when given, must be ``currency``: a threshold is in the rate's money.

    Raises :class:`InvalidShippingRate` (422) or :class:`OverlappingRates` (409) when the band
    overlaps another band of the same method and zone (in any currency: the band decides which
    rows a parcel can match, and one parcel must not match two).
    """
    # The method's row lock serialises every change to its rates: two overlapping bands
    # created at once would each pass the check against the rows the other cannot see yet.
    await get_method(session, vendor_id=vendor_id, method_id=method_id, lock=True)
    await get_zone(session, vendor_id=vendor_id, zone_id=zone_id)
    rate = ShippingRate(method_id=method_id, zone_id=zone_id)
    _apply_rate(
        rate,
        {
            "min_weight_grams": min_weight_grams,
            "max_weight_grams": max_weight_grams,
            "amount": amount,
            "currency": currency,
            "free_over_amount": free_over_amount,
            "free_over_currency": free_over_currency,
        },
    )
    await _check_overlap(session, rate)
    session.add(rate)
    await session.flush()
    return rate


async def update_rate(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    rate_id: uuid.UUID,
    changes: Mapping[str, Any],
) -> ShippingRate:
    """Change a rate's band, amount, currency or threshold; the result is checked as a whole
    (``free_over_currency``, when given, must be the resulting currency)."""
    _only(InvalidShippingRate, changes, {*_RATE_FIELDS, "free_over_currency"})
    rate = await get_rate(session, vendor_id=vendor_id, rate_id=rate_id)
    await get_method(session, vendor_id=vendor_id, method_id=rate.method_id, lock=True)
    _apply_rate(rate, {field: getattr(rate, field) for field in _RATE_FIELDS} | dict(changes))
    await _check_overlap(session, rate)
    await session.flush()
    return rate


async def delete_rate(session: AsyncSession, *, vendor_id: uuid.UUID, rate_id: uuid.UUID) -> None:
    await session.delete(await get_rate(session, vendor_id=vendor_id, rate_id=rate_id))
    await session.flush()


def _apply_rate(rate: ShippingRate, values: Mapping[str, Any]) -> None:
    error = InvalidShippingRate
    low = _int(
        error, "min_weight_grams", values["min_weight_grams"], minimum=0, maximum=MAX_WEIGHT_GRAMS
    )
    high = values["max_weight_grams"]
    if high is not None:
        high = _int(error, "max_weight_grams", high, minimum=1, maximum=MAX_WEIGHT_GRAMS)
        if high <= low:
            raise _invalid(
                error, "max_weight_grams", "max_weight_grams must be above min_weight_grams."
            )
    amount = _int(error, "amount", values["amount"], minimum=0, maximum=MAX_AMOUNT)
    free_over = values["free_over_amount"]
    if free_over is not None:
        free_over = _int(error, "free_over_amount", free_over, minimum=0, maximum=MAX_AMOUNT)
    currency = normalize_currency(values["currency"])
    threshold_currency = values.get("free_over_currency")
    if free_over is not None and threshold_currency not in (None, currency):
        raise _invalid(error, "free_over", f"free_over must be in the rate's currency, {currency}.")
    rate.min_weight_grams = low
    rate.max_weight_grams = high
    rate.amount = amount
    rate.currency = currency
    rate.free_over_amount = free_over


async def _check_overlap(session: AsyncSession, rate: ShippingRate) -> None:
    # Half-open bands [a, b) and [c, d) overlap exactly when a < d and c < b (None: no end).
    query = select(ShippingRate.min_weight_grams, ShippingRate.max_weight_grams).where(
        ShippingRate.method_id == rate.method_id,
        ShippingRate.zone_id == rate.zone_id,
        or_(
            ShippingRate.max_weight_grams.is_(None),
            ShippingRate.max_weight_grams > rate.min_weight_grams,
        ),
    )
    if rate.max_weight_grams is not None:
        query = query.where(ShippingRate.min_weight_grams < rate.max_weight_grams)
    if rate.id is not None:
        query = query.where(ShippingRate.id != rate.id)
    # No autoflush: the rate being changed must not be written before it has been checked.
    with session.no_autoflush:
        clash = (await session.execute(query.limit(1))).first()
    if clash is not None:
        low, high = clash
        raise OverlappingRates(
            f"The band overlaps the band {low}-{'' if high is None else high} g of this method "
            "and zone.",
            overlaps={"min_weight_grams": low, "max_weight_grams": high},
        )


# --- quotes -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ShippingQuote:
    """One way to ship a vendor's parcel. ``regular_amount`` is the rate's price; ``amount``
    what the shopper pays, 0 when the subtotal reached the rate's ``free_over_amount``;
    ``free`` is True whenever ``amount`` is 0. Delivery dates are a range of business days."""

    method_code: str
    name: str
    amount: int
    regular_amount: int
    free: bool
    currency: str
    estimated_delivery_earliest: date
    estimated_delivery_latest: date


async def quote(
    session: AsyncSession,
    *,
    vendor_id: uuid.UUID,
    country: str,
    weight_grams: int,
    subtotal: int,
    currency: str,
    today: date,
) -> list[ShippingQuote]:
    """Every way the vendor can ship ``weight_grams`` to ``country`` in the cart's ``currency``,
    cheapest first (then earliest delivery, then code).

    A method is offered when it is active and has a rate in ``currency`` for a zone containing
    ``country`` and a band containing the weight. If zones overlap (an "EU" zone and a "Germany"
    zone), the zone with the fewest countries wins, as the more specific one. ``subtotal`` is
    the vendor's items in the cart (in ``currency``), for free-shipping thresholds. An empty
    list means the vendor cannot ship there: the caller refuses the checkout.
    """
    destination = country.strip().upper() if isinstance(country, str) else ""
    for field, value in (("weight_grams", weight_grams), ("subtotal", subtotal)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidShippingQuote(f"{field} must be a non-negative integer.")
    if len(destination) != 2:
        raise InvalidShippingQuote(f"{country!r} is not an ISO 3166-1 alpha-2 country code.")
    found = await session.execute(
        select(ShippingMethod, ShippingRate)
        .join(ShippingRate, ShippingRate.method_id == ShippingMethod.id)
        .join(ShippingZone, ShippingZone.id == ShippingRate.zone_id)
        .where(
            ShippingMethod.vendor_id == vendor_id,
            ShippingMethod.is_active,
            ShippingZone.vendor_id == vendor_id,
            any_(ShippingZone.countries) == destination,
            ShippingRate.currency == currency,
            ShippingRate.min_weight_grams <= weight_grams,
            or_(
                ShippingRate.max_weight_grams.is_(None),
                ShippingRate.max_weight_grams > weight_grams,
            ),
        )
        # The first row per method is the one used: the most specific zone, then the cheapest.
        .order_by(
            ShippingMethod.id,
            func.cardinality(ShippingZone.countries),
            ShippingRate.amount,
            ShippingRate.zone_id,
        )
    )
    quotes: dict[uuid.UUID, ShippingQuote] = {}
    for method, rate in found.all():
        if method.id in quotes:
            continue
        reached = rate.free_over_amount is not None and subtotal >= rate.free_over_amount
        amount = 0 if reached else rate.amount
        quotes[method.id] = ShippingQuote(
            method_code=method.code,
            name=method.name,
            amount=amount,
            regular_amount=rate.amount,
            free=amount == 0,
            currency=rate.currency,
            estimated_delivery_earliest=add_business_days(
                today, method.handling_days + method.transit_days_min
            ),
            estimated_delivery_latest=add_business_days(
                today, method.handling_days + method.transit_days_max
            ),
        )
    return sorted(
        quotes.values(),
        key=lambda q: (q.amount, q.estimated_delivery_earliest, q.method_code),
    )


# --- carriers ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class QuoteRequest:
    """What a carrier needs to price one vendor's parcel (see :func:`quote`)."""

    vendor_id: uuid.UUID
    country: str
    weight_grams: int
    subtotal: int
    currency: str
    today: date


@dataclass(frozen=True, kw_only=True)
class LabelRequest:
    """A parcel to buy a label for: the vendor's chosen method, the destination address as
    normalised by ``commerce.accounts.address_rules``, and the idempotency key of the
    shipment (a retried activity must not buy two labels)."""

    shipment_id: uuid.UUID
    vendor_id: uuid.UUID
    method_code: str
    destination: Mapping[str, str | None]
    weight_grams: int


@dataclass(frozen=True, kw_only=True)
class Label:
    carrier: str
    tracking_number: str
    label_url: str


@dataclass(frozen=True, kw_only=True)
class TrackingEvent:
    """A carrier's news about a parcel, from its webhook."""

    carrier: str
    event_id: str  # the carrier's own id: stored unique, so a replayed webhook is a no-op
    tracking_number: str
    status: str  # "in_transit", "out_for_delivery", "delivered", "exception"
    occurred_at: datetime
    detail: str | None = None
    location: str | None = None
    # The carrier's new estimate, when it gives one.
    estimated_delivery: date | None = None


class Carrier(Protocol):
    """What the platform asks of a shipping provider. Chosen by settings; the built-in
    :class:`TableRateCarrier` prices from the vendor's own tables.

    - ``quote``: the methods that can carry the parcel, cheapest first; empty when none can.
    - ``create_label``: buy a label for a shipment; idempotent by ``shipment_id``.
    - ``parse_webhook``: verify and decode a carrier's callback into a :class:`TrackingEvent`;
      raises on a bad signature.
    """

    async def quote(self, request: QuoteRequest) -> list[ShippingQuote]: ...

    async def create_label(self, request: LabelRequest) -> Label: ...

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> TrackingEvent: ...


class TableRateCarrier:
    """Quotes from the vendor's zones, methods and rates, in the session it is built with
    (one per request or activity, like the session itself). Buys no labels: the vendor ships
    with whoever they like and enters tracking numbers themselves."""

    name = "table_rate"

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def quote(self, request: QuoteRequest) -> list[ShippingQuote]:
        return await quote(
            self._session,
            vendor_id=request.vendor_id,
            country=request.country,
            weight_grams=request.weight_grams,
            subtotal=request.subtotal,
            currency=request.currency,
            today=request.today,
        )

    async def create_label(self, request: LabelRequest) -> Label:
        raise NotImplementedError(
            "TableRateCarrier only quotes from the vendor's rate tables; it cannot buy labels. "
            "Carriers with label APIs come with fulfilment."
        )

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> TrackingEvent:
        raise NotImplementedError(
            "TableRateCarrier has no webhooks: nothing calls back about table-rate parcels. "
            "Carriers with tracking webhooks come with fulfilment."
        )


# --- internals --------------------------------------------------------------------------------


def _only(error: type[DomainError], changes: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = set(changes) - allowed
    if unknown:
        raise error(f"Unknown fields: {', '.join(sorted(unknown))}.")


async def _store_unique(session: AsyncSession, row: ShippingZone | ShippingMethod) -> None:
    """Flush ``row``, a clash with another of the vendor's zones (same name) or methods (same
    code) becoming :class:`ShippingZoneExists` or :class:`ShippingMethodExists` (409)."""
    model: type[ShippingZone] | type[ShippingMethod]
    clash: ShippingZoneExists | ShippingMethodExists
    if isinstance(row, ShippingZone):
        model, column, value = ShippingZone, ShippingZone.name, row.name
        constraint = "uq_shipping_zones_vendor_id_name"
        clash = ShippingZoneExists(f"The vendor already has a zone named {row.name!r}.")
    else:
        model, column, value = ShippingMethod, ShippingMethod.code, row.code
        constraint = "uq_shipping_methods_vendor_id_code"
        clash = ShippingMethodExists(f"The code {row.code!r} is taken.")
    query = select(model.id).where(model.vendor_id == row.vendor_id, column == value)
    if row.id is not None:
        query = query.where(model.id != row.id)
    # No autoflush: a changed row would be flushed by this very query, and its clash would
    # surface as an IntegrityError instead of the answer we are looking for.
    with session.no_autoflush:
        if await session.scalar(query) is not None:
            raise clash
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError as error:
        # A concurrent transaction took the name or code after our check.
        diag = getattr(error.orig, "diag", None)
        if getattr(diag, "constraint_name", None) != constraint:
            raise
        raise clash from None
