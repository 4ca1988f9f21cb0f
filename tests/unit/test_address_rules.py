from __future__ import annotations

import pytest

from commerce.accounts.address_rules import (
    COUNTRIES_WITH_RULES,
    AddressInput,
    FieldProblem,
    normalize_address,
)


def _address(country: str | None = "DE", **overrides: str | None) -> AddressInput:
    fields: dict[str, str | None] = {
        "name": "Ada Lovelace",
        "line1": "12 Example Street",
        "city": "Springfield",
        "country": country,
        # Germany, the default, requires a postal code.
        "postal_code": "10115" if country == "DE" else None,
    }
    fields.update(overrides)
    return AddressInput(**fields)


def _kinds(problems: list[FieldProblem]) -> list[tuple[str, str]]:
    return [(problem.field, problem.type) for problem in problems]


# (country, region as typed, postal code as typed, region stored, postal code stored)
VALID_PER_COUNTRY = [
    ("US", "California", "94103", "CA", "94103"),
    ("CA", "Ontario", "k1a0b1", "ON", "K1A 0B1"),
    ("GB", None, "sw1a1aa", None, "SW1A 1AA"),
    ("DE", None, "10115", None, "10115"),
    ("FR", None, "75001", None, "75001"),
    ("NL", None, "1012ab", None, "1012 AB"),
    ("IT", "RM", "00184", "RM", "00184"),
    ("ES", "Madrid", "28013", "M", "28013"),
    ("AU", "New South Wales", "2000", "NSW", "2000"),
    ("JP", "Tokyo", "1000001", "13", "100-0001"),
    ("BR", "São Paulo", "01310100", "SP", "01310-100"),
    ("IN", "Maharashtra", "400 001", "MH", "400001"),
    ("IE", None, "d02x285", None, "D02 X285"),
    ("SE", None, "11455", None, "114 55"),
    ("CH", None, "8001", None, "8001"),
    ("AT", None, "1010", None, "1010"),
    ("BE", None, "1000", None, "1000"),
    ("PL", None, "00950", None, "00-950"),
    ("DK", None, "1050", None, "1050"),
    ("NO", None, "0150", None, "0150"),
    ("NZ", None, "6011", None, "6011"),
    ("MX", "Jalisco", "44100", "JAL", "44100"),
]


def test_every_country_with_rules_has_a_valid_example() -> None:
    assert {case[0] for case in VALID_PER_COUNTRY} == COUNTRIES_WITH_RULES


@pytest.mark.parametrize(
    ("country", "region", "postal_code", "expected_region", "expected_postal_code"),
    VALID_PER_COUNTRY,
)
def test_a_valid_address_per_country_normalises(
    country: str,
    region: str | None,
    postal_code: str,
    expected_region: str | None,
    expected_postal_code: str,
) -> None:
    address, problems = normalize_address(_address(country, region=region, postal_code=postal_code))
    assert problems == []
    assert address.country == country
    assert address.region == expected_region
    assert address.postal_code == expected_postal_code


def test_fields_are_trimmed_and_blank_optional_fields_become_none() -> None:
    address, problems = normalize_address(
        AddressInput(
            name="  Ada \t Lovelace ",
            company="   ",
            line1=" 12  Example\nStreet ",
            line2="",
            city=" Berlin ",
            region="  ",
            postal_code=" 10115 ",
            country=" de ",
            phone="  +49 30 1234567  ",
        )
    )
    assert problems == []
    assert address == AddressInput(
        name="Ada Lovelace",
        company=None,
        line1="12 Example Street",
        line2=None,
        city="Berlin",
        region=None,
        postal_code="10115",
        country="DE",
        phone="+49 30 1234567",
    )


# --- country


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("DE", "DE"), ("de", "DE"), ("DEU", "DE"), ("usa", "US"), ("JPN", "JP"), ("UK", "GB")],
)
def test_country_codes_are_upper_cased_and_alpha3_converted(typed: str, stored: str) -> None:
    address, _ = normalize_address(_address(typed))
    assert address.country == stored


@pytest.mark.parametrize("country", ["XX", "ZZZ", "Germany", "D", "1A"])
def test_unknown_country_is_invalid(country: str) -> None:
    address, problems = normalize_address(_address(country, postal_code="12345"))
    assert _kinds(problems) == [("country", "invalid_country")]
    assert address.country == country


def test_unknown_country_still_gets_the_general_checks() -> None:
    _, problems = normalize_address(_address("XX", name=None, postal_code="12#45"))
    assert _kinds(problems) == [
        ("name", "required"),
        ("postal_code", "invalid_postal_code"),
        ("country", "invalid_country"),
    ]


# --- required fields


