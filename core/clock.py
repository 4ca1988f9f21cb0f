"""The one place the application reads the current time.

The rule (README, "Contributing"): domain code never reads the clock. The edge that handles
something (a route, an activity, a CLI command, a periodic job) asks its ``Clock`` once and
passes ``now`` down as a keyword argument, so one request or one step sees one instant and a
test can say what time it is. Workflows use ``workflow.now()`` for themselves only: the
activities tell them how long until a stored deadline (README, "Time: one clock").

Enforced by ruff (TID251, ``[tool.ruff.lint.flake8-tidy-imports.banned-api]``): outside this
module, ``tests/`` and ``bench/``, reading the wall clock does not pass ``make test``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Tells the time: timezone-aware, in UTC."""

    def now(self) -> datetime: ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until moved: for tests and for re-running a day."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def advance(self, by: timedelta) -> None:
        self._at += by


SYSTEM_CLOCK: Clock = SystemClock()
