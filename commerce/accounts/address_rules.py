"""Address-book rules: tidy an address and check it against its country's postal practice.

Pure functions (no database, no HTTP). The address-book API calls :func:`normalize_address`
before storing an ``Address`` and reports every problem at once, so a shopper fixes the form
in one go rather than one field per round trip.
"""

from __future__ import annotations

import gettext
import re
import unicodedata
from dataclasses import dataclass, fields, replace
from functools import cache

import pycountry


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with one input field.

    ``type`` is stable and machine-readable ("required", "too_long", "invalid_characters",
    "invalid_country", "invalid_region", "invalid_postal_code", "invalid_phone", ...): clients
    branch on it. ``message`` is for people and never repeats the submitted value, which may
    be personal data (or a card number) and ends up in logs.
    """

    field: str
    message: str
    type: str


@dataclass(frozen=True, kw_only=True)
class AddressInput:
    """An address as submitted, or as returned by :func:`normalize_address`.

    Keyword-only: nine strings in a row are too easy to pass in the wrong order.
    """

    name: str | None
    company: str | None = None
    line1: str | None
    line2: str | None = None
    city: str | None
    region: str | None = None
    postal_code: str | None = None
    country: str | None
    phone: str | None = None


# The column widths of models.accounts.Address: longer values would fail at INSERT.
MAX_LENGTHS: dict[str, int] = {
    "name": 200,
    "company": 200,
    "line1": 200,
    "line2": 200,
    "city": 100,
    "region": 100,
    "postal_code": 20,
    "phone": 32,
}

_LABELS = {
    "name": "Name",
    "company": "Company",
    "line1": "Address line 1",
    "line2": "Address line 2",
    "city": "City",
    "region": "Region",
    "postal_code": "Postal code",
    "country": "Country",
    "phone": "Phone",
}

# Every country needs someone to deliver to, a street and a place; the rest depends on the
# country. (City is required even where the local format folds it into the street lines,
# as Japan's does: the column is NOT NULL and carriers' label APIs ask for it.)
_ALWAYS_REQUIRED = ("name", "line1", "city", "country")


@dataclass(frozen=True)
class _PostalFormat:
    # Matched against the upper-cased code with runs of whitespace collapsed to one space;
    # the non-empty groups joined by `separator` give the canonical form.
    pattern: re.Pattern[str]
    separator: str
    example: str
    required: bool = True

    def normalize(self, value: str) -> str | None:
        match = self.pattern.fullmatch(value)
        if match is None:
            return None
        return self.separator.join(group for group in match.groups() if group)


def _postal(pattern: str, separator: str, example: str, *, required: bool = True) -> _PostalFormat:
    # re.ASCII: \d must not accept other scripts' digits, which no carrier would read.
    return _PostalFormat(re.compile(pattern, re.ASCII), separator, example, required)


def _digits(count: int, example: str) -> _PostalFormat:
    return _postal(rf"(\d{{{count}}})", "", example)


@dataclass(frozen=True)
class _RegionRule:
    """A country whose addresses must name a first-level subdivision, from ISO 3166-2."""

    label: str  # what the country calls it, for messages: "state", "prefecture", ...
    example: str  # a valid code, for messages
    # ISO 3166-2 subdivision types that count; None for all of them.
    types: frozenset[str] | None = None
    # (code, name): what postal practice uses but ISO 3166-2 does not list.
    extra_codes: tuple[tuple[str, str], ...] = ()
    # (name, code): common names that differ from the ISO 3166-2 one.
    aliases: tuple[tuple[str, str], ...] = ()
    # pycountry ships ISO 3166-2 names translated; this language's are accepted too.
    language: str | None = None
    # Suffixes people add to a name ("Tokyo-to", "東京都"), tried when the name alone fails.
    name_suffixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _CountryRules:
    postal: _PostalFormat
    region: _RegionRule | None = None  # None: region optional and free text


_RULES: dict[str, _CountryRules] = {
    # Region required where postal practice puts the subdivision on the address and carriers
    # expect it: US, CA, AU, BR, MX, IN, JP, IT, ES. (The same set Google's address metadata,
    # used by Chrome and Android forms, marks as requiring a state.) Elsewhere a region may
    # be given but is free text: UK counties, for instance, are optional and not ISO 3166-2.
    #
    # US: the state is on the last line ("Springfield IL 62704"), USPS sorts by it and sales
    # tax depends on it. AA/AE/AP are the USPS "states" of military and diplomatic mail
    # (APO/FPO/DPO), which ISO 3166-2 does not list.
    "US": _CountryRules(
        postal=_postal(r"(\d{5})(?:[ -]?(\d{4}))?", "-", "12345 or 12345-6789"),
        region=_RegionRule(
            "state",
            "CA",
            extra_codes=(
                ("AA", "Armed Forces Americas"),
                ("AE", "Armed Forces Europe"),
                ("AP", "Armed Forces Pacific"),
            ),
        ),
    ),
    # CA: the province is on the last line ("OTTAWA ON K1A 0B1"); Canada Post expects it and
    # sales tax (GST/HST/PST) depends on it.
    "CA": _CountryRules(
        postal=_postal(r"([A-Z]\d[A-Z]) ?(\d[A-Z]\d)", " ", "A1A 1A1"),
        region=_RegionRule("province or territory", "ON"),
    ),
    # GB: outward code (A9, A99, A9A, AA9, AA99 or AA9A) then inward code (9AA), plus the
    # Girobank oddity GIR 0AA. Only the shape is checked: the letter restrictions per
    # position have changed over time, and refusing a real postcode blocks a checkout while
    # accepting a wrong one only fails later at the carrier.
    "GB": _CountryRules(
        postal=_postal(r"(?:(GIR) ?(0AA)|([A-Z]{1,2}\d[A-Z\d]?) ?(\d[A-Z]{2}))", " ", "SW1A 1AA")
    ),
    "DE": _CountryRules(postal=_digits(5, "10115")),
    "FR": _CountryRules(postal=_digits(5, "75001")),
    # NL: four digits (never starting with 0) and two letters.
    "NL": _CountryRules(postal=_postal(r"([1-9]\d{3}) ?([A-Z]{2})", " ", "1234 AB")),
    # IT: the two-letter province (sigla) ends the last line ("00184 ROMA RM"). ISO 3166-2:IT
    # also lists the 20 regions, which addresses do not use, so only provinces and their
    # equivalents count. The Aosta Valley has no province in ISO 3166-2 (the region does the
    # job) yet its addresses carry "AO".
    "IT": _CountryRules(
        postal=_digits(5, "00184"),
        region=_RegionRule(
            "province",
            "RM",
            types=frozenset(
                {
                    "Province",
                    "Metropolitan city",
                    "Free municipal consortium",
                    "Decentralized regional entity",
                    "Autonomous province",
                }
            ),
            extra_codes=(("AO", "Aosta"),),
            aliases=(("Valle d'Aosta", "AO"), ("Vallée d'Aoste", "AO")),
        ),
    ),
    # ES: the province follows the city ("28013 MADRID MADRID"). ISO 3166-2:ES also lists
    # the autonomous communities, which addresses do not use; Ceuta and Melilla stand in for
    # provinces. The first two postal digits are the province number, 01 to 52.
    "ES": _CountryRules(
        postal=_postal(r"((?:0[1-9]|[1-4]\d|5[0-2])\d{3})", "", "28013"),
        region=_RegionRule(
            "province",
            "M",
            types=frozenset({"Province", "Autonomous city in north africa"}),
        ),
    ),
    # AU: the state is on the last line ("SYDNEY NSW 2000"); Australia Post requires it.
    "AU": _CountryRules(
        postal=_digits(4, "2000"),
        region=_RegionRule("state or territory", "NSW"),
    ),
    # JP: an address starts from the prefecture (〒100-0001 東京都千代田区…), and city and
    # ward names repeat across prefectures (there is a Fuchū in Tokyo and in Hiroshima).
    # People write prefectures in kanji, often with their 都/府/県 suffix.
    "JP": _CountryRules(
        postal=_postal(r"(\d{3})[ -]?(\d{4})", "-", "100-0001"),
        region=_RegionRule(
            "prefecture",
            "13",
            language="ja",
            name_suffixes=("都", "府", "県", "to", "fu", "ken", "prefecture"),
        ),
    ),
    # BR: the state (UF) follows the city ("São Paulo - SP"); Correios requires it.
    "BR": _CountryRules(
        postal=_postal(r"(\d{5})[ -]?(\d{3})", "-", "01310-100"),
        region=_RegionRule("state", "SP"),
    ),
    # IN: the state follows the PIN code; India Post expects it and GST is levied per state.
    "IN": _CountryRules(
        postal=_postal(r"([1-9]\d{2}) ?(\d{3})", "", "110001"),
        region=_RegionRule("state or union territory", "MH"),
    ),
    # IE: Eircodes (since 2015) are not needed for delivery and many addresses are still
    # written without one. A routing key, then four characters from an alphabet that leaves
    # out easily confused letters.
    "IE": _CountryRules(
        postal=_postal(
            r"([AC-FHKNPRTV-Y]\d{2}|D6W) ?([0-9AC-FHKNPRTV-Y]{4})", " ", "D02 X285", required=False
        )
    ),
    "SE": _CountryRules(postal=_postal(r"([1-9]\d{2}) ?(\d{2})", " ", "114 55")),
    "CH": _CountryRules(postal=_digits(4, "8001")),
    "AT": _CountryRules(postal=_digits(4, "1010")),
    "BE": _CountryRules(postal=_digits(4, "1000")),
    "PL": _CountryRules(postal=_postal(r"(\d{2})[ -]?(\d{3})", "-", "00-950")),
    "DK": _CountryRules(postal=_digits(4, "1050")),
    "NO": _CountryRules(postal=_digits(4, "0150")),
    "NZ": _CountryRules(postal=_digits(4, "6011")),
    # MX: the state follows the city ("44100 GUADALAJARA, JAL."); carriers require it. The
    # ISO names are the official long ones, so the everyday names are accepted too.
    "MX": _CountryRules(
        postal=_digits(5, "06000"),
        region=_RegionRule(
            "state",
            "JAL",
            aliases=(
                ("CDMX", "CMX"),
                ("Distrito Federal", "CMX"),
                ("Estado de México", "MEX"),
                ("Coahuila", "COA"),
                ("Michoacán", "MIC"),
                ("Veracruz", "VER"),
            ),
        ),
    ),
}

COUNTRIES_WITH_RULES: frozenset[str] = frozenset(_RULES)

# Elsewhere: optional (many countries have no postal codes), and only characters a postal
# code anywhere is made of.
_ANY_POSTAL_CODE = re.compile(r"[A-Z0-9](?:[A-Z0-9 -]*[A-Z0-9])?", re.ASCII)

# Digits and the usual punctuation; "+" only in front, where the international prefix goes.
_PHONE = re.compile(r"\+?[0-9 ()-]+", re.ASCII)
_PHONE_MIN_DIGITS, _PHONE_MAX_DIGITS = 6, 20

# Dashes that keyboards and word processors substitute for "-" in codes and phone numbers.
_DASHES = str.maketrans(dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc", "-"))


def normalize_address(address: AddressInput) -> tuple[AddressInput, list[FieldProblem]]:
    """Tidy an address and check it against its country's rules.

    Trims and collapses whitespace (empty optional fields become None), converts the country
    to ISO 3166-1 alpha-2 (alpha-3 accepted), and where the country requires a region resolves
    it from a code, a full ISO 3166-2 code or a name to the subdivision code ("california" ->
    "CA"). Postal codes are checked and put in the country's canonical form ("k1a0b1" ->
    "K1A 0B1"). Returns the tidied address and every problem found, at most one per field,
    in field order; a field with a problem is returned tidied but otherwise as given.
    """
    values = {f.name: _tidy(getattr(address, f.name)) for f in fields(AddressInput)}
    problems: dict[str, FieldProblem] = {}

    def report(field: str, kind: str, message: str) -> None:
        problems.setdefault(field, FieldProblem(field, message, kind))

    for field, value in values.items():
        if value is None:
            continue
        if any(unicodedata.category(char) in ("Cc", "Cs") for char in value):
            # Postgres rejects NUL outright, and other control characters garble labels.
            report(field, "invalid_characters", f"{_LABELS[field]} contains control characters.")
        elif field in MAX_LENGTHS and len(value) > MAX_LENGTHS[field]:
            limit = MAX_LENGTHS[field]
            report(field, "too_long", f"{_LABELS[field]} must be at most {limit} characters.")

    country: str | None = None  # the ISO 3166-1 alpha-2 code, once known
    rules: _CountryRules | None = None
    if values["country"] is not None and "country" not in problems:
        country = _resolve_country(values["country"])
        if country is None:
            report(
                "country",
                "invalid_country",
                "Country must be an ISO 3166-1 code, such as US or DE (USA and DEU also work).",
            )
        else:
            values["country"] = country
            rules = _RULES.get(country)

    for field in _ALWAYS_REQUIRED:
        if values[field] is None:
            report(field, "required", f"{_LABELS[field]} is required.")

    region = values["region"]
    region_rule = rules.region if rules is not None else None
    if country is not None and region_rule is not None and "region" not in problems:
        label = region_rule.label
        if region is None:
            report("region", "required", f"Region ({label}) is required for {country}.")
        elif (code := _resolve_region(country, region)) is not None:
            values["region"] = code
        else:
            report(
                "region",
                "invalid_region",
                f"Region must be a {label} of {country}, as a code (such as "
                f"{region_rule.example}) or a name.",
            )

    postal = values["postal_code"]
    if postal is None:
        if rules is not None and rules.postal.required:
            report(
                "postal_code",
                "required",
                f"Postal code is required for addresses in {country}.",
            )
    elif "postal_code" not in problems:
        compact = " ".join(unicodedata.normalize("NFKC", postal).translate(_DASHES).split())
        compact = compact.upper()
        if rules is not None:
            formatted = rules.postal.normalize(compact)
            expected = f"look like {rules.postal.example}"
        else:
            formatted = compact if _ANY_POSTAL_CODE.fullmatch(compact) else None
            expected = "made of letters, digits, spaces and hyphens"
        if formatted is None:
            report("postal_code", "invalid_postal_code", f"Postal code must be {expected}.")
        else:
            values["postal_code"] = formatted

    phone = values["phone"]
    if phone is not None and "phone" not in problems:
        phone = " ".join(unicodedata.normalize("NFKC", phone).translate(_DASHES).split())
        digits = sum(char.isdigit() for char in phone)
        if _PHONE.fullmatch(phone) and _PHONE_MIN_DIGITS <= digits <= _PHONE_MAX_DIGITS:
            values["phone"] = phone
        else:
            report(
                "phone",
                "invalid_phone",
                f"Phone must have {_PHONE_MIN_DIGITS} to {_PHONE_MAX_DIGITS} digits and only "
                "digits, spaces, a leading +, hyphens and parentheses.",
            )

    ordered = [problems[f.name] for f in fields(AddressInput) if f.name in problems]
    return replace(address, **values), ordered


def _tidy(value: str | None) -> str | None:
    # NFC so that the same text typed on different systems compares and counts the same;
    # collapsing whitespace also turns pasted newlines and tabs into single spaces.
    if value is None:
        return None
    return " ".join(unicodedata.normalize("NFC", value).split()) or None


def _resolve_country(value: str) -> str | None:
    code = value.upper()
    if code == "UK":
        # Not ISO 3166-1 but reserved at the UK's request, and what many people type.
        return "GB"
    if len(code) == 2:
        country = pycountry.countries.get(alpha_2=code)
    elif len(code) == 3:
        country = pycountry.countries.get(alpha_3=code)
    else:
        country = None
    return country.alpha_2 if country is not None else None


@dataclass(frozen=True)
class _RegionIndex:
    codes: dict[str, str]  # upper-case code, bare or with the country prefix -> bare code
    names: dict[str, str]  # folded name -> bare code
    folded_codes: dict[str, str]  # folded code ("n.s.w." -> "nsw") -> bare code


def _resolve_region(country: str, value: str) -> str | None:
    rule = _RULES[country].region
    assert rule is not None
    index = _region_index(country)
    if (code := index.codes.get(value.upper())) is not None:
        return code
    key = _fold(value)
    if (code := index.names.get(key) or index.folded_codes.get(key)) is not None:
        return code
    for suffix in rule.name_suffixes:
        if key.endswith(suffix) and (code := index.names.get(key.removesuffix(suffix))):
            return code
    return None


@cache
def _region_index(country: str) -> _RegionIndex:
    rule = _RULES[country].region
    assert rule is not None
    translations = (
        gettext.translation("iso3166-2", pycountry.LOCALES_DIR, [rule.language], fallback=True)
        if rule.language
        else gettext.NullTranslations()
    )
    codes: dict[str, str] = {}
    names: dict[str, str] = {}
    clashes: set[str] = set()

    def add_name(name: str, code: str) -> None:
        key = _fold(name)
        if names.setdefault(key, code) != code:
            clashes.add(key)

    subdivisions = pycountry.subdivisions.get(country_code=country) or []
    for subdivision in subdivisions:
        if rule.types is not None and subdivision.type not in rule.types:
            continue
        code = subdivision.code.split("-", 1)[1]
        codes[code] = codes[subdivision.code] = code
        for name in _name_variants(subdivision.name):
            add_name(name, code)
        add_name(translations.gettext(subdivision.name), code)
    for code, name in rule.extra_codes:
        codes[code] = codes[f"{country}-{code}"] = code
        add_name(name, code)
    for name, code in rule.aliases:
        add_name(name, code)
    # A name shared by two subdivisions identifies neither: ask for the code instead.
    for key in clashes:
        del names[key]
    folded_codes = {_fold(code): bare for code, bare in codes.items()}
    return _RegionIndex(codes=codes, names=names, folded_codes=folded_codes)


_BRACKETED = re.compile(r"(.*?)\s*\[(.*)\]")


def _name_variants(name: str) -> list[str]:
    # ISO 3166-2 gives some names in two languages: "A Coruña [La Coruña]".
    match = _BRACKETED.fullmatch(name)
    return [match.group(1), match.group(2)] if match else [name]


def _fold(value: str) -> str:
    # Case, accents, spacing and punctuation are how people differ in typing the same name:
    # "Québec", "quebec", "Emilia Romagna", "N.S.W.".
    decomposed = unicodedata.normalize("NFKD", value)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return "".join(char for char in bare.casefold() if char.isalnum())