@pytest.mark.parametrize("field", ["name", "line1", "city", "country"])
@pytest.mark.parametrize("value", [None, "", "   "])
def test_fields_every_address_needs(field: str, value: str | None) -> None:
    _, problems = normalize_address(_address(**{field: value}))
    assert _kinds(problems) == [(field, "required")]


@pytest.mark.parametrize(
    ("country", "postal_code"),
    [
        ("US", "94103"),
        ("CA", "K1A 0B1"),
        ("AU", "2000"),
        ("BR", "01310-100"),
        ("MX", "44100"),
        ("IN", "110001"),
        ("JP", "100-0001"),
        ("IT", "00184"),
        ("ES", "28013"),
    ],
)
def test_region_is_required_where_postal_practice_needs_it(country: str, postal_code: str) -> None:
    _, problems = normalize_address(_address(country, postal_code=postal_code))
    assert _kinds(problems) == [("region", "required")]


@pytest.mark.parametrize(
    "country", sorted(COUNTRIES_WITH_RULES - {"US", "CA", "AU", "BR", "MX", "IN", "JP", "IT", "ES"})
)
def test_region_is_optional_free_text_elsewhere(country: str) -> None:
    example = next(case for case in VALID_PER_COUNTRY if case[0] == country)
    address, problems = normalize_address(
        _address(country, region="  Somewhere   Shire ", postal_code=example[2])
    )
    assert problems == []
    assert address.region == "Somewhere Shire"


@pytest.mark.parametrize(
    "country", sorted(COUNTRIES_WITH_RULES - {"IE"}), ids=lambda country: country
)
def test_postal_code_is_required_in_countries_that_use_them(country: str) -> None:
    example = next(case for case in VALID_PER_COUNTRY if case[0] == country)
    _, problems = normalize_address(_address(country, region=example[1], postal_code=None))
    assert _kinds(problems) == [("postal_code", "required")]


def test_eircode_is_optional() -> None:
    address, problems = normalize_address(_address("IE", city="Dublin", region="Co. Dublin"))
    assert problems == []
    assert address.postal_code is None
    assert address.region == "Co. Dublin"


def test_postal_code_is_optional_for_countries_without_rules() -> None:
    address, problems = normalize_address(_address("AE", city="Dubai"))
    assert problems == []
    assert address.postal_code is None


# --- regions


@pytest.mark.parametrize(
    ("country", "typed", "stored"),
    [
        ("US", "CA", "CA"),
        ("US", "ca", "CA"),
        ("US", "US-CA", "CA"),
        ("US", "us-ca", "CA"),
        ("US", "california", "CA"),
        ("US", "  New   York ", "NY"),
        ("US", "District of Columbia", "DC"),
        ("US", "Puerto Rico", "PR"),
        ("US", "AE", "AE"),  # Armed Forces Europe: APO/FPO mail
        ("CA", "ON", "ON"),
        ("CA", "CA-QC", "QC"),
        ("CA", "Québec", "QC"),
        ("CA", "quebec", "QC"),
        ("AU", "n.s.w.", "NSW"),
        ("AU", "victoria", "VIC"),
        ("BR", "sao paulo", "SP"),
        ("BR", "BR-RJ", "RJ"),
        ("MX", "CMX", "CMX"),
        ("MX", "Ciudad de México", "CMX"),
        ("MX", "cdmx", "CMX"),
        ("MX", "nuevo leon", "NLE"),
        ("MX", "Veracruz", "VER"),
        ("IN", "Tamil Nadu", "TN"),
        ("IN", "IN-KA", "KA"),
        ("IN", "karnataka", "KA"),
        ("JP", "13", "13"),
        ("JP", "JP-13", "13"),
        ("JP", "tokyo", "13"),
        ("JP", "Tōkyō", "13"),
        ("JP", "Tokyo-to", "13"),
        ("JP", "東京都", "13"),
        ("JP", "京都府", "26"),
        ("JP", "Kyoto", "26"),
        ("JP", "北海道", "01"),
        ("JP", "Osaka Prefecture", "27"),
        ("IT", "mi", "MI"),
        ("IT", "Milano", "MI"),
        ("IT", "IT-RM", "RM"),
        ("IT", "AO", "AO"),  # Aosta: a province in postal practice, not in ISO 3166-2
        ("IT", "Valle d'Aosta", "AO"),
        ("ES", "Barcelona", "B"),
        ("ES", "A Coruña", "C"),
        ("ES", "la coruna", "C"),
        ("ES", "ES-M", "M"),
        ("ES", "Ceuta", "CE"),
    ],
)
def test_region_by_code_full_code_or_name(country: str, typed: str, stored: str) -> None:
    example = next(case for case in VALID_PER_COUNTRY if case[0] == country)
    address, problems = normalize_address(_address(country, region=typed, postal_code=example[2]))
    assert problems == []
    assert address.region == stored


