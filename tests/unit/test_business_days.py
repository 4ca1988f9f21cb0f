"""add_business_days: Monday to Friday count, weekends do not, and an order placed on a weekend
starts counting on the Monday (nobody handles a parcel before then)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from commerce.fulfilment.shipping import add_business_days

# 2026-11-16 is a Monday.
MONDAY = date(2026, 11, 16)
FRIDAY = date(2026, 11, 20)
SATURDAY = date(2026, 11, 21)
SUNDAY = date(2026, 11, 22)


def test_weekdays_count_one_by_one() -> None:
    assert add_business_days(MONDAY, 0) == MONDAY
    assert add_business_days(MONDAY, 1) == date(2026, 11, 17)
    assert add_business_days(MONDAY, 4) == FRIDAY


def test_friday_plus_one_is_monday() -> None:
    assert add_business_days(FRIDAY, 1) == date(2026, 11, 23)


def test_a_week_of_business_days_is_seven_calendar_days() -> None:
    assert add_business_days(MONDAY, 5) == date(2026, 11, 23)
    assert add_business_days(date(2026, 11, 18), 10) == date(2026, 12, 2)


def test_a_weekend_start_counts_from_monday() -> None:
    # Decided: a weekend order is not handled before Monday, so even 0 days lands on Monday.
    assert add_business_days(SATURDAY, 0) == date(2026, 11, 23)
    assert add_business_days(SUNDAY, 0) == date(2026, 11, 23)
    assert add_business_days(SATURDAY, 1) == date(2026, 11, 24)
    assert add_business_days(SUNDAY, 5) == date(2026, 11, 30)


def test_spans_months_and_years() -> None:
    assert add_business_days(date(2026, 12, 31), 1) == date(2027, 1, 1)  # a Thursday
    assert add_business_days(date(2027, 1, 1), 1) == date(2027, 1, 4)  # Friday -> Monday


def test_negative_days_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        add_business_days(MONDAY, -1)


def _walk(start: date, days: int) -> date:
    """The definition, one calendar day at a time."""
    current = start
    while current.weekday() >= 5:
        current += timedelta(days=1)
    counted = 0
    while counted < days:
        current += timedelta(days=1)
        if current.weekday() < 5:
            counted += 1
    return current


@pytest.mark.parametrize("offset", range(14))
def test_matches_a_day_by_day_walk(offset: int) -> None:
    start = MONDAY + timedelta(days=offset)
    for days in range(0, 23):
        result = add_business_days(start, days)
        assert result == _walk(start, days), (start, days)
        assert result.weekday() < 5