@pytest.mark.parametrize(
    ("country", "typed"),
    [
        ("US", "ZZ"),
        ("US", "Ontario"),
        ("US", "CA-ON"),
        ("CA", "California"),
        ("AU", "Auckland"),
        ("JP", "48"),
        ("IT", "Lombardia"),  # a region: addresses name the province
        ("IT", "IT-25"),
        ("ES", "Cataluña"),  # an autonomous community, not a province
        ("ES", "ES-MD"),
        ("MX", "Texas"),
    ],
)
def test_unknown_region_is_invalid(country: str, typed: str) -> None:
    example = next(case for case in VALID_PER_COUNTRY if case[0] == country)
    address, problems = normalize_address(_address(country, region=typed, postal_code=example[2]))
    assert _kinds(problems) == [("region", "invalid_region")]
    assert address.region == typed


# --- postal codes


@pytest.mark.parametrize(
    ("country", "typed", "stored"),
    [
        ("US", "94103-1234", "94103-1234"),
        ("US", "941031234", "94103-1234"),
        ("US", "94103 1234", "94103-1234"),
        ("CA", "K1A 0B1", "K1A 0B1"),
        ("CA", " k1a   0b1 ", "K1A 0B1"),
        ("GB", "SW1A 1AA", "SW1A 1AA"),
        ("GB", "m11ae", "M1 1AE"),
        ("GB", "B33 8TH", "B33 8TH"),
        ("GB", "cr26xh", "CR2 6XH"),
        ("GB", "DN55 1PT", "DN55 1PT"),
        ("GB", "W1A 0AX", "W1A 0AX"),
        ("GB", "EC1A1BB", "EC1A 1BB"),
        ("GB", "GIR0AA", "GIR 0AA"),
        ("NL", "1012 AB", "1012 AB"),
        ("NL", "1012ab", "1012 AB"),
        ("JP", "100-0001", "100-0001"),
        # Full-width digits and hyphen, as Japanese input methods type them.
        ("JP", "\uff11\uff10\uff10\uff0d\uff10\uff10\uff10\uff11", "100-0001"),
        ("JP", "100\u30fc0001", "100-0001"),  # the katakana long-vowel mark for a hyphen
        ("BR", "01310-100", "01310-100"),
        ("IN", "110001", "110001"),
        ("IE", "D02 X285", "D02 X285"),
        ("IE", "d6wxy12", "D6W XY12"),
        ("SE", "114 55", "114 55"),
        ("PL", "00-950", "00-950"),
        ("ES", "08001", "08001"),
        ("ES", "52001", "52001"),
    ],
)
def test_postal_code_canonical_form(country: str, typed: str, stored: str) -> None:
    example = next(case for case in VALID_PER_COUNTRY if case[0] == country)
    address, problems = normalize_address(_address(country, region=example[1], postal_code=typed))
    assert problems == []
    assert address.postal_code == stored


@pytest.mark.parametrize(
    ("country", "typed"),
    [
        ("US", "9410"),
        ("US", "941031"),
        ("US", "94103-12"),
        ("US", "ABCDE"),
        ("CA", "123 456"),
        ("CA", "K1A 0B"),
        ("GB", "12345"),
        ("GB", "SW1A"),
        ("GB", "SW1A 1A1"),
        ("GB", "GIR 1AA"),
        ("DE", "1011"),
        ("DE", "101155"),
        ("FR", "7500"),
        ("NL", "0123 AB"),
        ("NL", "1234 A"),
        ("IT", "0018"),
        ("ES", "53001"),  # no province 53
        ("ES", "00001"),
        ("AU", "200"),
        ("JP", "12-34567"),
        ("BR", "1310-100"),
        ("IN", "012345"),
        ("IE", "B12 X285"),  # B is not an Eircode routing letter
        ("SE", "01455"),
        ("CH", "80010"),
        ("AT", "A-1010"),
        ("BE", "B1000"),
        ("PL", "009-50"),
        ("DK", "DK1050"),
        ("NO", "015"),
        ("NZ", "60111"),
        ("MX", "4410"),
    ],
)
def test_postal_code_in_the_wrong_shape(country: str, typed: str) -> None:
    example = next(case for case in VALID_PER_COUNTRY if case[0] == country)
    address, problems = normalize_address(_address(country, region=example[1], postal_code=typed))
    assert _kinds(problems) == [("postal_code", "invalid_postal_code")]
    assert address.postal_code == typed


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("00100", "00100"), ("ab-12 3", "AB-12 3"), ("FI-00100", "FI-00100")],
)
def test_postal_code_elsewhere_is_letters_digits_spaces_hyphens(typed: str, stored: str) -> None:
    address, problems = normalize_address(_address("FI", postal_code=typed))
    assert problems == []
    assert address.postal_code == stored


@pytest.mark.parametrize("typed", ["12#45", "-", "1234_5", "١٢٣٤٥"])
def test_postal_code_elsewhere_with_other_characters_is_invalid(typed: str) -> None:
    _, problems = normalize_address(_address("FI", postal_code=typed))
    assert _kinds(problems) == [("postal_code", "invalid_postal_code")]


# --- lengths and characters


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("name", 200),
        ("company", 200),
        ("line1", 200),
        ("line2", 200),
        ("city", 100),
        ("region", 100),
    ],
)
def test_text_fields_are_limited_to_their_column_width(field: str, limit: int) -> None:
    address, problems = normalize_address(_address(**{field: "a" * limit}))
    assert problems == []
    assert getattr(address, field) == "a" * limit

    _, problems = normalize_address(_address(**{field: "a" * (limit + 1)}))
    assert _kinds(problems) == [(field, "too_long")]
    assert str(limit) in problems[0].message


def test_length_counts_after_trimming() -> None:
    _, problems = normalize_address(_address(name="  " + "a" * 200 + "  "))
    assert problems == []


def test_long_postal_code_and_phone() -> None:
    _, problems = normalize_address(_address("FI", postal_code="1" * 21, phone="1 " * 17))
    assert _kinds(problems) == [("postal_code", "too_long"), ("phone", "too_long")]


def test_long_region_where_regions_are_checked() -> None:
    _, problems = normalize_address(_address("US", region="x" * 101, postal_code="94103"))
    assert _kinds(problems) == [("region", "too_long")]


@pytest.mark.parametrize("bad", ["nul\x00here", "bell\x07", "\ud800"])
def test_control_characters_are_refused(bad: str) -> None:
    _, problems = normalize_address(_address(line1=bad))
    assert _kinds(problems) == [("line1", "invalid_characters")]


def test_messages_do_not_repeat_the_value() -> None:
    _, problems = normalize_address(
        _address("US", region="Secretville", postal_code="SECRET1", phone="call SECRET2")
    )
    assert len(problems) == 3
    assert all("SECRET" not in problem.message.upper() for problem in problems)


# --- phone


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("+1 (555) 123-4567", "+1 (555) 123-4567"),
        ("030 1234567", "030 1234567"),
        ("  +44  20 7946 0958 ", "+44 20 7946 0958"),
        ("123456", "123456"),
        ("+" + "1" * 20, "+" + "1" * 20),
        # Full-width digits with minus signs.
        (
            "\uff10\uff13\u2212\uff11\uff12\uff13\uff14\u2212\uff15\uff16\uff17\uff18",
            "03-1234-5678",
        ),
    ],
)
def test_valid_phone_numbers(typed: str, stored: str) -> None:
    address, problems = normalize_address(_address(phone=typed))
    assert problems == []
    assert address.phone == stored


@pytest.mark.parametrize(
    "typed",
    [
        "12345",  # 5 digits
        "1" * 21,  # 21 digits
        "555-CALL-NOW",
        "+1.555.123.4567",
        "1+5551234567",
        "555 1234 ext 5",
        "(+)",
    ],
)
def test_invalid_phone_numbers(typed: str) -> None:
    address, problems = normalize_address(_address(phone=typed))
    assert _kinds(problems) == [("phone", "invalid_phone")]
    assert address.phone == typed


# --- several problems at once


def test_every_problem_is_reported_in_field_order() -> None:
    address, problems = normalize_address(
        AddressInput(
            name=" ",
            company="c" * 201,
            line1=None,
            line2="Flat 2",
            city="x" * 101,
            region="Narnia",
            postal_code="ABC",
            country="usa",
            phone="call me",
        )
    )
    assert _kinds(problems) == [
        ("name", "required"),
        ("company", "too_long"),
        ("line1", "required"),
        ("city", "too_long"),
        ("region", "invalid_region"),
        ("postal_code", "invalid_postal_code"),
        ("phone", "invalid_phone"),
    ]
    # What could be normalised still is.
    assert address.country == "US"
    assert address.line2 == "Flat 2"


def test_an_empty_address_reports_each_required_field() -> None:
    _, problems = normalize_address(AddressInput(name=None, line1=None, city=None, country=None))
    assert _kinds(problems) == [
        ("name", "required"),
        ("line1", "required"),
        ("city", "required"),
        ("country", "required"),
    ]


def test_problems_are_typed_values() -> None:
    _, problems = normalize_address(_address(name=None))
    assert problems == [FieldProblem(field="name", message="Name is required.", type="required")]
